-- chain.page_labels: one row per label of a current Confluence page. Labels are how the
-- policy recognises artifacts (prd, test-plan, runbook, auth-model...). Each row comes
-- from one page (raw_id), so the table is built page by page (lib/incremental.py).
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.page_labels AS
WITH labels AS (
    -- one parse of each payload, its labels only
    SELECT p.object_key, p.raw_id,
           unnest(json_transform(p.payload, '{"metadata": {"labels": {"results": [
               {"name": "VARCHAR", "prefix": "VARCHAR"}]}}}').metadata.labels.results) AS l
    FROM raw.current_objects('confluence', 'page') p
)
SELECT DISTINCT
    object_key                    AS page_id,
    l.name                        AS label,
    coalesce(l.prefix, 'global')  AS prefix,
    raw_id
FROM labels
WHERE l.name IS NOT NULL
ORDER BY page_id, label, prefix;
