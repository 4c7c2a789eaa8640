"""Analysis tables kept as they are when nothing they judge has changed.

Judged again a day later with nothing new, the analysis layer's per-subject tables come
out row for row the same (benchmarks/analysis_churn.py): their SQL reads ``as_of`` only
to keep the events up to it (``<= as_of()``) and to repeat it in a column
(``as_of() AS detected_at``). Such a table is kept, its ``as_of`` columns set to the new
moment, when

* its SQL (with the prelude), the policy and the code are those of its last build;
* every table it reads is the one it read then: a chain table at the same build
  (``chain_state.builds``), an analysis table at the same version (below), the raw
  objects it reads directly with the same newest row;
* and no chain table it reads, itself or through the analysis tables it reads, holds a
  moment between the last build's ``as_of`` and this one: an object stored with a
  timestamp later than the last ``as_of`` counts once this one includes it.

A table whose SQL uses ``as_of`` in any other way (an effort counted up to it, a window
back from it, a waiver's expiry), reads a moment out of text, computes moments (interval
arithmetic, truncation), or reads raw state beyond current objects moves with time
itself: it is judged again whenever as_of moves, and its version is a digest of its
rows, so the tables reading it are kept when its rows came out the same. Judged again at
the very moment of its last build (a re-run, a night retried) with nothing it reads
changed, it comes out the same and is kept, unless it reads raw state beyond current
objects (the sources' listings, the quarantine), which the fingerprint does not cover,
or the clock.
Any other table's version is the number of its build. A build is one transaction and
its record follows it: a run stopped between the two leaves the record of the build
before, whose inputs or as_of no longer match, so the next night builds the table
again.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from functools import cache

import duckdb

from dagster_project.lib.incremental import CHAIN_INPUT, RAW_INPUT, code_fingerprint
from dagster_project.lib.sql import run_sql, sql_code, sql_text, transaction

_ECHO = re.compile(r"\bas_of\(\)\s+AS\s+(\w+)", re.IGNORECASE)
_UP_TO = re.compile(r"<=\s*as_of\(\)(?!\s*[-+*/|])", re.IGNORECASE)
_AS_OF = re.compile(r"\bas_of\(\)|getvariable\(\s*'as_of'\s*\)", re.IGNORECASE)
_TEXT_MOMENT = re.compile(r"(\bAS|::)\s*(TIMESTAMPTZ|TIMESTAMP|DATE)\b", re.IGNORECASE)
_NULL_MOMENT = re.compile(r"CAST\(\s*NULL\s+AS\s+(TIMESTAMPTZ|TIMESTAMP|DATE)\s*\)", re.IGNORECASE)
_ANALYSIS = re.compile(r"\banalysis\.([a-z_]+)")
# Arithmetic on moments makes moments no chain table holds, which the check between
# two as_ofs could not see.
_TIME_ARITHMETIC = re.compile(
    r"\bINTERVAL\b|\bto_(days|hours|minutes|seconds|weeks|months|years)\(|"
    r"\bdate_(add|sub|trunc)\(|\btime_bucket\(",
    re.IGNORECASE,
)
_RAW = re.compile(r"\braw\.([a-z_]+)")
_VOLATILE = re.compile(
    r"\b(now|get_current_time|get_current_timestamp|random|uuid|gen_random_uuid)\s*\(|"
    r"\bcurrent_(timestamp|date|time)\b",
    re.IGNORECASE,
)
_MOMENT_TYPES = ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP", "DATE")


@cache
def _code(table: str) -> str:
    """The table's SQL (its rule files included) without comments."""
    return sql_code(f"analysis/{table}")


@cache
def echoes(table: str) -> tuple[str, ...]:
    """The columns that only repeat the run's as_of (``as_of() AS <column>``)."""
    return tuple(sorted({name.lower() for name in _ECHO.findall(_code(table))}))


@cache
def moves_with_time(table: str) -> bool:
    """Whether the table's rows can change with as_of alone (module docstring)."""
    return sql_moves_with_time(_code(table))


def sql_moves_with_time(code: str) -> bool:
    """The same, for SQL text without comments."""
    rest = _ECHO.sub("", _UP_TO.sub("", code))
    return bool(
        _AS_OF.search(rest)
        or _TEXT_MOMENT.search(_NULL_MOMENT.sub("", code))
        or _TIME_ARITHMETIC.search(code)
        or _reads_raw_state(code)
    )


def _reads_raw_state(code: str) -> bool:
    """Whether the SQL reads raw tables beyond current objects (listings, quarantine)."""
    return bool(set(_RAW.findall(code)) - {"current_objects"})


@cache
def judged_every_run(table: str) -> bool:
    """Whether its rows can differ between two builds at one as_of with the same
    fingerprint: it reads raw state beyond current objects (the listings, the
    quarantine) or asks for the clock or chance."""
    return sql_judged_every_run(_code(table))


def sql_judged_every_run(code: str) -> bool:
    """The same, for SQL text without comments."""
    return _reads_raw_state(code) or bool(_VOLATILE.search(code))


