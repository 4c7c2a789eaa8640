"""Runs the SQL files under ``sql/`` against DuckDB.

Values are never formatted into SQL: they are bound with ``SET VARIABLE`` and read in
the file with ``getvariable('name')``. A file runs statement by statement inside one
explicit transaction, because DuckDB keeps the statements before a failing one of a
multi-statement string committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


@cache
def sql_text(name: str) -> str:
    """The text of ``sql/<name>.sql`` (``name`` like ``"chain/work_items"``)."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file {path}")
    return path.read_text(encoding="utf-8")


def run_sql(
    con: duckdb.DuckDBPyConnection,
    name: str,
    variables: Mapping[str, Any] | None = None,
    *,
    transaction: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Run every statement of ``sql/<name>.sql``; returns the cursor of the last one."""
    for key, value in (variables or {}).items():
        con.execute(f"SET VARIABLE {_identifier(key)} = ?", [value])
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
