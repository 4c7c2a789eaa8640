-- chain.page_versions: every stored version of every Confluence page, its author (the
-- API gives a user object; captured datasets may hold a plain name), its body as text,
-- its headings (how runbook sections are recognised) and whether that body carries the
-- policy's approval marker (a page is approved from the first version that does), and the
-- Jira issue keys it mentions (see chain.page_mentions).
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TEMP MACRO confluence_user_name(u) AS
    CASE WHEN json_type(u) = 'VARCHAR' THEN u->>'$'
         ELSE coalesce(u->>'$.displayName', u->>'$.publicName', u->>'$.username',
                       u->>'$.accountId') END;
CREATE OR REPLACE TEMP MACRO confluence_user_id(u) AS
    CASE WHEN json_type(u) = 'VARCHAR' THEN u->>'$'
         ELSE coalesce(u->>'$.accountId', u->>'$.userKey', u->>'$.username') END;

CREATE OR REPLACE TABLE chain.page_versions AS
WITH versions AS (
    SELECT raw_id, parent_key, payload
    FROM raw.current_objects('confluence', 'page_version')
),
typed AS (
    SELECT
        coalesce(payload->>'$.page_id', parent_key)                   AS page_id,
        TRY_CAST(payload->>'$.number' AS INTEGER)                     AS number,
        TRY_CAST(payload->>'$.when' AS TIMESTAMPTZ)                   AS edited_at,
        confluence_user_name(json_extract(payload, '$.by'))           AS author,
        confluence_user_id(json_extract(payload, '$.by'))             AS author_id,
        nullif(payload->>'$.message', '')                             AS message,
        coalesce(TRY_CAST(payload->>'$.minorEdit' AS BOOLEAN), false) AS minor_edit,
        payload->>'$.content.title'                                   AS title,
        driftgate_storage_text(payload->>'$.content.body.storage.value') AS body_text,
        driftgate_storage_headings(payload->>'$.content.body.storage.value') AS headings,
        driftgate_issue_mentions(payload->>'$.content.body.storage.value') AS mentions,
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
