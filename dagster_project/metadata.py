"""Metadata the assets show in the Dagster UI (plain helpers, outside the autoloaded defs/)."""

from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg
import duckdb

from dagster_project.lib.rawstore import WriteCounts
from dagster_project.lib.staging import LoadCounts


def raw_metadata(
    con: duckdb.DuckDBPyConnection,
    source: str,
    fetches: Sequence[dict[str, Any]],
    loaded: LoadCounts,
    log: Any = None,
) -> dict[str, Any]:
    """A raw asset's materialization: what its units fetched (summed), what the load
    copied into the main database, and the objects now current there."""
    rows = con.execute(
        "SELECT object_type, count(*) FROM raw.latest WHERE source = ? AND NOT deleted "
        "GROUP BY ALL ORDER BY 1",
        [source],
    ).fetchall()
    c = WriteCounts()
    for f in fetches:
        c.add(WriteCounts(**f["counts"]))
    if log is not None:  # the one line a person watching the run reads
        log.info(
            f"{source}: {c.stored} new or changed, {c.unchanged} unchanged, "
            f"{c.quarantined} quarantined, {c.tombstoned} deleted in {len(fetches)} unit(s); "
            f"{loaded.stored + loaded.tombstoned + loaded.swept} rows loaded; "
            f"{sum(n for _, n in rows)} objects current"
        )
    units = sorted(fetches, key=lambda f: f["unit"].name)
    return {
        "dagster/table_name": "raw.objects",
        "dagster/row_count": sum(n for _, n in rows),
        "stored_this_run": c.stored,
        "unchanged_this_run": c.unchanged,
        "quarantined_this_run": c.quarantined,
        "tombstoned_this_run": c.tombstoned,
        **merge_extras([f["extra"] for f in units]),
        "units": len(fetches),
        "loaded_this_run": loaded.stored + loaded.tombstoned,
        "swept_this_run": loaded.swept,
        "objects": dg.MetadataValue.md(markdown_table(["object type", "current"], rows)),
        "per_unit": dg.MetadataValue.md(
            markdown_table(
                ["unit", "stored", "unchanged", "quarantined", "deleted", "loaded"],
                [
                    (
                        f["unit"].label,
                        f["counts"]["stored"],
                        f["counts"]["unchanged"],
                        f["counts"]["quarantined"],
                        f["counts"]["tombstoned"],
                        loaded.per_unit.get(f["unit"].name, 0),
                    )
                    for f in units[:50]
                ],
            )
        ),
    }


def merge_extras(extras: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The units' facts as one: counts add up, a flag holds if it held for any unit, and
    text shows each distinct value once."""
    merged: dict[str, Any] = {}
    for key in dict.fromkeys(k for e in extras for k in e):
        values = [e[key] for e in extras if key in e]
        if all(isinstance(v, bool) for v in values):
            merged[key] = any(values)
        elif all(isinstance(v, int) for v in values):
            merged[key] = sum(values)
        else:
            merged[key] = ", ".join(dict.fromkeys(str(v) for v in values))
    return merged


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
