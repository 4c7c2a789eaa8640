"""CSV and Parquet exports of the published analysis tables (DuckDB COPY, atomic renames).

A table whose analysis build is the one exported last (same version, same as_of: a kept
table's as_of columns move with the run) and whose files are as that export left them
is not written again: a quiet night would otherwise rewrite about 120 MB at 100,000
issues."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dagster_project.lib.incremental import code_fingerprint
from dagster_project.lib.sql import run_sql

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
FORMATS = (("csv", "FORMAT csv, HEADER true"), ("parquet", "FORMAT parquet"))


@dataclass(frozen=True)
class Exported:
    rows: int
    written: bool  # False: the files of the last export were still this table's


def export_tables(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, Exported]:
    folder.mkdir(parents=True, exist_ok=True)
    run_sql(con, "state/export_state")
    done = {}
    for table in PUBLISHED:
        rows = con.execute(f"SELECT count(*) FROM analysis.{table}").fetchone()[0]  # noqa: S608
        targets = [folder / f"{table}.{fmt}" for fmt, _ in FORMATS]
        stamp = _stamp(con, table)
        last = con.execute(
            "SELECT stamp, files FROM analysis_state.exports WHERE table_name = ?", [table]
        ).fetchone()
        if stamp is not None and last == (stamp, _files(targets)):
            done[table] = Exported(rows, written=False)
            continue
        for (_, options), target in zip(FORMATS, targets, strict=True):
            tmp = target.with_name(f".{target.name}.tmp")
            path = str(tmp).replace("'", "''")
            con.execute(f"COPY analysis.{table} TO '{path}' ({options})")  # noqa: S608 - own names
            tmp.replace(target)
        con.execute(
            "INSERT OR REPLACE INTO analysis_state.exports VALUES (?, ?, ?)",
            [table, stamp or "", _files(targets)],
        )
        done[table] = Exported(rows, written=True)
    return done


def _stamp(con: duckdb.DuckDBPyConnection, table: str) -> str | None:
    """The analysis build the table holds, or None when none is recorded."""
    row = con.execute(
        "SELECT version, as_of FROM analysis_state.builds WHERE table_name = ?", [table]
    ).fetchone()
    return None if row is None else json.dumps([row[0], str(row[1]), code_fingerprint()])


def _files(targets: list[Path]) -> str:
    """Each file's name, size and modification time (missing: null)."""
    found = []
    for target in targets:
        stat = target.stat() if target.exists() else None
        found.append([target.name, stat and stat.st_size, stat and stat.st_mtime_ns])
    return json.dumps(found)
