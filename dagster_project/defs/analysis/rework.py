"""Analysis: rework — work done again, and what it traces back to."""

from dagster_project.sql_assets import sql_table_asset

analysis_rework_events = sql_table_asset(
    "analysis",
    "rework_events",
    deps=[
        ["chain", "status_transitions"],
        ["chain", "work_items"],
        ["chain", "issue_links"],
        ["chain", "merge_requests"],
        ["chain", "mr_changes"],
        ["chain", "mr_mentions"],
        ["chain", "mr_notes"],
        ["chain", "mr_review_rounds"],
        ["chain", "deployments"],
        ["raw", "gitlab"],
    ],
    description="Reopened issues, bugs traced to a recently done story, churn (lines "
    "rewritten soon after they merged), merge requests with too many review rounds and "
    "production deployments that shipped a fix: one row per event with its effort and "
    "evidence. One SQL file per kind in sql/analysis/rework_events/.",
    summary="SELECT kind, count(*) AS events, round(sum(effort), 1) AS effort_hours FROM analysis.rework_events GROUP BY ALL ORDER BY ALL",
)
analysis_rework_items = sql_table_asset(
    "analysis",
    "rework_items",
    deps=[
        ["analysis", "subjects"],
        ["analysis", "gate_evaluations"],
        ["analysis", "findings"],
        ["analysis", "requirement_spans"],
        ["analysis", "linked_pages"],
        ["analysis", "rework_events"],
    ],
    description="Per work item: when it started and was done, whether it is old enough "
    "to have shown rework, the rework charged to it and the gates, gaps and drift it "
    "carried.",
)
analysis_rework_root_causes = sql_table_asset(
    "analysis",
    "rework_root_causes",
    deps=[["analysis", "rework_items"]],
    description="Rework rate of items that bypassed a gate, had a gap or a drift, against "
    "items that had none: relative risk with counts and a 95% interval, per factor.",
    summary="SELECT factor, exposed_items, exposed_reworked, clean_items, clean_reworked, relative_risk, ci_low, ci_high FROM analysis.rework_root_causes ORDER BY ALL",
)
analysis_rework_share = sql_table_asset(
    "analysis",
    "rework_share",
    deps=[
        ["analysis", "subjects"],
        ["analysis", "rework_events"],
        ["chain", "deployments"],
        ["chain", "merge_requests"],
        ["chain", "mr_mentions"],
    ],
    description="Rework share of capacity per team and month (elapsed hours, stated), "
    "with counts by kind, the DORA deployment rework rate and small samples flagged.",
    summary="SELECT team, round(sum(rework_hours) / nullif(sum(rework_hours) + sum(delivered_hours), 0), 3) AS share, sum(rework_events) AS events, sum(delivered_items) AS delivered FROM analysis.rework_share GROUP BY ALL ORDER BY ALL",
)
