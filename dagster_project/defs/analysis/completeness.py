"""Analysis: did ingestion get everything the sources have?"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.metadata import markdown_table
from dagster_project.sql_assets import sql_table_asset

analysis_ingest_completeness = sql_table_asset(
    "analysis",
    "ingest_completeness",
    deps=[["raw", "jira"], ["raw", "gitlab"], ["raw", "confluence"]],
    description="Per source and object type: expected (what the source reported or "
    "listed), stored, quarantined and missing objects.",
)


@dg.asset_check(asset=["analysis", "ingest_completeness"], pool="duckdb")
def nothing_missing(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    """Every object a source reported is stored or quarantined with a reason.

    A warning, not a stop: the report still publishes and leads with what is missing.
    """
    with duckdb.get_connection() as con:
        rows = con.execute(
            "SELECT source, object_type, expected, stored, quarantined, missing "
            "FROM analysis.ingest_completeness WHERE missing > 0"
        ).fetchall()
    return dg.AssetCheckResult(
        passed=not rows,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "object_types_with_missing": len(rows),
            "missing": dg.MetadataValue.md(
                markdown_table(
                    ["source", "type", "expected", "stored", "quarantined", "missing"],
                    rows,
                    empty="none",
                )
            ),
        },
    )
