-- chain.remote_links: links from Jira issues to outside objects (Confluence pages...).
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.remote_links AS
SELECT
    r.object_key                            AS issue_key,
    l.value->>'$.id'                        AS link_id,
    l.value->>'$.globalId'                  AS global_id,
    l.value->>'$.object.url'                AS url,
    l.value->>'$.object.title'              AS title,
    l.value->>'$.application.type'          AS application_type,
    -- Confluence page id from a globalId "appId=...&pageId=123" or a URL ?pageId=123 / /pages/123
    coalesce(
        nullif(regexp_extract(l.value->>'$.globalId', 'pageId=(\d+)', 1), ''),
        nullif(regexp_extract(l.value->>'$.object.url', 'pageId=(\d+)', 1), ''),
        nullif(regexp_extract(l.value->>'$.object.url', '/pages/(\d+)', 1), '')
    )                                       AS page_id,
    r.raw_id
FROM raw.current_objects('jira', 'remotelink') r, json_each(r.payload, '$.links') l
ORDER BY issue_key, link_id;
