-- chain.pages: one row per current Confluence page (blog posts are not ingested), typed:
-- space, title, labels, version, dates, author, ancestors, body as text, and approval:
-- `approved` when the current body carries the policy's marker, and the first version
-- that carried it (from chain.page_versions). What the page's own payload gives is typed
-- once per page in chain.page_fields. Built by key (lib/incremental.KEYED): a night derives
-- again the pages whose page or versions were stored since, `rebuilds(page_id)`.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.pages AS
WITH spaces AS (
    SELECT object_key AS space_key, payload->>'$.name' AS space_name
    FROM raw.current_objects('confluence', 'space')
),
fields AS (
    SELECT * FROM chain.page_fields WHERE rebuilds(page_id)
),
versions AS (
    SELECT * FROM chain.page_versions WHERE rebuilds(page_id)
),
first_versions AS (
    SELECT page_id, edited_at AS created_at, author FROM versions WHERE number = 1
),
approvals AS (
    SELECT page_id,
           min(number) FILTER (WHERE approved)     AS first_approved_version,
           arg_min(edited_at, number) FILTER (WHERE approved) AS first_approved_at
    FROM versions GROUP BY page_id
),
current_versions AS (
    SELECT f.page_id, v.body_text, v.approved
    FROM fields f
    JOIN versions v ON v.page_id = f.page_id AND v.number = f.version_number
),
unstored AS (
    -- a page whose current version is not stored: its body is read here
    SELECT r.object_key AS page_id,
           driftgate_storage_text(json_extract_string(r.payload, '$.body.storage.value'))
               AS body_text
    FROM raw.current_objects('confluence', 'page') r
    WHERE rebuilds(r.object_key)
      AND r.object_key NOT IN (SELECT page_id FROM current_versions)
),
typed AS (
    SELECT f.*,
           coalesce(v.body_text, u.body_text)                       AS body_text,
           v.approved                                               AS version_approved
    FROM fields f
    LEFT JOIN current_versions v ON v.page_id = f.page_id
    LEFT JOIN unstored u ON u.page_id = f.page_id
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
