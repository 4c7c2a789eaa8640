-- drift mr_merged_issue_not_started (merge requests): merged by as_of while every
-- (non-epic) issue it names had never started by the merge: work done outside the
-- tracked flow. "Started": a move into drift.work_started_category or done before the
-- merge, or created there.
WITH links AS (
    SELECT m.subject_key AS mr_key, m.project, m.title, m.web_url, m.raw_id, m.merged_at,
           unnest(m.linked_issues) AS issue_key
    FROM analysis.subjects m
    WHERE m.subject_type = 'merge_request' AND m.mr_state = 'merged' AND m.merged_at IS NOT NULL
),
judged AS (
    SELECT l.*,
           i.created_in_category IN (policy_text('$.drift.work_started_category'), 'done')
           OR EXISTS (
               SELECT 1 FROM chain.status_transitions t
               WHERE t.issue_key = l.issue_key AND t.changed_at <= l.merged_at
                 AND t.to_category IN (policy_text('$.drift.work_started_category'), 'done')
           ) AS started
    FROM links l
    JOIN analysis.subjects i ON i.subject_type = 'issue' AND i.subject_key = l.issue_key
    WHERE NOT i.is_epic
)
SELECT
    md5('drift|mr_merged_issue_not_started|merge_request|' || mr_key) AS finding_id,
    'drift' AS kind, 'mr_merged_issue_not_started' AS rule_id,
    'merge_request' AS subject_type, mr_key AS subject_key,
    policy_text('$.drift.mr_merged_issue_not_started.severity') AS severity,
    as_of() AS detected_at,
    'Merged before its issue started: ' || mr_key || ' (' ||
        array_to_string(list(issue_key ORDER BY issue_key), ', ') || ' not started at the merge)'
        AS summary,
    to_json({
        subject: {type: 'merge_request', key: mr_key, title: any_value(title),
                  url: any_value(web_url), project: any_value(project), raw_id: any_value(raw_id)},
        merged_at: any_value(merged_at),
        issues: list(issue_key ORDER BY issue_key)
    }) AS evidence,
    any_value(project) AS project,
    any_value(web_url) AS web_url
FROM judged
GROUP BY mr_key
HAVING NOT bool_or(started)
