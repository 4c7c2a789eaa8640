"""Reports: a daily-partitioned snapshot of the headline numbers, for backfilling history.

Partition D is judged as of D 00:00 UTC — what `driftgate run --as-of D` judges — by
rebuilding the chain, analysis and history tables on a scratch copy of the database from
the append-only raw history, so the nightly tables are never touched and a past day can
be re-materialised at any time with the same numbers.
"""

import shutil
import tempfile
from functools import cache
from pathlib import Path

import dagster as dg
import duckdb as duckdb_lib
from dagster_duckdb import DuckDBResource

from dagster_project.lib.asof import parse_as_of
from dagster_project.lib.chainsql import build_table
from dagster_project.lib.policy import load_policy
from dagster_project.lib.sql import transaction


@cache
def build_order() -> list[tuple[str, str]]:
    """The chain and analysis tables in dependency order, from the code location's graph
    (read at run time: this module is part of it)."""
    from dagster_project.definitions import layer_tables

    return [
        (layer, table)
        for layer in REBUILT  # no chain table reads an analysis one
        for table in layer_tables(layer)
        if table != "ingest_completeness"
    ]


DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC", end_offset=1)
REBUILT = ("chain", "analysis")


@dg.asset(
    key=["reports", "daily_snapshot"],
    group_name="reports",
    partitions_def=DAILY,
    deps=[["raw", "jira"], ["raw", "gitlab"], ["raw", "confluence"]],
    kinds={"duckdb"},
    owners=["team:driftgate"],
    pool="duckdb",
)
def reports_daily_snapshot(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """The headline numbers of one day (gate compliance, open gaps and drift, rework share)
    in reports.snapshots, judged as of that day from the raw history; backfill a range of
    days to draw the trend of a period before Driftgate ran every night."""
    day = context.partition_key
    as_of = parse_as_of(day)
    policy = load_policy()
    order = build_order()
    with tempfile.TemporaryDirectory(prefix="driftgate-snapshot-") as scratch:
        copy = Path(scratch) / "snapshot.duckdb"
        with duckdb.get_connection() as con:
            con.execute("CHECKPOINT")
            path = con.execute(
                "SELECT path FROM duckdb_databases() WHERE NOT internal ORDER BY database_oid LIMIT 1"
            ).fetchone()[0]
            shutil.copyfile(path, copy)
        with duckdb_lib.connect(str(copy)) as scratch_con:
            for layer, table in order:
                build_table(scratch_con, layer, table, policy, as_of)
            build_table(scratch_con, "reports", "history", policy, as_of)
            row = scratch_con.execute(
                "SELECT * FROM reports.history WHERE day = ?", [day]
            ).to_arrow_table()
    with duckdb.get_connection() as con:
        con.register("snapshot_row", row)
        con.execute("CREATE SCHEMA IF NOT EXISTS reports")
        # the columns of reports.history (sql/reports/history.sql), one row per day
        con.execute("CREATE TABLE IF NOT EXISTS reports.snapshots AS FROM snapshot_row LIMIT 0")
        with transaction(con):
            con.execute("DELETE FROM reports.snapshots WHERE day = ?", [day])
            con.execute("INSERT INTO reports.snapshots BY NAME SELECT * FROM snapshot_row")
    values = row.to_pylist()[0]
    return dg.MaterializeResult(
        metadata={
            "day": day,
            "gate_compliance": dg.MetadataValue.float(float(values["gate_compliance"] or 0.0)),
            "open_gaps": int(values["open_gaps"]),
            "open_drift": int(values["open_drift"]),
            "rework_share": dg.MetadataValue.float(float(values["rework_share"] or 0.0)),
        }
    )
