"""Reports: every published analysis table as CSV and Parquet beside the HTML report."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.defs.resources import ReportsResource
from dagster_project.lib.exports import PUBLISHED, export_tables


@dg.asset(
    key=["reports", "exports"],
    group_name="reports",
    deps=[["analysis", table] for table in PUBLISHED],
    kinds={"csv", "parquet"},
    owners=["team:driftgate"],
    pool="duckdb",
)
def reports_exports(duckdb: DuckDBResource, reports: ReportsResource) -> dg.MaterializeResult:
    """The full tables behind the report (findings, gate evaluations, rework...) as CSV for
    spreadsheets and Parquet for notebooks, under <reports>/exports/, each file replaced
    atomically; a table whose last export is still current is not written again."""
    with duckdb.get_connection() as con:
        done = export_tables(con, reports.path() / "exports")
    return dg.MaterializeResult(
        metadata={
            "folder": dg.MetadataValue.path(str((reports.path() / "exports").resolve())),
            "tables": len(done),
            "written": sorted(table for table, export in done.items() if export.written),
            **{f"rows/{table}": export.rows for table, export in done.items()},
        }
    )
