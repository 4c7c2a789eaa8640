-- chain.page_fields: what chain.pages reads of each current Confluence page's own payload
-- (space, title, labels, version, dates, authors, ancestors, links), typed once per page:
-- each row comes from one page, so the table is built page by page (lib/incremental.py)
-- instead of parsing every page again whenever one page or version changes.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.page_fields AS
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
)
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
    p.raw_id
FROM pages p
ORDER BY page_id;
