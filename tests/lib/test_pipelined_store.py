"""Batches commit on a writer thread; every other use of the store waits for them.

Batches handed over while the writer is busy commit together, when that stores what
committing them one by one would; ``committed()`` and ``watermark`` do not wait."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from dagster_project.lib.pipelined_store import PipelinedStore
from dagster_project.lib.policy import Policy
from dagster_project.lib.rawstore import Batch, Children, Quarantined, RawObject, RawStore
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
    store = PipelinedStore(RawStore(con, "jira", "run-1"), group_objects=0)  # one by one
    store.commit(Batch(objects=[RawObject("issue", "A-1", {"v": 1})]))
    store.commit(Batch(objects=[RawObject("issue", "A-1", {"v": 2})]))
    # Not JSON-serialisable: this batch fails on the writer thread.
    store.commit(Batch(quarantined=[Quarantined("issue", "A-9", "bad", object())]))
    with pytest.raises(TypeError):  # when the next batch is handed over, or at the latest
        store.commit(Batch(objects=[RawObject("issue", "A-3", {"v": 1})]))
        store.drain()
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


def hand_over(store: PipelinedStore, key: str, version: int) -> None:
    store.commit(Batch(objects=[RawObject("issue", key, {"v": version})]))


class HeldWriter:
    """A store whose first commit waits until ``release`` (at the latest after a few
    seconds, so a caller that waits for the writer makes the test fail, not hang), and
    which records the objects of every commit."""

    def __init__(self, con, source: str = "jira", **kwargs):
        self.raw = RawStore(con, source, "run-1")
        self.release = threading.Event()
        self.commits: list[list[str]] = []
        commit = self.raw.commit

        def held_commit(batch: Batch):
            if not self.commits:
                self.release.wait(5)
            self.commits.append([o.object_key for o in batch.objects])
            return commit(batch)

        self.raw.commit = held_commit  # type: ignore[method-assign]
        self.store = PipelinedStore(self.raw, **kwargs)


def stored(con) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT object_key, payload->>'$.v' FROM raw.objects ORDER BY raw_id"
    ).fetchall()


def test_batches_handed_over_while_the_writer_is_busy_commit_as_one(con):
    held = HeldWriter(con)
    store = held.store
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    hand_over(store, "A-1", 1)
    for n, mark in ((2, t0 + timedelta(hours=2)), (3, t0), (4, t0 + timedelta(hours=1))):
        store.commit(
            Batch(
                objects=[RawObject("issue", f"A-{n}", {"v": n})],
                watermarks={("issue", "*"): mark},
            )
        )
    store.record_listing("issue", listed=4, reported=4, full=True)
    store.record_listing("issue", listed=5, reported=5, full=True)
    held.release.set()
    store.drain()
    # The caller never waited: the three batches waited and committed as one.
    assert held.commits == [["A-1"], ["A-2", "A-3", "A-4"]]
    assert stored(con) == [("A-1", "1"), ("A-2", "2"), ("A-3", "3"), ("A-4", "4")]
    assert store.watermark("issue") == t0 + timedelta(hours=2)  # the latest, not the last
    # Listings committed together keep the order they were recorded in.
    assert con.execute(
        "SELECT listed FROM raw.listings ORDER BY listed_at DESC LIMIT 1"
    ).fetchone() == (5,)
    store.close()


def test_a_batch_repeating_an_object_or_tombstoning_children_is_not_grouped(con):
    held = HeldWriter(con)
    store = held.store
    hand_over(store, "A-1", 1)
    hand_over(store, "A-2", 1)
    threading.Timer(0.2, held.release.set).start()
    hand_over(store, "A-2", 2)  # waits its turn
    store.commit(
        Batch(
            objects=[RawObject("remotelink", "A-1", {"v": 1}, parent_key="A-1")],
            gone=[Children("issue", "A-1", present=set())],
        )
    )
    store.drain()
    assert held.commits == [["A-1"], ["A-2"], ["A-2"], ["A-1"]]
    # Both versions of A-2 are kept, and the tombstone came after A-1 was stored.
    assert stored(con) == [("A-1", "1"), ("A-2", "1"), ("A-2", "2"), ("A-1", "1")]
    store.close()


def test_a_group_holds_at_most_group_objects(con):
    held = HeldWriter(con, group_objects=2)
    store = held.store
    hand_over(store, "A-1", 1)
    hand_over(store, "A-2", 1)
    hand_over(store, "A-3", 1)
    threading.Timer(0.2, held.release.set).start()
    hand_over(store, "A-4", 1)  # waits: full
    store.drain()
    assert held.commits == [["A-1"], ["A-2", "A-3"], ["A-4"]]
    store.close()


def test_committed_reads_do_not_wait_and_watermarks_count_what_was_handed_over(con):
    held = HeldWriter(con)
    store = held.store
    mark = datetime(2026, 3, 2, tzinfo=UTC)
    reader = store.committed()  # opened before anything is handed over
    store.commit(
        Batch(objects=[RawObject("issue", "A-1", {"v": 1})], watermarks={("issue", "*"): mark})
    )
    # The writer holds the batch: reads of the committed store neither wait nor see it.
    assert reader.stored_keys("issue") == set()
    assert reader.watermark("issue") is None
    assert store.watermark("issue") == mark
    assert held.commits == []
    held.release.set()
    store.drain()
    assert reader.stored_keys("issue") == {"A-1"}
    store.close()


def test_closing_commits_what_was_handed_over(con):
    held = HeldWriter(con)
    store = held.store
    hand_over(store, "A-1", 1)
    hand_over(store, "A-2", 1)
    held.release.set()
    store.close()
    assert stored(con) == [("A-1", "1"), ("A-2", "1")]
