"""Batches commit on a writer thread; every other use of the store waits for them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import duckdb
import pytest

from dagster_project.lib.pipelined_store import PipelinedStore
from dagster_project.lib.policy import Policy
from dagster_project.lib.rawstore import Batch, Quarantined, RawObject, RawStore
from dagster_project.lib.scopes import Unit
from dagster_project.lib.staging import unit_path, unit_store


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "store.duckdb"))
    yield connection
    connection.close()


def test_commit_returns_before_the_batch_is_written_and_reads_wait_for_it(con):
    raw = RawStore(con, "jira", "run-1")
    started, release = threading.Event(), threading.Event()
    commit = raw.commit

    def slow_commit(batch: Batch):
        started.set()
        release.wait(10)
        return commit(batch)

    raw.commit = slow_commit  # type: ignore[method-assign]
    store = PipelinedStore(raw)
    store.commit(Batch(objects=[RawObject("issue", "A-1", {"v": 1})]))
    assert started.wait(10)  # the writer has it, and the caller is free
    assert con.execute("SELECT count(*) FROM raw.objects").fetchone()[0] == 0
    threading.Timer(0.2, release.set).start()
    assert store.stored_keys("issue") == {"A-1"}  # waited for the pending batch
    store.close()


def test_batches_commit_in_order_and_a_failure_stops_the_next(con):
    store = PipelinedStore(RawStore(con, "jira", "run-1"))
    store.commit(Batch(objects=[RawObject("issue", "A-1", {"v": 1})]))
    store.commit(Batch(objects=[RawObject("issue", "A-1", {"v": 2})]))
    # Not JSON-serialisable: this batch fails on the writer thread.
    store.commit(Batch(quarantined=[Quarantined("issue", "A-9", "bad", object())]))
    with pytest.raises(TypeError):
        store.commit(Batch(objects=[RawObject("issue", "A-3", {"v": 1})]))
    store.close()
    assert con.execute(
        "SELECT object_key, payload->>'$.v' FROM raw.objects ORDER BY raw_id"
    ).fetchall() == [("A-1", "1"), ("A-1", "2")]
    assert con.execute("SELECT count(*) FROM raw.quarantine").fetchone()[0] == 0


def test_leaving_a_unit_store_writes_its_last_batch(tmp_path):
    db = tmp_path / "driftgate.duckdb"
    unit = Unit("jira", "all", "*", Policy())
    with unit_store(db, unit, "run-1", datetime(2026, 3, 2, tzinfo=UTC)) as store:
        store.commit(Batch(objects=[RawObject("issue", "A-1", {"v": 1})]))
    with duckdb.connect(str(unit_path(db, unit)), read_only=True) as staged:
        assert staged.execute("SELECT object_key FROM raw.current").fetchall() == [("A-1",)]
