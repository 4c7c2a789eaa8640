-- analysis.gate_requirements: step one of gate evaluation, one row per (gate, subject
-- in its scope, required requirement), judged at the trigger from history:
--   triggered_at      status_category_entered: the first transition into the category
--                     (or the creation, if the issue was created in it); mr_opened: the
--                     merge request's creation; mr_merged: its merge. NULL: not by as_of
--   held_at_trigger   a span of the requirement covers the trigger; the same minute as
--                     the trigger counts as before (timestamps in the three tools are
--                     not synchronised to the second)
--   held_at_as_of     a span covers as_of
--   satisfied_at      the start of the span that held at the trigger, else the first
--                     span starting after it (by as_of), else NULL
--   evidence          what satisfied it (the span's evidence)
CREATE SCHEMA IF NOT EXISTS analysis;

CREATE OR REPLACE TABLE analysis.gate_requirements AS
WITH scoped AS (
    SELECT g.gate_id, g.trigger_event, g.trigger_category, g.requires, s.*
    FROM policy_gates g
    JOIN analysis.subjects s ON s.subject_type = g.subject_type AND selector_matches(g, s)
),
entered AS (
    SELECT issue_key, to_category, min(changed_at) AS at
    FROM chain.status_transitions
    WHERE changed_at <= as_of()
    GROUP BY issue_key, to_category
),
triggered AS (
    SELECT c.*,
           CASE c.trigger_event
               WHEN 'mr_opened' THEN c.created_at
               WHEN 'mr_merged' THEN c.merged_at
               ELSE CASE WHEN c.created_in_category = c.trigger_category THEN c.created_at
                         ELSE e.at END
           END AS triggered_at
    FROM scoped c
    LEFT JOIN entered e ON e.issue_key = c.subject_key AND e.to_category = c.trigger_category
),
required AS (
    SELECT t.gate_id, t.subject_type, t.subject_key, t.triggered_at,
           unnest(t.requires) AS requirement
    FROM triggered t
),
spans AS (
    SELECT * FROM analysis.requirement_spans WHERE held_from <= as_of()
),
judged AS (
    SELECT r.gate_id, r.subject_type, r.subject_key, r.triggered_at, r.requirement,
           coalesce(bool_or(same_minute_or_before(s.held_from, r.triggered_at)
                            AND (s.held_until IS NULL OR s.held_until > r.triggered_at)), false)
                                                                       AS held_at_trigger,
           coalesce(bool_or(s.held_from IS NOT NULL AND s.held_until IS NULL), false) AS held_at_as_of,
           min(s.held_from) FILTER (WHERE same_minute_or_before(s.held_from, r.triggered_at)
                                      AND (s.held_until IS NULL OR s.held_until > r.triggered_at))
                                                                       AS held_since,
           min(s.held_from) FILTER (WHERE s.held_from > r.triggered_at)   AS met_after,
           arg_min(s.evidence, {t: s.held_from, k: s.evidence::VARCHAR}) FILTER (WHERE same_minute_or_before(s.held_from, r.triggered_at)
                                      AND (s.held_until IS NULL OR s.held_until > r.triggered_at))
                                                                       AS evidence_then,
           arg_min(s.evidence, {t: s.held_from, k: s.evidence::VARCHAR}) FILTER (WHERE s.held_from > r.triggered_at)
                                                                       AS evidence_after,
           arg_min(s.evidence, {t: s.held_from, k: s.evidence::VARCHAR}) FILTER (WHERE s.held_from IS NOT NULL AND s.held_until IS NULL)
                                                                       AS evidence_now
    FROM required r
    LEFT JOIN spans s ON s.subject_type = r.subject_type AND s.subject_key = r.subject_key
                     AND s.requirement = r.requirement
    GROUP BY ALL
)
SELECT gate_id, subject_type, subject_key, triggered_at, requirement,
       triggered_at IS NOT NULL AND held_at_trigger                AS held_at_trigger,
       held_at_as_of,
       CASE WHEN triggered_at IS NULL THEN NULL
            WHEN held_at_trigger THEN held_since ELSE met_after END AS satisfied_at,
       CASE WHEN triggered_at IS NULL THEN evidence_now
            WHEN held_at_trigger THEN evidence_then
            ELSE coalesce(evidence_after, evidence_now) END      AS evidence,
       as_of() AS as_of
FROM judged
ORDER BY gate_id, subject_type, subject_key, requirement;
