"""The append-only raw layer: dedupe by content, atomic batches, tombstones."""

import contextlib
import csv
import hashlib
import json
from datetime import UTC, datetime

import duckdb
import pytest

from dagster_project.lib.rawstore import (
    VOLATILE_KEYS,
    Batch,
    Children,
    ListingRecord,
    Quarantined,
    RawObject,
    RawStore,
    canonical_json,
    content_hash,
    ensure_raw_schema,
)
from tests.conftest import REAL_FIXTURES, text_compressions


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


def test_kept_parts_follow_the_current_row_of_each_object(con):
    store = RawStore(con, "jira", "run-1")
    store.commit(
        Batch(
            objects=[
                RawObject("issue", "A-1", {"v": 1}, parts={"links": [["1", "a", "b"]]}),
                RawObject("issue", "A-2", {"v": 1}, parts={"links": []}),
                RawObject("issue", "A-3", {"v": 1}),  # stored without parts
            ]
        )
    )
    keys = ["A-1", "A-2", "A-3", "A-4"]
    assert store.kept_parts("issue", keys, "links") == {"A-1": [["1", "a", "b"]], "A-2": []}
    assert store.kept_parts("issue", keys, "other") == {}
    # A changed object's parts replace the old ones; an unchanged one keeps its own.
    store.commit(
        Batch(
            objects=[
                RawObject("issue", "A-1", {"v": 2}, parts={"links": []}),
                RawObject("issue", "A-2", {"v": 1}, parts={"links": [["9", "x", "y"]]}),
            ]
        )
    )
    assert store.kept_parts("issue", keys, "links") == {"A-1": [], "A-2": []}
    assert con.execute("SELECT count(*) FROM raw.parts").fetchone()[0] == 2
    store.tombstone_missing("issue", {"A-2", "A-3"})
    assert store.kept_parts("issue", keys, "links") == {"A-2": []}
    # Another store on the same file reads the same parts.
    assert RawStore(con, "jira", "run-2").kept_parts("issue", keys, "links") == {"A-2": []}


def test_a_missing_part_is_filled_in_for_older_rows_and_all_parts_read_in_one(con):
    store = RawStore(con, "jira", "run-1")
    store.commit(
        Batch(
            objects=[
                RawObject("issue", "A-1", {"u": "1"}, parts={"updated": "1"}),
                RawObject("issue", "A-2", {"u": "2"}, parts={"links": [["9", "x", "y"]]}),
                RawObject("issue", "A-3", {"u": "3"}),  # stored without parts
                RawObject("issue", "A-4", {"u": "4"}, parts={"updated": "4"}),
            ]
        )
    )
    store.tombstone_missing("issue", {"A-1", "A-2", "A-3"})
    keys = ["A-1", "A-2", "A-3", "A-4", "A-5"]
    assert store.kept_part_sets("issue", keys) == {
        "A-1": {"updated": "1"},
        "A-2": {"links": [["9", "x", "y"]]},
    }

    store.keep_missing_part("issue", "updated", "$.u")
    # the rows stored without it now have it, other parts kept: the payload is not read again
    con.execute("UPDATE raw.objects SET payload = '{}'")  # payloads out of the way
    assert store.kept_part_sets("issue", keys) == {
        "A-1": {"updated": "1"},
        "A-2": {"links": [["9", "x", "y"]], "updated": "2"},
        "A-3": {"updated": "3"},
    }
    assert store.kept_parts("issue", ["A-2"], "links") == {"A-2": [["9", "x", "y"]]}


