-- drift jira_done_mr_closed_unmerged (issues): done at as_of, named by merge requests,
-- none of them merged (or open) and at least one closed without merging: the code the
-- issue claims never landed.
WITH mrs AS (
    SELECT i.subject_key, i.project, i.title, i.web_url, i.raw_id,
           m.subject_key AS mr_key, m.web_url AS mr_url, m.mr_state
    FROM analysis.subjects i
    JOIN (SELECT *, unnest(linked_issues) AS linked_issue FROM analysis.subjects
          WHERE subject_type = 'merge_request') m
      ON m.linked_issue = i.subject_key
    WHERE i.subject_type = 'issue' AND i.status_category = 'done' AND NOT i.is_epic
)
SELECT
    md5('drift|jira_done_mr_closed_unmerged|issue|' || subject_key) AS finding_id,
    'drift' AS kind, 'jira_done_mr_closed_unmerged' AS rule_id, 'issue' AS subject_type,
    subject_key,
    policy_text('$.drift.jira_done_mr_closed_unmerged.severity') AS severity,
    as_of() AS detected_at,
    'Done in Jira, its merge requests closed unmerged: ' || subject_key
        || coalesce(' "' || any_value(title) || '"', '') AS summary,
    to_json({
        subject: {type: 'issue', key: subject_key, title: any_value(title), url: any_value(web_url),
                  project: any_value(project), raw_id: any_value(raw_id)},
        merge_requests: list({key: mr_key, url: mr_url, state: mr_state} ORDER BY mr_key)
    }) AS evidence,
    any_value(project) AS project,
    any_value(web_url) AS web_url
FROM mrs
GROUP BY subject_key
HAVING bool_and(mr_state = 'closed')
