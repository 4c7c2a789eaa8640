"""Analysis: findings, gaps and drift (one rule per file in sql/analysis/findings/)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.metadata import markdown_table
from dagster_project.sql_assets import sql_table_asset

analysis_findings = sql_table_asset(
    "analysis",
    "findings",
    deps=[
        ["analysis", "subjects"],
        ["analysis", "requirement_spans"],
        ["analysis", "waivers"],
        ["analysis", "linked_pages"],
        ["chain", "status_transitions"],
        ["chain", "field_changes"],
        ["chain", "page_versions"],
        ["chain", "work_items"],
        ["chain", "merge_requests"],
        ["chain", "mr_changes"],
        ["chain", "repository_files"],
        ["raw", "gitlab"],
    ],
    description="Gaps (a link of the artifact chain missing where the policy says it must "
    "exist) and drift (links that disagree or moved after approval: requirements, spec, "
    "scope, status across tools), with severity, a one-line summary and clickable "
    "evidence. One SQL file per rule in sql/analysis/findings/.",
    summary="SELECT kind, rule_id, severity, count(*) AS findings, count(*) FILTER (WHERE waived) AS waived FROM analysis.findings GROUP BY ALL ORDER BY ALL",
)


@dg.asset_check(asset=["analysis", "findings"], pool="duckdb")
def no_open_critical_gaps(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    """Warns while critical or high gaps are open (not waived); lists the first ones."""
    with duckdb.get_connection() as con:
        rows = con.execute(
            "SELECT severity, rule_id, subject_key, summary FROM analysis.findings "
            "WHERE kind = 'gap' AND NOT waived AND severity IN ('critical', 'high') "
            "ORDER BY severity = 'critical' DESC, rule_id, subject_key"
        ).fetchall()
    return dg.AssetCheckResult(
        passed=not rows,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "open_critical_or_high": len(rows),
            "first": dg.MetadataValue.md(
                markdown_table(["severity", "rule", "subject", "summary"], rows[:20], empty="none")
            ),
        },
    )
