"""The load step: staging stores of several units copied into the main database so it
holds what one store fed the same fetches would hold, whatever the units share, and
nothing is lost when a run stops between a fetch and its load."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib import staging
from dagster_project.lib.policy import Policy
from dagster_project.lib.rawstore import Batch, Quarantined, RawObject, RawStore
from dagster_project.lib.scopes import Unit
from dagster_project.lib.staging import (
    LoadCounts,
    copy_database,
    load_units,
    staging_dir,
    unit_path,
    unit_store,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PAY = Unit("jira", "project_PAY", "project:PAY", Policy())
WEB = Unit("jira", "project_WEB", "project:WEB", Policy())


def at(run: int) -> datetime:
    return T0 + timedelta(days=run)


def stage(db: Path, unit: Unit, run: int, *steps: Batch | tuple) -> None:
    """One fetch of ``unit`` in run ``run``: batches committed, ("gone", type, keys present)
    tombstoning what is not present, ("listed", type, n) recording a full listing."""
    with unit_store(db, unit, f"run-{run}", at(run)) as store:
        for step in steps:
            apply(store, step)


def apply(store: RawStore, step: Batch | tuple) -> None:
    if isinstance(step, Batch):
        store.commit(step)
    elif step[0] == "gone":
        store.tombstone_missing(step[1], set(step[2]))
    elif step[0] == "listed":
        store.record_listing(step[1], listed=step[2], reported=step[2], full=True)


def load(db: Path, *units: Unit, run: int = 0) -> LoadCounts:
    with duckdb.connect(str(db)) as con:
        return load_units(con, db, units[0].source, list(units), f"load-{run}", now=at(run))


def objs(*items: tuple[str, str, object]) -> Batch:
    return Batch(objects=[RawObject(t, k, p) for t, k, p in items])


def reconciled(run: int) -> Batch:
    return Batch(watermarks={("reconcile", "*"): at(run)})


def rows(db: Path) -> list[tuple]:
    """Every stored row as (type, key, version or None for a tombstone), in raw_id order."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT object_type, object_key, payload->>'$.v' FROM raw.objects ORDER BY raw_id"
        ).fetchall()


