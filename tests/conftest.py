"""Shared fixtures: the emulator served on a free loopback port, and the real payloads;
how DuckDB stored a table's text."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from dagster_project.sandbox.emulator import server

TESTS = Path(__file__).resolve().parent
HANDMADE = TESTS / "data" / "handmade"
SHARED = Path(os.environ.get("DRIFTGATE_SHARED", TESTS.parent.parent / "shared"))
REAL_FIXTURES = SHARED / "fixtures" / "real"


ENV_PREFIXES = ("DRIFTGATE_", "JIRA_", "GITLAB_", "CONFLUENCE_")


@pytest.fixture(scope="session", autouse=True)
def hermetic_environment() -> Iterator[None]:
    """A test run gives the same result whatever the caller's shell configures: every
    Driftgate and source variable is removed for the session (tests set what they need).
    ``DRIFTGATE_SHARED`` (where the real payloads are) was read above, at import."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(ENV_PREFIXES):
                patch.delenv(name)
        yield


@pytest.fixture
def serve() -> Iterator[Callable[..., server.RunningEmulator]]:
    """Start emulators for a test: ``serve(dataset_dir, faults=..., require_token=...)``."""
    started: list[server.RunningEmulator] = []

    def _serve(dataset_dir: str | Path = HANDMADE, **options) -> server.RunningEmulator:
        running = server.start(str(dataset_dir), **options)
        started.append(running)
        return running

    yield _serve
    for running in started:
        running.stop()


def free_port() -> int:
    """A loopback port free at this moment (for a server that must keep its address
    between runs: payloads name it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sandbox_stats(url: str) -> dict:
    """The emulator's request counters (GET /_sandbox/stats)."""
    return requests.get(f"{url}/_sandbox/stats", timeout=10).json()


@pytest.fixture(scope="session")
def real_fixtures() -> Path:
    """The captured real payloads; absent on a user's clone (skip), required in CI."""
    if not REAL_FIXTURES.is_dir():
        reason = f"real payload fixtures not found at {REAL_FIXTURES}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the real-data tests")
        pytest.skip(reason)
    return REAL_FIXTURES


def text_compressions(con, table: str, column: str | None = None) -> set[str]:
    """How DuckDB compressed the text of ``table`` (one ``column``, or every string
    column) once checkpointed, columns of one value aside."""
    con.execute("CHECKPOINT")
    sql = (
        f"SELECT DISTINCT compression FROM pragma_storage_info('{table}') "  # noqa: S608
        "WHERE segment_type IN ('VARCHAR', 'JSON') AND compression <> 'Constant' "
        "AND column_name = coalesce(?, column_name)"
    )
    return {c for (c,) in con.execute(sql, [column]).fetchall()}
