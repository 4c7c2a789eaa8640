-- drift epic_done_children_open (epics): the epic is done at as_of while issues under it
-- are not. Evidence: the open children with their status.
SELECT
    md5('drift|epic_done_children_open|issue|' || e.subject_key) AS finding_id,
    'drift' AS kind, 'epic_done_children_open' AS rule_id, 'issue' AS subject_type,
    e.subject_key,
    policy_text('$.drift.epic_done_children_open.severity') AS severity,
    as_of() AS detected_at,
    'Epic done with open work: ' || e.subject_key || coalesce(' "' || any_value(e.title) || '"', '')
        || ' — ' || count(*) || ' open: ' || array_to_string(list(c.subject_key ORDER BY c.subject_key)[1:5], ', ')
        AS summary,
    to_json({
        subject: {type: 'issue', key: e.subject_key, title: any_value(e.title),
                  url: any_value(e.web_url), project: any_value(e.project),
                  raw_id: any_value(e.raw_id)},
        open_children: list({key: c.subject_key, status: c.status_name, url: c.web_url}
                            ORDER BY c.subject_key)
    }) AS evidence,
    any_value(e.project) AS project,
    any_value(e.web_url) AS web_url
FROM analysis.subjects e
JOIN analysis.subjects c
  ON c.subject_type = 'issue' AND c.epic_key = e.subject_key AND c.status_category <> 'done'
WHERE e.subject_type = 'issue' AND e.is_epic AND e.status_category = 'done'
GROUP BY e.subject_key
