-- drift jira_done_mr_open (issues): the issue is in a done-category status at as_of while
-- a merge request naming it is still open. Evidence: the merge requests and the moment
-- the issue last moved to done.
WITH pairs AS (
    SELECT i.subject_key, i.project, i.title, i.web_url, i.raw_id, i.last_done_at,
           m.subject_key AS mr_key, m.web_url AS mr_url, m.created_at AS mr_created_at
    FROM analysis.subjects i
    JOIN (SELECT *, unnest(linked_issues) AS linked_issue FROM analysis.subjects
          WHERE subject_type = 'merge_request') m
      ON m.linked_issue = i.subject_key
    WHERE i.subject_type = 'issue' AND i.status_category = 'done' AND m.mr_state = 'opened'
)
SELECT
    md5('drift|jira_done_mr_open|issue|' || p.subject_key) AS finding_id,
    'drift' AS kind, 'jira_done_mr_open' AS rule_id, 'issue' AS subject_type, p.subject_key,
    policy_text('$.drift.jira_done_mr_open.severity') AS severity,
    as_of() AS detected_at,
    'Done in Jira, merge request still open: ' || p.subject_key
        || coalesce(' "' || any_value(p.title) || '"', '') || ' — '
        || array_to_string(list(p.mr_key ORDER BY p.mr_key), ', ') AS summary,
    to_json({
        subject: {type: 'issue', key: p.subject_key, title: any_value(p.title),
                  url: any_value(p.web_url), project: any_value(p.project),
                  raw_id: any_value(p.raw_id)},
        done_at: any_value(p.last_done_at),
        merge_requests: list({key: p.mr_key, url: p.mr_url, state: 'opened',
                              created_at: p.mr_created_at} ORDER BY p.mr_key)
    }) AS evidence,
    any_value(p.project) AS project,
    any_value(p.web_url) AS web_url
FROM pairs p
GROUP BY p.subject_key
