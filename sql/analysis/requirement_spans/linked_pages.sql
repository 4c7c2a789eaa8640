-- requirements product_brief, prd, test_plan, runbook (issues and merge requests): held
-- from the moment a Confluence page with the policy's label is linked to one of the
-- subject's scope issues (the issue itself or its epic; for a merge request the issues
-- it names and their epics), by a whole-word mention or a remote link.
WITH wanted(requirement, label) AS (
    SELECT 'product_brief', policy_text('$.confluence.labels.product_brief')
    UNION ALL SELECT 'prd', policy_text('$.confluence.labels.prd')
    UNION ALL SELECT 'test_plan', policy_text('$.confluence.labels.test_plan')
    UNION ALL SELECT 'runbook', policy_text('$.confluence.labels.runbook')
),
scoped AS (
    SELECT subject_type, subject_key, unnest(scope_issues) AS issue_key FROM analysis.subjects
)
SELECT
    s.subject_type,
    s.subject_key,
    w.requirement,
    p.linked_at                     AS held_from,
    CAST(NULL AS TIMESTAMPTZ)       AS held_until,
    to_json({
        source: 'confluence', object: 'page', key: p.page_id, title: p.title, url: p.web_url,
        found_in: 'page labelled ' || p.label, linked_to: p.issue_key, linked_by: p.found_by,
        linked_in_version: p.linked_in_version, raw_id: p.raw_id
    })                              AS evidence
FROM scoped s
JOIN analysis.linked_pages p USING (issue_key)
JOIN wanted w ON w.label = p.label
