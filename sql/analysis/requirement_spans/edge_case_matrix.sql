-- requirement edge_case_matrix (issues): held while the description has a table with
-- data rows under the policy's edge-cases heading, or from the moment a Confluence page
-- labelled edge-case-matrix is linked to the issue itself (mention or remote link). A
-- heading followed by a list or prose only does not count. Only descriptions that can
-- hold the heading and a table (a "|" line, an ADF table node, or JSON escapes that may
-- hide either) are parsed, each distinct text once.
WITH candidates AS MATERIALIZED (
    SELECT t.*
    FROM analysis.text_timelines t
    WHERE t.role = 'description'
      AND may_hold_heading(t.value, policy_text('$.jira.edge_cases_heading'))
      AND (contains(t.value, '|') OR contains(t.value, 'table') OR contains(t.value, '\u'))
),
judged AS MATERIALIZED (
    SELECT value, driftgate_section_has_table(value, policy_text('$.jira.edge_cases_heading')) AS held
    FROM (SELECT DISTINCT value FROM candidates)
)
SELECT
    'issue'                         AS subject_type,
    t.issue_key                     AS subject_key,
    'edge_case_matrix'              AS requirement,
    t.valid_from                    AS held_from,
    t.valid_until                   AS held_until,
    to_json({
        source: 'jira', object: 'issue', key: t.issue_key,
        found_in: 'description section ' || policy_text('$.jira.edge_cases_heading'),
        changelog_history_id: t.history_id, changed_by: t.changed_by, raw_id: t.raw_id
    })                              AS evidence
FROM candidates t
JOIN judged j USING (value)
WHERE j.held
UNION ALL
SELECT
    'issue', p.issue_key, 'edge_case_matrix', p.linked_at, NULL,
    to_json({
        source: 'confluence', object: 'page', key: p.page_id, title: p.title, url: p.web_url,
        found_in: 'page labelled ' || p.label, linked_by: p.found_by,
        linked_in_version: p.linked_in_version, raw_id: p.raw_id
    })
FROM analysis.linked_pages p
WHERE p.label = policy_text('$.confluence.labels.edge_case_matrix')
