-- chain.page_versions: every stored version of every Confluence page, its author (the
-- API gives a user object; captured datasets may hold a plain name), its body as text,
-- its headings (how runbook sections are recognised) and whether that body carries the
-- policy's approval marker (a page is approved from the first version that does), and the
-- Jira issue keys it mentions (see chain.page_mentions).
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.page_versions AS
WITH versions AS (
    -- one parse of each payload (see work_items.sql)
    SELECT raw_id, parent_key,
           json_transform(payload, '{
               "page_id": "VARCHAR", "number": "VARCHAR", "when": "VARCHAR", "by": "JSON",
               "message": "VARCHAR", "minorEdit": "VARCHAR",
               "content": {"title": "VARCHAR", "body": {"storage": {"value": "VARCHAR"}}}
           }') AS t
    FROM raw.current_objects('confluence', 'page_version')
),
typed AS (
    SELECT
        coalesce(t.page_id, parent_key)                               AS page_id,
        TRY_CAST(t.number AS INTEGER)                                 AS number,
        TRY_CAST(t.when AS TIMESTAMPTZ)                               AS edited_at,
        confluence_user_name(t.by)                                    AS author,
        confluence_user_id(t.by)                                      AS author_id,
        nullif(t.message, '')                                         AS message,
        coalesce(TRY_CAST(t.minorEdit AS BOOLEAN), false)             AS minor_edit,
        t.content.title                                               AS title,
        driftgate_storage_text(t.content.body.storage.value)          AS body_text,
        driftgate_storage_headings(t.content.body.storage.value)      AS headings,
        driftgate_issue_mentions(t.content.body.storage.value)        AS mentions,
        raw_id
    FROM versions
)
SELECT
    page_id, number, edited_at, author, author_id, message, minor_edit, title, body_text,
    headings,
    coalesce(driftgate_carries_marker(body_text, policy_text('$.confluence.approved_marker')), false)
                                                                      AS approved,
    mentions,
    raw_id
FROM typed
ORDER BY page_id, number;
