"""Reports people read: the HTML report under DRIFTGATE_REPORTS."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.defs.resources import ReportsResource
from dagster_project.lib.report_html import write_report
from dagster_project.run_as_of import run_as_of

REPORT_FILE = "driftgate-report.html"


@dg.asset(
    key=["reports", "html_report"],
    group_name="reports",
    deps=[["analysis", "ingest_completeness"]],
    kinds={"html"},
    owners=["team:driftgate"],
)
def reports_html_report(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, reports: ReportsResource
) -> dg.MaterializeResult:
    """The managers' report as one self-contained HTML page (autoescaped).

    Starts with ingestion completeness per source and object type, so a reader knows
    how far to trust everything below it.
    """
    with duckdb.get_connection() as con:
        completeness = (
            con.execute("SELECT * FROM analysis.ingest_completeness").df().to_dict("records")
        )
        quarantine = (
            con.execute(
                "SELECT source, object_type, object_key, reason, fetched_at FROM raw.quarantine "
                "ORDER BY fetched_at DESC, source, object_type LIMIT 200"
            )
            .df()
            .to_dict("records")
        )
        database = con.execute(
            "SELECT path FROM duckdb_databases() WHERE NOT internal ORDER BY database_oid LIMIT 1"
        ).fetchone()[0]
    path = write_report(
        reports.path() / REPORT_FILE,
        "report.html.j2",
        title="delivery drift report",
        as_of=run_as_of(context).strftime("%Y-%m-%d %H:%M UTC"),
        database=database,
        completeness=completeness,
        quarantine=quarantine,
        missing_total=sum(int(r["missing"]) for r in completeness),
        quarantined_total=sum(int(r["quarantined"]) for r in completeness),
    )
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path.resolve())),
            "missing": sum(int(r["missing"]) for r in completeness),
            "quarantined": sum(int(r["quarantined"]) for r in completeness),
        }
    )
