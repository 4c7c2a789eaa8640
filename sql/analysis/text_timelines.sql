-- analysis.text_timelines: the value of each issue's acceptance-criteria field and
-- description over time, replayed from the complete changelog, one row per span
-- [valid_from, valid_until) (valid_until NULL: still the value at as_of). Before the
-- first change the value is that change's fromString; after each change its toString;
-- the last span carries today's payload value (ADF on Cloud v3, wiki markup on v2).
-- Spans that start after as_of are left out. The field is matched by the policy's name
-- (jira.acceptance_criteria_field), so per-project custom field ids do not matter.
CREATE SCHEMA IF NOT EXISTS analysis;

CREATE OR REPLACE TABLE analysis.text_timelines AS
WITH items AS (
    SELECT issue_key, created_at, web_url, raw_id,
           acceptance_criteria, CAST(description_raw AS VARCHAR) AS description
    FROM chain.work_items
    WHERE created_at <= as_of()
),
current_values AS (
    SELECT issue_key, created_at, raw_id, 'ac_field' AS role, acceptance_criteria AS value
    FROM items
    UNION ALL
    SELECT issue_key, created_at, raw_id, 'description', description FROM items
),
changes AS (
    SELECT f.issue_key, f.changed_at, f.from_string, f.to_string, f.history_id, f.author,
           CASE WHEN lower(f.field) = lower(policy_text('$.jira.acceptance_criteria_field'))
                  OR f.field_id IS NOT NULL
                 AND lower(f.field_id) = lower(policy_text('$.jira.acceptance_criteria_field'))
                THEN 'ac_field'
                WHEN lower(f.field) = 'description' THEN 'description' END AS role
    FROM chain.field_changes f
    WHERE f.issue_key IN (SELECT issue_key FROM items)
),
ordered AS (
    SELECT *,
           row_number() OVER w                        AS n,
           lead(changed_at) OVER w                    AS next_at
    FROM changes
    WHERE role IS NOT NULL
    WINDOW w AS (PARTITION BY issue_key, role ORDER BY changed_at, history_id)
),
spans AS (
    -- before the first change
    SELECT o.issue_key, o.role, c.created_at AS valid_from, o.changed_at AS valid_until,
           o.from_string AS value, CAST(NULL AS VARCHAR) AS history_id,
           CAST(NULL AS VARCHAR) AS changed_by, c.raw_id
    FROM ordered o JOIN current_values c USING (issue_key, role)
    WHERE o.n = 1
    UNION ALL
    -- after each change (the last one: today's value)
    SELECT o.issue_key, o.role, o.changed_at, o.next_at,
           CASE WHEN o.next_at IS NULL THEN c.value ELSE o.to_string END,
           o.history_id, o.author, c.raw_id
    FROM ordered o JOIN current_values c USING (issue_key, role)
    UNION ALL
    -- never changed
    SELECT c.issue_key, c.role, c.created_at, NULL, c.value, NULL, NULL, c.raw_id
    FROM current_values c
    WHERE NOT EXISTS (SELECT 1 FROM ordered o WHERE o.issue_key = c.issue_key AND o.role = c.role)
)
SELECT issue_key, role, valid_from,
       CASE WHEN valid_until <= as_of() THEN valid_until END AS valid_until,
       value, history_id, changed_by, raw_id, as_of() AS as_of
FROM spans
WHERE valid_from <= as_of()
ORDER BY issue_key, role, valid_from;
