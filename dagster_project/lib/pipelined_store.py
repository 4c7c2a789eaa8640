"""A raw store whose batches commit on a writer thread while the fetch asks for more.

A fetch alternates between asking the API (and waiting while the server works) and
committing what it got (canonical JSON, hashing, DuckDB), so each side of a nightly
waits for the other. Here a batch commits on one writer thread while the fetch goes on
to its next page. At most one batch is pending; every other use of the store waits for
it first, so reads see every batch handed over before them, in order, and a failed
commit is raised at the fetch's next use of the store, before anything else commits.
Each batch is still one transaction: what a killed run keeps is unchanged.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from dagster_project.lib.rawstore import Batch, RawStore


class PipelinedStore:
    """A ``RawStore`` whose ``commit`` returns before the batch is written."""

    def __init__(self, store: RawStore):
        self._store = store
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw-commit")
        self._pending: Future[Any] | None = None

    def commit(self, batch: Batch) -> None:
        self.drain()
        self._pending = self._writer.submit(self._store.commit, batch)

    def drain(self) -> None:
        """Wait for the pending batch; raise its failure."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Let the pending batch finish (its failure, if any, is raised by ``drain``)."""
        self._writer.shutdown(wait=True)

    def __getattr__(self, name: str) -> Any:
        self.drain()
        return getattr(self._store, name)