@cache
def reads(table: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The chain tables, the other analysis tables and the raw (source, type) it reads."""
    code = _code(table)
    return (
        tuple(sorted(set(CHAIN_INPUT.findall(code)))),
        tuple(sorted(set(_ANALYSIS.findall(code)) - {table})),
        tuple(sorted(set(RAW_INPUT.findall(code)))),
    )


@cache
def chain_reads(table: str) -> tuple[str, ...]:
    """The chain tables it reads, itself or through the analysis tables it reads."""
    chain, analysis, _ = reads(table)
    found = set(chain)
    for other in analysis:
        found.update(chain_reads(other))
    return tuple(sorted(found))


def fingerprint(con: duckdb.DuckDBPyConnection, table: str, policy_json: str) -> str:
    """Everything the table's rows depend on but as_of (the state tables must exist:
    ``ensure_state``)."""
    chain, analysis, raw = reads(table)
    parts: dict[str, object] = {
        "sql": hashlib.sha256((sql_text("prelude") + _code(table)).encode()).hexdigest(),
        "policy": hashlib.sha256(policy_json.encode()).hexdigest(),
        "code": code_fingerprint(),
        "duckdb": duckdb.__version__,
    }
    # a chain table's build, not only its count: a rebuilt chain_state counts anew
    builds = {
        name: (generation, built_at)
        for name, generation, built_at in con.execute(
            "SELECT table_name, generation, built_at FROM chain_state.builds"
        ).fetchall()
    }
    versions = dict(con.execute("SELECT table_name, version FROM analysis_state.builds").fetchall())
    for name in chain:
        parts[f"chain.{name}"] = builds.get(name)
    for name in analysis:
        parts[f"analysis.{name}"] = versions.get(name)
    for source, object_type in raw:  # raw.objects is append-only: a change adds a raw_id
        parts[f"{source}/{object_type}"] = con.execute(
            "SELECT max(raw_id), count(*) FROM raw.current WHERE source = ? AND object_type = ?",
            [source, object_type],
        ).fetchone()
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def moments_between(
    con: duckdb.DuckDBPyConnection, table: str, before: datetime, now: datetime
) -> bool:
    """Whether a chain table it reads holds a moment after one of the two and up to the
    other: a ``<= as_of()`` that would answer differently."""
    low, high = min(before, now), max(before, now)
    if low == high:
        return False
    for name in chain_reads(table):
        columns = [
            c
            for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = "
                "current_database() AND schema_name = 'chain' AND table_name = ? "
                "AND data_type IN (SELECT unnest(?))",
                [name, list(_MOMENT_TYPES)],
            ).fetchall()
        ]
        if not columns:
            continue
        moved = " OR ".join(
            f'(CAST("{c}" AS TIMESTAMPTZ) > $low AND CAST("{c}" AS TIMESTAMPTZ) <= $high)'
            for c in columns
        )
        found = con.execute(
            f"SELECT EXISTS (SELECT 1 FROM chain.{name} WHERE {moved})",  # noqa: S608 - catalog names
            {"low": low, "high": high},
        ).fetchone()[0]
        if found:
            return True
    return False


def kept(con: duckdb.DuckDBPyConnection, table: str, fingerprint_: str, as_of: datetime) -> bool:
    """Keep the table if nothing it judges changed (module docstring), its as_of columns
    set to ``as_of``; False when it must be built."""
    moving = moves_with_time(table)
    if moving and judged_every_run(table):
        return False
    last = con.execute(
        "SELECT fingerprint, as_of FROM analysis_state.builds WHERE table_name = ?", [table]
    ).fetchone()
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'analysis' AND table_name = ?",
        [table],
    ).fetchone()[0]
    if not (last and exists) or last[0] != fingerprint_:
        return False
    if moving and last[1] != as_of:
        return False
    if moments_between(con, table, last[1], as_of):
        return False
    with transaction(con):
        if last[1] != as_of:
            columns = ", ".join(f'"{c}" = $as_of' for c in echoes(table))
            con.execute(f"UPDATE analysis.{table} SET {columns}", {"as_of": as_of})  # noqa: S608
        con.execute(
            "UPDATE analysis_state.builds SET as_of = ?, kept = true, judged_at = now() "
            "WHERE table_name = ?",
            [as_of, table],
        )
    return True


def record(con: duckdb.DuckDBPyConnection, table: str, fingerprint_: str, as_of: datetime) -> None:
    """After a build: what it read, and the version the tables reading it compare."""
    if moves_with_time(table):
        columns = [
            c
            for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = "
                "current_database() AND schema_name = 'analysis' AND table_name = ? "
                "ORDER BY column_index",
                [table],
            ).fetchall()
            if c not in echoes(table)
        ]
        hashed = ", ".join(f'"{c}"' for c in columns)
        count, total = con.execute(
            f"SELECT count(*), sum(hash({hashed})) FROM analysis.{table}"  # noqa: S608
        ).fetchone()
        version = f"rows {count} {total}"
    else:
        number = con.execute("SELECT nextval('analysis_state.build_seq')").fetchone()[0]
        version = f"build {number}"
    con.execute(
        "INSERT OR REPLACE INTO analysis_state.builds "
        "(table_name, fingerprint, as_of, version, judged_at, kept) "
        "VALUES (?, ?, ?, ?, now(), false)",
        [table, fingerprint_, as_of, version],
    )


def ensure_state(con: duckdb.DuckDBPyConnection) -> None:
    """The state tables an analysis build reads and writes (chain_state is absent only
    where no chain table was ever built)."""
    found = {
        schema
        for (schema,) in con.execute(
            "SELECT schema_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND table_name = 'builds' AND schema_name IN ('chain_state', 'analysis_state')"
        ).fetchall()
    }
    for schema in ("chain_state", "analysis_state"):
        if schema not in found:
            run_sql(con, f"state/{schema}")


def was_kept(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether the table's last build kept it as it was."""
    row = con.execute(
        "SELECT kept FROM analysis_state.builds WHERE table_name = ?", [table]
    ).fetchone()
    return bool(row and row[0])
