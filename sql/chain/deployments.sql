-- chain.deployments: every deployment of every ingested project: where (environment),
-- what (ref, sha), when it finished and how it ended.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.deployments AS
SELECT
    TRY_CAST(d.parent_key AS BIGINT)                               AS project_id,
    p.project_path,
    TRY_CAST(d.payload->>'$.id' AS BIGINT)                         AS deployment_id,
    TRY_CAST(d.payload->>'$.iid' AS BIGINT)                        AS iid,
    coalesce(d.payload->>'$.environment.name', d.payload->>'$.environment') AS environment,
    d.payload->>'$.status'                                         AS status,
    d.payload->>'$.ref'                                            AS ref,
    d.payload->>'$.sha'                                            AS sha,
    TRY_CAST(d.payload->>'$.created_at' AS TIMESTAMPTZ)            AS created_at,
    TRY_CAST(d.payload->>'$.updated_at' AS TIMESTAMPTZ)            AS updated_at,
    TRY_CAST(d.payload->>'$.deployable.finished_at' AS TIMESTAMPTZ) AS finished_at,
    d.payload->>'$.user.username'                                  AS deployed_by,
    d.raw_id
FROM raw.current_objects('gitlab', 'deployment') d
LEFT JOIN raw.gitlab_projects p ON p.project_id = TRY_CAST(d.parent_key AS BIGINT)
ORDER BY project_id, deployment_id;