def current(db: Path) -> set[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return set(
            con.execute(
                "SELECT object_type, object_key, deleted, payload->>'$.v' FROM raw.latest"
            ).fetchall()
        )


# Per run, what each unit's fetch does: (PAY's steps, WEB's steps).
RUNS: list[tuple[list, list]] = [
    (
        [objs(("issue", "PAY-1", {"v": 1}), ("issue", "PAY-2", {"v": 1}))],
        [objs(("issue", "WEB-1", {"v": 1}))],
    ),
    (  # PAY-2 deleted, WEB-1 edited twice within the run, PAY-1 re-delivered unchanged
        [objs(("issue", "PAY-1", {"v": 1})), ("gone", "issue", ["PAY-1"])],
        [objs(("issue", "WEB-1", {"v": 2})), objs(("issue", "WEB-1", {"v": 3}))],
    ),
    (  # PAY-2 back, WEB-1 back to an earlier content
        [objs(("issue", "PAY-2", {"v": 2}))],
        [objs(("issue", "WEB-1", {"v": 1}), ("issue", "WEB-2", {"v": 1}))],
    ),
]


@pytest.mark.parametrize("chunk", [10_000, 1], ids=["one statement", "a statement per row"])
def test_units_load_to_what_one_store_fed_the_same_fetches_writes(tmp_path, monkeypatch, chunk):
    """Whether a unit's rows are copied in one statement or in many (LOAD_CHUNK bounds
    the memory a statement sorts), main holds the same rows in the same order."""
    monkeypatch.setattr(staging, "LOAD_CHUNK", chunk)
    main, single = tmp_path / "main.duckdb", tmp_path / "single.duckdb"
    for run, fetches in enumerate(RUNS, start=1):
        for unit, steps in zip((PAY, WEB), fetches, strict=True):
            stage(main, unit, run, *steps)
        load(main, PAY, WEB, run=run)
        with duckdb.connect(str(single)) as con:  # the one-store ingestion of before
            store = RawStore(con, "jira", f"run-{run}", fetched_at=at(run))
            for unit, steps in zip((PAY, WEB), fetches, strict=True):
                for step in steps:
                    if step[0] == "gone" if isinstance(step, tuple) else False:
                        # one store tombstones only the unit's keys it no longer lists
                        prefix = unit.label.split(":")[1] + "-"
                        others = {k for k in store.stored_keys("issue") if not k.startswith(prefix)}
                        step = ("gone", step[1], [*step[2], *others])
                    apply(store, step)

    assert sorted(rows(main), key=str) == sorted(rows(single), key=str)
    assert current(main) == current(single)
    assert current(main) == {
        ("issue", "PAY-1", False, "1"),
        ("issue", "PAY-2", False, "2"),
        ("issue", "WEB-1", False, "1"),
        ("issue", "WEB-2", False, "1"),
    }
    with duckdb.connect(str(main), read_only=True) as con:  # main's raw_ids, in fetch order
        order = con.execute("SELECT fetched_at FROM raw.objects ORDER BY raw_id").fetchall()
        assert order == sorted(order)
        assert con.execute("SELECT DISTINCT run_id FROM raw.objects ORDER BY 1").fetchall() == [
            ("run-1",),
            ("run-2",),
            ("run-3",),
        ]


def test_loading_again_copies_nothing(tmp_path):
    db = tmp_path / "main.duckdb"
    stage(db, PAY, 1, *RUNS[0][0], ("listed", "issue", 2))
    first = load(db, PAY, run=1)
    assert (first.stored, first.listings) == (2, 1)
    before = rows(db)
    again = load(db, PAY, run=2)
    assert (again.stored, again.tombstoned, again.quarantined, again.listings) == (0, 0, 0, 0)
    assert rows(db) == before


def test_what_was_fetched_but_never_loaded_is_loaded_by_the_next_load(tmp_path):
    """A run that stops between its fetch and its load (killed, or its load failed)."""
    db = tmp_path / "main.duckdb"
    stage(db, PAY, 1, objs(("issue", "PAY-1", {"v": 1})))
    load(db, PAY, run=1)
    stage(db, PAY, 2, objs(("issue", "PAY-1", {"v": 2}), ("issue", "PAY-2", {"v": 1})))
    stage(db, PAY, 3, objs(("issue", "PAY-1", {"v": 3})), ("gone", "issue", ["PAY-1"]))
    loaded = load(db, PAY, run=3)  # two fetches, one load
    assert (loaded.stored, loaded.tombstoned) == (3, 1)
    assert rows(db) == [
        ("issue", "PAY-1", "1"),
        ("issue", "PAY-1", "2"),
        ("issue", "PAY-2", "1"),
        ("issue", "PAY-1", "3"),
        ("issue", "PAY-2", None),
    ]


def test_an_object_several_units_fetch_is_stored_once_per_change(tmp_path):
    db = tmp_path / "main.duckdb"
    field = ("field", "customfield_1")
    stage(db, PAY, 1, objs((*field, {"v": 1})))
    stage(db, WEB, 1, objs((*field, {"v": 1})))
    load(db, PAY, WEB, run=1)
    stage(db, PAY, 2, objs((*field, {"v": 2})))
    stage(db, WEB, 2, objs((*field, {"v": 1})))  # unchanged in WEB's store: no row there
    load(db, PAY, WEB, run=2)
    stage(db, PAY, 3, objs((*field, {"v": 2})))
    stage(db, WEB, 3, objs((*field, {"v": 2})))  # WEB now sees the change too
    load(db, PAY, WEB, run=3)
    assert rows(db) == [(*field, "1"), (*field, "2")]
    assert current(db) == {(*field, False, "2")}


def test_a_tombstone_waits_until_no_unit_holds_the_object(tmp_path):
    group = Unit("gitlab", "group_payments", "group:payments", Policy())
    project = Unit("gitlab", "project_4101", "project:4101", Policy())
    db = tmp_path / "main.duckdb"
    for unit in (group, project):  # a project listed itself and inside a listed group
        stage(db, unit, 1, objs(("project", "4101", {"v": 1})))
    load(db, group, project, run=1)
    stage(db, group, 2, ("gone", "project", []))  # moved out of the group: still in scope
    assert load(db, group, project, run=2).tombstoned == 0
    assert current(db) == {("project", "4101", False, "1")}
    stage(db, project, 3, ("gone", "project", []))  # deleted
    assert load(db, group, project, run=3).tombstoned == 1
    assert rows(db) == [("project", "4101", "1"), ("project", "4101", None)]


def test_a_store_fetched_again_from_scratch_duplicates_nothing(tmp_path):
    db = tmp_path / "main.duckdb"
    stage(db, PAY, 1, *RUNS[0][0])
    load(db, PAY, run=1)
    shutil.rmtree(staging_dir(db))  # lost, or removed to force a full fetch
    stage(db, PAY, 2, objs(("issue", "PAY-1", {"v": 1})))  # numbered from 1 again
    stage(db, PAY, 3, objs(("issue", "PAY-2", {"v": 1}), ("issue", "PAY-3", {"v": 1})))
    assert load(db, PAY, run=3).stored == 1  # PAY-3; main knew the other two
    assert [key for _, key, _ in rows(db)] == ["PAY-1", "PAY-2", "PAY-3"]


def test_objects_no_unit_holds_become_tombstones_once_every_unit_listed_in_full(tmp_path):
    db = tmp_path / "main.duckdb"
    stage(db, PAY, 1, *RUNS[0][0], reconciled(1))
    stage(db, WEB, 1, *RUNS[0][1], reconciled(1))
    load(db, PAY, WEB, run=1)

    # WEB left the policy: its issues are out of scope once PAY alone has listed in full.
    swept = load(db, PAY, run=2)
    assert swept.swept == 1
    assert ("issue", "WEB-1", True, None) in current(db)

    # PAY's store rebuilt from scratch: nothing is swept before its first full listing.
    shutil.rmtree(staging_dir(db) / "jira")
    stage(db, PAY, 3, objs(("issue", "PAY-1", {"v": 1})))  # PAY-2 not listed (yet)
    assert load(db, PAY, run=3).swept == 0
    assert ("issue", "PAY-2", False, "1") in current(db)
    stage(db, PAY, 4, reconciled(4))  # the listing completed: PAY-2 is gone
    assert load(db, PAY, run=4).swept == 1
    assert ("issue", "PAY-2", True, None) in current(db)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(
            "SELECT run_id, fetched_at FROM raw.latest WHERE object_key = 'PAY-2'"
        ).fetchone() == ("load-4", at(4))


def test_a_load_with_no_unit_sweeps_nothing(tmp_path):
    """A source skipped in a run (no unit fetched) keeps every object it has."""
    db = tmp_path / "main.duckdb"
    stage(db, PAY, 1, *RUNS[0][0], reconciled(1))
    load(db, PAY, run=1)
    before = current(db)
    with duckdb.connect(str(db)) as con:
        assert load_units(con, db, "jira", [], "load-2", now=at(2)).swept == 0
    assert current(db) == before and not any(deleted for _, _, deleted, _ in before)


def test_listings_are_kept_per_unit_and_quarantine_is_appended_once(tmp_path):
    db = tmp_path / "main.duckdb"
    bad = Batch(quarantined=[Quarantined("issue", "PAY-9", "fields.updated: missing", {})])
    for unit in (PAY, WEB):
        stage(db, unit, 1, ("listed", "issue", 1), ("listed", "field", 5))
    stage(db, PAY, 1, bad)
    load(db, PAY, WEB, run=1)
    load(db, PAY, WEB, run=2)
    with duckdb.connect(str(db), read_only=True) as con:
        scopes = con.execute(
            "SELECT object_type, scope, count(*) FROM raw.listings GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        quarantined = con.execute("SELECT object_key, run_id FROM raw.quarantine").fetchall()
    # Each unit's listing of its issues under its label; the fields every unit lists, as '*'.
    assert scopes == [("field", "*", 2), ("issue", "project:PAY", 1), ("issue", "project:WEB", 1)]
    assert quarantined == [("PAY-9", "run-1")]


def test_the_listings_that_count_are_those_of_the_units_loaded_last(tmp_path):
    db = tmp_path / "main.duckdb"
    for unit in (PAY, WEB):
        stage(db, unit, 1, ("listed", "issue", 1), ("listed", "field", 5))
    load(db, PAY, WEB, run=1)
    live = "SELECT DISTINCT scope, unit FROM raw.live_listings ORDER BY ALL"
    assert rows_of(db, live) == [
        ("*", "project_PAY"),
        ("*", "project_WEB"),
        ("project:PAY", "project_PAY"),
        ("project:WEB", "project_WEB"),
    ]
    load(db, PAY, run=2)  # WEB left the policy: its listings no longer describe the source
    assert rows_of(db, live) == [("*", "project_PAY"), ("project:PAY", "project_PAY")]


def rows_of(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_copy_of_the_database_carries_its_staging_stores(tmp_path):
    db = tmp_path / "main.duckdb"
    stage(db, PAY, 1, *RUNS[0][0])
    load(db, PAY, run=1)
    copy = copy_database(db, tmp_path / "copy" / "dg.duckdb")
    assert unit_path(copy, PAY).is_file()
    assert load(copy, PAY, run=2).stored == 0  # the copy's marks match its stores


def test_a_unit_without_a_store_is_an_error_not_a_silent_skip(tmp_path):
    db = tmp_path / "main.duckdb"
    with pytest.raises(FileNotFoundError, match="project:PAY"):
        load(db, PAY)


def test_a_unit_store_keeps_its_views_for_its_next_fetch_and_not_past_a_rebuild(tmp_path):
    """The views a fetch loaded are saved beside the unit's store, under the store's
    identity; a store fetched again from scratch starts without the old ones."""
    db = tmp_path / "driftgate.duckdb"
    stage(db, PAY, 1, objs(("issue", "PAY-1", {"v": 1}), ("issue", "PAY-2", {"v": 1})))
    views = unit_path(db, PAY).with_suffix(".views")
    (first,) = list(views.iterdir())
    assert (first / "jira.issue.npz").is_file()
    stage(db, PAY, 2, objs(("issue", "PAY-1", {"v": 2})))
    with duckdb.connect(str(unit_path(db, PAY)), read_only=True) as con:
        assert con.execute(
            "SELECT count(*) FROM raw.objects WHERE object_key = 'PAY-1'"
        ).fetchone() == (2,)
    unit_path(db, PAY).unlink()  # fetched again from scratch: another store
    stage(db, PAY, 3, objs(("issue", "PAY-1", {"v": 2})))
    (second,) = list(views.iterdir())
    assert second.name != first.name and (second / "jira.issue.npz").is_file()
    with duckdb.connect(str(unit_path(db, PAY)), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.objects").fetchone() == (1,)
