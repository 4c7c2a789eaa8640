"""Chain tables built object by object (lib/incremental.py) hold exactly the rows a
build from scratch would, after a simulated week of changes, after deletions and after a
change of what every row depends on (a Jira status)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

import duckdb
import pytest

from dagster_project.lib.chainsql import build_table
from dagster_project.lib.incremental import INCREMENTAL, references
from dagster_project.lib.policy import load_policy
from dagster_project.lib.rawstore import Batch, RawObject, RawStore
from dagster_project.sandbox.simulator import advance, generate
from tests.analysis.conftest import judge

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    return con.execute(f"SELECT * FROM chain.{table} ORDER BY ALL").fetchall()  # noqa: S608


def builds(con: duckdb.DuckDBPyConnection) -> dict[str, bool]:
    """table -> whether its last build started from scratch."""
    return dict(con.execute("SELECT table_name, full_build FROM chain_state.builds").fetchall())


def from_scratch(db, target) -> dict[str, list[tuple]]:
    """Every incremental table rebuilt from scratch on a copy of ``db``."""
    shutil.copyfile(db, target)
    with duckdb.connect(str(target)) as con:
        con.execute("DROP SCHEMA chain_state CASCADE")
        for table in INCREMENTAL:
            build_table(con, "chain", table, load_policy(), NOW)
        assert all(builds(con).values())
        return {t: rows(con, t) for t in INCREMENTAL}


@pytest.fixture(scope="module")
def week_later(tmp_path_factory):
    """A demo organisation judged, then judged again a week of changes later."""
    root = tmp_path_factory.mktemp("incremental")
    dataset = root / "dataset"
    generate(dataset, seed=5, scale="demo", flavor="cloud")
    db = root / "driftgate.duckdb"
    judge(dataset, db)
    with duckdb.connect(str(db), read_only=True) as con:
        first = {t: rows(con, t) for t in INCREMENTAL}
    advance(dataset, days=7, seed=5)
    judge(dataset, db, as_of=json.loads((dataset / "manifest.json").read_text())["as_of"])
    return root, db, first


def test_a_week_of_changes_gives_the_rows_of_a_build_from_scratch(week_later):
    root, db, first = week_later
    with duckdb.connect(str(db), read_only=True) as con:
        kinds = builds(con)
        after = {t: rows(con, t) for t in INCREMENTAL}
    # the second night derived only what changed, and something did change
    assert kinds == {t: False for t in INCREMENTAL}
    assert any(after[t] != first[t] for t in ("field_changes", "work_items", "commits"))
    assert after == from_scratch(db, root / "scratch.duckdb")


def test_deleted_objects_and_changed_references(week_later, tmp_path):
    _root, db, _first = week_later
    work = tmp_path / "work.duckdb"
    shutil.copyfile(db, work)
    with duckdb.connect(str(work)) as con:
        issue, statuses = con.execute(
            "SELECT (SELECT issue_key FROM chain.field_changes LIMIT 1), "
            "(SELECT list(object_key) FROM raw.current_objects('jira', 'status'))"
        ).fetchone()
        store = RawStore(con, "jira", "test-run", fetched_at=NOW)
        others = con.execute(
            "SELECT object_key FROM raw.current_objects('jira', 'issue') WHERE object_key <> ?",
            [issue],
        ).fetchall()
        store.tombstone_missing("issue", {k for (k,) in others})  # the issue was deleted
        status = con.execute(
            "SELECT payload FROM raw.current_objects('jira', 'status') WHERE object_key = ?",
            [statuses[0]],
        ).fetchone()[0]
        renamed = {**json.loads(status), "name": "Renamed status"}
        store.commit(Batch(objects=[RawObject("status", statuses[0], renamed)]))
        for table in INCREMENTAL:
            build_table(con, "chain", table, load_policy(), NOW)
        kinds = builds(con)
        assert not con.execute(
            "SELECT count(*) FROM chain.field_changes WHERE issue_key = ?", [issue]
        ).fetchone()[0]
        after = {t: rows(con, t) for t in INCREMENTAL}
    # a status is what work_items and status_transitions read of every issue: rebuilt
    for table in INCREMENTAL:
        assert kinds[table] == (("jira", "status") in references(table)), table
    assert after == from_scratch(work, tmp_path / "scratch.duckdb")
