-- reports.snapshots: one row per day materialised by the daily-partitioned snapshot
-- asset, the same columns as reports.history (judged as of the day's start, UTC).
CREATE SCHEMA IF NOT EXISTS reports;

CREATE TABLE IF NOT EXISTS reports.snapshots (
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
