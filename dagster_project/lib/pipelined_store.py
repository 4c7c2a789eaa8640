"""A raw store whose batches commit on a writer thread while the fetch asks for more.

A fetch alternates between asking the API (and waiting while the server works) and
committing what it got (canonical JSON, hashing, DuckDB), so each side of a nightly
waits for the other. Here batches commit on one writer thread while the fetch goes on
to its next page. Every other use of the store waits for what was handed over first, so
reads see every batch handed over before them, in order. A failed commit is raised when
the fetch next hands a batch to the writer or waits for it, and nothing handed over
after it commits.

Batches handed over while the writer is busy wait, and are committed together as one
transaction when it is free (up to ``GROUP_OBJECTS`` objects): a commit's cost is
mostly per transaction (the look-ups in ``raw.current``, the commit itself), so a fetch
faster than its writer no longer waits for it page by page. Batches are grouped only
when that stores what committing them one by one would: none tombstones children
(``Batch.gone`` is applied before a batch's objects) and no object occurs in two of
them (each version of an object is kept). A killed run keeps whole groups: what it
lost is fetched again, from the last committed watermark.

A fetch that compares each page with what is stored would still wait for every commit.
``committed()`` reads on a connection of its own, without waiting: it sees the batches
committed so far, and the caller overlays what it handed over since.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from dagster_project.lib.rawstore import Batch, ListingRecord, RawStore

# Objects of one grouped commit at most: about ten pages of issues, a few megabytes of
# JSON held while they wait. Beyond it the fetch waits for the writer.
GROUP_OBJECTS = 1000


class PipelinedStore:
    """A ``RawStore`` whose ``commit`` returns before the batch is written."""

    def __init__(self, store: RawStore, group_objects: int = GROUP_OBJECTS):
        self._store = store
        self._group_objects = group_objects
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw-commit")
        self._pending: Future[Any] | None = None
        self._waiting: list[Batch] = []  # handed over, not yet given to the writer
        self._waiting_keys: set[tuple[str, str]] = set()
        self._reader: RawStore | None = None
        self._marks: dict[tuple[str, str], datetime] = {}  # the latest handed over

    def commit(self, batch: Batch) -> None:
        _advance(self._marks, batch.watermarks)
        if not self._joins(batch):
            self._hand_over()  # the waiting group first, on its own
        self._waiting.append(batch)
        self._waiting_keys.update((o.object_type, o.object_key) for o in batch.objects)
        if self._pending is None or self._pending.done():
            self._hand_over()

    def _joins(self, batch: Batch) -> bool:
        """Whether ``batch`` may be committed with the waiting ones as one transaction."""
        if not self._waiting:
            return True
        count = sum(len(b.objects) for b in self._waiting) + len(batch.objects)
        return (
            count <= self._group_objects
            and not batch.gone
            and not any(b.gone for b in self._waiting)
            and not any((o.object_type, o.object_key) in self._waiting_keys for o in batch.objects)
        )

    def _hand_over(self) -> None:
        """Give the waiting batches to the writer, as one, once the pending commit is done
        (its failure is raised, and they are not committed)."""
        self._wait()
        if self._waiting:
            group = self._waiting[0] if len(self._waiting) == 1 else _merged(self._waiting)
            self._waiting, self._waiting_keys = [], set()
            self._pending = self._writer.submit(self._store.commit, group)

    def _wait(self) -> None:
        """Wait for the pending commit. When it failed, what was handed over after it is
        dropped (it is fetched again from the last committed watermark) and the failure
        raised."""
        pending, self._pending = self._pending, None
        if pending is not None and pending.exception() is not None:
            self._waiting, self._waiting_keys, self._marks = [], set(), {}
            pending.result()

    def drain(self) -> None:
        """Commit everything handed over; raise a failure."""
        self._hand_over()
        self._wait()

    def committed(self) -> RawStore:
        """The store as committed, read on its own connection without waiting for what
        was handed over (which it may or may not see): for reads of what was there
        before this run, which the caller overlays with what it handed over since.
        Opened at the first call, once everything handed over is written."""
        if self._reader is None:
            self.drain()
            store = self._store
            self._reader = RawStore(
                store.con.cursor(), store.source, store.run_id, store.fetched_at, store.views
            )
        return self._reader

    def watermark(self, object_type: str, scope: str = "*") -> datetime | None:
        """A watermark, without waiting: they only move forward, so the later of the
        committed one and the last handed over is what the written store will hold."""
        marks = (
            self.committed().watermark(object_type, scope),
            self._marks.get((object_type, scope)),
        )
        return max((m for m in marks if m is not None), default=None)

    def record_listing(
        self, object_type: str, *, listed: int, reported: int | None, full: bool, scope: str = "*"
    ) -> None:
        """Record what a listing found, committed with the batches around it."""
        self.commit(Batch(listings=[ListingRecord(object_type, listed, reported, full, scope)]))

    def close(self) -> None:
        """Commit what was handed over, unless a commit failed (``drain`` raises that
        failure; here it is left to the caller's next use, as the fetch's own error is
        the one to report)."""
        try:
            self.drain()
        except Exception:  # noqa: S110 - reported by drain on the fetch's path
            pass
        finally:
            self._writer.shutdown(wait=True)
            if self._reader is not None:
                self._reader.con.close()
                self._reader = None

    def __getattr__(self, name: str) -> Any:
        self.drain()
        return getattr(self._store, name)


def _merged(batches: list[Batch]) -> Batch:
    """One batch storing what ``batches`` store one after the other (see ``_joins``)."""
    merged = Batch()
    for batch in batches:
        merged.objects.extend(batch.objects)
        merged.quarantined.extend(batch.quarantined)
        merged.listings.extend(batch.listings)
        _advance(merged.watermarks, batch.watermarks)
    return merged


def _advance(marks: dict[tuple[str, str], datetime], to: dict[tuple[str, str], datetime]) -> None:
    """Move ``marks`` forward to ``to``, never back, as the store moves watermarks."""
    for key, mark in to.items():
        marks[key] = max(mark, marks.get(key, mark))
