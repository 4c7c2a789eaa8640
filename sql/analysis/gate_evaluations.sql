-- analysis.gate_evaluations: step two, one row per (gate, subject in its scope) with its
-- status at as_of (policy gates; docs/policy.md):
--   compliant       every requirement held at the trigger
--   late            some requirement was met only after the trigger, and all hold now:
--                   the gate was bypassed
--   violated        some requirement is still unmet at as_of
--   not_applicable  in scope but not triggered by as_of
--   waived          late or violated, covered by an active waiver (owner and reason kept;
--                   the unwaived status stays in judged_status)
-- missing lists the requirements unmet at as_of (violated) or at the trigger (late);
-- satisfied_at maps every requirement to when it was met (null: not met).
CREATE SCHEMA IF NOT EXISTS analysis;

CREATE OR REPLACE TABLE analysis.gate_evaluations AS
WITH per_subject AS (
    SELECT gate_id, subject_type, subject_key, any_value(triggered_at) AS triggered_at,
           bool_and(held_at_trigger) AS all_then,
           bool_and(held_at_trigger OR held_at_as_of) AS all_now,
           list(requirement ORDER BY requirement) FILTER (WHERE NOT held_at_trigger)
                                                                 AS missing_at_trigger,
           list(requirement ORDER BY requirement)
               FILTER (WHERE NOT held_at_trigger AND NOT held_at_as_of) AS missing_now,
           map_from_entries(list({k: requirement, v: satisfied_at} ORDER BY requirement))
                                                                 AS satisfied_map,
           list({requirement: requirement, held_at_trigger: held_at_trigger,
                 satisfied_at: satisfied_at, evidence: evidence} ORDER BY requirement)
                                                                 AS requirement_evidence
    FROM analysis.gate_requirements
    GROUP BY gate_id, subject_type, subject_key
),
judged AS (
    SELECT p.*,
           CASE WHEN p.triggered_at IS NULL THEN 'not_applicable'
                WHEN p.all_then THEN 'compliant'
                WHEN p.all_now THEN 'late'
                ELSE 'violated' END AS judged_status
    FROM per_subject p
),
waived AS (
    SELECT subject_key, target_id AS gate_id, waiver
    FROM analysis.waivers
    WHERE target = 'gate' AND effective
)
SELECT
    j.gate_id,
    g.title                                                      AS gate_title,
    j.subject_type,
    j.subject_key,
    j.triggered_at,
    CASE WHEN j.judged_status IN ('late', 'violated') AND w.waiver.active THEN 'waived'
         ELSE j.judged_status END                                AS status,
    j.judged_status,
    to_json(CASE j.judged_status WHEN 'late' THEN j.missing_at_trigger
                                 WHEN 'violated' THEN j.missing_now
                                 ELSE []::VARCHAR[] END)         AS missing,
    to_json(coalesce(j.missing_at_trigger, []))                  AS missing_at_trigger,
    to_json(j.satisfied_map)                                     AS satisfied_at,
    CASE WHEN w.waiver IS NOT NULL THEN to_json(w.waiver) END    AS waiver,
    coalesce(w.waiver.active = false, false)                     AS waiver_expired,
    s.project,
    s.title                                                      AS subject_title,
    s.web_url,
    s.epics,
    s.linked_issues,
    to_json({
        subject: {type: j.subject_type, key: j.subject_key, title: s.title, url: s.web_url,
                  raw_id: s.raw_id},
        trigger: {event: g.trigger_event, category: g.trigger_category, "at": j.triggered_at},
        requirements: j.requirement_evidence
    })                                                           AS evidence,
    as_of()                                                      AS as_of
FROM judged j
JOIN policy_gates g USING (gate_id)
JOIN analysis.subjects s ON s.subject_type = j.subject_type AND s.subject_key = j.subject_key
LEFT JOIN waived w ON w.subject_key = j.subject_key AND w.gate_id = j.gate_id
ORDER BY j.gate_id, j.subject_type, j.subject_key;
