"""Metadata the assets show in the Dagster UI (plain helpers, outside the autoloaded defs/)."""

from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg
import duckdb

from dagster_project.lib.rawstore import RawStore


def raw_result(
    con: duckdb.DuckDBPyConnection,
    store: RawStore,
    extra: dict[str, Any],
    log: Any = None,
) -> dg.MaterializeResult:
    rows = con.execute(
        "SELECT object_type, count(*) FROM raw.latest WHERE source = ? AND NOT deleted "
        "GROUP BY ALL ORDER BY 1",
        [store.source],
    ).fetchall()
    if log is not None:  # the one line a person watching the run reads
        c = store.counts
        log.info(
            f"{store.source}: {c.stored} new or changed, {c.unchanged} unchanged, "
            f"{c.quarantined} quarantined, {c.tombstoned} deleted; "
            f"{sum(n for _, n in rows)} objects current"
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/table_name": "raw.objects",
            "dagster/row_count": sum(n for _, n in rows),
            "stored_this_run": store.counts.stored,
            "unchanged_this_run": store.counts.unchanged,
            "quarantined_this_run": store.counts.quarantined,
            "tombstoned_this_run": store.counts.tombstoned,
            **extra,
            "objects": dg.MetadataValue.md(markdown_table(["object type", "current"], rows)),
        }
    )


def table_metadata(con: duckdb.DuckDBPyConnection, table: str, rows: int) -> dict[str, Any]:
    """Row count, column schema and a short preview of a published table."""
    columns = con.execute(f"DESCRIBE {table}").fetchall()  # table: an asset's own table name
    preview = con.execute(f"SELECT * FROM {table} LIMIT 5").df()  # noqa: S608
    return {
        "dagster/table_name": table,
        "dagster/row_count": rows,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=c[0], type=str(c[1])) for c in columns]
        ),
        "preview": dg.MetadataValue.md(
            markdown_table(list(preview.columns), preview.itertuples(index=False))
        ),
    }


def markdown_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    empty: str = "_empty_",
    width: int = 60,
) -> str:
    """A Markdown table for the UI; cells are cut to ``width`` and ``|`` is escaped, since
    they may carry text from the sources."""

    def cell(value: Any) -> str:
        text = str(value).replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= width else text[: width - 1] + "…"

    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    if not body:
        return empty
    head = "| " + " | ".join(headers) + " |"
    return "\n".join([head, "|" + "---|" * len(headers), *body])
