"""The append-only raw layer: dedupe by content, atomic batches, tombstones."""

from datetime import UTC, datetime

import duckdb
import pytest

from dagster_project.lib.rawstore import Batch, Quarantined, RawObject, RawStore, content_hash


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "store.duckdb"))
    yield connection
    connection.close()


def t(day: int) -> datetime:
    return datetime(2026, 3, day, tzinfo=UTC)


def rows(con, key=None):
    sql = "SELECT object_key, deleted FROM raw.objects"
    return con.execute(sql + " ORDER BY raw_id").fetchall()


def test_unchanged_objects_add_no_row_and_changed_ones_do(con):
    store = RawStore(con, "jira", "run-1")
    first = store.commit(
        Batch(objects=[RawObject("issue", "A-1", {"v": 1}), RawObject("issue", "A-2", {"v": 1})])
    )
    assert (first.stored, first.unchanged) == (2, 0)
    again = store.commit(
        Batch(objects=[RawObject("issue", "A-1", {"v": 1}), RawObject("issue", "A-2", {"v": 2})])
    )
    assert (again.stored, again.unchanged) == (1, 1)
    assert [r[0] for r in rows(con)] == ["A-1", "A-2", "A-2"]
    latest = con.execute(
        "SELECT payload->>'$.v' FROM raw.latest WHERE object_key = 'A-2'"
    ).fetchone()[0]
    assert latest == "2"


def test_volatile_keys_do_not_count_as_changes():
    assert content_hash({"fields": {"a": 1, "lastViewed": "x"}}) == content_hash(
        {"fields": {"a": 1, "lastViewed": "y"}}
    )
    assert content_hash({"a": 1}) != content_hash({"a": 2})


def test_failed_batch_commits_nothing_not_even_its_watermark(con):
    store = RawStore(con, "jira", "run-1")
    bad = Batch(
        objects=[RawObject("issue", "A-1", {"v": 1})],
        watermarks={("issue", "*"): t(2)},
        quarantined=[Quarantined("issue", "A-9", "bad", object())],  # not JSON-serialisable
    )
    with pytest.raises(TypeError):
        store.commit(bad)
    assert rows(con) == []
    assert store.watermark("issue") is None


def test_watermark_never_moves_backwards(con):
    store = RawStore(con, "gitlab", "run-1")
    store.commit(Batch(watermarks={("merge_request", "*"): t(5)}))
    store.commit(Batch(watermarks={("merge_request", "*"): t(3)}))
    assert store.watermark("merge_request") == t(5)


def test_tombstones_mark_missing_objects_and_a_return_revives_them(con):
    store = RawStore(con, "confluence", "run-1")
    store.commit(Batch(objects=[RawObject("page", "1", {"v": 1}), RawObject("page", "2", {})]))
    assert store.tombstone_missing("page", {"2"}) == 1
    assert store.stored_keys("page") == {"2"}
    store.commit(Batch(objects=[RawObject("page", "1", {"v": 1})]))
    assert store.stored_keys("page") == {"1", "2"}
    assert [r for r in rows(con) if r[0] == "1"] == [("1", False), ("1", True), ("1", False)]


def test_quarantine_keeps_payload_and_reason(con):
    store = RawStore(con, "jira", "run-1")
    store.commit(
        Batch(quarantined=[Quarantined("issue", "X-1", "fields.updated: missing", {"key": "X-1"})])
    )
    reason, payload = con.execute("SELECT reason, payload->>'$.key' FROM raw.quarantine").fetchone()
    assert reason == "fields.updated: missing" and payload == "X-1"


def test_stored_parts_reads_one_path_of_current_objects(con):
    store = RawStore(con, "jira", "run-1")
    store.commit(
        Batch(
            objects=[
                RawObject("issue", "A-1", {"changelog": {"histories": [{"id": "1"}]}}),
                RawObject("issue", "A-2", {"changelog": {"histories": []}}),
                RawObject("issue", "A-3", {"fields": {}}),
            ]
        )
    )
    store.tombstone_missing("issue", {"A-1", "A-3"})
    parts = store.stored_parts("issue", ["A-1", "A-2", "A-3", "A-4"], "$.changelog.histories")
    assert parts == {"A-1": [{"id": "1"}]}  # A-2 deleted, A-3 without it, A-4 never stored
    assert store.stored_parts("issue", [], "$.changelog") == {}
