"""Benchmark: how much of the analysis layer a night actually changes.

Run by hand on two copies of a database, before and after a nightly (for instance the
first nightly kept by ``benchmarks/nightly_scale.py --keep-first`` and the database after
the day after)::

    uv run python benchmarks/analysis_churn.py BEFORE.duckdb AFTER.duckdb
    uv run python benchmarks/analysis_churn.py BEFORE.duckdb --rejudge-at 2026-04-05T18:00:00Z

With ``--rejudge-at`` the second database is a copy of the first whose analysis tables
are rebuilt at that ``as_of`` with nothing else changed: what the passing of time alone
changes. For every analysis table it prints the rows only one side has (the columns that
only repeat the run's ``as_of``, ``as_of`` and ``detected_at``, left out) and, for tables
with a subject or item key, how many keys those rows belong to. That share bounds what an
analysis rebuilding only what changed would have to judge again. With two databases it
also prints how far the night's changed issues, merge requests and pages reach over the
links the analysis follows (``link_closure``): what judging changed groups would judge. Record results in
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.definitions import layer_tables
from dagster_project.lib.asof import parse_as_of
from dagster_project.lib.chainsql import build_table
from dagster_project.lib.policy import load_policy

TABLES = layer_tables("analysis")
# Columns that only repeat the run's as_of.
AS_OF_ECHOES = ("as_of", "detected_at")
KEYS = ("subject_key", "issue_key", "item_key")


def rejudged_copy(before: Path, as_of: str, folder: Path) -> tuple[Path, dict[str, float]]:
    """A copy of ``before`` with every analysis table rebuilt at ``as_of``."""
    target = folder / "rejudged.duckdb"
    shutil.copyfile(before, target)
    seconds: dict[str, float] = {}
    with duckdb.connect(str(target)) as con:
        policy = load_policy()
        for table in TABLES:
            started = time.monotonic()
            build_table(con, "analysis", table, policy, parse_as_of(as_of), reuse=False)
            seconds[table] = round(time.monotonic() - started, 2)
    return target, seconds


def churn(before: Path, after: Path) -> list[dict[str, Any]]:
    """Per analysis table: rows on each side, rows only one side has, keys they touch."""
    out = []
    with duckdb.connect(str(after), read_only=True) as con:
        quoted = str(before).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS before (READ_ONLY)")
        for table in TABLES:
            columns = [
                name
                for (name,) in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_catalog = "
                    "current_database() AND table_schema = 'analysis' AND table_name = ? "
                    "ORDER BY ordinal_position",
                    [table],
                ).fetchall()
                if name not in AS_OF_ECHOES
            ]
            listed = ", ".join(f'"{c}"' for c in columns)
            new = f"SELECT {listed} FROM analysis.{table}"  # noqa: S608 - own names
            old = f"SELECT {listed} FROM before.analysis.{table}"  # noqa: S608
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE differ AS "  # noqa: S608
                f"SELECT 'after' AS side, * FROM ({new} EXCEPT ALL {old}) "
                f"UNION ALL SELECT 'before', * FROM ({old} EXCEPT ALL {new})"
            )
            sides = dict(con.execute("SELECT side, count(*) FROM differ GROUP BY 1").fetchall())
            row = {
                "table": table,
                "rows_before": _count(con, f"before.analysis.{table}"),
                "rows_after": _count(con, f"analysis.{table}"),
                "only_before": sides.get("before", 0),
                "only_after": sides.get("after", 0),
            }
            key = next((k for k in KEYS if k in columns), None)
            if key is not None:
                row["key"] = key
                row["keys_changed"] = con.execute(
                    f'SELECT count(DISTINCT "{key}") FROM differ'  # noqa: S608
                ).fetchone()[0]
                row["keys_after"] = con.execute(
                    f'SELECT count(DISTINCT "{key}") FROM analysis.{table}'  # noqa: S608
                ).fetchone()[0]
            out.append(row)
    return out


# Links the analysis follows from one object to another, as (one end, other end).
_LINKS = """
    SELECT 'issue:' || issue_key, 'issue:' || epic_key FROM {db}.chain.work_items
    WHERE epic_key IS NOT NULL
    UNION ALL SELECT 'mr:' || mr_key, 'issue:' || issue_key FROM {db}.chain.mr_mentions
    UNION ALL SELECT 'page:' || page_id, 'issue:' || issue_key FROM {db}.analysis.linked_pages
