-- chain.commits: every commit of every ingested project (all refs), with the line
-- counts GitLab reports in stats (NULL where it sent none).
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.commits AS
SELECT
    TRY_CAST(c.parent_key AS BIGINT)                               AS project_id,
    c.payload->>'$.id'                                             AS sha,
    TRY_CAST(c.payload->>'$.authored_date' AS TIMESTAMPTZ)         AS authored_at,
    TRY_CAST(coalesce(c.payload->>'$.committed_date', c.payload->>'$.created_at')
             AS TIMESTAMPTZ)                                       AS committed_at,
    c.payload->>'$.title'                                          AS title,
    c.payload->>'$.author_name'                                    AS author_name,
    TRY_CAST(c.payload->>'$.stats.additions' AS INTEGER)           AS additions,
    TRY_CAST(c.payload->>'$.stats.deletions' AS INTEGER)           AS deletions,
    coalesce(CAST(json_extract(c.payload, '$.parent_ids') AS VARCHAR[]), [])
                                                                   AS parent_ids,
    c.raw_id
FROM raw.current_objects('gitlab', 'commit') c
ORDER BY project_id, committed_at, sha;
