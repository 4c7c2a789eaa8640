-- requirement auth_model_approved (issues and merge requests): held from the later of
-- (a page labelled auth-model is linked to a scope issue) and (the first version of
-- that page, up to as_of, whose body carries the approval marker).
WITH scoped AS (
    SELECT subject_type, subject_key, unnest(scope_issues) AS issue_key FROM analysis.subjects
),
approvals AS (
    -- the first approved version; once it is before as_of it is the first by as_of too
    SELECT page_id, first_approved_version AS version, first_approved_at AS approved_at
    FROM chain.pages
    WHERE first_approved_at <= as_of()
)
SELECT
    s.subject_type,
    s.subject_key,
    'auth_model_approved'           AS requirement,
    greatest(p.linked_at, a.approved_at) AS held_from,
    CAST(NULL AS TIMESTAMPTZ)       AS held_until,
    to_json({
        source: 'confluence', object: 'page', key: p.page_id, title: p.title, url: p.web_url,
        found_in: 'page labelled ' || p.label || ', approved in version ' || a.version,
        approved_at: a.approved_at, linked_to: p.issue_key, linked_by: p.found_by,
        raw_id: p.raw_id
    })                              AS evidence
FROM scoped s
JOIN analysis.linked_pages p USING (issue_key)
JOIN approvals a USING (page_id)
WHERE p.label = policy_text('$.confluence.labels.auth_model')
