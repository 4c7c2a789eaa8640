-- requirement acceptance_criteria (issues): held while the policy's acceptance-criteria
-- field has real content, or the description has a section under the policy's heading
-- (wiki h1.-h6., Markdown #, ADF heading) with real content. Empty values and text made
-- only of placeholders (requirements.placeholders: "TBD", "-", ...) do not count.
-- A text repeats across versions and issues: each distinct one is parsed once.
WITH candidates AS MATERIALIZED (
    SELECT t.*
    FROM analysis.text_timelines t
    WHERE CASE t.role
            WHEN 'ac_field' THEN nullif(trim(t.value), '') IS NOT NULL
            ELSE may_hold_heading(t.value, policy_text('$.jira.acceptance_criteria_heading'))
          END
),
judged AS MATERIALIZED (
    SELECT role, value,
           CASE role
             WHEN 'ac_field' THEN driftgate_meaningful(value, policy_list('$.requirements.placeholders'))
             ELSE driftgate_section_present(value, policy_text('$.jira.acceptance_criteria_heading'),
                                            policy_list('$.requirements.placeholders'))
           END AS held
    FROM (SELECT DISTINCT role, value FROM candidates)
)
SELECT
    'issue'                         AS subject_type,
    t.issue_key                     AS subject_key,
    'acceptance_criteria'           AS requirement,
    t.valid_from                    AS held_from,
    t.valid_until                   AS held_until,
    to_json({
        source: 'jira', object: 'issue', key: t.issue_key,
        found_in: CASE t.role WHEN 'ac_field' THEN 'field ' || policy_text('$.jira.acceptance_criteria_field')
                              ELSE 'description section ' || policy_text('$.jira.acceptance_criteria_heading') END,
        changelog_history_id: t.history_id, changed_by: t.changed_by, raw_id: t.raw_id
    })                              AS evidence
FROM candidates t
JOIN judged j USING (role, value)
WHERE j.held
