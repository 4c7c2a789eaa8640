-- analysis.rework_items: the work items the rework report counts, one row per issue of
-- rework.traced_to_types existing at as_of, with when it started and was first done,
-- whether it is mature (first done at least rework.bug_window_days before as_of: old
-- enough to have shown rework), the rework charged to it, and the problems it carried:
-- factors, as '<kind>:<id>' strings:
--   gate:<gate_id>   a gate over the item (or a merge request naming it) judged late or
--                    violated
--   gap:<rule_id>    an issue gap rule whose requirement did not hold, at the item's
--                    start, for the item or its epic; or a merge-request gap finding
--                    on a merge request naming the item
--   drift:<rule_id>  a drift finding on the item, its epic, a page linked to its epic or
--                    a merge request naming it (drift is dated at as_of: a documented
--                    simplification)
CREATE SCHEMA IF NOT EXISTS analysis;

CREATE OR REPLACE TABLE analysis.rework_items AS
WITH items AS (
    SELECT s.*
    FROM analysis.subjects s
    WHERE s.subject_type = 'issue' AND NOT s.is_epic
      AND list_contains(lowered(policy_list('$.rework.traced_to_types')), lower(s.issue_type))
),
moments AS (
    -- work starts at the first move into progress, or into done when it skipped that
    SELECT subject_key, least(started_at, first_done_at) AS started_at, first_done_at AS done_at
    FROM items
),
item_mrs AS (
    SELECT unnest(linked_issues) AS item_key, subject_key AS mr_key
    FROM analysis.subjects WHERE subject_type = 'merge_request'
),
gate_factors AS (
    SELECT g.subject_key AS item_key, 'gate:' || g.gate_id AS factor
    FROM analysis.gate_evaluations g
    WHERE g.subject_type = 'issue' AND g.judged_status IN ('late', 'violated')
    UNION
    SELECT im.item_key, 'gate:' || g.gate_id
    FROM analysis.gate_evaluations g JOIN item_mrs im ON im.mr_key = g.subject_key
    WHERE g.subject_type = 'merge_request' AND g.judged_status IN ('late', 'violated')
),
issue_rule_subjects AS (
    -- the item itself and its epic, with the item's start
    SELECT x.item_key, m.started_at, s.*
    FROM (SELECT subject_key AS item_key, unnest(list_distinct([subject_key] || epics)) AS key
          FROM items) x
    JOIN moments m ON m.subject_key = x.item_key
    JOIN analysis.subjects s ON s.subject_type = 'issue' AND s.subject_key = x.key
    WHERE m.started_at IS NOT NULL
),
gap_factors AS (
    SELECT x.item_key, 'gap:' || r.rule_id AS factor
    FROM issue_rule_subjects x
    JOIN policy_gap_rules r ON r.subject_type = 'issue' AND selector_matches(r, x)
    WHERE NOT EXISTS (
        SELECT 1 FROM analysis.requirement_spans sp
        WHERE sp.subject_type = 'issue' AND sp.subject_key = x.subject_key
          AND sp.requirement = r.requirement
          AND same_minute_or_before(sp.held_from, x.started_at)
          AND (sp.held_until IS NULL OR sp.held_until > x.started_at))
    UNION
    SELECT im.item_key, 'gap:' || f.rule_id
    FROM analysis.findings f JOIN item_mrs im ON im.mr_key = f.subject_key
    WHERE f.kind = 'gap' AND f.subject_type = 'merge_request' AND NOT f.waived
),
item_scope AS (
    -- the issues whose drift an item carries: itself and its epics
    SELECT subject_key AS item_key, unnest(list_distinct([subject_key] || epics)) AS key
    FROM items
),
drift AS (
    SELECT subject_type, subject_key, rule_id FROM analysis.findings
    WHERE kind = 'drift' AND NOT waived
),
drift_factors AS (
    SELECT x.item_key, 'drift:' || f.rule_id AS factor
    FROM item_scope x JOIN drift f ON f.subject_type = 'issue' AND f.subject_key = x.key
    UNION
    SELECT x.item_key, 'drift:' || f.rule_id
    FROM item_scope x
    JOIN analysis.linked_pages p ON p.issue_key = x.key AND x.key <> x.item_key  -- epic pages
    JOIN drift f ON f.subject_type = 'page' AND f.subject_key = p.page_id
    UNION
    SELECT im.item_key, 'drift:' || f.rule_id
    FROM drift f JOIN item_mrs im ON im.mr_key = f.subject_key
    WHERE f.subject_type = 'merge_request'
),
factors AS (
    SELECT item_key, list(DISTINCT factor ORDER BY factor) AS factors
    FROM (SELECT * FROM gate_factors UNION SELECT * FROM gap_factors UNION SELECT * FROM drift_factors)
    GROUP BY item_key
),
rework AS (
    SELECT item_key, count(*) AS events, sum(coalesce(effort, 0)) AS effort,
           list(DISTINCT kind ORDER BY kind) AS kinds
    FROM analysis.rework_events GROUP BY item_key
)
SELECT
    i.subject_key                                   AS item_key,
    i.project                                       AS team,
    i.issue_type,
    i.web_url,
    m.started_at,
    m.done_at,
    m.done_at IS NOT NULL
        AND m.done_at <= as_of() - to_days(TRY_CAST(policy_text('$.rework.bug_window_days') AS INTEGER))
                                                    AS mature,
    coalesce(r.events, 0)                           AS rework_events,
    coalesce(r.effort, 0)                           AS rework_effort,
    coalesce(r.kinds, [])                           AS rework_kinds,
    coalesce(f.factors, [])                         AS factors,
    as_of()                                         AS as_of
FROM items i
JOIN moments m USING (subject_key)
LEFT JOIN rework r ON r.item_key = i.subject_key
LEFT JOIN factors f ON f.item_key = i.subject_key
ORDER BY item_key;
