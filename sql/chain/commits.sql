-- chain.commits: every commit of every ingested project (all refs), with the line
-- counts GitLab reports in stats (NULL where it sent none).
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.commits AS
WITH commits AS (
    -- one parse of each payload (see work_items.sql)
    SELECT c.parent_key, c.raw_id,
           json_transform(c.payload, '{
               "id": "VARCHAR", "authored_date": "VARCHAR", "committed_date": "VARCHAR",
               "created_at": "VARCHAR", "title": "VARCHAR", "author_name": "VARCHAR",
               "stats": {"additions": "VARCHAR", "deletions": "VARCHAR"},
               "parent_ids": "VARCHAR[]"
           }') AS t
    FROM raw.current_objects('gitlab', 'commit') c
)
SELECT
    TRY_CAST(parent_key AS BIGINT)                                 AS project_id,
    t.id                                                           AS sha,
    TRY_CAST(t.authored_date AS TIMESTAMPTZ)                       AS authored_at,
    TRY_CAST(coalesce(t.committed_date, t.created_at) AS TIMESTAMPTZ) AS committed_at,
    t.title                                                        AS title,
    t.author_name                                                  AS author_name,
    TRY_CAST(t.stats.additions AS INTEGER)                         AS additions,
    TRY_CAST(t.stats.deletions AS INTEGER)                         AS deletions,
    coalesce(t.parent_ids, [])                                     AS parent_ids,
    raw_id
FROM commits
ORDER BY project_id, committed_at, sha;
