"""The asset graph cannot drift from the SQL: every SQL asset depends on what it reads.

An asset ``[layer, table]`` is a SQL asset when ``sql/<layer>/<table>.sql`` exists and/or
a folder ``sql/<layer>/<table>/`` holds .sql files (rules unioned into that table). Its
SQL, comments stripped, is read for:

* tables ``chain.x``, ``analysis.x``, ``reports.x``: each (other than one the files
  create themselves) must be a direct dep, and each declared dep on another SQL asset
  must be read (deps that are not SQL tables are allowed);
* raw sources: ``source = 'jira'``, ``raw.current_objects('jira', ...)`` or a
  ``raw.jira_*`` view need a dep on ``["raw", "jira"]``; raw tables read with no source
  named (``raw.listings``, ``raw.quarantine``...) need a dep on at least one raw asset.
"""

from __future__ import annotations

import re
from pathlib import Path

from dagster_project.lib.sql import SQL_DIR
from tests.ingest.harness import definitions

SOURCES = ("jira", "gitlab", "confluence")
_SRC = "|".join(SOURCES)
_STRING_OR_COMMENT = re.compile(r"('(?:[^']|'')*')|--[^\n]*")
TABLE = re.compile(r"\b(chain|analysis|reports)\.([a-z_][a-z0-9_]*)\b")
CREATED = re.compile(
    r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\w*\s+)?(?:TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(chain|analysis|reports)\.([a-z_][a-z0-9_]*)\b",
    re.IGNORECASE,
)
RAW_TABLE = re.compile(r"\braw\.[a-z_][a-z0-9_]*\b")
RAW_SOURCE = re.compile(
    rf"\bsource\s*=\s*'({_SRC})'"
    rf"|\braw\.current_objects\(\s*'({_SRC})'"
    rf"|\braw\.({_SRC})_[a-z0-9_]+\b"
)


def sql_files(layer: str, table: str) -> list[Path]:
    """``sql/<layer>/<table>.sql`` and the .sql files of ``sql/<layer>/<table>/``."""
    single = SQL_DIR / layer / f"{table}.sql"
    folder = SQL_DIR / layer / table
    files = [single] if single.is_file() else []
    return files + (sorted(folder.rglob("*.sql")) if folder.is_dir() else [])


def strip_comments(sql: str) -> str:
    return _STRING_OR_COMMENT.sub(lambda m: m.group(1) or "", sql)


def problems_of(key: tuple[str, ...], deps: set[tuple[str, ...]], sql_assets: set) -> list[str]:
    files = {path: strip_comments(path.read_text(encoding="utf-8")) for path in sql_files(*key)}
    asset = "/".join(key)
    problems = []
    read: set[tuple[str, ...]] = set()
    for path, sql in files.items():
        name = path.relative_to(SQL_DIR.parent)
        created = {key, *CREATED.findall(sql)}
        for table in sorted(set(TABLE.findall(sql)) - created):
            read.add(table)
            if table not in deps:
                problems.append(f"{asset} reads {'.'.join(table)} in {name} but has no dep on it")
        if not RAW_TABLE.search(sql):
            continue
        sources = {next(s for s in m.groups() if s) for m in RAW_SOURCE.finditer(sql)}
        for source in sorted(sources):
            if ("raw", source) not in deps:
                problems.append(
                    f"{asset} reads raw {source} in {name} but has no dep on raw/{source}"
                )
        if not sources and not any(d[0] == "raw" for d in deps):
            tables = ", ".join(sorted(set(RAW_TABLE.findall(sql))))
            problems.append(f"{asset} reads {tables} in {name} but has no dep on any raw asset")
    for dep in sorted(deps & sql_assets - read):
        names = ", ".join(str(p.relative_to(SQL_DIR.parent)) for p in files)
        problems.append(f"{asset} has a dep on {'/'.join(dep)} that its SQL ({names}) never reads")
    return problems


def test_sql_assets_depend_on_exactly_the_tables_they_read():
    specs = {tuple(s.key.path): s for s in definitions().resolve_all_asset_specs()}
    sql_assets = {key for key in specs if len(key) == 2 and sql_files(*key)}
    assert {("chain", "work_items"), ("chain", "links")} <= sql_assets  # the test sees them

    problems = []
    for key in sorted(sql_assets):
        deps = {tuple(d.asset_key.path) for d in specs[key].deps}
        problems += problems_of(key, deps, sql_assets)
    assert not problems, "SQL asset deps drifted from the SQL:\n" + "\n".join(problems)
