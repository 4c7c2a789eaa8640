"""Staging stores: each unit of a source fetches into its own DuckDB file; one writer
loads them all into the main database.

A DuckDB file has one writer at a time, so units fetched in parallel cannot share the
main database. Each unit (``lib/scopes.py``) therefore owns a persistent store beside
it, ``<db folder>/<db stem>.staging/<source>/<unit>.duckdb``, written by the unchanged
``RawStore`` and ``ingest_*`` code: watermarks, content-hash dedupe, listings,
quarantine and tombstones behave per unit exactly as they did for the whole source,
and a unit killed midway resumes from its own last committed page.

:func:`load_units` then copies into the main database, in one transaction per source,
every staging row it has not copied yet (``raw.loads`` holds how far each store is
loaded), so main ends as the one-store ingestion would have left it:

* objects of all units are merged in fetch order (``fetched_at``, unit, the unit's
  ``raw_id``) and given main's own ``raw_id``\\ s in that order; a row is stored only
  when it changes the object's current state in main, as ``RawStore`` decides it
  (new, changed, or deleted while present), so an object several units list (Jira
  fields and statuses, a project both in a listed group and listed itself) is stored
  once per change, whoever fetched it;
* a tombstone from one unit is not copied while another unit of the source still holds
  the object (the union of the units is what the source has in scope);
* once every unit has completed a full listing (its ``reconcile`` watermark), objects
  current in main that no unit holds any more become tombstones: objects of a unit
  dropped from the policy, or deleted while a store was being rebuilt from scratch;
* quarantine and listing rows are appended; a listing of a whole unit (scope ``*``)
  is recorded under the unit's label (``project:PAY``), so per-scope "latest listing"
  queries see each unit, except for listings every unit makes of the same global
  objects (Jira fields and statuses), which keep ``*``; ``raw.live_listings`` keeps
  the listings of the units of the latest load, so a unit dropped from the policy no
  longer counts in completeness.

A store rebuilt from scratch (a new ``store_id``) is loaded again from its first row;
what main already has is recognised by its content hash. A run killed after a fetch and
before the load loses nothing: the next load copies what the store has beyond the mark.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.lib.pipelined_store import PipelinedStore
from dagster_project.lib.rawstore import RawStore, ensure_raw_schema
from dagster_project.lib.scopes import Unit
from dagster_project.lib.sql import transaction

RECONCILE = "reconcile"  # the watermark each source sets when a full listing completed
# Listings every unit makes of the same objects: not per unit.
GLOBAL_LISTINGS = {("jira", "field"), ("jira", "status")}
# Objects copied per statement: each statement sorts its rows, payloads included, so a
# load of a large unit (100,000 issues are a gigabyte of JSON) stays within DuckDB's
# memory limit instead of sorting the whole unit at once.
LOAD_CHUNK = 10_000


# A store commits a batch per listing page. At DuckDB's default threshold (16 MB of
# write-ahead log) a first fetch checkpoints the store every few pages, each time
# rewriting a growing file and its indexes: 150,000 objects in batches of 100 took 23.1 s
# to commit, 13.7 s with 256 MB (one checkpoint at close instead of dozens), the
# store's peak memory the same. The log is replayed if a run is killed.
STORE_CHECKPOINT_THRESHOLD = "256MB"


def staging_dir(database: str | Path) -> Path:
    """``<db folder>/<db stem>.staging``: part of the database, copied and backed up with it."""
    db = Path(database)
    if str(database) == ":memory:" or not db.name:
        raise ValueError("ingestion stages its units beside a database file, not :memory:")
    return db.parent / f"{db.stem}.staging"


def unit_path(database: str | Path, unit: Unit) -> Path:
    return staging_dir(database) / unit.source / f"{unit.name}.duckdb"


@contextmanager
def unit_store(
    database: str | Path,
    unit: Unit,
    run_id: str,
    fetched_at: datetime,
    config: dict[str, Any] | None = None,
) -> Iterator[PipelinedStore]:
    """A ``RawStore`` on the unit's own staging file, created on first use, committing
    on a writer thread (``PipelinedStore``); ``config``: the main database's DuckDB
    settings (memory ceiling, threads, spill folder)."""
    path = unit_path(database, unit)
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {**(config or {}), "checkpoint_threshold": STORE_CHECKPOINT_THRESHOLD}
    with duckdb.connect(str(path), config=settings) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        # The store's identity: a store deleted and fetched again from scratch is another.
        con.execute(
            "CREATE TABLE IF NOT EXISTS raw.store AS SELECT uuid()::VARCHAR AS store_id, "
            "?::VARCHAR AS source, ?::VARCHAR AS unit, now() AS created_at",
            [unit.source, unit.name],
        )
        (store_id,) = con.execute("SELECT store_id FROM raw.store").fetchone()
        # A store fetched again from scratch is another store: its views are not these.
        views = path.with_suffix(".views") / store_id
        for other in path.with_suffix(".views").glob("*"):
            if other != views:
                shutil.rmtree(other, ignore_errors=True)
        store = PipelinedStore(
            RawStore(con, unit.source, run_id, fetched_at=fetched_at, views=views)
        )
        try:
            yield store
            store.save_views()
        finally:
            store.close()


def copy_database(src: str | Path, dst: str | Path) -> Path:
    """Copy a database file with its staging stores (a backup, a test's scratch copy)."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    if Path(f"{src}.wal").exists():
        shutil.copyfile(f"{src}.wal", f"{dst}.wal")
    if staging_dir(src).is_dir():
        shutil.copytree(staging_dir(src), staging_dir(dst), dirs_exist_ok=True)
    return dst


@dataclass
class LoadCounts:
    """What one load copied into the main database."""

    units: int = 0
    stored: int = 0  # object rows (new or changed versions)
    tombstoned: int = 0  # tombstones copied from the units
    swept: int = 0  # tombstones of objects no unit holds any more
    quarantined: int = 0
    listings: int = 0
    per_unit: dict[str, int] = field(default_factory=dict)  # object rows loaded per unit


@dataclass
class _Attached:
    ordinal: int
    unit: Unit
    alias: str
    store_id: str
    marks: tuple[int, int, int]  # loaded raw_id, quarantine seq, listing seq
    tops: tuple[int, int, int]  # the same, as the store stands now
    reconciled: bool


def load_units(
    con: duckdb.DuckDBPyConnection,
    database: str | Path,
    source: str,
    units: list[Unit],
    run_id: str,
    now: datetime | None = None,
) -> LoadCounts:
    """Copy what the units' staging stores hold beyond ``raw.loads`` into ``con`` (the
    main database), in one transaction; see the module docstring for the rules."""
    now = now or datetime.now(UTC)
    ensure_raw_schema(con)
    counts = LoadCounts()
    aliases: list[str] = []
    attached: list[_Attached] = []
    try:
        for ordinal, unit in enumerate(sorted(units, key=lambda u: u.name)):
            path = unit_path(database, unit)
            if not path.exists():
                raise FileNotFoundError(f"{source} unit {unit.label}: no staging store {path}")
            alias = f"staging_{ordinal}"
            quoted = str(path).replace("'", "''")
            con.execute(f"ATTACH '{quoted}' AS {alias} (READ_ONLY)")
            aliases.append(alias)
            attached.append(_describe(con, source, ordinal, unit, alias))
        with transaction(con):
            _load(con, source, attached, run_id, now, counts)
    finally:
        for alias in aliases:
            con.execute(f"DETACH {alias}")
        for temp in ("staged_load", "units_current", "kept_load", "swept_load", "numbered_load"):
            con.execute(f"DROP TABLE IF EXISTS temp.{temp}")
    return counts


def _describe(
    con: duckdb.DuckDBPyConnection, source: str, ordinal: int, unit: Unit, alias: str
) -> _Attached:
    (store_id,) = con.execute(f"SELECT store_id FROM {alias}.raw.store").fetchone()  # noqa: S608
    row = con.execute(
        "SELECT store_id, loaded_raw_id, loaded_quarantine, loaded_listings FROM raw.loads "
        "WHERE source = ? AND unit = ?",
        [source, unit.name],
    ).fetchone()
    # A store rebuilt from scratch restarts its numbering: load it again from the start.
    marks = (row[1], row[2], row[3]) if row and row[0] == store_id else (0, 0, 0)
    tops = con.execute(
        f"""
        SELECT (SELECT coalesce(max(raw_id), 0) FROM {alias}.raw.objects),
               (SELECT coalesce(max(seq), 0) FROM {alias}.raw.quarantine),
               (SELECT coalesce(max(seq), 0) FROM {alias}.raw.listings),
               (SELECT count(*) > 0 FROM {alias}.raw.watermarks
                WHERE object_type = '{RECONCILE}' AND scope = '*')
        """  # noqa: S608 - alias is this module's own name
    ).fetchone()
    return _Attached(ordinal, unit, alias, store_id, marks, tuple(tops[:3]), bool(tops[3]))


def _load(
    con: duckdb.DuckDBPyConnection,
    source: str,
    attached: list[_Attached],
    run_id: str,
    now: datetime,
    counts: LoadCounts,
) -> None:
    # 1. Keys and hashes of every staging row beyond its store's mark, and the objects
    #    each store holds now (for tombstones: the union of the units is the source).
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE staged_load (
            unit_ord INTEGER, unit_raw_id BIGINT, object_type VARCHAR, object_key VARCHAR,
            content_hash VARCHAR, deleted BOOLEAN, fetched_at TIMESTAMPTZ)
        """
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE units_current "
        "(unit_ord INTEGER, object_type VARCHAR, object_key VARCHAR)"
    )
    for a in attached:
        con.execute(
            f"""
            INSERT INTO staged_load
            SELECT ?, raw_id, object_type, object_key, content_hash, deleted, fetched_at
            FROM {a.alias}.raw.objects WHERE raw_id > ? AND raw_id <= ?
            """,  # noqa: S608 - alias is this module's own name
            [a.ordinal, a.marks[0], a.tops[0]],
        )
    # What the units hold: every object when they sweep (3.), else only the objects
    # staged as tombstones, the ones step 2 asks about. Copying every key each night
    # grew with the organisation: 0.4 s of a quiet night for GitLab's 1.1 million.
    sweep = bool(attached) and all(a.reconciled for a in attached)
    asked = (
        ""
        if sweep
        else "SEMI JOIN (FROM staged_load WHERE deleted) s USING (object_type, object_key)"
    )
    for a in attached:
        con.execute(
            f"""
            INSERT INTO units_current
            SELECT ?, c.object_type, c.object_key FROM {a.alias}.raw.current c {asked}
            WHERE c.source = ? AND NOT c.deleted
            """,  # noqa: S608 - alias and join are this module's own text
            [a.ordinal, source],
        )

    # 2. What changes main's state, decided as RawStore decides it, over main's current
    #    row followed by the staged rows in fetch order: a present object whose hash
    #    differs from the state before it, a tombstone of an object present before it.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE kept_load AS
        WITH candidates AS (
            SELECT s.* FROM staged_load s
            WHERE NOT (s.deleted AND EXISTS (
                SELECT 1 FROM units_current u
                WHERE u.object_type = s.object_type AND u.object_key = s.object_key
                  AND u.unit_ord <> s.unit_ord))
        ),
        history AS (
            SELECT 0 AS phase, NULL::TIMESTAMPTZ AS fetched_at, NULL::INTEGER AS unit_ord,
                   NULL::BIGINT AS unit_raw_id, c.object_type, c.object_key,
                   CASE WHEN c.deleted THEN NULL ELSE c.content_hash END AS state
            FROM raw.current c
            WHERE c.source = ? AND EXISTS (
                SELECT 1 FROM candidates s
                WHERE s.object_type = c.object_type AND s.object_key = c.object_key)
            UNION ALL
            SELECT 1, fetched_at, unit_ord, unit_raw_id, object_type, object_key,
                   CASE WHEN deleted THEN NULL ELSE content_hash END
            FROM candidates
        ),
        stepped AS (
            SELECT *, lag(state) OVER (
                PARTITION BY object_type, object_key
                ORDER BY phase, fetched_at, unit_ord, unit_raw_id) AS before
            FROM history
        )
        SELECT unit_ord, unit_raw_id, object_type, object_key, fetched_at
        FROM stepped
        WHERE phase = 1 AND state IS DISTINCT FROM before
        """,
        [source],
    )

    # 3. Objects no unit holds any more, once every unit has listed its scope in full:
    #    found on the keys first, and only those looked up in raw.objects for their parent
    #    (joining every current row to raw.objects first took twice as long: 0.3 s for
    #    GitLab's 1.1 million objects at 100,000 issues, every night).
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE swept_load AS
        WITH gone AS MATERIALIZED (
            SELECT c.object_type, c.object_key, c.raw_id
            FROM raw.current c
            WHERE c.source = ? AND NOT c.deleted AND ?
              AND NOT EXISTS (
                  SELECT 1 FROM units_current u
                  WHERE u.object_type = c.object_type AND u.object_key = c.object_key)
              AND NOT EXISTS (
                  SELECT 1 FROM kept_load k
                  WHERE k.object_type = c.object_type AND k.object_key = c.object_key)
        )
        SELECT g.object_type, g.object_key, o.parent_key
        FROM gone g JOIN raw.objects o USING (raw_id)
        """,
        # no unit at all (a source skipped in this run) holds nothing and sweeps nothing
        [source, sweep],
    )

    # 4. Main's raw_ids, in fetch order, drawn from main's sequence.
    kept = con.execute("SELECT count(*) FROM kept_load").fetchone()[0]
    swept = con.execute("SELECT count(*) FROM swept_load").fetchone()[0]
    base = _draw_ids(con, kept + swept)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE numbered_load AS
        SELECT ?::BIGINT + row_number() OVER (ORDER BY fetched_at, unit_ord, unit_raw_id) - 1
                   AS raw_id, unit_ord, unit_raw_id
        FROM kept_load
        """,
        [base],
    )
    for a in attached:
        first, last = con.execute(
            "SELECT min(raw_id), max(raw_id) FROM numbered_load WHERE unit_ord = ?", [a.ordinal]
        ).fetchone()
        for start in range(first or 0, (last or -1) + 1, LOAD_CHUNK):
            con.execute(
                f"""
                INSERT INTO raw.objects (raw_id, source, object_type, object_key, parent_key,
                                         content_hash, payload, deleted, fetched_at, run_id)
                SELECT n.raw_id, ?, o.object_type, o.object_key, o.parent_key, o.content_hash,
                       o.payload, o.deleted, o.fetched_at, o.run_id
                FROM numbered_load n JOIN {a.alias}.raw.objects o ON o.raw_id = n.unit_raw_id
                WHERE n.unit_ord = ? AND n.raw_id >= ? AND n.raw_id < ?
                ORDER BY n.raw_id
                """,  # noqa: S608 - alias is this module's own name
                [source, a.ordinal, start, start + LOAD_CHUNK],
            )
    con.execute(
        """
        INSERT INTO raw.objects (raw_id, source, object_type, object_key, parent_key,
                                 content_hash, payload, deleted, fetched_at, run_id)
        SELECT ?::BIGINT + row_number() OVER (ORDER BY object_type, object_key) - 1,
               ?, object_type, object_key, parent_key, 'deleted', NULL, true, ?, ?
        FROM swept_load
        """,
        [base + kept, source, now, run_id],
    )
    con.execute(
        """
        INSERT INTO raw.current
        SELECT source, object_type, object_key, raw_id, content_hash, deleted
        FROM raw.objects WHERE raw_id >= ? AND raw_id < ?
        QUALIFY row_number() OVER (
            PARTITION BY object_type, object_key ORDER BY raw_id DESC) = 1
        ON CONFLICT (source, object_type, object_key) DO UPDATE
        SET raw_id = excluded.raw_id, content_hash = excluded.content_hash,
            deleted = excluded.deleted
        """,
        [base, base + kept + swept],
    )

    # 5. Quarantine and listings, appended; then how far each store is loaded.
    for a in attached:
        counts.quarantined += con.execute(
            f"""
            INSERT INTO raw.quarantine (source, object_type, object_key, reason, payload,
                                        fetched_at, run_id)
            SELECT source, object_type, object_key, reason, payload, fetched_at, run_id
            FROM {a.alias}.raw.quarantine WHERE seq > ? AND seq <= ? ORDER BY seq
            """,  # noqa: S608
            [a.marks[1], a.tops[1]],
        ).fetchone()[0]
        globals_ = [t for s, t in GLOBAL_LISTINGS if s == source]
        counts.listings += con.execute(
            f"""
            INSERT INTO raw.listings (run_id, source, object_type, scope, full_listing,
                                      reported, listed, listed_at, unit)
            SELECT run_id, source, object_type,
                   CASE WHEN scope = '*' AND NOT list_contains(?, object_type) THEN ?
                        ELSE scope END,
                   full_listing, reported, listed, listed_at, ?
            FROM {a.alias}.raw.listings WHERE seq > ? AND seq <= ? ORDER BY seq
            """,  # noqa: S608
            [globals_, a.unit.label, a.unit.name, a.marks[2], a.tops[2]],
        ).fetchone()[0]
        con.execute(
            """
            INSERT INTO raw.loads VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (source, unit) DO UPDATE
            SET store_id = excluded.store_id, loaded_raw_id = excluded.loaded_raw_id,
                loaded_quarantine = excluded.loaded_quarantine,
                loaded_listings = excluded.loaded_listings,
                loaded_at = excluded.loaded_at, run_id = excluded.run_id
            """,
            [source, a.unit.name, a.store_id, *a.tops, now, run_id],
        )

    per_unit = dict(con.execute("SELECT unit_ord, count(*) FROM kept_load GROUP BY ALL").fetchall())
    counts.units = len(attached)
    counts.per_unit = {a.unit.name: per_unit.get(a.ordinal, 0) for a in attached}
    counts.tombstoned = con.execute(
        "SELECT count(*) FROM kept_load k JOIN staged_load s USING (unit_ord, unit_raw_id) "
        "WHERE s.deleted"
    ).fetchone()[0]
    counts.stored = kept - counts.tombstoned
    counts.swept = swept


def _draw_ids(con: duckdb.DuckDBPyConnection, n: int) -> int:
    """Take ``n`` consecutive values of main's ``raw_id`` sequence; returns the first.

    The load step is main's only writer, so nothing else draws from the sequence meanwhile;
    the check makes sure of it rather than trusting it.
    """
    if n == 0:
        return 0
    first = con.execute("SELECT nextval('raw.raw_id_seq')").fetchone()[0]
    if n > 1:
        last = con.execute(
            "SELECT max(nextval('raw.raw_id_seq')) FROM range(?)", [n - 1]
        ).fetchone()[0]
        if last != first + n - 1:
            raise RuntimeError("raw.raw_id_seq moved while the load drew from it")
    return first
