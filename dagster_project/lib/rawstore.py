"""The append-only raw layer: batches of API objects committed with their watermarks.

A batch is one transaction: its objects (only those whose content changed), the
tombstones of the children its objects no longer have, its quarantined records, the
listings it completes and the watermarks it covers commit together or not at all. A run
killed between batches therefore resumes from the last committed watermark, and what
the overlap window re-delivers is recognised by its content hash and not stored twice.

Whether an object changed is a look-up in memory, not a query: a store loads the key and
content hash of its source's current objects of a type once, the first time it writes
that type (``CurrentDigests``, compact), and keeps them in step with what it commits. A
``RawStore`` is therefore the only writer of its source's rows while it lives (one store
per staging file and fetch).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from dagster_project.lib.current_digests import CurrentDigests
from dagster_project.lib.sql import run_sql, sql_text, transaction

# Keys that change on every read without the object changing.
VOLATILE_KEYS = {"lastViewed"}


# How a volatile key reads in canonical JSON: a payload whose text lacks all of them has
# none, and hashes as its text.
_VOLATILE_MARKERS = tuple(json.dumps(k, ensure_ascii=False) for k in sorted(VOLATILE_KEYS))


# Where orjson's text may differ from json.dumps's: Python writes a float below 1e-4 in
# exponent form (1e-05), orjson in fixed form (0.00001) down to 1e-7 and then as 1e-7.
# Searched from the literal "e-" (a character-class regex would cost more than the dump);
# a string holding such text only costs the slower path.
_ORJSON_EXPONENT = re.compile(r"e-(?<=[0-9]e-)[0-9]")


def _orjson_may_differ(text: str) -> bool:
    return "0.0000" in text or _ORJSON_EXPONENT.search(text) is not None


def canonical_json(payload: Any) -> str:
    """Keys sorted, no spaces, non-ASCII as is: the text a payload's digest is taken of.

    Written by orjson and, where its text could differ (a float below 1e-4, an
    integer beyond 64 bits, a lone surrogate), by json.dumps, so the digests of objects
    stored before stay the same. NaN and infinities, which JSON cannot carry (DuckDB's
    JSON type refuses them), come out as null.
    """
    try:
        text = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = None
    if text is None or _orjson_may_differ(text):
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _digest(text: str, payload: Any) -> bytes:
    """sha256 of the canonical JSON of ``payload`` without volatile keys, given its
    canonical JSON ``text``: dumped again only when a volatile key may occur in it."""
    if any(marker in text for marker in _VOLATILE_MARKERS):
        text = canonical_json(_strip(payload))
    return hashlib.sha256(text.encode("utf-8")).digest()


def content_hash(payload: Any) -> str:
    """sha256 (hex) of the canonical JSON of ``payload`` without its volatile keys."""
    return _digest(canonical_json(payload), payload).hex()


@dataclass
class RawObject:
    object_type: str
    object_key: str
    payload: Any
    parent_key: str | None = None
    # Small values derived from the payload, kept beside it (raw.parts) and read back by
    # ``kept_parts`` without reading the payload (a changelog's remote-link items).
    parts: dict[str, Any] | None = None


@dataclass
class Quarantined:
    object_type: str
    object_key: str | None
    reason: str
    payload: Any


@dataclass
class Children:
    """The stored objects of ``object_type`` under ``parent_key`` other than ``present``
    are gone: they become tombstones (before the batch's objects are written).
    ``stored``: the keys stored under the parent, when the caller read them before
    listing it and wrote none but ``present`` since: the store does not look them up."""

    object_type: str
    parent_key: str
    present: set[str]
    stored: set[str] | None = None


@dataclass
class ListingRecord:
    """What a listing found (see ``RawStore.record_listing``)."""

    object_type: str
    listed: int
    reported: int | None
    full: bool
    scope: str = "*"
    # When the listing was recorded, not when its batch commits: listings committed
    # together (lib/pipelined_store.py) keep their order, which "latest" is read by.
    listed_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Batch:
    """What one transaction commits."""

    objects: list[RawObject] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    # (object_type, scope) -> new watermark
    watermarks: dict[tuple[str, str], datetime] = field(default_factory=dict)
    gone: list[Children] = field(default_factory=list)
    listings: list[ListingRecord] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.objects or self.quarantined or self.watermarks or self.gone or self.listings
        )


@dataclass
class WriteCounts:
    stored: int = 0  # new or changed objects written
    unchanged: int = 0
    quarantined: int = 0
    tombstoned: int = 0

    def add(self, other: WriteCounts) -> None:
        self.stored += other.stored
        self.unchanged += other.unchanged
        self.quarantined += other.quarantined
        self.tombstoned += other.tombstoned


_OBJECT_SCHEMA = pa.schema(
    [
        ("object_type", pa.string()),
        ("object_key", pa.string()),
        ("parent_key", pa.string()),
        ("content_hash", pa.string()),
        ("payload", pa.string()),
        ("parts", pa.string()),
        ("replaces", pa.bool_()),  # the key has a current row (see _add_current)
    ]
)
_GONE_SCHEMA = pa.schema(
    [("object_type", pa.string()), ("object_key", pa.string()), ("parent_key", pa.string())]
)


class RawStore:
    """Writes one source's objects into ``raw.objects`` for one run."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        run_id: str,
        fetched_at: datetime | None = None,
        views: Path | None = None,
    ):
        """``views``: a folder where the store's views of ``raw.current`` are saved by
        ``save_views`` and loaded from while they still hold (lib/current_digests.py)."""
        self.con = con
        self.views = views
        self.source = source
        self.run_id = run_id
        self.fetched_at = fetched_at or datetime.now(UTC)
        self.counts = WriteCounts()
        self._hashes: dict[str, CurrentDigests] = {}  # see _current
        self._saved_marks: dict[str, str] = {}  # type -> the mark of its view on disk
        self._parent_keys: dict[str, set[str]] = {}  # see _parents
        self._marks: set[tuple[str, str]] | None = None  # (type, scope) with a watermark
        ensure_raw_schema(con)

    # -- reads ------------------------------------------------------------------------
    def committed(self) -> RawStore:
        """The store as committed: this one, which commits as it is called (see
        ``PipelinedStore.committed``)."""
        return self

    def watermark(self, object_type: str, scope: str = "*") -> datetime | None:
        row = self.con.execute(
            "SELECT watermark FROM raw.watermarks WHERE source = ? AND object_type = ? "
            "AND scope = ?",
            [self.source, object_type, scope],
        ).fetchone()
        return row[0] if row else None

    def holds(self, object_type: str, keys: Iterable[str]) -> set[str]:
        """The keys among ``keys`` with a current, not deleted object."""
        return set(self._held(object_type, keys))

    def stored_parts(self, object_type: str, keys: Iterable[str], path: str) -> dict[str, Any]:
        """The JSON at ``path`` of the latest stored payload of each key (tombstones and
        keys stored without it excluded): a part of an object, without loading it whole.
        Only keys the store holds are looked up: on a first fetch, none."""
        keys = self._held(object_type, keys)
        if not keys:
            return {}
        ids = dict(
            self.con.execute(
                "SELECT raw_id, object_key FROM raw.current WHERE source = ? "
                "AND object_type = ? AND NOT deleted AND object_key IN (SELECT unnest(?))",
                [self.source, object_type, keys],
            ).fetchall()
        )
        rows = self._by_raw_id("json_extract(payload, ?)::VARCHAR", ids, [path])
        return {ids[raw_id]: json.loads(part) for raw_id, part in rows if part is not None}

    def payloads(self, raw_ids: Iterable[int]) -> dict[int, Any]:
        """The stored payloads of these rows, by raw_id."""
        rows = self._by_raw_id("payload", raw_ids)
        return {raw_id: json.loads(payload) for raw_id, payload in rows if payload is not None}

    def _by_raw_id(
        self, value: str, raw_ids: Iterable[int], params: list[Any] | None = None
    ) -> list[tuple[int, Any]]:
        """(raw_id, ``value``) of these raw.objects rows. The ids go as a literal list: a
        look-up in the primary key, where a join would scan every stored payload of the
        store (a gigabyte at 100,000 issues)."""
        listed = ", ".join(str(int(raw_id)) for raw_id in raw_ids)
        if not listed:
            return []
        return self.con.execute(
            f"SELECT raw_id, {value} FROM raw.objects WHERE raw_id IN ({listed})",  # noqa: S608
            params or [],
        ).fetchall()

    def kept_parts(self, object_type: str, keys: Iterable[str], name: str) -> dict[str, Any]:
        """The part ``name`` kept with the current row of each key (``RawObject.parts``);
        keys whose current row was stored without it are left out (ask ``stored_parts``)."""
        sets = self.kept_part_sets(object_type, keys)
        return {key: parts[name] for key, parts in sets.items() if name in parts}

    def kept_part_sets(self, object_type: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """All the parts kept with the current row of each key, in one query; keys whose
        current row was stored without parts are left out (ask ``stored_parts``)."""
        keys = self._held(object_type, keys)
        if not keys:
            return {}
        rows = self.con.execute(
            "SELECT c.object_key, p.parts::VARCHAR FROM raw.current c "
            "JOIN raw.parts p USING (raw_id) WHERE c.source = ? AND c.object_type = ? "
            "AND NOT c.deleted AND c.object_key IN (SELECT unnest(?))",
            [self.source, object_type, keys],
        ).fetchall()
        return {key: json.loads(parts) for key, parts in rows}

    def kept_or_stored_parts(
        self,
        object_type: str,
        keys: Iterable[str],
        name: str,
        path: str,
        derive: Callable[[Any], Any] = lambda value: value,
    ) -> dict[str, Any]:
        """The part ``name`` kept with each key's current row; for a row stored without
        it (by an earlier version), ``derive`` of the JSON at ``path`` of its payload."""
        return self.kept_or_stored_part_sets(object_type, keys, {name: (path, derive)})[name]

    def kept_or_stored_part_sets(
        self,
        object_type: str,
        keys: Iterable[str],
        wanted: dict[str, tuple[str, Callable[[Any], Any]]],
    ) -> dict[str, dict[str, Any]]:
        """``kept_or_stored_parts`` for several parts at once (name -> (path, derive)):
        the kept ones in one query, the payload read only for rows stored without one."""
        keys = list(keys)
        found: dict[str, dict[str, Any]] = {name: {} for name in wanted}
        for key, parts in self.kept_part_sets(object_type, keys).items():
            for name in wanted:
                if name in parts:
                    found[name][key] = parts[name]
        for name, (path, derive) in wanted.items():
            unkept = [key for key in keys if key not in found[name]]
            for key, value in self.stored_parts(object_type, unkept, path).items():
                found[name][key] = derive(value)
        return found

    def keep_missing_part(self, object_type: str, name: str, path: str) -> None:
        """Add ``name`` to the parts of current rows stored without it, from their payload
        (counted first: the payloads are read only when some lack it)."""
        joined = "raw.current c LEFT JOIN raw.parts p ON p.raw_id = c.raw_id"
        lacking = (
            "WHERE c.source = ? AND c.object_type = ? AND NOT c.deleted "
            "AND json_extract(p.parts, ?) IS NULL"
        )
        params = [self.source, object_type, f'$."{name}"']
        count = f"SELECT count(*) FROM {joined} {lacking}"  # noqa: S608
        if not self.con.execute(count, params).fetchone()[0]:
            return
        with transaction(self.con):
            self.con.execute(
                "CREATE OR REPLACE TEMP TABLE part_fill AS "  # noqa: S608
                "SELECT c.raw_id, coalesce(json_extract(o.payload, ?), 'null'::JSON) AS v, "
                "p.raw_id IS NOT NULL AS has_parts "
                f"FROM {joined} JOIN raw.objects o ON o.raw_id = c.raw_id {lacking}",
                [path, *params],
            )
            self.con.execute(
                "UPDATE raw.parts SET parts = json_merge_patch(parts, json_object(?, f.v)) "
                "FROM part_fill f WHERE raw.parts.raw_id = f.raw_id AND f.has_parts",
                [name],
            )
            self.con.execute(
                "INSERT INTO raw.parts SELECT raw_id, json_object(?, v) FROM part_fill "
                "WHERE NOT has_parts",
                [name],
            )
            self.con.execute("DROP TABLE part_fill")

    def stored_keys(self, object_type: str, parent_key: str | None = None) -> set[str]:
        sql = (
            "SELECT object_key FROM raw.latest WHERE source = ? AND object_type = ? AND NOT deleted"
        )
        params: list[Any] = [self.source, object_type]
        if parent_key is not None:
            sql += " AND parent_key = ?"
            params.append(parent_key)
        return {row[0] for row in self.con.execute(sql, params).fetchall()}

    def stored_children(self, object_type: str, parents: Iterable[str]) -> dict[str, set[str]]:
        """The keys of the current, not deleted objects of a type under each of
        ``parents`` (those with none are left out)."""
        parents = list(parents)
        if not parents:
            return {}
        found: dict[str, set[str]] = {}
        for parent, key in self.con.execute(
            "SELECT parent_key, object_key FROM raw.latest WHERE source = ? "
            "AND object_type = ? AND NOT deleted AND parent_key IN (SELECT unnest(?))",
            [self.source, object_type, parents],
        ).fetchall():
            found.setdefault(parent, set()).add(key)
        return found

    def latest_payloads(self, object_type: str) -> Iterator[tuple[str, Any]]:
        cursor = self.con.execute(
            "SELECT object_key, payload FROM raw.latest WHERE source = ? AND object_type = ? "
            "AND NOT deleted ORDER BY object_key",
            [self.source, object_type],
        )
        while rows := cursor.fetchmany(1000):
            for key, payload in rows:
                yield key, json.loads(payload)

    # -- the store's view of raw.current ----------------------------------------------
    def _current(self, object_type: str) -> CurrentDigests:
        """Key -> content digest of the current rows of a type (``TOMBSTONE`` for a
        deleted object's), loaded once and kept in step with every commit."""
        current = self._hashes.get(object_type)
        if current is None:
            saved = None
            if self.views is not None:
                mark = CurrentDigests.mark(self.con, self.source, object_type)
                saved = CurrentDigests.load(self._view_path(object_type), mark)
                if saved is not None:
                    self._saved_marks[object_type] = mark
            current = self._hashes[object_type] = saved or CurrentDigests.read(
                self.con, self.source, object_type
            )
        return current

    def save_views(self) -> None:
        """Save the views this store loaded, for the next store on the same file; a view
        loaded from its file and unchanged since (a quiet night) is not written again."""
        if self.views is None:
            return
        for object_type, current in self._hashes.items():
            mark = CurrentDigests.mark(self.con, self.source, object_type)
            if self._saved_marks.get(object_type) != mark:
                current.save(self._view_path(object_type), mark)
                self._saved_marks[object_type] = mark

    def _view_path(self, object_type: str) -> Path:
        assert self.views is not None
        return self.views / f"{self.source}.{object_type}.npz"

    def _held(self, object_type: str, keys: Iterable[str]) -> list[str]:
        keys = list(keys)
        held = self._current(object_type).contains(keys)
        return [key for key, is_held in zip(keys, held, strict=True) if is_held]

    def _parents(self, object_type: str) -> set[str]:
        """Parent keys under which current objects of a type may be stored: a superset
        (a parent whose children are all tombstoned stays), so one not in it has none."""
        parents = self._parent_keys.get(object_type)
        if parents is None:
            rows = self.con.execute(
                "SELECT DISTINCT parent_key FROM raw.latest WHERE source = ? "
                "AND object_type = ? AND NOT deleted AND parent_key IS NOT NULL",
                [self.source, object_type],
            ).fetchall()
            parents = self._parent_keys[object_type] = {row[0] for row in rows}
        return parents

    def _apply(self, written: list[tuple[str, str, str | None, bytes | None]]) -> None:
        """After a commit: (object_type, key, parent_key, digest; None for a tombstone)."""
        for object_type, key, parent_key, digest in written:
            current = self._hashes.get(object_type)
            if current is not None:
                current.set(key, digest)
            parents = self._parent_keys.get(object_type)
            if parents is not None and parent_key is not None and digest is not None:
                parents.add(parent_key)

    def _forget(self) -> None:
        """After a rollback: what was loaded inside the transaction may not hold."""
        self._hashes.clear()
        self._parent_keys.clear()
        self._marks = None

    # -- writes -----------------------------------------------------------------------
    def commit(self, batch: Batch) -> WriteCounts:
        """Write a batch in one transaction; returns what it changed."""
        counts = WriteCounts()
        if not batch:
            return counts
        written: list[tuple[str, str, str | None, bytes | None]] = []
        self.con.execute("BEGIN TRANSACTION")
        try:
            if batch.gone:
                counts.tombstoned = self._tombstone(self._gone_children(batch.gone), written)
            if batch.objects:
                counts.stored, counts.unchanged = self._insert_objects(batch.objects, written)
            for q in batch.quarantined:
                self.con.execute(
                    "INSERT INTO raw.quarantine (source, object_type, object_key, reason, "
                    "payload, fetched_at, run_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        self.source,
                        q.object_type,
                        q.object_key,
                        q.reason,
                        canonical_json(q.payload),
                        self.fetched_at,
                        self.run_id,
                    ],
                )
            counts.quarantined = len(batch.quarantined)
            for (object_type, scope), mark in batch.watermarks.items():
                self._set_watermark(object_type, scope, mark)
            if batch.listings:
                self._insert_listings(batch.listings)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            self._forget()
            raise
        self._apply(written)
        self.counts.add(counts)
        return counts

    def _insert_objects(
        self, objects: list[RawObject], written: list[tuple[str, str, str | None, bytes | None]]
    ) -> tuple[int, int]:
        # Last occurrence wins when a batch carries the same object twice.
        unique = {(o.object_type, o.object_key): o for o in objects}
        texts = [canonical_json(o.payload) for o in unique.values()]
        digests = [_digest(text, o.payload) for o, text in zip(unique.values(), texts, strict=True)]
        unchanged, replaces = self._compared(list(unique.values()), digests)
        changed: list[dict[str, Any]] = []
        for o, text, digest, same, replacing in zip(
            unique.values(), texts, digests, unchanged, replaces, strict=True
        ):
            if same:
                continue
            changed.append(
                {
                    "replaces": replacing,
                    "object_type": o.object_type,
                    "object_key": o.object_key,
                    "parent_key": o.parent_key,
                    "content_hash": digest.hex(),
                    "payload": text,
                    "parts": None if o.parts is None else canonical_json(o.parts),
                }
            )
            written.append((o.object_type, o.object_key, o.parent_key, digest))
        if changed:
            self.con.register("staged_raw", pa.Table.from_pylist(changed, schema=_OBJECT_SCHEMA))
            try:
                self.con.execute(
                    "CREATE OR REPLACE TEMP TABLE changed_raw AS "
                    "SELECT nextval('raw.raw_id_seq') AS raw_id, s.* FROM staged_raw s"
                )
            finally:
                self.con.unregister("staged_raw")
            self.con.execute(
                """
                INSERT INTO raw.objects (raw_id, source, object_type, object_key, parent_key,
                                         content_hash, payload, deleted, fetched_at, run_id)
                SELECT raw_id, ?, object_type, object_key, parent_key, content_hash,
                       payload::JSON, false, ?, ?
                FROM changed_raw
                """,
                [self.source, self.fetched_at, self.run_id],
            )
            replacing = {row["replaces"] for row in changed}
            if any(row["parts"] is not None for row in changed):
                self._keep_parts(replacing=True in replacing)
            if False in replacing:
                self._add_current("changed_raw")
            if True in replacing:
                self._point_current("changed_raw", deleted=False, where="replaces")
            self.con.execute("DROP TABLE changed_raw")
        return len(changed), len(unique) - len(changed)

    def _compared(
        self, objects: list[RawObject], digests: list[bytes]
    ) -> tuple[list[bool], list[bool]]:
        """Whether each object is stored with that digest, and whether its key has a
        current row to replace (a tombstone's included): one look-up per object type."""
        at: dict[str, list[int]] = {}
        for i, o in enumerate(objects):
            at.setdefault(o.object_type, []).append(i)
        unchanged = [False] * len(objects)
        replaces = [False] * len(objects)
        for object_type, rows in at.items():
            current = self._current(object_type)
            keys = [objects[i].object_key for i in rows]
            held, have_rows = current.compare(keys, [digests[i] for i in rows])
            for i, same, has_row in zip(rows, held, have_rows, strict=True):
                unchanged[i] = same
                replaces[i] = has_row
        return unchanged, replaces

    def _keep_parts(self, *, replacing: bool) -> None:
        """Parts of the rows in ``changed_raw``; the parts of the rows they replace go
        (only keys stored before have any: a first fetch skips the join with
        ``raw.current``)."""
        if replacing:
            self.con.execute(
                "DELETE FROM raw.parts WHERE raw_id IN (SELECT c.raw_id FROM raw.current c "
                "JOIN changed_raw n USING (object_type, object_key) "
                "WHERE c.source = ? AND n.replaces)",
                [self.source],
            )
        self.con.execute(
            "INSERT INTO raw.parts SELECT raw_id, parts::JSON FROM changed_raw "
            "WHERE parts IS NOT NULL"
        )

    def _add_current(self, table: str) -> None:
        """``raw.current`` rows for the keys of ``table`` that have none: a plain insert
        (DuckDB's upsert costs three times as much, and a first fetch has only these)."""
        self.con.execute(
            f"INSERT INTO raw.current SELECT ?, object_type, object_key, raw_id, "  # noqa: S608
            f"content_hash, false FROM {table} WHERE NOT replaces",
            [self.source],
        )

    def _point_current(self, table: str, *, deleted: bool, where: str = "true") -> None:
        self.con.execute(
            f"""
            INSERT INTO raw.current
            SELECT ?, object_type, object_key, raw_id, content_hash, ? FROM {table}
            WHERE {where}
            ON CONFLICT (source, object_type, object_key) DO UPDATE
            SET raw_id = excluded.raw_id, content_hash = excluded.content_hash,
                deleted = excluded.deleted
            """,  # noqa: S608 - table is one of this module's temp tables, not input
            [self.source, deleted],
        )

    def _set_watermark(self, object_type: str, scope: str, mark: datetime) -> None:
        """Advance a watermark (never back): an update where it exists, else an insert,
        instead of an upsert, which DuckDB makes costly even on a small table."""
        if self._marks is None:
            rows = self.con.execute(
                "SELECT object_type, scope FROM raw.watermarks WHERE source = ?", [self.source]
            ).fetchall()
            self._marks = set(rows)
        if (object_type, scope) in self._marks:
            self.con.execute(
                "UPDATE raw.watermarks SET watermark = greatest(watermark, ?), updated_at = ? "
                "WHERE source = ? AND object_type = ? AND scope = ?",
                [mark, self.fetched_at, self.source, object_type, scope],
            )
        else:
            self.con.execute(
                "INSERT INTO raw.watermarks VALUES (?, ?, ?, ?, ?)",
                [self.source, object_type, scope, mark, self.fetched_at],
            )
            self._marks.add((object_type, scope))

    def record_listing(
        self,
        object_type: str,
        *,
        listed: int,
        reported: int | None,
        full: bool,
        scope: str = "*",
    ) -> None:
        """Record what a listing found, on its own (``Batch.listings``: with a batch)."""
        self._insert_listings([ListingRecord(object_type, listed, reported, full, scope)])

    def _insert_listings(self, listings: list[ListingRecord]) -> None:
        # Lists unnested side by side, in order: one statement for the whole batch.
        self.con.execute(
            "INSERT INTO raw.listings (run_id, source, object_type, scope, full_listing, "
            "reported, listed, listed_at) SELECT ?, ?, unnest(?::VARCHAR[]), "
            "unnest(?::VARCHAR[]), unnest(?::BOOLEAN[]), unnest(?::BIGINT[]), "
            "unnest(?::BIGINT[]), unnest(?::TIMESTAMPTZ[])",
            [
                self.run_id,
                self.source,
                [r.object_type for r in listings],
                [r.scope for r in listings],
                [r.full for r in listings],
                [r.reported for r in listings],
                [r.listed for r in listings],
                [r.listed_at for r in listings],
            ],
        )

    def tombstone_missing(
        self,
        object_type: str,
        present: set[str],
        *,
        parent_key: str | None = None,
        watermark: tuple[str, str, datetime] | None = None,
    ) -> int:
        """Mark stored objects the source no longer lists as deleted; returns how many."""
        if parent_key is not None:
            gone = self._gone_children([Children(object_type, parent_key, present)])
        else:
            gone = [(object_type, k, None) for k in sorted(self.stored_keys(object_type) - present)]
        written: list[tuple[str, str, str | None, bytes | None]] = []
        self.con.execute("BEGIN TRANSACTION")
        try:
            self._tombstone(gone, written)
            if watermark:
                self._set_watermark(*watermark)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            self._forget()
            raise
        self._apply(written)
        self.counts.tombstoned += len(gone)
        return len(gone)

    def _gone_children(self, specs: list[Children]) -> list[tuple[str, str, str | None]]:
        """(object_type, key, parent_key) of the stored children each spec no longer
        lists, in the specs' order, keys sorted within each; one query per object type,
        none for parents under which nothing is stored or whose keys the spec holds."""
        asked: dict[str, list[str]] = {}
        for spec in specs:
            if spec.stored is None and spec.parent_key in self._parents(spec.object_type):
                asked.setdefault(spec.object_type, []).append(spec.parent_key)
        stored: dict[tuple[str, str], set[str]] = {
            (spec.object_type, spec.parent_key): set(spec.stored)
            for spec in specs
            if spec.stored is not None
        }
        for object_type, parents in asked.items():
            rows = self.con.execute(
                "SELECT parent_key, object_key FROM raw.latest WHERE source = ? "
                "AND object_type = ? AND NOT deleted AND parent_key IN (SELECT unnest(?))",
                [self.source, object_type, sorted(set(parents))],
            ).fetchall()
            for parent, key in rows:
                stored.setdefault((object_type, parent), set()).add(key)
        gone: list[tuple[str, str, str | None]] = []
        for spec in specs:
            held = stored.get((spec.object_type, spec.parent_key), set())
            for key in sorted(held - spec.present):
                held.discard(key)  # a parent named twice: gone once
                gone.append((spec.object_type, key, spec.parent_key))
        return gone

    def _tombstone(
        self,
        gone: list[tuple[str, str, str | None]],
        written: list[tuple[str, str, str | None, bytes | None]],
    ) -> int:
        """Tombstone rows for ``gone`` (object_type, key, parent_key), in that order."""
        if not gone:
            return 0
        rows = pa.Table.from_pylist(
            [{"object_type": t, "object_key": k, "parent_key": p} for t, k, p in gone],
            schema=_GONE_SCHEMA,
        )
        self.con.register("gone_staged", rows)
        try:
            self.con.execute(
                "CREATE OR REPLACE TEMP TABLE gone_raw AS SELECT nextval('raw.raw_id_seq') "
                "AS raw_id, object_type, object_key, parent_key, 'deleted' AS content_hash "
                "FROM gone_staged"
            )
        finally:
            self.con.unregister("gone_staged")
        self.con.execute(
            "INSERT INTO raw.objects (raw_id, source, object_type, object_key, "
            "parent_key, content_hash, payload, deleted, fetched_at, run_id) "
            "SELECT raw_id, ?, object_type, object_key, parent_key, content_hash, NULL, true, "
            "?, ? FROM gone_raw",
            [self.source, self.fetched_at, self.run_id],
        )
        self._point_current("gone_raw", deleted=True)
        self.con.execute("DROP TABLE gone_raw")
        written.extend((t, k, p, None) for t, k, p in gone)
        return len(gone)


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create or update the raw tables, views and macros (sql/raw/schema.sql). Every
    build and store calls this, so a database from an older version gains what it lacks;
    the digest of the text it last ran is kept in ``raw.schema_applied`` and the file
    runs again only when that differs (its views and macros are replaced each time it
    runs: 20 statements, about 8 ms, 45 times a night)."""
    digest = hashlib.sha256(sql_text("raw/schema").encode()).hexdigest()
    try:
        applied = con.execute("SELECT digest FROM raw.schema_applied").fetchall()
    except duckdb.CatalogException:  # a new database, or one from before the digest
        applied = []
    if applied == [(digest,)]:
        return
    run_sql(con, "raw/schema")
    _payloads_in_zstd(con)
    con.execute(
        "CREATE OR REPLACE TABLE raw.schema_applied AS SELECT ?::VARCHAR AS digest", [digest]
    )


# A payload column as DuckDB describes a table it created before payloads were ZSTD.
_PLAIN_PAYLOAD = re.compile(r"\bpayload JSON(?! USING COMPRESSION)")


def _payloads_in_zstd(con: duckdb.DuckDBPyConnection) -> None:
    """Rewrite, once, a raw table whose payload column predates ``USING COMPRESSION
    ZSTD`` (sql/raw/schema.sql says why): DuckDB cannot change a column's compression
    in place. The rows are copied as they are, in their order, under the table's own
    definition (keys, defaults) with only the compression added, in one transaction: a
    run stopped midway leaves the table as it was. 1.5 million rows (100,000 issues)
    take about 8 s."""
    tables = con.execute(
        "SELECT table_name, sql FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = 'raw' AND NOT temporary"
    ).fetchall()
    for table, ddl in tables:
        if not _PLAIN_PAYLOAD.search(ddl):
            continue
        before = f"{table}_before_zstd"
        with transaction(con):
            con.execute(f"ALTER TABLE raw.{table} RENAME TO {before}")
            con.execute(_PLAIN_PAYLOAD.sub("payload JSON USING COMPRESSION ZSTD", ddl))
            # no ORDER BY: the copy keeps insertion order, and sorting the payloads
            # would hold them all in memory at once
            con.execute(f"INSERT INTO raw.{table} SELECT * FROM raw.{before}")  # noqa: S608
            con.execute(f"DROP TABLE raw.{before}")
