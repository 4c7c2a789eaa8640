-- chain.page_mentions: the Jira issue keys the current body of a page mentions, and the
-- first version whose body mentioned them the same way. found_by is 'jira_macro' (the
-- key parameter of a Jira macro), 'jira_link' (a link to /browse/KEY) or 'text' (the
-- key as a whole word in the prose: ABC-1 is not found inside ABC-12). Keys are
-- candidates: analysis keeps those that name an existing issue.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.page_mentions AS
WITH pages AS (
    SELECT
        object_key                                            AS page_id,
        TRY_CAST(payload->>'$.version.number' AS INTEGER)     AS number,
        TRY_CAST(payload->>'$.version.when' AS TIMESTAMPTZ)   AS edited_at,
        driftgate_issue_mentions(payload->>'$.body.storage.value') AS mentions
    FROM raw.current_objects('confluence', 'page')
),
versions AS (
    SELECT
        coalesce(payload->>'$.page_id', parent_key)           AS page_id,
        TRY_CAST(payload->>'$.number' AS INTEGER)             AS number,
        TRY_CAST(payload->>'$.when' AS TIMESTAMPTZ)           AS edited_at,
        driftgate_issue_mentions(payload->>'$.content.body.storage.value') AS mentions
    FROM raw.current_objects('confluence', 'page_version')
    WHERE parent_key IN (SELECT page_id FROM pages)
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
