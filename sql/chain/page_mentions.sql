-- chain.page_mentions: the Jira issue keys the current body of a page mentions, and the
-- first version whose body mentioned them the same way. found_by is 'jira_macro' (the
-- key parameter of a Jira macro), 'jira_link' (a link to /browse/KEY) or 'text' (the
-- key as a whole word in the prose: ABC-1 is not found inside ABC-12). Keys are
-- candidates: analysis keeps those that name an existing issue. Built by key
-- (lib/incremental.KEYED): a night derives again the pages stored since, `rebuilds(page_id)`.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.page_mentions AS
WITH current_pages AS (
    -- each page's current version, typed once in chain.page_fields
    SELECT page_id, version_number AS number, last_modified AS edited_at
    FROM chain.page_fields
    WHERE rebuilds(page_id)
),
stored AS (
    -- The current body's mentions are those of its version in chain.page_versions (read
    -- there once per version) ...
    SELECT c.page_id, c.number, c.edited_at, v.mentions
    FROM current_pages c
    JOIN chain.page_versions v ON v.page_id = c.page_id AND v.number = c.number
),
pages AS (
    SELECT * FROM stored
    UNION ALL
    -- ... a page whose current version is not stored is read here.
    SELECT r.object_key, c.number, c.edited_at,
           driftgate_issue_mentions(json_extract_string(r.payload, '$.body.storage.value'))
    FROM raw.current_objects('confluence', 'page') r
    JOIN current_pages c ON c.page_id = r.object_key
    WHERE r.object_key NOT IN (SELECT page_id FROM stored)
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
