"""Reports: the headline numbers of every day judged, kept across runs for trends."""

from dagster_project.sql_assets import sql_table_asset

reports_history = sql_table_asset(
    "reports",
    "history",
    deps=[
        ["analysis", "gate_evaluations"],
        ["analysis", "findings"],
        ["analysis", "rework_share"],
    ],
    description="One row per day judged: gate compliance, open gaps and drift, rework "
    "share. A run replaces its own day, so a re-run for a past --as-of recomputes it.",
    summary="SELECT day, round(gate_compliance, 3) AS compliance, open_gaps, open_drift, "
    "round(rework_share, 3) AS rework_share FROM reports.history ORDER BY day DESC LIMIT 10",
)
