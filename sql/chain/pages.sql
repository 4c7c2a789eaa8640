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
    -- Each payload is parsed once into what is read of it, the body left out: the
    -- current body's text is its version's, read once in chain.page_versions.
    SELECT raw_id, object_key,
           json_transform(payload, '{
               "space": {"key": "VARCHAR"}, "_expandable": {"space": "VARCHAR"},
               "title": "VARCHAR",
               "metadata": {"labels": {"results": [{"name": "VARCHAR"}]}},
               "version": {"number": "VARCHAR", "when": "VARCHAR", "by": "JSON"},
               "history": {"createdDate": "VARCHAR", "createdBy": "JSON"},
               "ancestors": [{"id": "VARCHAR"}],
               "_links": {"webui": "VARCHAR", "self": "VARCHAR"}
           }') AS t
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
current_versions AS (
    SELECT p.object_key AS page_id, v.body_text, v.approved
    FROM pages p
    JOIN chain.page_versions v
      ON v.page_id = p.object_key AND v.number = TRY_CAST(p.t.version.number AS INTEGER)
),
unstored AS (
    -- a page whose current version is not stored: its body is read here
    SELECT r.object_key AS page_id,
           driftgate_storage_text(json_extract_string(r.payload, '$.body.storage.value'))
               AS body_text
    FROM raw.current_objects('confluence', 'page') r
    WHERE r.object_key NOT IN (SELECT page_id FROM current_versions)
),
typed AS (
    SELECT
        p.object_key                                                AS page_id,
        coalesce(
            p.t.space.key,
            url_decode(nullif(regexp_extract(p.t._expandable.space,
                                             '/space/([^/?]+)', 1), ''))
        )                                                           AS space_key,
        p.t.title                                                   AS title,
        list_sort(coalesce(list_filter(list_transform(p.t.metadata.labels.results,
                                                      lambda l: l.name),
                                       lambda n: n IS NOT NULL), [])) AS labels,
        TRY_CAST(p.t.version.number AS INTEGER)                     AS version_number,
        TRY_CAST(p.t.version.when AS TIMESTAMPTZ)                   AS last_modified,
        confluence_user_name(p.t.version.by)                        AS last_modified_by,
        TRY_CAST(p.t.history.createdDate AS TIMESTAMPTZ)            AS history_created,
        confluence_user_name(p.t.history.createdBy)                 AS history_author,
        coalesce(list_filter(list_transform(p.t.ancestors, lambda a: a.id),
                             lambda i: i IS NOT NULL), [])          AS ancestor_ids,
        p.t._links.webui                                            AS web_path,
        nullif(regexp_extract(p.t._links.self, '^(https?://.+?)/rest/api/', 1), '')
            || p.t._links.webui                                     AS web_url,
        coalesce(v.body_text, u.body_text)                          AS body_text,
        v.approved                                                  AS version_approved,
        p.raw_id
    FROM pages p
    LEFT JOIN current_versions v ON v.page_id = p.object_key
    LEFT JOIN unstored u ON u.page_id = p.object_key
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
    -- the current version's verdict, found with the same marker in chain.page_versions;
    -- looked for here only in a body read here
    coalesce(t.version_approved,
             driftgate_carries_marker(t.body_text, policy_text('$.confluence.approved_marker')),
             false)                                                 AS approved,
    a.first_approved_version,
    a.first_approved_at,
    t.raw_id
FROM typed t
LEFT JOIN spaces s ON s.space_key = t.space_key
LEFT JOIN first_versions f ON f.page_id = t.page_id
LEFT JOIN approvals a ON a.page_id = t.page_id
ORDER BY t.page_id;
