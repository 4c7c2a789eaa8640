"""Metadata the assets show in the Dagster UI (plain helpers, outside the autoloaded defs/)."""

from typing import Any

import dagster as dg
import duckdb

from dagster_project.lib.rawstore import RawStore


def raw_result(
    con: duckdb.DuckDBPyConnection, store: RawStore, extra: dict[str, Any]
) -> dg.MaterializeResult:
    rows = con.execute(
        "SELECT object_type, count(*) FROM raw.latest WHERE source = ? AND NOT deleted "
        "GROUP BY ALL ORDER BY 1",
        [store.source],
    ).fetchall()
    table = "\n".join(f"| {kind} | {n} |" for kind, n in rows)
    return dg.MaterializeResult(
        metadata={
            "dagster/table_name": "raw.objects",
            "dagster/row_count": sum(n for _, n in rows),
            "stored_this_run": store.counts.stored,
            "unchanged_this_run": store.counts.unchanged,
            "quarantined_this_run": store.counts.quarantined,
            "tombstoned_this_run": store.counts.tombstoned,
            **extra,
            "objects": dg.MetadataValue.md(f"| object type | current |\n|---|---|\n{table}"),
        }
    )
