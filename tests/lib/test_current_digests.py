"""The raw stores' compact view of what they hold answers as a dict of key -> digest."""

from __future__ import annotations

import hashlib
import random

import duckdb
import pytest

from dagster_project.lib import current_digests
from dagster_project.lib.current_digests import TOMBSTONE, CurrentDigests
from dagster_project.lib.rawstore import (
    Batch,
    RawObject,
    RawStore,
    content_hash,
    ensure_raw_schema,
)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _stored(rows: list[tuple[str, bytes]]) -> CurrentDigests:
    """The view ``read`` gives of ``raw.current`` rows (key, digest; ``TOMBSTONE``: a
    tombstone's row), content hashes stored as hex as the raw store writes them."""
    con = duckdb.connect()
    ensure_raw_schema(con)
    if rows:
        con.executemany(
            "INSERT INTO raw.current VALUES ('jira', 'issue', ?, ?, ?, ?)",
            [
                (key, i, "deleted" if d == TOMBSTONE else d.hex(), d == TOMBSTONE)
                for i, (key, d) in enumerate(rows)
            ],
        )
    index = CurrentDigests.read(con, "jira", "issue")
    con.close()
    return index


def _answers(
    index: CurrentDigests, model: dict[str, bytes], keys: list[str], rows: set[str] = frozenset()
) -> None:
    """``model``: the keys held and their digests; ``rows``: keys with a row (tombstones too)."""
    assert index.contains(keys) == [k in model for k in keys]
    wanted = [model.get(k, _digest("never")) for k in keys]
    same, have_rows = index.compare(keys, wanted)
    assert same == [k in model for k in keys]
    assert have_rows == [k in model or k in rows for k in keys]
    # Another digest for a held key is a change, however close.
    other = [bytes([d[0] ^ 1]) + d[1:] for d in wanted]
    assert index.compare(keys, other)[0] == [False] * len(keys)


def test_stored_rows_are_held_with_their_digests() -> None:
    rows = [(f"group/p!{i}", _digest(str(i))) for i in range(250)]
    index = _stored(rows)
    model = dict(rows)
    _answers(index, model, [k for k, _ in rows] + ["group/p!9999", ""])


def test_digests_ending_in_zero_bytes_still_compare_exactly() -> None:
    # Fixed-width byte strings drop trailing NULs when read out; comparison stays exact.
    zero_tail = b"\x07" * 8 + b"\x00" * 24
    one_tail = b"\x07" * 8 + b"\x00" * 7 + b"\x01" + b"\x00" * 16
    index = _stored([("a", zero_tail), ("b", one_tail)])
    assert index.compare(["a", "b"], [zero_tail, one_tail])[0] == [True, True]
    assert index.compare(["a", "b"], [one_tail, zero_tail])[0] == [False, False]


def test_commits_folded_in_or_not_answer_as_a_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(current_digests, "FOLD_AT", 7)  # fold often
    rng = random.Random(11)
    keys = [f"k{i}" for i in range(60)]
    model = {k: _digest(k) for k in keys[:30]}
    index = _stored([*model.items(), ("k59", TOMBSTONE)])
    tombstoned = {"k59"}
    for step in range(400):
        key = rng.choice(keys[:55])  # k55..k58 never have a row
        if rng.random() < 0.3:
            if key in model:  # only what is held is tombstoned
                del model[key]
                tombstoned.add(key)
                index.set(key, None)
        else:
            model[key] = _digest(f"{key}@{step}")
            index.set(key, model[key])
        if step % 37 == 0:
            _answers(index, model, keys, tombstoned)
    _answers(index, model, keys, tombstoned)
    never = ["k55", "k56", "k57", "k58"]
    assert not any(index.compare(never, [_digest(k) for k in never])[1])
    assert len(index._recent) < 7  # folded into the arrays as it grew


def test_an_empty_index_holds_nothing() -> None:
    index = _stored([])
    assert index.contains(["a"]) == [False]
    assert index.compare([], []) == ([], [])
    index.set("a", _digest("a"))
    assert index.compare(["a"], [_digest("a")]) == ([True], [True])


