-- chain.page_labels: one row per label of a current Confluence page. Labels are how the
-- policy recognises artifacts (prd, test-plan, runbook, auth-model...).
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.page_labels AS
SELECT DISTINCT
    p.object_key                              AS page_id,
    l.value->>'$.name'                        AS label,
    coalesce(l.value->>'$.prefix', 'global')  AS prefix
FROM raw.current_objects('confluence', 'page') p,
     json_each(p.payload, '$.metadata.labels.results') l
WHERE l.value->>'$.name' IS NOT NULL
ORDER BY page_id, label, prefix;
