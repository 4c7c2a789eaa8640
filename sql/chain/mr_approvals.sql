-- chain.mr_approvals: when each merge request was first approved, from its stored
-- approvals answer (`approved_by[].approved_at`), under its merge request's object key.
-- Each row comes from one answer, so the table is built answer by answer
-- (lib/incremental.py) and chain.mr_review_rounds reads it without parsing every
-- answer again.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.mr_approvals AS
SELECT
    a.object_key,
    min(TRY_CAST(ab.value->>'$.approved_at' AS TIMESTAMPTZ))    AS first_approved_at,
    a.raw_id
FROM raw.current_objects('gitlab', 'mr_approval') a
LEFT JOIN json_each(a.payload, '$.approved_by') ab ON true
GROUP BY a.object_key, a.raw_id
ORDER BY a.object_key;
