-- chain.merge_requests: one row per current GitLab merge request. mr_key is the
-- subject key other layers use, <project_path>!<iid>: the project's path_with_namespace
-- from raw projects, else the path in the MR's own references.full or web_url (an MR of
-- a project outside the ingested scope).
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.merge_requests AS
WITH mrs AS (
    -- Each payload is parsed once into what is read of it (see work_items.sql).
    SELECT raw_id, object_key,
           json_transform(payload, '{
               "id": "VARCHAR", "iid": "VARCHAR", "project_id": "VARCHAR",
               "title": "VARCHAR", "description": "VARCHAR",
               "source_branch": "VARCHAR", "target_branch": "VARCHAR", "state": "VARCHAR",
               "labels": "JSON[]", "author": {"username": "VARCHAR"},
               "created_at": "VARCHAR", "updated_at": "VARCHAR",
               "merged_at": "VARCHAR", "closed_at": "VARCHAR",
               "merge_commit_sha": "VARCHAR", "squash_commit_sha": "VARCHAR",
               "web_url": "VARCHAR", "references": {"full": "VARCHAR"}
           }') AS t
    FROM raw.current_objects('gitlab', 'merge_request')
),
typed AS (
    SELECT m.*,
           TRY_CAST(m.t.project_id AS BIGINT) AS project_id,
           TRY_CAST(m.t.iid AS BIGINT)        AS iid,
           coalesce(
               p.project_path,
               nullif(regexp_extract(m.t.references.full, '^(.+)![0-9]+$', 1), ''),
               nullif(regexp_extract(m.t.web_url,
                                     '^https?://[^/]+/(.+?)(?:/-)?/merge_requests/[0-9]+', 1), '')
           ) AS project_path
    FROM mrs m
    LEFT JOIN raw.gitlab_projects p ON p.project_id = TRY_CAST(m.t.project_id AS BIGINT)
)
SELECT
    m.project_path || '!' || m.iid                           AS mr_key,
    m.object_key                                             AS object_key,
    TRY_CAST(m.t.id AS BIGINT)                               AS mr_id,
    m.project_id,
    m.project_path,
    m.iid,
    m.t.title                                                AS title,
    m.t.description                                          AS description,
    m.t.source_branch                                        AS source_branch,
    m.t.target_branch                                        AS target_branch,
    m.t.state                                                AS state,
    -- labels are names, or objects with a name when listed with_labels_details
    coalesce(list_transform(m.t.labels,
                            lambda l: coalesce(l->>'$.name', l->>'$')), [])  AS labels,
    m.t.author.username                                      AS author,
    TRY_CAST(m.t.created_at AS TIMESTAMPTZ)                  AS created_at,
    TRY_CAST(m.t.updated_at AS TIMESTAMPTZ)                  AS updated_at,
    TRY_CAST(m.t.merged_at AS TIMESTAMPTZ)                   AS merged_at,
    TRY_CAST(m.t.closed_at AS TIMESTAMPTZ)                   AS closed_at,
    coalesce(m.t.merge_commit_sha, m.t.squash_commit_sha)    AS merge_commit_sha,
    m.t.web_url                                              AS web_url,
    -- the issue keys it names and where, read once per merge request (the table is
    -- built object by object); chain.mr_mentions lists them
    list_concat(
        list_transform(driftgate_issue_keys(m.t.title),
                       lambda k: {'issue_key': k, 'found_in': 'title'}),
        list_transform(driftgate_issue_keys(m.t.source_branch),
                       lambda k: {'issue_key': k, 'found_in': 'source_branch'}),
        list_transform(driftgate_issue_keys(m.t.description),
                       lambda k: {'issue_key': k, 'found_in': 'description'})
    )                                                        AS issue_mentions,
    m.raw_id
FROM typed m
ORDER BY mr_key;
