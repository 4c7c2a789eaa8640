"""One nightly run per database file at a time.

DuckDB already refuses a second read-write process, but only while a connection is
open: between two steps of a run another process could slip in and interleave its
writes. The run therefore holds an advisory lock on ``<database>.lock`` from start to
end; a second run sees who holds it and stops with one line instead of waiting.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path


class DatabaseBusy(RuntimeError):
    """Another process is writing the database."""


def lock_path(database: str | os.PathLike[str]) -> Path:
    db = Path(database)
    return db.with_name(db.name + ".lock")


@contextmanager
def run_lock(database: str | os.PathLike[str], *, what: str = "driftgate run") -> Iterator[None]:
    """Hold the database's run lock, or raise :class:`DatabaseBusy` at once."""
    path = lock_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the block
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise DatabaseBusy(
                f"{database} is being written by another run ({_holder(handle.read())}); "
                "wait for it to finish, or set DRIFTGATE_DB to another file"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "since": datetime.now(UTC).isoformat(timespec="seconds"),
                    "what": what,
                    "argv": " ".join(sys.argv[:3]),
                }
            )
        )
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']}, {info['what']} since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"
