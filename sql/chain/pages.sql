-- chain.pages: one row per current Confluence page (blog posts are not ingested), typed:
-- space, title, labels, version, dates, author, ancestors, body as text, and approval:
-- `approved` when the current body carries the policy's marker, and the first version
-- that carried it (from chain.page_versions).
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TEMP MACRO confluence_user_name(u) AS
    CASE WHEN json_type(u) = 'VARCHAR' THEN u->>'$'
         ELSE coalesce(u->>'$.displayName', u->>'$.publicName', u->>'$.username',
                       u->>'$.accountId') END;

CREATE OR REPLACE TABLE chain.pages AS
WITH pages AS (
    SELECT raw_id, object_key, payload
    FROM raw.current_objects('confluence', 'page')
),
spaces AS (
    SELECT object_key AS space_key, payload->>'$.name' AS space_name
    FROM raw.current_objects('confluence', 'space')
),
first_versions AS (
    SELECT page_id, edited_at AS created_at, author FROM chain.page_versions WHERE number = 1
),
approvals AS (
    SELECT page_id,
           min(number) FILTER (WHERE approved)     AS first_approved_version,
           arg_min(edited_at, number) FILTER (WHERE approved) AS first_approved_at
    FROM chain.page_versions GROUP BY page_id
),
typed AS (
    SELECT
        p.object_key                                                AS page_id,
        coalesce(
            p.payload->>'$.space.key',
            url_decode(nullif(regexp_extract(p.payload->>'$._expandable.space',
                                             '/space/([^/?]+)', 1), ''))
        )                                                           AS space_key,
        p.payload->>'$.title'                                       AS title,
        list_sort(coalesce(
            json_extract_string(p.payload, '$.metadata.labels.results[*].name'), []
        ))                                                          AS labels,
        TRY_CAST(p.payload->>'$.version.number' AS INTEGER)         AS version_number,
        TRY_CAST(p.payload->>'$.version.when' AS TIMESTAMPTZ)       AS last_modified,
        confluence_user_name(json_extract(p.payload, '$.version.by')) AS last_modified_by,
        TRY_CAST(p.payload->>'$.history.createdDate' AS TIMESTAMPTZ) AS history_created,
        confluence_user_name(json_extract(p.payload, '$.history.createdBy')) AS history_author,
        coalesce(json_extract_string(p.payload, '$.ancestors[*].id'), []) AS ancestor_ids,
        p.payload->>'$._links.webui'                                AS web_path,
        nullif(regexp_extract(p.payload->>'$._links.self', '^(https?://.+?)/rest/api/', 1), '')
            || (p.payload->>'$._links.webui')                       AS web_url,
        -- the current body as text: its version's, read once in chain.page_versions;
        -- read here only for a page whose current version is not stored
        CASE WHEN v.page_id IS NULL
             THEN driftgate_storage_text(p.payload->>'$.body.storage.value')
             ELSE v.body_text END                                   AS body_text,
        p.raw_id
    FROM pages p
    LEFT JOIN chain.page_versions v
           ON v.page_id = p.object_key
          AND v.number = TRY_CAST(p.payload->>'$.version.number' AS INTEGER)
)
SELECT
    t.page_id,
    t.space_key,
    s.space_name,
    t.title,
    t.labels,
    t.version_number,
    t.last_modified,
    t.last_modified_by,
    coalesce(t.history_created, f.created_at)                       AS created_at,
    coalesce(t.history_author, f.author)                            AS author,
    t.ancestor_ids,
    t.ancestor_ids[-1]                                              AS parent_id,
    t.web_path,
    t.web_url,
    t.body_text,
    coalesce(driftgate_carries_marker(t.body_text, policy_text('$.confluence.approved_marker')), false)
                                                                    AS approved,
    a.first_approved_version,
    a.first_approved_at,
    t.raw_id
FROM typed t
LEFT JOIN spaces s ON s.space_key = t.space_key
LEFT JOIN first_versions f ON f.page_id = t.page_id
LEFT JOIN approvals a ON a.page_id = t.page_id
ORDER BY t.page_id;
