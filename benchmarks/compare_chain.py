"""Compare the chain (or any schema's) tables of two databases, row for row.

    uv run python benchmarks/compare_chain.py A.duckdb B.duckdb [--schema chain]
        [--ignore raw_id] [--seconds]

For each table: identical, or how many rows each side has that the other lacks, and
which single column explains the difference (the rows agree once it is left out).
``--seconds`` also compares timestamps truncated to the second, for sources whose API
answers times to the second (GitLab's GraphQL) against ones that keep milliseconds.
"""

from __future__ import annotations

import argparse
import json

import duckdb


def columns(con: duckdb.DuckDBPyConnection, db: str, schema: str, table: str) -> list[tuple]:
    return con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = ? AND table_name = ? ORDER BY column_index",
        [db, schema, table],
    ).fetchall()


def except_all(a: str, b: str, cols: list[str]) -> str:
    """Rows of ``a`` that ``b`` lacks, counted (the names are catalog identifiers)."""
    select = ", ".join(cols)
    return f"SELECT count(*) FROM (SELECT {select} FROM {a} EXCEPT ALL SELECT {select} FROM {b})"  # noqa: S608


def differing(con: duckdb.DuckDBPyConnection, a: str, b: str, cols: list[str]) -> tuple[int, int]:
    only_a = con.execute(except_all(a, b, cols)).fetchone()[0]
    only_b = con.execute(except_all(b, a, cols)).fetchone()[0]
    return only_a, only_b


def compare(path_a: str, path_b: str, schema: str, ignore: set[str], seconds: bool) -> dict:
    con = duckdb.connect()
    con.execute(f"ATTACH '{path_a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{path_b}' AS b (READ_ONLY)")
    tables = [
        t
        for (t,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'a' "
            "AND schema_name = ? ORDER BY 1",
            [schema],
        ).fetchall()
    ]
    out: dict[str, object] = {}
    for table in tables:
        typed = [c for c in columns(con, "a", schema, table) if c[0] not in ignore]
        cols = [f'"{c}"' for c, _ in typed]
        a, b = f'a."{schema}"."{table}"', f'b."{schema}"."{table}"'
        counts = f"SELECT (SELECT count(*) FROM {a}), (SELECT count(*) FROM {b})"  # noqa: S608
        rows = con.execute(counts).fetchone()
        only_a, only_b = differing(con, a, b, cols)
        entry: dict[str, object] = {"rows": list(rows), "only_a": only_a, "only_b": only_b}
        if only_a or only_b:
            entry["explained_by"] = [
                name
                for name, _ in typed
                if differing(con, a, b, [c for c in cols if c != f'"{name}"']) == (0, 0)
            ]
            if seconds:
                truncated = [
                    f"date_trunc('second', {c})" if "TIMESTAMP" in t else c
                    for c, (_, t) in zip(cols, typed, strict=True)
                ]
                entry["equal_to_the_second"] = differing(con, a, b, truncated) == (0, 0)
        out[table] = "identical" if not (only_a or only_b) and rows[0] == rows[1] else entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--schema", default="chain")
    parser.add_argument("--ignore", nargs="*", default=["raw_id"])
    parser.add_argument("--seconds", action="store_true")
    args = parser.parse_args()
    print(
        json.dumps(compare(args.a, args.b, args.schema, set(args.ignore), args.seconds), indent=1)
    )


if __name__ == "__main__":
    main()
