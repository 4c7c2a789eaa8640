"""Generated organisations, served by the emulator and judged through the Dagster assets
on temporary DuckDB files: built once per test session and shared (read-only) by the
analysis tests; a test that changes a database works on a copy."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project.lib.asof import AS_OF_TAG
from dagster_project.sandbox.emulator import server
from dagster_project.sandbox.simulator import generate
from tests.ingest import harness


@dataclass(frozen=True)
class Judged:
    dataset: Path
    db: Path
    truth: dict
    as_of: str

    def copy_db(self, target: Path) -> Path:
        shutil.copyfile(self.db, target)
        return target


def judge(dataset: Path, db: Path, *, as_of: str | None = None,
          selection: str = "*", port: int = 0) -> dg.ExecuteInProcessResult:  # fmt: skip
    """Materialize ``selection`` (assets and checks) on ``db`` with ``dataset`` served
    by the emulator (on ``port``: 0 for any free one), judged as of ``as_of`` (default:
    the dataset's own)."""
    manifest = json.loads((dataset / "manifest.json").read_text())
    running = server.start(str(dataset), port=port)
    try:
        defs = harness.definitions()
        return dg.materialize(
            [*(defs.assets or []), *(defs.asset_checks or [])],
            selection=f"({selection}) and {harness.NOT_PARTITIONED}",
            resources=harness.resources_for(running.url, db, db.parent / "reports"),
            tags={AS_OF_TAG: as_of or manifest["as_of"]},
            raise_on_error=True,
        )
    finally:
        running.stop()


@pytest.fixture(scope="session")
def judged_org(tmp_path_factory) -> Callable[[str, str], Judged]:
    """``judged_org(scale, flavor)``: a generated organisation, ingested and judged."""
    built: dict[tuple[str, str], Judged] = {}

    def _get(scale: str, flavor: str) -> Judged:
        if (scale, flavor) not in built:
            root = tmp_path_factory.mktemp(f"{scale}-{flavor}")
            dataset = root / "dataset"
            generate(dataset, seed=7, scale=scale, flavor=flavor)
            db = root / "driftgate.duckdb"
            judge(dataset, db)
            truth = json.loads((dataset / "truth.json").read_text())
            built[(scale, flavor)] = Judged(dataset, db, truth, truth["as_of"])
        return built[(scale, flavor)]

    return _get


@pytest.fixture
def judged_copy(judged_org, tmp_path):
    """A connection to a copy of the judged demo organisation, and its as_of."""
    org = judged_org("demo", "server")
    con = duckdb.connect(str(org.copy_db(tmp_path / "driftgate.duckdb")))
    yield con, datetime.fromisoformat(org.as_of)
    con.close()
