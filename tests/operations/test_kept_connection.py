"""The main database's connection is kept for the whole in-process run (defs/resources.py
``KeptDuckDBResource``): every step after the first reuses it, each step still starts
from a clean session, a step that fails takes the connection with it, and a fetch step
closes it before opening its staging store."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project.defs.resources import KeptDuckDBResource
from dagster_project.lib.policy import Policy
from dagster_project.lib.scopes import Unit
from dagster_project.raw_assets import UnitFetch, staging_store


def _session(con: duckdb.DuckDBPyConnection) -> dict:
    return {
        "time_zone": con.execute("SELECT current_setting('TimeZone')").fetchone()[0],
        "variables": con.execute("SELECT name FROM duckdb_variables()").fetchall(),
        "temp_tables": con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE temporary"
        ).fetchall(),
    }


def _run(db: Path, *assets: dg.AssetsDefinition) -> dg.ExecuteInProcessResult:
    return dg.materialize(list(assets), resources={"main": KeptDuckDBResource(database=str(db))})


def test_one_connection_serves_the_run_and_each_step_starts_clean(tmp_path: Path) -> None:
    seen: list[int] = []
    sessions: list[dict] = []

    @dg.asset
    def first(main: KeptDuckDBResource) -> None:
        with main.get_connection() as con:
            sessions.append(_session(con))
            seen.append(id(con))
            con.execute("CREATE TABLE t AS SELECT 1 AS x")
            con.execute("SET TimeZone = 'Asia/Tokyo'")
            con.execute("SET VARIABLE left_over = 42")
            con.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS y")

    @dg.asset(deps=[first])
    def second(main: KeptDuckDBResource) -> None:
        with main.get_connection() as con:
            sessions.append(_session(con))
            seen.append(id(con))
            assert con.execute("SELECT x FROM t").fetchone() == (1,)

    assert _run(tmp_path / "db.duckdb", first, second).success
    assert seen[0] == seen[1]  # the same connection, not a second open of the file
    assert sessions[1] == sessions[0]  # as a new connection has it
    assert sessions[1]["variables"] == [] and sessions[1]["temp_tables"] == []
    # Closed at the end of the run: the file opens again, read-only, in this process
    # (DuckDB refuses a second configuration of a file it holds open).
    with duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True) as con:
        assert con.execute("SELECT x FROM t").fetchone() == (1,)


def test_a_step_that_fails_closes_the_connection_and_rolls_back(tmp_path: Path) -> None:
    seen: list[int] = []

    @dg.asset
    def breaks(main: KeptDuckDBResource) -> None:
        with main.get_connection() as con:
            seen.append(id(con))
            con.execute("CREATE TABLE kept AS SELECT 1 AS x")
            con.execute("BEGIN TRANSACTION")
            con.execute("INSERT INTO kept VALUES (2)")
            raise RuntimeError("half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        _run(tmp_path / "db.duckdb", breaks)
    with duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True) as con:
        assert con.execute("SELECT list(x) FROM kept").fetchone() == ([1],)


def test_outside_a_run_each_block_opens_and_closes_its_own(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    resource = KeptDuckDBResource(database=str(db))
    with resource.get_connection() as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    # closed: another configuration of the same file opens
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT x FROM t").fetchone() == (1,)
    with resource.get_connection() as con:
        assert con.execute("SELECT x FROM t").fetchone() == (1,)


def test_a_fetch_step_closes_the_kept_connection_before_its_staging_store(
    tmp_path: Path,
) -> None:
    db = tmp_path / "db.duckdb"
    unit = Unit("jira", "all", "*", Policy())
    open_during_fetch: list[bool] = []

    @dg.asset
    def earlier(main: KeptDuckDBResource) -> None:
        with main.get_connection() as con:
            con.execute("CREATE TABLE t AS SELECT 1 AS x")

    @dg.asset(deps=[earlier])
    def fetch(context: dg.AssetExecutionContext, main: KeptDuckDBResource) -> None:
        task = UnitFetch(unit, datetime(2026, 3, 1, tzinfo=UTC))
        with staging_store(context, task, main):
            # The main file is no longer held: it opens with another configuration.
            try:
                duckdb.connect(str(db), read_only=True).close()
                open_during_fetch.append(False)
            except duckdb.ConnectionException:
                open_during_fetch.append(True)

    assert _run(db, earlier, fetch).success
    assert open_during_fetch == [False]
