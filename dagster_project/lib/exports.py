"""CSV and Parquet exports of the published analysis tables (DuckDB COPY, atomic renames)."""

from __future__ import annotations

from pathlib import Path

import duckdb

# The tables people take elsewhere; JSON columns are written as JSON text.
PUBLISHED = (
    "findings",
    "gate_evaluations",
    "gate_requirements",
    "rework_events",
    "rework_share",
    "rework_root_causes",
    "ingest_completeness",
)


def export_tables(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, int]:
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for table in PUBLISHED:
        rows = con.execute(f"SELECT count(*) FROM analysis.{table}").fetchone()[0]  # noqa: S608
        for fmt, options in (("csv", "FORMAT csv, HEADER true"), ("parquet", "FORMAT parquet")):
            target = folder / f"{table}.{fmt}"
            tmp = folder / f".{table}.{fmt}.tmp"
            path = str(tmp).replace("'", "''")
            con.execute(f"COPY analysis.{table} TO '{path}' ({options})")  # noqa: S608 - own names
            tmp.replace(target)
        written[table] = rows
    return written
