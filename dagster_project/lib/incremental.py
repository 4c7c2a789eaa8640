"""Chain tables updated object by object instead of rebuilt whole every night.

Some chain tables hold rows each derived from one raw object alone (its ``raw_id`` is on
the row): the changelog items of an issue, the columns of a commit. When the rest of what
those rows depend on is unchanged — the table's SQL, the policy, the code of the SQL
functions, and its *reference* inputs (the Jira statuses and fields, the GitLab projects)
— only the objects whose raw row changed need deriving again:

* rows whose ``raw_id`` is no longer a current raw row (the object changed or was
  deleted) are deleted;
* the table's SQL runs over the objects it has no rows of yet
  (``chain_state.pending_objects`` in place of ``raw.current_objects``) and the result
  is inserted.

Other chain tables join such tables into one row per *key* (a Confluence page): every
row of a key is derived from the raw objects of that key alone, the key's own object and
its children (a page's versions). Those are rebuilt by key: the raw rows stored since the
table's last build name the keys whose rows are deleted and derived again (the SQL
restricts itself with ``rebuilds(key)``, true in a full build); the chain tables they
read count by their fingerprint, not by their generation, since their rows of other keys
do not matter.

Anything else (first build, a changed fingerprint) rebuilds from scratch.

Every chain table, listed here or not, is skipped when nothing it reads has changed
since its last build: no new raw row of the types it reads, the same generation of each
chain table it reads (``chain_state.builds.generation`` counts the builds that changed a
table), the same SQL, policy and code. A quiet night then rebuilds no chain table.

The result is the same rows as a full build: tests compare both after changes,
deletions and reference changes. The nightly cost then follows the day's changes, not
the organisation's size.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb

from dagster_project.lib.sql import run_sql, sql_code, sql_text, transaction

# Table -> the raw (source, type) its rows' raw_id names. Every other raw input of the
# table's SQL is a reference input: a change there rebuilds the table whole.
INCREMENTAL: dict[str, tuple[str, str]] = {
    "work_items": ("jira", "issue"),
    "field_changes": ("jira", "issue"),
    "status_transitions": ("jira", "issue"),
    "issue_links": ("jira", "issue"),
    "remote_links": ("jira", "remotelink"),
    "merge_requests": ("gitlab", "merge_request"),
    "mr_change_files": ("gitlab", "mr_change"),
    "mr_note_kinds": ("gitlab", "mr_note"),
    "mr_approvals": ("gitlab", "mr_approval"),
    "commits": ("gitlab", "commit"),
    "deployments": ("gitlab", "deployment"),
    "page_versions": ("confluence", "page_version"),
    "page_labels": ("confluence", "page"),
    "page_fields": ("confluence", "page"),
}


@dataclass(frozen=True)
class Keyed:
    """How a table built by key finds the keys whose rows to derive again.

    ``drivers``: per raw (source, type) the rows are derived from, the column of
    raw.objects that holds a row's raw key (the object's own key, or its parent's).
    ``lookup``: where the table's key is not the raw key, the chain table, raw key column
    and key column that map one to the other (a merge request's object key to its
    ``mr_key``); rows whose key that table no longer holds go too."""

    column: str
    drivers: dict[tuple[str, str], str]
    lookup: tuple[str, str, str] | None = None


_PAGE = {("confluence", "page"): "object_key", ("confluence", "page_version"): "parent_key"}
_MR = {
    ("gitlab", "merge_request"): "object_key",
    ("gitlab", "mr_note"): "parent_key",
    ("gitlab", "mr_change"): "parent_key",
    ("gitlab", "mr_approval"): "parent_key",
}
_MR_KEY = ("merge_requests", "object_key", "mr_key")
# Every chain table a keyed table reads is built from its drivers' raw objects, object by
# object or by the same key (tests hold it to that).
KEYED: dict[str, Keyed] = {
    "pages": Keyed("page_id", _PAGE),
    "page_mentions": Keyed("page_id", _PAGE),
    "mr_notes": Keyed("mr_key", _MR, _MR_KEY),
    "mr_changes": Keyed("mr_key", _MR, _MR_KEY),
    "mr_review_rounds": Keyed("mr_key", _MR, _MR_KEY),
}
LIB = Path(__file__).resolve().parent
# What SQL text reads: current raw objects of a (source, type), chain tables (also
# read by lib/analysis_reuse.py).
RAW_INPUT = re.compile(r"raw\.current_objects\('([a-z_]+)',\s*'([a-z_]+)'\)")
CHAIN_INPUT = re.compile(r"\bchain\.([a-z_]+)")
# Typed views of reference objects: only the view's columns count, so a project's
# last_activity_at moving every day does not rebuild what reads its path and branch.
_VIEWS = ("raw.gitlab_projects",)


@cache
def code_fingerprint() -> str:
    """The code behind the SQL functions (lib/): a new version rebuilds every table once."""
    digest = hashlib.sha256()
    for path in sorted(LIB.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def references(table: str) -> list[tuple[str, str]]:
    """The raw ``(source, type)`` inputs the table reads besides its driving objects
    (all of them for a table built whole)."""
    text = sql_text(f"chain/{table}")
    driving = set(KEYED[table].drivers) if table in KEYED else {INCREMENTAL.get(table)}
    return sorted({m for m in RAW_INPUT.findall(text) if m not in driving})


def chain_inputs(table: str) -> list[str]:
    """The other chain tables the table's SQL reads (its comments may name others)."""
    return sorted(set(CHAIN_INPUT.findall(sql_code(f"chain/{table}"))) - {table})