def hash_as_first_defined(payload) -> str:
    """``content_hash`` as it was first written (strip every volatile key, dump, hash):
    the hashes already stored were made this way, so every new one must equal it."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return hashlib.sha256(canonical_json(strip(payload)).encode("utf-8")).hexdigest()


def real_payloads() -> list:
    """Every JSON document of the real fixtures, every object and list inside them, and
    every CSV row (DevLake's captures hold raw API objects as text)."""
    found: list = []

    def walk(value) -> None:
        if isinstance(value, dict | list):
            found.append(value)
            for child in value.values() if isinstance(value, dict) else value:
                walk(child)

    for path in sorted(REAL_FIXTURES.rglob("*")):
        if path.suffix == ".json":
            walk(json.loads(path.read_text(encoding="utf-8")))
        elif path.suffix == ".jsonl":
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    walk(json.loads(line))
        elif path.suffix == ".csv":
            csv.field_size_limit(1 << 30)
            with path.open(encoding="utf-8", newline="") as rows:
                for row in csv.DictReader(rows):
                    walk(row)
                    for text in row.values():
                        if text and text[:1] in "{[":
                            with contextlib.suppress(ValueError):
                                walk(json.loads(text))
    return found


def test_content_hash_is_the_hash_stored_so_far_for_every_real_payload():
    if not REAL_FIXTURES.is_dir():
        pytest.skip(f"no real fixtures at {REAL_FIXTURES}")
    payloads = real_payloads()
    with_volatile = [p for p in payloads if '"lastViewed"' in canonical_json(p)]
    assert len(payloads) > 1000 and with_volatile  # the fixtures hold both kinds
    for payload in payloads:
        assert content_hash(payload) == hash_as_first_defined(payload)


def test_content_hash_strips_volatile_keys_at_any_depth_and_only_keys():
    payloads = [
        {"fields": {"a": 1, "lastViewed": "2026-03-01T10:00:00.000+0000"}},
        [{"lastViewed": None}, {"x": [{"lastViewed": 1, "y": "é"}]}],
        {"note": "lastViewed", "text": 'he wrote "lastViewed" here'},  # a value, not a key
        {"lastViewed": {"lastViewed": 2}},
        "lastViewed",
        {"a": float("nan"), "b": [1.5, True, None]},
    ]
    for payload in payloads:
        assert content_hash(payload) == hash_as_first_defined(payload)
    assert content_hash({"lastViewed": 1, "a": 2}) == content_hash({"a": 2})
    assert content_hash({"note": "lastViewed"}) != content_hash({"note": "other"})


def test_a_store_sees_what_another_store_committed_before_it(con):
    """The key -> hash lookup is loaded when a store first writes a type: a new store
    on the same database compares with everything committed before it."""
    RawStore(con, "jira", "run-1").commit(Batch(objects=[RawObject("issue", "A-1", {"v": 1})]))
    store = RawStore(con, "jira", "run-2")
    same = store.commit(Batch(objects=[RawObject("issue", "A-1", {"v": 1})]))
    assert (same.stored, same.unchanged) == (0, 1)
    store.tombstone_missing("issue", set())
    back = store.commit(Batch(objects=[RawObject("issue", "A-1", {"v": 1})]))
    assert (back.stored, back.unchanged) == (1, 0)  # deleted, then back: stored again
    assert [r for r in rows(con)] == [("A-1", False), ("A-1", True), ("A-1", False)]


def test_a_batch_tombstones_gone_children_and_records_listings_with_its_objects(con):
    store = RawStore(con, "gitlab", "run-1")
    store.commit(
        Batch(
            objects=[
                RawObject("merge_request", "1!1", {"v": 1}),
                RawObject("mr_note", "1!1!10", {"n": 10}, parent_key="1!1"),
                RawObject("mr_note", "1!1!11", {"n": 11}, parent_key="1!1"),
                RawObject("mr_approval", "1!1", {"a": 1}, parent_key="1!1"),
            ]
        )
    )
    counts = store.commit(
        Batch(
            objects=[
                RawObject("merge_request", "1!1", {"v": 2}),
                RawObject("mr_note", "1!1!11", {"n": 11}, parent_key="1!1"),
                RawObject("merge_request", "1!2", {"v": 1}),
            ],
            gone=[
                Children("mr_note", "1!1", {"1!1!11"}),
                Children("mr_approval", "1!1", set()),
                Children("mr_note", "1!2", set()),  # nothing stored under it
            ],
            listings=[ListingRecord("mr_note", 1, 1, full=True, scope="1!1")],
        )
    )
    assert (counts.stored, counts.unchanged, counts.tombstoned) == (2, 1, 2)
    assert con.execute(
        "SELECT object_type, object_key, deleted FROM raw.objects WHERE run_id = 'run-1' "
        "ORDER BY raw_id DESC LIMIT 4"
    ).fetchall()[::-1] == [
        ("mr_note", "1!1!10", True),
        ("mr_approval", "1!1", True),
        ("merge_request", "1!1", False),
        ("merge_request", "1!2", False),
    ]
    assert store.stored_keys("mr_note") == {"1!1!11"}
    assert store.stored_keys("mr_approval") == set()
    assert con.execute("SELECT scope, listed FROM raw.listings").fetchall() == [("1!1", 1)]


def test_children_with_their_stored_keys_are_tombstoned_without_a_look_up(con):
    """A caller that read a parent's keys before listing it hands them over: the store
    tombstones those not present, and does not read its own rows for that parent."""
    store = RawStore(con, "gitlab", "run-1")
    files = [RawObject("file", f"1:main:{n}", {"n": n}, parent_key="1") for n in "abc"]
    store.commit(Batch(objects=files))
    counts = store.commit(
        Batch(gone=[Children("file", "1", {"1:main:a"}, stored={"1:main:a", "1:main:b"})])
    )
    # the keys handed over decide: c is stored too, but the caller did not name it
    assert counts.tombstoned == 1
    assert store.stored_keys("file") == {"1:main:a", "1:main:c"}


def test_stored_children_are_the_current_keys_under_each_parent(con):
    store = RawStore(con, "confluence", "run-1")
    versions = [RawObject("page_version", f"{p}:{n}", {"n": n}, parent_key=p) for p, n in
                [("7", 1), ("7", 2), ("8", 1)]]  # fmt: skip
    store.commit(Batch(objects=versions))
    store.commit(Batch(gone=[Children("page_version", "8", set())]))  # 8's only version gone
    assert store.stored_children("page_version", ["7", "8", "9"]) == {"7": {"7:1", "7:2"}}
    assert store.stored_children("page_version", []) == {}


def test_a_failed_batch_leaves_the_lookup_as_the_database_is(con):
    store = RawStore(con, "jira", "run-1")
    store.commit(Batch(objects=[RawObject("issue", "A-1", {"v": 1})]))
    bad = Batch(
        objects=[RawObject("issue", "A-1", {"v": 2}), RawObject("issue", "A-2", {"v": 1})],
        gone=[Children("issue", "P", set())],
        quarantined=[Quarantined("issue", "A-9", "bad", object())],  # not JSON-serialisable
    )
    with pytest.raises(TypeError):
        store.commit(bad)
    again = store.commit(
        Batch(objects=[RawObject("issue", "A-1", {"v": 2}), RawObject("issue", "A-2", {"v": 1})])
    )
    assert (again.stored, again.unchanged) == (2, 0)
    assert [r[0] for r in rows(con)] == ["A-1", "A-1", "A-2"]


def test_one_batch_adds_new_keys_and_replaces_stored_and_deleted_ones(con):
    """New keys get a plain insert into raw.current, keys with a row (a tombstone's
    too) an upsert; both in one batch, from a store that loaded what another wrote."""
    first = RawStore(con, "jira", "run-1")
    first.commit(Batch(objects=[RawObject("issue", k, {"v": 1}) for k in ("A-1", "A-2")]))
    first.tombstone_missing("issue", {"A-1"})
    first.commit(Batch(watermarks={("issue", "*"): t(5)}))
    store = RawStore(con, "jira", "run-2")
    counts = store.commit(
        Batch(
            objects=[
                RawObject("issue", "A-1", {"v": 2}),  # changed
                RawObject("issue", "A-2", {"v": 1}),  # tombstoned, back
                RawObject("issue", "A-3", {"v": 1}),  # new
            ],
            watermarks={("issue", "*"): t(7), ("issue", "P"): t(6)},
        )
    )
    assert (counts.stored, counts.unchanged) == (3, 0)
    assert con.execute(
        "SELECT object_key, deleted, payload->>'$.v' FROM raw.latest ORDER BY object_key"
    ).fetchall() == [("A-1", False, "2"), ("A-2", False, "1"), ("A-3", False, "1")]
    assert con.execute("SELECT count(*) FROM raw.current").fetchone()[0] == 3
    store.commit(Batch(watermarks={("issue", "*"): t(6)}))  # an update never goes back
    assert (store.watermark("issue"), store.watermark("issue", "P")) == (t(7), t(6))


def views(con) -> set[str]:
    return {n for (n,) in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE schema_name = 'raw'").fetchall()}  # fmt: skip


def test_the_raw_schema_runs_again_only_for_another_version_of_its_text(con):
    """Each build and store ensures the schema; the file runs once per version of its
    text. A database stamped by another version (or by none) gets it run again."""
    ensure_raw_schema(con)
    assert {"latest", "live_listings", "gitlab_projects"} <= views(con)
    con.execute("DROP VIEW raw.live_listings")
    ensure_raw_schema(con)  # the same text: not run again
    assert "live_listings" not in views(con)
    con.execute("UPDATE raw.schema_applied SET digest = 'an older version'")
    ensure_raw_schema(con)
    assert "live_listings" in views(con)
    con.execute("DROP TABLE raw.schema_applied")  # a database from before the stamp
    con.execute("DROP VIEW raw.live_listings")
    ensure_raw_schema(con)
    assert "live_listings" in views(con)
    assert con.execute("SELECT count(*) FROM raw.schema_applied").fetchall() == [(1,)]


def payload_compression(con, table: str) -> set[str]:
    return text_compressions(con, f"raw.{table}", "payload")


def large_issue(n: int) -> dict:
    """A payload the size of a Jira issue with its changelog (about 10 kB)."""
    return {"key": f"A-{n}", "changelog": [{"id": i, "body": f"text {n} {i} " * 40}
                                           for i in range(20)]}  # fmt: skip


def test_payloads_are_stored_with_zstd(con):
    store = RawStore(con, "jira", "run-1")
    store.commit(Batch(objects=[RawObject("issue", f"A-{n}", large_issue(n)) for n in range(300)]))
    store.commit(Batch(quarantined=[Quarantined("issue", "A-x", "bad", large_issue(-1))]))
    assert payload_compression(con, "objects") == {"ZSTD"}
    assert payload_compression(con, "quarantine") == {"ZSTD"}


def test_a_database_from_before_zstd_payloads_is_converted_once_losing_nothing(tmp_path):
    """A raw table created before payloads were ZSTD is rewritten on the next schema
    run: same rows in the same order, same key and defaults, ZSTD from then on."""
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    ensure_raw_schema(con)
    store = RawStore(con, "jira", "run-1")
    store.commit(Batch(objects=[RawObject("issue", f"A-{n}", large_issue(n)) for n in range(300)]))
    store.commit(Batch(objects=[RawObject("issue", "A-1", {"key": "A-1", "v": 2})]))
    store.commit(Batch(quarantined=[Quarantined("issue", "A-x", "bad", {"x": 1})]))
    # The same tables as an older version created them: payload JSON, compression left
    # to DuckDB (DICT_FSST for these texts).
    for table in ("objects", "quarantine"):
        ddl = con.execute(
            "SELECT sql FROM duckdb_tables() WHERE schema_name = 'raw' AND table_name = ?",
            [table],
        ).fetchone()[0]
        con.execute(f"ALTER TABLE raw.{table} RENAME TO {table}_x")
        con.execute(ddl.replace(" USING COMPRESSION ZSTD", ""))
        con.execute(f"INSERT INTO raw.{table} SELECT * FROM raw.{table}_x")  # noqa: S608
        con.execute(f"DROP TABLE raw.{table}_x")
    assert payload_compression(con, "objects") == {"DICT_FSST"}
    before = {
        t: con.execute(f"SELECT * FROM raw.{t}").fetchall()  # noqa: S608
        for t in ("objects", "quarantine")
    }
    con.execute("UPDATE raw.schema_applied SET digest = 'an older version'")

    ensure_raw_schema(con)

    for table, rows_before in before.items():
        rows_after = con.execute(f"SELECT * FROM raw.{table}").fetchall()  # noqa: S608
        assert rows_after == rows_before  # in the same order too
    assert payload_compression(con, "objects") == {"ZSTD"}
    assert {t for (t,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw'").fetchall()
    } >= {"objects", "quarantine", "current"}  # fmt: skip
    with pytest.raises(duckdb.ConstraintException):  # the primary key came along
        con.execute("INSERT INTO raw.objects SELECT * FROM raw.objects LIMIT 1")
    stored = RawStore(con, "jira", "run-2").commit(
        Batch(objects=[RawObject("issue", "A-2", {"key": "A-2", "v": 3})])
    )
    assert stored.stored == 1  # the raw_id default (the sequence) came along
    assert con.execute(
        "SELECT max(raw_id) = (SELECT raw_id FROM raw.current WHERE object_key = 'A-2') "
        "FROM raw.objects"
    ).fetchone() == (True,)
    assert con.execute("SELECT payload->>'$.v' FROM raw.latest WHERE object_key = 'A-1'"
                       ).fetchone() == ("2",)  # fmt: skip
    digest = con.execute("SELECT digest FROM raw.schema_applied").fetchone()
    ensure_raw_schema(con)  # converted once: nothing left to rewrite
    assert con.execute("SELECT digest FROM raw.schema_applied").fetchone() == digest


def python_json(payload) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize(
    "payload",
    [
        {"b": 1, "a": [{"z": 1, "é": 2, "e": 3, "Z": 4}], "ü": None, "t": True},
        {"small": [1e-05, 1.5e-07, -3e-300, 9.99e-05, 0.0001, 5e-324]},
        {"large": [1e16, 1e22, 1.7976931348623157e308, 1000000000000000.0, -0.0, 0.1]},
        {"int": [2**63, -(2**63), 2**70, -(2**64), 0]},
        {"text": '\x00\x1f\x7f\u2028 é "\\ \b\f\n\r\t 1e-5 0.00001 日本'},
        {"surrogate": "\ud800"},
        [],
        "",
    ],
    ids=["keys", "small-floats", "large-floats", "big-ints", "text", "surrogate", "list", "str"],
)
def test_canonical_json_is_what_json_dumps_writes(payload):
    """Digests of objects stored before stay the same: the fast writer's text is the one
    json.dumps writes, including where it would differ (floats below 1e-4, integers
    beyond 64 bits, lone surrogates), which then take json.dumps."""
    assert canonical_json(payload) == python_json(payload)


def test_canonical_json_of_every_real_payload_is_what_json_dumps_writes(real_fixtures):
    paths = sorted(real_fixtures.rglob("*.json"))
    assert paths
    for path in paths:
        payload = json.loads(path.read_text(encoding="utf-8"))
        assert canonical_json(payload) == python_json(payload), path
