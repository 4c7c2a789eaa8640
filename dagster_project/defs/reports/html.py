"""Reports people read: the HTML report under DRIFTGATE_REPORTS."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.defs.resources import (
    ConfluenceResource,
    GitlabResource,
    JiraResource,
    ReportsResource,
)
from dagster_project.lib.policy import load_policy
from dagster_project.lib.report_charts import history_charts
from dagster_project.lib.report_data import LIST_CAP, report_data
from dagster_project.lib.report_html import copy_atomically, write_report
from dagster_project.run_as_of import run_as_of

LATEST = "latest.html"


@dg.asset(
    key=["reports", "html_report"],
    group_name="reports",
    deps=[
        ["analysis", "ingest_completeness"],
        ["analysis", "gate_evaluations"],
        ["analysis", "findings"],
        ["analysis", "rework_share"],
        ["analysis", "rework_root_causes"],
        ["reports", "history"],
    ],
    kinds={"html"},
    owners=["team:driftgate"],
    pool="duckdb",
)
def reports_html_report(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    reports: ReportsResource,
    jira: JiraResource,
    gitlab: GitlabResource,
    confluence: ConfluenceResource,
) -> dg.MaterializeResult:
    """The managers' report as one self-contained HTML page per day judged
    (driftgate-<as_of>.html) and latest.html, replaced atomically (autoescaped, no scripts).

    Headline numbers, quality gates (bypassed and violated ones listed), gaps, drift,
    rework share and what the rework followed, then ingestion completeness, so a reader
    knows how far to trust the rest. Sources are named by base URL or "sandbox", never
    by a local path.
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
        data = report_data(con, load_policy().rework.small_sample)
    sources = [
        (name, resource.url.rstrip("/") if resource.url else "(sandbox)")
        for name, resource in (("Jira", jira), ("GitLab", gitlab), ("Confluence", confluence))
    ]
    as_of = run_as_of(context)
    path = write_report(
        reports.path() / f"driftgate-{as_of:%Y-%m-%d}.html",
        "report.html.j2",
        title="delivery drift report",
        as_of=as_of.strftime("%Y-%m-%d %H:%M UTC"),
        sources=sources,
        cap=LIST_CAP,
        charts=history_charts(data["history"]),
        completeness=completeness,
        quarantine=quarantine,
        missing_total=sum(int(r["missing"]) for r in completeness),
        quarantined_total=sum(int(r["quarantined"]) for r in completeness),
        **data,
    )
    latest = copy_atomically(path, reports.path() / LATEST)
    headline = data["headline"]
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path.resolve())),
            "latest": dg.MetadataValue.path(str(latest.resolve())),
            "size_bytes": path.stat().st_size,
            "missing": sum(int(r["missing"]) for r in completeness),
            "quarantined": sum(int(r["quarantined"]) for r in completeness),
            "gate_compliance": dg.MetadataValue.float(round(headline["gate_compliance"] or 0.0, 4)),
            "open_gaps": headline["open_gaps"],
            "open_drift": headline["open_drift"],
            "rework_share": dg.MetadataValue.float(round(headline["rework_share"] or 0.0, 4)),
        }
    )
