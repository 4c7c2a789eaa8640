-- reports.history: the headline numbers of every day judged, one row per as_of day, kept
-- across runs so the report can draw trends. A run replaces its own day's row (a re-run
-- for a past --as-of recomputes that day from the append-only raw history; the numbers
-- are the same for the same input).
CREATE SCHEMA IF NOT EXISTS reports;

CREATE TABLE IF NOT EXISTS reports.history (
    day              DATE PRIMARY KEY,
    as_of            TIMESTAMPTZ NOT NULL,
    gates_judged     BIGINT,
    gates_compliant  BIGINT,
    gate_compliance  DOUBLE,
    open_gaps        BIGINT,
    open_critical    BIGINT,
    open_drift       BIGINT,
    rework_hours     DOUBLE,
    delivered_hours  DOUBLE,
    rework_share     DOUBLE,
    rework_events    BIGINT
);

DELETE FROM reports.history WHERE day = CAST(timezone('UTC', as_of()) AS DATE);

INSERT INTO reports.history
SELECT
    CAST(timezone('UTC', as_of()) AS DATE),
    as_of(),
    g.judged, g.compliant, g.compliant / nullif(g.judged, 0),
    f.gaps, f.critical, f.drift,
    r.rework_hours, r.delivered_hours,
    r.rework_hours / nullif(r.rework_hours + r.delivered_hours, 0),
    r.events
FROM (SELECT count(*) FILTER (WHERE status IN ('compliant', 'late', 'violated')) AS judged,
             count(*) FILTER (WHERE status = 'compliant') AS compliant
      FROM analysis.gate_evaluations) g,
     (SELECT count(*) FILTER (WHERE kind = 'gap' AND NOT waived) AS gaps,
             count(*) FILTER (WHERE kind = 'gap' AND NOT waived AND severity = 'critical') AS critical,
             count(*) FILTER (WHERE kind = 'drift' AND NOT waived) AS drift
      FROM analysis.findings) f,
     (SELECT coalesce(sum(rework_hours), 0) AS rework_hours,
             coalesce(sum(delivered_hours), 0) AS delivered_hours,
             coalesce(sum(rework_events), 0) AS events
      FROM analysis.rework_share) r;