def test_a_raw_stores_rows_read_as_python_fingerprints_them(tmp_path) -> None:
    """DuckDB's MD5 halves and hex digests give the fingerprints Python computes."""
    con = duckdb.connect(str(tmp_path / "store.duckdb"))
    store = RawStore(con, "jira", "run-1")
    payloads = {f"PAY-{i}": {"v": i, "summary": "é" * i} for i in range(300)}
    store.commit(Batch(objects=[RawObject("issue", k, p) for k, p in payloads.items()]))
    store.tombstone_missing("issue", set(list(payloads)[:250]))
    index = CurrentDigests.read(con, "jira", "issue")
    keys = [*payloads, "PAY-999"]
    digests = [bytes.fromhex(content_hash(payloads.get(k, {}))) for k in keys]
    same, have_rows = index.compare(keys, digests)
    assert same == [i < 250 for i in range(301)]
    assert have_rows == [True] * 300 + [False]
    assert index.contains(keys) == [i < 250 for i in range(301)]
    con.close()


# -- views saved beside a store -----------------------------------------------------------


def _issue(key: str, version: int) -> RawObject:
    return RawObject("issue", key, {"key": key, "fields": {"summary": f"v{version}"}})


def test_a_saved_view_serves_the_next_store_while_it_still_holds(tmp_path, monkeypatch) -> None:
    """A store's views are saved when its fetch ends and the next store on the file reads
    them instead of hashing every stored key; a view saved before a later commit (a run
    killed after it) is read again from the rows, so no change goes unseen."""
    views = tmp_path / "views"
    con = duckdb.connect(str(tmp_path / "store.duckdb"))
    first = RawStore(con, "jira", "run-1", views=views)
    first.commit(Batch(objects=[_issue(f"PAY-{i}", 1) for i in range(300)]))
    first.commit(Batch(objects=[_issue("PAY-7", 2)]))  # kept in step after a commit
    first.tombstone_missing("issue", {f"PAY-{i}" for i in range(1, 300)})  # PAY-0 deleted
    first.save_views()
    assert (views / "jira.issue.npz").is_file()

    reads: list[str] = []
    real_read = CurrentDigests.read.__func__

    def counted(cls, con, source, object_type):
        reads.append(object_type)
        return real_read(cls, con, source, object_type)

    monkeypatch.setattr(CurrentDigests, "read", classmethod(counted))
    second = RawStore(con, "jira", "run-2", views=views)
    counts = second.commit(
        Batch(objects=[_issue("PAY-7", 2), _issue("PAY-8", 1), _issue("PAY-9", 3)])
    )
    assert reads == []  # the saved view answered
    assert (counts.stored, counts.unchanged) == (1, 2)  # only PAY-9 changed
    assert second.holds("issue", ["PAY-0", "PAY-8"]) == {"PAY-8"}  # PAY-0 is a tombstone
    second.save_views()  # its fetch ends

    # A commit after the save, by a store that saved nothing (a run killed before its
    # end): the next store reads the rows again and sees the change.
    RawStore(con, "jira", "run-3", views=views).commit(Batch(objects=[_issue("PAY-8", 5)]))
    assert reads == []
    third = RawStore(con, "jira", "run-4", views=views)
    assert third.commit(Batch(objects=[_issue("PAY-8", 5)])).unchanged == 1
    assert reads == ["issue"]
    third.save_views()
    # A quiet night: the view loads from its file and is not written again.
    written = (views / "jira.issue.npz").stat().st_ino
    quiet = RawStore(con, "jira", "run-5", views=views)
    assert quiet.commit(Batch(objects=[_issue("PAY-8", 5)])).unchanged == 1
    quiet.save_views()
    assert (views / "jira.issue.npz").stat().st_ino == written
    assert reads == ["issue"]
    assert third._current("issue").compare(
        ["PAY-8"], [bytes.fromhex(content_hash(_issue("PAY-8", 5).payload))]
    ) == ([True], [True])
    con.close()


def test_a_view_file_that_is_not_a_whole_view_is_read_again(tmp_path) -> None:
    views = tmp_path / "views"
    views.mkdir()
    (views / "jira.issue.npz").write_bytes(b"cut short")
    con = duckdb.connect()
    store = RawStore(con, "jira", "run-1", views=views)
    store.commit(Batch(objects=[_issue("PAY-1", 1)]))
    assert (
        RawStore(con, "jira", "run-2", views=views)
        .commit(Batch(objects=[_issue("PAY-1", 1)]))
        .unchanged
        == 1
    )
