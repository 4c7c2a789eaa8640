"""Analysis: quality gates judged at the moment work crossed them."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.lib.policy import load_policy
from dagster_project.metadata import markdown_table
from dagster_project.sql_assets import sql_table_asset

GATE_EVALUATIONS = ["analysis", "gate_evaluations"]

analysis_gate_requirements = sql_table_asset(
    "analysis",
    "gate_requirements",
    deps=[
        ["analysis", "subjects"],
        ["analysis", "requirement_spans"],
        ["chain", "status_transitions"],
    ],
    description="Per gate, subject and requirement: when the gate triggered, whether the "
    "requirement held then (same minute counts as before), whether it holds at as_of, "
    "and when it was met.",
)
analysis_gate_evaluations = sql_table_asset(
    "analysis",
    "gate_evaluations",
    deps=[["analysis", "gate_requirements"], ["analysis", "subjects"], ["analysis", "waivers"]],
    description="Per gate and subject in scope: compliant, late (bypassed), violated, "
    "not_applicable or waived, with what was missing and the evidence.",
    summary="SELECT gate_id, status, count(*) AS subjects FROM analysis.gate_evaluations GROUP BY ALL ORDER BY ALL",
)


@dg.asset_check(asset=GATE_EVALUATIONS, pool="duckdb")
def gate_compliance_above_threshold(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    """Warns when the share of triggered gates that were compliant falls below the
    policy's gate_compliance_threshold (waived and not_applicable left out)."""
    threshold = load_policy().gate_compliance_threshold
    with duckdb.get_connection() as con:
        rows = con.execute(
            "SELECT gate_id, count(*) FILTER (WHERE status = 'compliant'), "
            "count(*) FILTER (WHERE status IN ('compliant', 'late', 'violated')) "
            "FROM analysis.gate_evaluations GROUP BY gate_id ORDER BY gate_id"
        ).fetchall()
    judged = sum(r[2] for r in rows)
    compliant = sum(r[1] for r in rows)
    share = compliant / judged if judged else 1.0
    table = [(g, c, n, f"{c / n:.0%}" if n else "-") for g, c, n in rows]
    return dg.AssetCheckResult(
        passed=share >= threshold,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "compliance": dg.MetadataValue.float(round(share, 4)),
            "threshold": dg.MetadataValue.float(threshold),
            "judged": judged,
            "by_gate": dg.MetadataValue.md(
                markdown_table(["gate", "compliant", "judged", "share"], table, empty="none")
            ),
        },
    )
