"""Run Dagster assets against an emulator and a temporary DuckDB file, as a user would.

The resources are the product's own, pointed at the emulator's URL with explicit
credentials (the path real servers take), not at the zero-config sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import dagster as dg
import duckdb
import requests

from dagster_project.defs.resources import (
    ConfluenceResource,
    GitlabResource,
    JiraResource,
    KeptDuckDBResource,
    ReportsResource,
    SandboxResource,
)
from dagster_project.lib.staging import staging_dir

# The daily-partitioned snapshot runs in its own job, one partition at a time.
NOT_PARTITIONED = 'not key:"reports/daily_snapshot"'


@cache
def definitions() -> dg.Definitions:
    from dagster_project.definitions import defs

    return defs.load_fn()


def resources_for(
    url: str,
    db: Path,
    reports: Path,
    *,
    token: str = "t",
    retry_base_s: float = 0.01,
    max_retries: int = 6,
) -> dict:
    sandbox = SandboxResource()
    common = {
        "token": token,
        "sandbox": sandbox,
        "retry_base_s": retry_base_s,
        "max_retries": max_retries,
        "timeout_s": 10.0,
    }
    return {
        "sandbox": sandbox,
        "jira": JiraResource(url=url, user="driftgate", **common),
        "gitlab": GitlabResource(url=url, **common),
        "confluence": ConfluenceResource(url=f"{url}/wiki", user="driftgate", **common),
        "duckdb": KeptDuckDBResource(database=str(db)),
        "reports": ReportsResource(folder=str(reports)),
    }


def materialize(
    url: str, db: Path, selection: Sequence[str] | str = "*", reports: Path | None = None, **options
) -> dg.ExecuteInProcessResult:
    """Materialize the assets matching ``selection`` (asset-selection strings such as
    ``key:"raw/jira"``, ``group:chain``) with their checks, in process."""
    defs = definitions()
    assets = list(defs.assets or [])
    checks = list(defs.asset_checks or [])
    sel = selection if isinstance(selection, str) else " or ".join(selection)
    sel = f"({sel}) and {NOT_PARTITIONED}"  # what the nightly job runs
    return dg.materialize(
        [*assets, *checks],
        selection=sel,
        resources=resources_for(url, db, reports or db.parent / "reports", **options),
        raise_on_error=True,
    )


def table(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def staged(db: Path, source: str, unit: str = "all") -> Path:
    """The staging store a unit of ``source`` fetches into, beside ``db`` (lib/staging.py):
    where the watermarks are, and what a run killed before its load step committed."""
    return staging_dir(db) / source / f"{unit}.duckdb"


def copy_dataset(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def kill_midway(
    url: str,
    db: Path,
    selection: Sequence[str] | str,
    *,
    ready: Callable[[dict], bool],
    timeout_s: float = 120,
) -> None:
    """Materialize in a subprocess and SIGKILL it once ``ready(emulator stats)`` holds.

    A real kill: no handler runs, DuckDB's uncommitted transaction is lost as it would
    be when a machine dies.
    """
    code = (
        "import sys, json; from pathlib import Path; from tests.ingest.harness import "
        "materialize; materialize(sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3]))"
    )
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, url, str(db), json.dumps(selection)],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not ready(requests.get(f"{url}/_sandbox/stats", timeout=5).json()):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError("the run ended or stalled before the kill point")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
