-- chain.page_mentions: the Jira issue keys the current body of a page mentions, and the
-- first version whose body mentioned them the same way. found_by is 'jira_macro' (the
-- key parameter of a Jira macro), 'jira_link' (a link to /browse/KEY) or 'text' (the
-- key as a whole word in the prose: ABC-1 is not found inside ABC-12). Keys are
-- candidates: analysis keeps those that name an existing issue.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.page_mentions AS
WITH pages AS (
    -- The current body's mentions are those of its version in chain.page_versions (read
    -- there once per version); a page whose current version is not stored is read here.
    SELECT
        p.object_key                                              AS page_id,
        TRY_CAST(p.payload->>'$.version.number' AS INTEGER)       AS number,
        TRY_CAST(p.payload->>'$.version.when' AS TIMESTAMPTZ)     AS edited_at,
        CASE WHEN v.page_id IS NULL
             THEN driftgate_issue_mentions(p.payload->>'$.body.storage.value')
             ELSE v.mentions END                                  AS mentions
    FROM raw.current_objects('confluence', 'page') p
    LEFT JOIN chain.page_versions v
           ON v.page_id = p.object_key
          AND v.number = TRY_CAST(p.payload->>'$.version.number' AS INTEGER)
),
versions AS (
    SELECT page_id, number, edited_at, mentions
    FROM chain.page_versions
    WHERE page_id IN (SELECT page_id FROM pages)
),
current_mentions AS (
    SELECT page_id, u.m.issue_key AS issue_key, u.m.found_by AS found_by
    FROM pages, unnest(mentions) AS u(m)
),
every_mention AS (
    SELECT page_id, number, edited_at, u.m.issue_key AS issue_key, u.m.found_by AS found_by
    FROM (SELECT * FROM pages UNION ALL SELECT * FROM versions) v, unnest(v.mentions) AS u(m)
),
firsts AS (
    SELECT page_id, issue_key, found_by,
           min(number)         AS first_version,
           arg_min(edited_at, number) AS first_seen_at
    FROM every_mention GROUP BY ALL
)
SELECT c.page_id, c.issue_key, c.found_by, f.first_version, f.first_seen_at
FROM current_mentions c
JOIN firsts f USING (page_id, issue_key, found_by)
ORDER BY page_id, issue_key, found_by;
