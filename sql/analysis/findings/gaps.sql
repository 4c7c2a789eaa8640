-- findings of kind 'gap': for every policy gap rule and every subject in its scope at
-- as_of, the rule's requirement does not hold at as_of (no span of
-- analysis.requirement_spans covers it). rule_id is the policy rule's id; the evidence
-- names the subject, what was looked for and where, and when a requirement that once
-- held stopped holding.
WITH scoped AS (
    SELECT r.rule_id, r.title AS rule_title, r.severity, r.requirement, s.*
    FROM policy_gap_rules r
    JOIN analysis.subjects s ON s.subject_type = r.subject_type AND selector_matches(r, s)
),
spans AS (
    -- only the spans of subjects in some rule's scope, for that rule's requirement
    SELECT sp.subject_type, sp.subject_key, sp.requirement,
           bool_or(sp.held_until IS NULL) AS held_now,
           max(sp.held_until)             AS last_held_until
    FROM analysis.requirement_spans sp
    SEMI JOIN scoped c USING (subject_type, subject_key, requirement)
    WHERE sp.held_from <= as_of()
    GROUP BY ALL
),
last_evidence AS (
    -- the evidence of the span that ended last, read only where the requirement no
    -- longer holds (the evidence texts are most of the spans' bytes)
    SELECT sp.subject_type, sp.subject_key, sp.requirement,
           arg_max(sp.evidence, {t: sp.held_until, k: sp.evidence::VARCHAR}) AS last_evidence
    FROM analysis.requirement_spans sp
    SEMI JOIN (SELECT * FROM spans WHERE NOT held_now) s
        USING (subject_type, subject_key, requirement)
    WHERE sp.held_from <= as_of()
    GROUP BY ALL
),
looked_for(requirement, what) AS (
    SELECT 'acceptance_criteria', 'an "' || policy_text('$.jira.acceptance_criteria_field')
           || '" field or a "' || policy_text('$.jira.acceptance_criteria_heading')
           || '" description section with real content'
    UNION ALL SELECT 'edge_case_matrix', 'a table under a "' || policy_text('$.jira.edge_cases_heading')
           || '" description heading, or a linked page labelled ' || policy_text('$.confluence.labels.edge_case_matrix')
    UNION ALL SELECT 'product_brief', 'a linked Confluence page labelled ' || policy_text('$.confluence.labels.product_brief')
    UNION ALL SELECT 'prd', 'a linked Confluence page labelled ' || policy_text('$.confluence.labels.prd')
    UNION ALL SELECT 'test_plan', 'a linked Confluence page labelled ' || policy_text('$.confluence.labels.test_plan')
    UNION ALL SELECT 'runbook', 'a linked Confluence page labelled ' || policy_text('$.confluence.labels.runbook')
    UNION ALL SELECT 'api_spec', 'a spec file (' || array_to_string(policy_list('$.ingest.spec_globs'), ', ')
           || ') in a repository linked to the epic, or an approved page labelled ' || policy_text('$.confluence.labels.api_spec')
    UNION ALL SELECT 'contract_tests', 'merge-request changes matching '
           || array_to_string(policy_list('$.ingest.contract_test_globs'), ', ')
    UNION ALL SELECT 'auth_model_approved', 'a linked page labelled ' || policy_text('$.confluence.labels.auth_model')
           || ' carrying "' || policy_text('$.confluence.approved_marker') || '"'
    UNION ALL SELECT 'observability_hooks', 'a linked runbook with sections '
           || array_to_string(policy_list('$.confluence.runbook_sections'), ', ')
           || ', or changes under ' || array_to_string(policy_list('$.ingest.observability_globs'), ', ')
)
SELECT
    md5('gap|' || c.rule_id || '|' || c.subject_type || '|' || c.subject_key) AS finding_id,
    'gap'                                                        AS kind,
    c.rule_id,
    c.subject_type,
    c.subject_key,
    c.severity,
    as_of()                                                      AS detected_at,
    c.rule_title || ': ' || c.subject_key
        || coalesce(' "' || c.title || '"', '')
        || CASE WHEN sp.last_held_until IS NOT NULL
                THEN ' (it was there until ' || strftime(sp.last_held_until, '%Y-%m-%d') || ')'
                ELSE '' END                                      AS summary,
    to_json({
        subject: {type: c.subject_type, key: c.subject_key, title: c.title, url: c.web_url,
                  project: c.project, raw_id: c.raw_id},
        requirement: c.requirement,
        looked_for: l.what,
        looked_at: c.scope_issues,
        epics: c.epics,
        linked_issues: c.linked_issues,
        held_until: sp.last_held_until,
        last_evidence: le.last_evidence
    })                                                           AS evidence,
    c.project,
    c.web_url
FROM scoped c
LEFT JOIN spans sp ON sp.subject_type = c.subject_type AND sp.subject_key = c.subject_key
                  AND sp.requirement = c.requirement
LEFT JOIN last_evidence le ON le.subject_type = c.subject_type
                          AND le.subject_key = c.subject_key
                          AND le.requirement = c.requirement
LEFT JOIN looked_for l ON l.requirement = c.requirement
WHERE NOT coalesce(sp.held_now, false)