"""
# The issues, merge requests and pages that new raw rows of AFTER belong to.
_CHANGED = """
    WITH new AS (
        SELECT source, object_type, coalesce(parent_key, object_key) AS owner
        FROM raw.objects WHERE raw_id > (SELECT max(raw_id) FROM before.raw.objects)
    )
    SELECT DISTINCT 'issue:' || owner FROM new
    WHERE source = 'jira' AND object_type IN ('issue', 'remotelink')
    UNION SELECT DISTINCT 'page:' || owner FROM new
    WHERE source = 'confluence' AND object_type IN ('page', 'page_version')
    UNION SELECT DISTINCT 'mr:' || m.mr_key FROM new n
    JOIN raw.objects o ON o.source = 'gitlab' AND o.object_type = 'merge_request'
                      AND o.object_key = n.owner
    JOIN chain.merge_requests m ON m.raw_id = o.raw_id
    WHERE n.source = 'gitlab'
      AND n.object_type IN ('merge_request', 'mr_note', 'mr_approval', 'mr_change')
"""


def link_closure(before: Path, after: Path) -> dict[str, Any]:
    """How far the night's changes reach over the links the analysis follows, as they
    were and as they are: the issues, merge requests and pages in a group (connected
    over those links) holding a changed one. What judging only the changed groups would
    judge again."""
    with duckdb.connect(str(after), read_only=True) as con:
        quoted = str(before).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS before (READ_ONLY)")
        links = con.execute(
            _LINKS.format(db="before") + " UNION ALL " + _LINKS.format(db=current(con))
        ).fetchall()
        objects = con.execute(
            "SELECT 'issue:' || issue_key FROM chain.work_items "
            "UNION SELECT 'mr:' || mr_key FROM chain.merge_requests "
            "UNION SELECT 'page:' || page_id FROM chain.pages"
        ).fetchall()
        changed = [key for (key,) in con.execute(_CHANGED).fetchall()]
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for (key,) in objects:
        root(key)
    for one, other in links:
        a, b = root(one), root(other)
        if a != b:
            parent[a] = b
    sizes: dict[str, int] = {}
    for key in list(parent):
        sizes[root(key)] = sizes.get(root(key), 0) + 1
    reached = {root(key) for key in changed}
    return {
        "objects": len(parent),
        "groups": len(sizes),
        "largest_group": max(sizes.values(), default=0),
        "changed": len(changed),
        "reached": sum(sizes[r] for r in reached),
        "reached_share": round(sum(sizes[r] for r in reached) / max(len(parent), 1), 4),
    }


def current(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("SELECT current_database()").fetchone()[0]


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - own names


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| table | rows after | rows only before / after | keys changed | share of keys |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        keys = share = "-"
        if "key" in r:
            keys = f"{r['keys_changed']:,} of {r['keys_after']:,} ({r['key']})"
            share = f"{100 * r['keys_changed'] / max(r['keys_after'], 1):.1f}%"
        lines.append(
            f"| {r['table']} | {r['rows_after']:,} | {r['only_before']:,} / "
            f"{r['only_after']:,} | {keys} | {share} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="the database before the night")
    parser.add_argument("after", type=Path, nargs="?", help="the database after it")
    parser.add_argument("--rejudge-at", help="compare with a copy of BEFORE judged at this as_of")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if (args.after is None) == (args.rejudge_at is None):
        parser.error("give either AFTER or --rejudge-at")
    with tempfile.TemporaryDirectory(dir=args.before.parent) as folder:
        seconds: dict[str, float] = {}
        after = args.after
        if args.rejudge_at:
            after, seconds = rejudged_copy(args.before, args.rejudge_at, Path(folder))
        rows = churn(args.before, after)
        closure = link_closure(args.before, after) if args.after else {}
    print(markdown(rows))
    if seconds:
        print(f"rebuilt at {args.rejudge_at} in {sum(seconds.values()):.1f} s: {seconds}")
    if closure:
        print(
            f"{closure['changed']:,} changed issues, merge requests and pages lie in groups "
            f"holding {closure['reached']:,} of {closure['objects']:,} "
            f"({100 * closure['reached_share']:.1f}%); {closure['groups']:,} groups, the "
            f"largest of {closure['largest_group']}"
        )
    if args.json:
        figures = {"tables": rows, "rebuild_s": seconds, "link_closure": closure}
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
