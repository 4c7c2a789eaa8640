-- chain.merge_requests: one row per current GitLab merge request. mr_key is the
-- subject key other layers use, <project_path>!<iid>: the project's path_with_namespace
-- from raw projects, else the path in the MR's own references.full or web_url (an MR of
-- a project outside the ingested scope).
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.merge_requests AS
WITH mrs AS (
    SELECT raw_id, object_key, payload,
           TRY_CAST(payload->>'$.project_id' AS BIGINT) AS project_id,
           TRY_CAST(payload->>'$.iid' AS BIGINT)        AS iid
    FROM raw.current_objects('gitlab', 'merge_request')
),
labelled AS (
    -- labels are names, or objects with a name when listed with_labels_details
    SELECT m.raw_id,
           list(coalesce(l.value->>'$.name', l.value->>'$') ORDER BY l.key::INTEGER) AS labels
    FROM mrs m, json_each(m.payload, '$.labels') l
    GROUP BY m.raw_id
)
SELECT
    coalesce(
        p.project_path,
        nullif(regexp_extract(m.payload->>'$.references.full', '^(.+)![0-9]+$', 1), ''),
        nullif(regexp_extract(m.payload->>'$.web_url',
                              '^https?://[^/]+/(.+?)(?:/-)?/merge_requests/[0-9]+', 1), '')
    ) || '!' || m.iid                                        AS mr_key,
    m.object_key                                             AS object_key,
    TRY_CAST(m.payload->>'$.id' AS BIGINT)                   AS mr_id,
    m.project_id,
    coalesce(
        p.project_path,
        nullif(regexp_extract(m.payload->>'$.references.full', '^(.+)![0-9]+$', 1), ''),
        nullif(regexp_extract(m.payload->>'$.web_url',
                              '^https?://[^/]+/(.+?)(?:/-)?/merge_requests/[0-9]+', 1), '')
    )                                                        AS project_path,
    m.iid,
    m.payload->>'$.title'                                    AS title,
    m.payload->>'$.description'                              AS description,
    m.payload->>'$.source_branch'                            AS source_branch,
    m.payload->>'$.target_branch'                            AS target_branch,
    m.payload->>'$.state'                                    AS state,
    coalesce(lb.labels, [])                                  AS labels,
    m.payload->>'$.author.username'                          AS author,
    TRY_CAST(m.payload->>'$.created_at' AS TIMESTAMPTZ)      AS created_at,
    TRY_CAST(m.payload->>'$.updated_at' AS TIMESTAMPTZ)      AS updated_at,
    TRY_CAST(m.payload->>'$.merged_at' AS TIMESTAMPTZ)       AS merged_at,
    TRY_CAST(m.payload->>'$.closed_at' AS TIMESTAMPTZ)       AS closed_at,
    coalesce(m.payload->>'$.merge_commit_sha',
             m.payload->>'$.squash_commit_sha')              AS merge_commit_sha,
    m.payload->>'$.web_url'                                  AS web_url,
    m.raw_id
FROM mrs m
LEFT JOIN raw.gitlab_projects p USING (project_id)
LEFT JOIN labelled lb ON lb.raw_id = m.raw_id
ORDER BY mr_key;
