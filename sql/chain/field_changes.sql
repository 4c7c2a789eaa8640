-- chain.field_changes: every non-status changelog item (summary, description, acceptance
-- criteria, story points, labels, links...), the evidence for scope changes and late gates.
CREATE SCHEMA IF NOT EXISTS chain;

CREATE OR REPLACE TABLE chain.field_changes AS
SELECT
    i.object_key                                        AS issue_key,
    TRY_CAST(h.value->>'$.created' AS TIMESTAMPTZ)      AS changed_at,
    it.value->>'$.field'                                AS field,
    it.value->>'$.fieldId'                              AS field_id,
    it.value->>'$.fieldtype'                            AS field_type,
    it.value->>'$.fromString'                           AS from_string,
    it.value->>'$.toString'                             AS to_string,
    coalesce(h.value->>'$.author.accountId', h.value->>'$.author.name') AS author,
    h.value->>'$.id'                                    AS history_id,
    i.raw_id
FROM raw.current_objects('jira', 'issue') i,
     json_each(i.payload, '$.changelog.histories') h,
     json_each(h.value, '$.items') it
WHERE it.value->>'$.field' <> 'status'
ORDER BY issue_key, changed_at, history_id;