def reference_views(table: str) -> list[str]:
    """The typed reference views (``raw.gitlab_projects``) the table reads."""
    return [view for view in _VIEWS if view in sql_text(f"chain/{table}")]


def fingerprint(con: duckdb.DuckDBPyConnection, table: str, policy_json: str) -> str:
    """Everything the table's rows depend on besides their own object."""
    parts: dict[str, object] = {
        "sql": hashlib.sha256(
            (sql_text("prelude") + sql_text(f"chain/{table}")).encode()
        ).hexdigest(),
        "policy": hashlib.sha256(policy_json.encode()).hexdigest(),
        "code": code_fingerprint(),
    }
    for source, object_type in references(table):
        # raw.objects is append-only: any change of these objects adds a higher raw_id
        parts[f"{source}/{object_type}"] = con.execute(
            "SELECT max(raw_id), count(*) FROM raw.current WHERE source = ? AND object_type = ?",
            [source, object_type],
        ).fetchone()
    for view in reference_views(table):
        parts[view] = con.execute(
            f"SELECT hash(list(v ORDER BY v)) FROM (SELECT * EXCLUDE (raw_id) FROM {view}) v"  # noqa: S608
        ).fetchone()
    # A keyed table depends on how the chain tables it reads are built, not on which
    # rows they hold (its keys' rows are found from the raw rows instead).
    read = "fingerprint" if table in KEYED else "generation"
    for other in chain_inputs(table):
        parts[f"chain.{other}"] = con.execute(
            f"SELECT {read} FROM chain_state.builds WHERE table_name = ?",  # noqa: S608
            [other],
        ).fetchone()
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def build_chain_table(con: duckdb.DuckDBPyConnection, table: str, policy_json: str) -> str:
    """Build ``chain.<table>`` only as far as its inputs changed; returns ``"unchanged"``
    (nothing it reads changed: left as it is), ``"changes"`` (rows of changed objects
    derived again) or ``"full"``.

    Runs in one transaction: a build stopped half-way leaves the previous table and its
    state as they were."""
    run_sql(con, "state/chain_state")
    fingerprint_ = fingerprint(con, table, policy_json)
    stored = con.execute(
        "SELECT fingerprint FROM chain_state.builds WHERE table_name = ?", [table]
    ).fetchone()
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'chain' AND table_name = ?",
        [table],
    ).fetchone()[0]
    full = not (exists and stored and stored[0] == fingerprint_)
    driving = INCREMENTAL.get(table)
    if table in KEYED:
        mark = con.execute(
            "SELECT raw_mark FROM chain_state.marks WHERE table_name = ?", [table]
        ).fetchone()
        full = full or mark is None
        if not full and not _stage_keys(con, table, mark[0]):
            con.execute("DROP TABLE rebuilt_keys")
            return "unchanged"
    elif not full and (driving is None or not _has_changes(con, table, *driving)):
        return "unchanged"
    with transaction(con):
        if full:
            _run(con, sql_text(f"chain/{table}"))
            con.execute("DELETE FROM chain_state.inputs WHERE table_name = ?", [table])
        elif table in KEYED:
            _apply_keys(con, table)
        else:
            assert driving is not None
            _apply_changes(con, table, *driving)
        if driving is not None:
            con.execute(
                "INSERT INTO chain_state.inputs SELECT ?, raw_id "
                "FROM chain_state.pending_keys(?, ?, ?)",
                [table, *driving, table],
            )
        if table in KEYED:
            con.execute(
                "INSERT OR REPLACE INTO chain_state.marks "
                "SELECT ?, coalesce(max(raw_id), 0) FROM raw.objects",
                [table],
            )
        _mark_built(con, table, fingerprint_, full=full)
    return "full" if full else "changes"


