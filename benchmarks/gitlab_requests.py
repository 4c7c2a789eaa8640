"""Benchmark: GitLab requests per endpoint, a first nightly and one a simulated day later.

Run by hand (not part of the tests), from any checkout of the project:

    uv run python benchmarks/gitlab_requests.py --dataset DIR --work DIR [--days 1]
        [--port N] [--latency-ms N] [--select SELECTION]

Copies the dataset into the work folder, serves it, runs the nightly job on a fresh
database, advances a copy of the dataset by ``--days`` (the simulator) and runs the
nightly job again on the same database. Prints, for each run, the GitLab requests the
emulator received by endpoint and the wall time of the raw/gitlab steps; keeps both
databases (``day0.duckdb``, ``day1.duckdb``) for comparing the tables they hold
(``compare_chain.py``): serve on a fixed ``--port`` so that URLs inside payloads match
between checkouts. ``--latency-ms`` delays every answer, as a network would;
``--select 'key:"raw/gitlab"'`` runs that asset alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import dagster as dg
import requests
from dagster_duckdb import DuckDBResource

from dagster_project.definitions import defs
from dagster_project.defs.resources import (
    ConfluenceResource,
    GitlabResource,
    JiraResource,
    ReportsResource,
    SandboxResource,
)
from dagster_project.lib.staging import copy_database
from dagster_project.sandbox.emulator import server
from dagster_project.sandbox.simulator import advance

NIGHTLY = 'not key:"reports/daily_snapshot"'  # the partitioned snapshot has its own job


def resources(url: str, db: Path, reports: Path) -> dict[str, Any]:
    sandbox = SandboxResource()
    common = {"token": "bench", "sandbox": sandbox}
    return {
        "sandbox": sandbox,
        "jira": JiraResource(url=url, user="bench", **common),
        "gitlab": GitlabResource(url=url, **common),
        "confluence": ConfluenceResource(url=f"{url}/wiki", user="bench", **common),
        "duckdb": DuckDBResource(database=str(db)),
        "reports": ReportsResource(folder=str(reports)),
    }


def gitlab_step_seconds(instance: dg.DagsterInstance, run_id: str) -> float:
    """Wall time of the raw/gitlab graph's steps (units, fetches, load)."""
    total = 0.0
    for stats in instance.get_run_step_stats(run_id):
        if stats.step_key.startswith("raw__gitlab.") and stats.end_time and stats.start_time:
            total += stats.end_time - stats.start_time
    return round(total, 2)


def nightly(
    dataset: Path, db: Path, work: Path, selection: str = NIGHTLY, **serving: Any
) -> dict[str, Any]:
    """One nightly run on ``db`` with ``dataset`` served; its GitLab cost."""
    manifest = json.loads((dataset / "manifest.json").read_text())
    os.environ["DRIFTGATE_AS_OF"] = manifest["as_of"]  # judged as of the dataset's moment
    emulator = server.start(str(dataset), **serving)
    try:
        requests.get(f"{emulator.url}/api/v4/version", timeout=600)  # builds the indexes
        requests.delete(f"{emulator.url}/_sandbox/stats", timeout=10)
        definitions = defs.load_fn()
        instance = dg.DagsterInstance.ephemeral()
        started = time.monotonic()
        result = dg.materialize(
            [*definitions.assets, *definitions.asset_checks],
            resources=resources(emulator.url, db, work / "reports"),
            selection=selection,
            instance=instance,
        )
        wall = time.monotonic() - started
        stats = requests.get(f"{emulator.url}/_sandbox/stats", timeout=10).json()
    finally:
        emulator.stop()
    endpoints = {
        k: v for k, v in stats["by_endpoint"].items() if k.split(" ", 1)[1].startswith("/api/")
    }
    return {
        "success": result.success,
        "nightly_s": round(wall, 1),
        "raw_gitlab_s": gitlab_step_seconds(instance, result.run_id),
        "gitlab_requests": stats["requests"]["gitlab"],
        "by_endpoint": dict(sorted(endpoints.items(), key=lambda kv: -kv[1])),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", required=True, help="a generated dataset (left as is)")
    parser.add_argument("--work", required=True, help="folder for copies and databases")
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--select", default=NIGHTLY, help="a Dagster asset selection")
    args = parser.parse_args()
    serving = {"port": args.port, "latency_ms": args.latency_ms, "selection": args.select}
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    day0, day1 = work / "dataset-day0", work / "dataset-day1"
    for copy in (day0, day1):
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(args.dataset, copy)
    advance(day1, days=args.days)
    db = work / "run.duckdb"
    out = {"first_nightly": nightly(day0, db, work, **serving)}
    copy_database(db, work / "day0.duckdb")
    out[f"after_{args.days}_day"] = nightly(day1, db, work, **serving)
    copy_database(db, work / "day1.duckdb")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
