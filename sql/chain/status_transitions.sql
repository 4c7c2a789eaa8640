-- chain.status_transitions: every status change from the complete changelogs, with the
-- category of both ends (changelog items carry status ids and names, not categories).
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.status_transitions AS
WITH statuses AS (
    SELECT payload->>'$.id' AS id, lower(payload->>'$.name') AS name,
           payload->>'$.statusCategory.key' AS category
    FROM raw.current_objects('jira', 'status')
),
histories AS (
    SELECT i.object_key AS issue_key, i.raw_id, unnest(jira_changelog(i.payload)) AS h
    FROM raw.current_objects('jira', 'issue') i
),
items AS (
    SELECT issue_key, raw_id,
           h.id AS history_id,
           TRY_CAST(h.created AS TIMESTAMPTZ) AS changed_at,
           coalesce(h.author.accountId, h.author.name) AS author,
           unnest(h.items) AS item
    FROM histories
)
SELECT
    items.issue_key,
    items.changed_at,
    items.item."from"     AS from_status_id,
    items.item.fromString AS from_status,
    items.item."to"       AS to_status_id,
    items.item.toString   AS to_status,
    coalesce(sf.category, sfn.category) AS from_category,
    coalesce(st.category, stn.category) AS to_category,
    items.author,
    items.history_id,
    items.raw_id
FROM items
LEFT JOIN statuses sf ON sf.id = items.item."from"
LEFT JOIN statuses st ON st.id = items.item."to"
LEFT JOIN statuses sfn ON sf.id IS NULL AND sfn.name = lower(items.item.fromString)
LEFT JOIN statuses stn ON st.id IS NULL AND stn.name = lower(items.item.toString)
WHERE items.item.field = 'status'
ORDER BY items.issue_key, items.changed_at, items.history_id;
