-- drift done_without_mr (issues of drift.done_without_mr.issue_types): done at as_of and
-- no merge request names them: either the code went in unlinked or the issue was closed
-- without work. Evidence: the issue and when it moved to done.
WITH named AS (
    SELECT DISTINCT unnest(linked_issues) AS issue_key
    FROM analysis.subjects WHERE subject_type = 'merge_request'
)
SELECT
    md5('drift|done_without_mr|issue|' || s.subject_key) AS finding_id,
    'drift' AS kind, 'done_without_mr' AS rule_id, 'issue' AS subject_type, s.subject_key,
    policy_text('$.drift.done_without_mr.severity') AS severity,
    as_of() AS detected_at,
    'Done with no merge request: ' || s.subject_key || coalesce(' "' || s.title || '"', '')
        AS summary,
    to_json({
        subject: {type: 'issue', key: s.subject_key, title: s.title, url: s.web_url,
                  project: s.project, raw_id: s.raw_id},
        issue_type: s.issue_type,
        done_at: s.last_done_at
    }) AS evidence,
    s.project,
    s.web_url
FROM analysis.subjects s
WHERE s.subject_type = 'issue' AND s.status_category = 'done' AND NOT s.is_epic
  AND list_contains(lowered(policy_list('$.drift.done_without_mr.issue_types')), lower(s.issue_type))
  AND s.subject_key NOT IN (SELECT issue_key FROM named)
