"""The append-only raw layer: batches of API objects committed with their watermarks.

A batch is one transaction: its objects (only those whose content changed), its
quarantined records and the watermarks it covers commit together or not at all. A run
killed between batches therefore resumes from the last committed watermark, and what
the overlap window re-delivers is recognised by its content hash and not stored twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from dagster_project.lib.sql import run_sql

# Keys that change on every read without the object changing.
VOLATILE_KEYS = {"lastViewed"}


def canonical_json(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(payload: Any) -> str:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return hashlib.sha256(canonical_json(strip(payload)).encode("utf-8")).hexdigest()


@dataclass
class RawObject:
    object_type: str
    object_key: str
    payload: Any
    parent_key: str | None = None


@dataclass
class Quarantined:
    object_type: str
    object_key: str | None
    reason: str
    payload: Any


@dataclass
class Batch:
    """What one transaction commits."""

    objects: list[RawObject] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    # (object_type, scope) -> new watermark
    watermarks: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.objects or self.quarantined or self.watermarks)


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
    ]
)


class RawStore:
    """Writes one source's objects into ``raw.objects`` for one run."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        run_id: str,
        fetched_at: datetime | None = None,
    ):
        self.con = con
        self.source = source
        self.run_id = run_id
        self.fetched_at = fetched_at or datetime.now(UTC)
        self.counts = WriteCounts()
        ensure_raw_schema(con)

    # -- reads ------------------------------------------------------------------------
    def watermark(self, object_type: str, scope: str = "*") -> datetime | None:
        row = self.con.execute(
            "SELECT watermark FROM raw.watermarks WHERE source = ? AND object_type = ? "
            "AND scope = ?",
            [self.source, object_type, scope],
        ).fetchone()
        return row[0] if row else None

    def known_hashes(self, object_type: str, keys: Iterable[str]) -> dict[str, str]:
        """Content hash of the latest stored row of each key (tombstones excluded)."""
        keys = list(keys)
        if not keys:
            return {}
        rows = self.con.execute(
            "SELECT object_key, content_hash FROM raw.latest WHERE source = ? "
            "AND object_type = ? AND NOT deleted AND object_key IN (SELECT unnest(?))",
            [self.source, object_type, keys],
        ).fetchall()
        return dict(rows)

    def stored_parts(self, object_type: str, keys: Iterable[str], path: str) -> dict[str, Any]:
        """The JSON at ``path`` of the latest stored payload of each key (tombstones and
        keys stored without it excluded): a part of an object, without loading it whole."""
        keys = list(keys)
        if not keys:
            return {}
        rows = self.con.execute(
            "SELECT object_key, json_extract(payload, ?)::VARCHAR FROM raw.latest "
            "WHERE source = ? AND object_type = ? AND NOT deleted "
            "AND object_key IN (SELECT unnest(?))",
            [path, self.source, object_type, keys],
        ).fetchall()
        return {key: json.loads(part) for key, part in rows if part is not None}

    def stored_keys(self, object_type: str, parent_key: str | None = None) -> set[str]:
        sql = (
            "SELECT object_key FROM raw.latest WHERE source = ? AND object_type = ? AND NOT deleted"
        )
        params: list[Any] = [self.source, object_type]
        if parent_key is not None:
            sql += " AND parent_key = ?"
            params.append(parent_key)
        return {row[0] for row in self.con.execute(sql, params).fetchall()}

    def latest_payloads(self, object_type: str) -> Iterator[tuple[str, Any]]:
        cursor = self.con.execute(
            "SELECT object_key, payload FROM raw.latest WHERE source = ? AND object_type = ? "
            "AND NOT deleted ORDER BY object_key",
            [self.source, object_type],
        )
        while rows := cursor.fetchmany(1000):
            for key, payload in rows:
                yield key, json.loads(payload)

    # -- writes -----------------------------------------------------------------------
    def commit(self, batch: Batch) -> WriteCounts:
        """Write a batch in one transaction; returns what it changed."""
        counts = WriteCounts()
        if not batch:
            return counts
        self.con.execute("BEGIN TRANSACTION")
        try:
            if batch.objects:
                counts.stored, counts.unchanged = self._insert_objects(batch.objects)
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
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.counts.add(counts)
        return counts

    def _insert_objects(self, objects: list[RawObject]) -> tuple[int, int]:
        # Last occurrence wins when a batch carries the same object twice.
        unique = {(o.object_type, o.object_key): o for o in objects}
        rows = list(unique.values())
        staged = pa.Table.from_pylist(
            [
                {
                    "object_type": o.object_type,
                    "object_key": o.object_key,
                    "parent_key": o.parent_key,
                    "content_hash": content_hash(o.payload),
                    "payload": canonical_json(o.payload),
                }
                for o in rows
            ],
            schema=_OBJECT_SCHEMA,
        )
        self.con.register("staged_raw", staged)
        try:
            self.con.execute(
                """
                CREATE OR REPLACE TEMP TABLE changed_raw AS
                SELECT nextval('raw.raw_id_seq') AS raw_id, s.*
                FROM staged_raw s
                LEFT JOIN raw.current c
                  ON c.source = ? AND c.object_type = s.object_type
                 AND c.object_key = s.object_key
                WHERE c.object_key IS NULL OR c.deleted OR c.content_hash <> s.content_hash
                """,
                [self.source],
            )
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
            self._point_current("changed_raw", deleted=False)
            stored = self.con.execute("SELECT count(*) FROM changed_raw").fetchone()[0]
            self.con.execute("DROP TABLE changed_raw")
        finally:
            self.con.unregister("staged_raw")
        return stored, len(rows) - stored

    def _point_current(self, table: str, *, deleted: bool) -> None:
        self.con.execute(
            f"""
            INSERT INTO raw.current
            SELECT ?, object_type, object_key, raw_id, content_hash, ? FROM {table}
            ON CONFLICT (source, object_type, object_key) DO UPDATE
            SET raw_id = excluded.raw_id, content_hash = excluded.content_hash,
                deleted = excluded.deleted
            """,  # noqa: S608 - table is one of this module's temp tables, not input
            [self.source, deleted],
        )

    def _set_watermark(self, object_type: str, scope: str, mark: datetime) -> None:
        self.con.execute(
            """
            INSERT INTO raw.watermarks VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (source, object_type, scope) DO UPDATE
            SET watermark = greatest(raw.watermarks.watermark, excluded.watermark),
                updated_at = excluded.updated_at
            """,
            [self.source, object_type, scope, mark, self.fetched_at],
        )

    def record_listing(
        self,
        object_type: str,
        *,
        listed: int,
        reported: int | None,
        full: bool,
        scope: str = "*",
    ) -> None:
        self.con.execute(
            "INSERT INTO raw.listings (run_id, source, object_type, scope, full_listing, "
            "reported, listed, listed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self.run_id,
                self.source,
                object_type,
                scope,
                full,
                reported,
                listed,
                datetime.now(UTC),
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
        gone = sorted(self.stored_keys(object_type, parent_key) - present)
        self.con.execute("BEGIN TRANSACTION")
        try:
            if gone:
                self.con.execute(
                    """
                    CREATE OR REPLACE TEMP TABLE gone_raw AS
                    SELECT nextval('raw.raw_id_seq') AS raw_id, ? AS object_type,
                           unnest(?) AS object_key, 'deleted' AS content_hash
                    """,
                    [object_type, gone],
                )
                self.con.execute(
                    "INSERT INTO raw.objects (raw_id, source, object_type, object_key, "
                    "parent_key, content_hash, payload, deleted, fetched_at, run_id) "
                    "SELECT raw_id, ?, object_type, object_key, ?, content_hash, NULL, true, "
                    "?, ? FROM gone_raw",
                    [self.source, parent_key, self.fetched_at, self.run_id],
                )
                self._point_current("gone_raw", deleted=True)
                self.con.execute("DROP TABLE gone_raw")
            if watermark:
                self._set_watermark(*watermark)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.counts.tombstoned += len(gone)
        return len(gone)


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    run_sql(con, "raw/schema")
