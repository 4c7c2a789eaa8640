"""Runs the SQL files under ``sql/`` against DuckDB.

Values are never formatted into SQL: they are bound with ``SET VARIABLE`` and read in
the file with ``getvariable('name')``. A file runs statement by statement inside one
explicit transaction, because DuckDB keeps the statements before a failing one of a
multi-statement string committed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


class JsonValue(str):
    """A variable value bound as DuckDB JSON rather than VARCHAR."""


@cache
def sql_text(name: str) -> str:
    """The text of ``sql/<name>.sql`` (``name`` like ``"chain/work_items"``).

    A folder ``sql/<name>/`` holds one SELECT per rule, all with the same columns (the
    file name is the rule), so adding a rule is adding a file. Alone, the folder builds
    table ``<name>`` as the union of its files; beside ``sql/<name>.sql``, the union is
    the temporary view ``<table>_rules`` that file reads (to add what every rule shares).
    """
    path = SQL_DIR / f"{name}.sql"
    folder = SQL_DIR / name
    files = sorted(folder.glob("*.sql")) if folder.is_dir() and name.count("/") == 1 else []
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        if files:
            view = name.split("/")[1] + "_rules"
            return f"CREATE OR REPLACE TEMP VIEW {view} AS\n{union_of(files)};\n{text}"
        return text
    if files:
        schema = name.split("/")[0]
        table = name.replace("/", ".")
        return (
            f"CREATE SCHEMA IF NOT EXISTS {schema};\n"
            f"CREATE OR REPLACE TABLE {table} AS\n{union_of(files)};\n"
        )
    raise FileNotFoundError(f"no SQL file {path}")


def union_of(files: list[Path]) -> str:
    parts = []
    for file in files:
        select = file.read_text(encoding="utf-8").strip().rstrip(";")
        parts.append(f"SELECT * FROM (\n{select}\n)")  # noqa: S608 - our own SQL files
    return "\nUNION ALL BY NAME\n".join(parts)


def run_sql(
    con: duckdb.DuckDBPyConnection,
    name: str,
    variables: Mapping[str, Any] | None = None,
    *,
    transaction: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Run every statement of ``sql/<name>.sql``; returns the cursor of the last one."""
    for key, value in (variables or {}).items():
        cast = "CAST(? AS JSON)" if isinstance(value, JsonValue) else "?"
        con.execute(
            f"SET VARIABLE {_identifier(key)} = {cast}",
            [str(value) if isinstance(value, JsonValue) else value],
        )
    statements = con.extract_statements(sql_text(name))
    if transaction:
        con.execute("BEGIN TRANSACTION")
    try:
        result = con
        for statement in statements:
            result = con.execute(statement)
        if transaction:
            con.execute("COMMIT")
        return result
    except BaseException:
        if transaction:
            con.execute("ROLLBACK")
        raise


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bad SQL variable name {name!r}")
    return name


def sql_code(name: str) -> str:
    """``sql_text(name)`` without its comments: what the SQL reads, not what it says."""
    return re.sub(r"--[^\n]*", "", sql_text(name))


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One explicit transaction around the block: committed when it ends, rolled back
    when it raises (a failed commit included)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
