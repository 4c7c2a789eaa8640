-- chain.repository_files: the repository files the policy names, at each project's
-- default branch (every kind) and at its tags (API specs: the approved versions), one
-- row per kind a path matches (ingest.spec_globs -> 'spec', contract_test_globs ->
-- 'contract_test', observability_globs -> 'observability').
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.repository_files AS
WITH files AS (
    SELECT f.raw_id, f.payload,
           TRY_CAST(f.payload->>'$.project_id' AS BIGINT) AS project_id,
           f.payload->>'$.path' AS path
    FROM raw.current_objects('gitlab', 'file') f
),
kinds(kind, globs, ord) AS (
    SELECT 'spec', policy_list('$.ingest.spec_globs'), 1
    UNION ALL SELECT 'contract_test', policy_list('$.ingest.contract_test_globs'), 2
    UNION ALL SELECT 'observability', policy_list('$.ingest.observability_globs'), 3
)
SELECT
    f.project_id,
    p.project_path,
    f.payload->>'$.ref'                          AS ref,
    f.payload->>'$.ref' = p.default_branch       AS at_default_branch,
    f.path,
    f.payload->>'$.blob_id'                      AS blob_id,
    TRY_CAST(f.payload->>'$.size' AS BIGINT)     AS size,
    k.kind,
    f.raw_id
FROM files f
JOIN kinds k ON glob_matches(f.path, k.globs)
LEFT JOIN raw.gitlab_projects p USING (project_id)
ORDER BY f.project_id, ref, f.path, k.ord;