def _stage_keys(con: duckdb.DuckDBPyConnection, table: str, mark: int) -> bool:
    """Keep in ``temp.rebuilt_keys`` the keys of a keyed table whose raw objects were
    stored (changed, new or deleted) after raw row ``mark``, and those of its rows whose
    key is gone; whether there are any."""
    keyed = KEYED[table]
    union = " UNION ALL ".join(
        f"SELECT o.{column} AS key FROM raw.current c JOIN raw.objects o USING (raw_id) "  # noqa: S608
        "WHERE c.source = ? AND c.object_type = ? AND c.raw_id > ? AND o.raw_id > ?"
        for column in keyed.drivers.values()
    )
    params = [value for driver in keyed.drivers for value in (*driver, mark, mark)]
    keys = f"SELECT key FROM ({union}) WHERE key IS NOT NULL"  # noqa: S608
    if keyed.lookup is not None:
        via, raw_key, key = keyed.lookup
        keys = (
            f"SELECT {key} AS key FROM chain.{via} WHERE {raw_key} IN ({keys}) "  # noqa: S608
            f"UNION ALL SELECT t.{keyed.column} FROM chain.{table} t "
            f"WHERE NOT EXISTS (FROM chain.{via} v WHERE v.{key} = t.{keyed.column})"
        )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE rebuilt_keys AS "  # noqa: S608 - names from KEYED
        f"SELECT DISTINCT key FROM ({keys}) WHERE key IS NOT NULL",
        params,
    )
    return con.execute("SELECT count(*) FROM rebuilt_keys").fetchone()[0] > 0


def _apply_keys(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Delete the rows of the staged keys and derive them again (rows without a key, if
    any, every time: no key names them)."""
    column = KEYED[table].column
    text = sql_text(f"chain/{table}")
    if "rebuilds(" not in text:
        raise ValueError(f"chain/{table}.sql: cannot be built by key")
    con.execute(
        f"DELETE FROM chain.{table} "  # noqa: S608
        f"WHERE {column} IS NULL OR {column} IN (SELECT key FROM rebuilt_keys)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP MACRO rebuilds(k) AS k IS NULL OR k IN (SELECT key FROM rebuilt_keys)"
    )
    try:
        _insert_derived(con, table, text)
    finally:
        con.execute("CREATE OR REPLACE TEMP MACRO rebuilds(k) AS true")
    con.execute("DROP TABLE rebuilt_keys")


def _has_changes(con: duckdb.DuckDBPyConnection, table: str, source: str, object_type: str) -> bool:
    """Whether an incremental table has rows to derive or to delete: probed on raw.current
    alone, without reading a payload."""
    return con.execute(
        "SELECT EXISTS (FROM chain_state.pending_keys(?, ?, ?)) "
        "OR EXISTS (FROM chain_state.stale_inputs(?, ?, ?))",
        [source, object_type, table, table, source, object_type],
    ).fetchone()[0]


def _apply_changes(
    con: duckdb.DuckDBPyConnection, table: str, source: str, object_type: str
) -> None:
    """Delete the rows of objects no longer current; derive the rows of new raw rows."""
    stale = "SELECT raw_id FROM chain_state.stale_inputs(?, ?, ?)"
    con.execute(
        f"DELETE FROM chain.{table} WHERE raw_id IN ({stale})",  # noqa: S608 - a listed table
        [table, source, object_type],
    )
    con.execute(
        "DELETE FROM chain_state.inputs WHERE table_name = ? "
        "AND raw_id IN (SELECT raw_id FROM chain_state.stale_inputs(?, ?, ?))",
        [table, table, source, object_type],
    )
    text = sql_text(f"chain/{table}")
    driving = f"raw.current_objects('{source}', '{object_type}')"
    if driving not in text:
        raise ValueError(f"chain/{table}.sql: cannot be built incrementally")
    pending = f"chain_state.pending_objects('{source}', '{object_type}', '{table}')"
    _insert_derived(con, table, text.replace(driving, pending))


def _insert_derived(con: duckdb.DuckDBPyConnection, table: str, text: str) -> None:
    """Run the table's SQL (narrowed by the caller) into a temporary table and add its
    rows to ``chain.<table>``."""
    create = f"CREATE OR REPLACE TABLE chain.{table} AS"
    if text.count(create) != 1:
        raise ValueError(f"chain/{table}.sql: cannot be built in part")
    _run(con, text.replace(create, f"CREATE OR REPLACE TEMP TABLE {table}_delta AS"))
    con.execute(f"INSERT INTO chain.{table} BY NAME SELECT * FROM {table}_delta")  # noqa: S608
    con.execute(f"DROP TABLE {table}_delta")


def _run(con: duckdb.DuckDBPyConnection, text: str) -> None:
    for statement in con.extract_statements(text):
        con.execute(statement)


def _mark_built(
    con: duckdb.DuckDBPyConnection, table: str, fingerprint_: str, *, full: bool
) -> None:
    """Record the build; the table's generation moves on, so what reads it builds again."""
    con.execute(
        "INSERT OR REPLACE INTO chain_state.builds (table_name, fingerprint, built_at, "
        "full_build, generation) SELECT ?, ?, now(), ?, coalesce(max(generation), 0) + 1 "
        "FROM chain_state.builds WHERE table_name = ?",
        [table, fingerprint_, full, table],
    )
