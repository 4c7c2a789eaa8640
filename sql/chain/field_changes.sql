-- chain.field_changes: every non-status changelog item (summary, description, acceptance
-- criteria, story points, labels, links...), the evidence for scope changes and late gates.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.field_changes AS
WITH histories AS (
    SELECT i.object_key, i.raw_id, unnest(jira_changelog(i.payload)) AS h
    FROM raw.current_objects('jira', 'issue') i
),
items AS (
    SELECT object_key, raw_id, h, unnest(h.items) AS it FROM histories
)
SELECT
    object_key                                          AS issue_key,
    TRY_CAST(h.created AS TIMESTAMPTZ)                  AS changed_at,
    it.field                                            AS field,
    it.fieldId                                          AS field_id,
    it.fieldtype                                        AS field_type,
    it.fromString                                       AS from_string,
    it.toString                                         AS to_string,
    coalesce(h.author.accountId, h.author.name)         AS author,
    h.id                                                AS history_id,
    raw_id
FROM items
WHERE it.field <> 'status'
ORDER BY issue_key, changed_at, history_id;
