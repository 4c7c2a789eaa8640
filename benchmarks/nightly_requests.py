"""Benchmark: requests per endpoint of a first nightly and of the nightly after
``sandbox advance``, on a copy of one generated dataset.

Run by hand (not part of the tests):

    uv run driftgate sandbox generate --out /tmp/med --scale medium --flavor cloud
    uv run python benchmarks/nightly_requests.py --dataset /tmp/med --work /tmp/med-run

The dataset is copied into ``--work`` (advance rewrites it); the database after the first
nightly is kept as ``first.duckdb`` and after the second as ``second.duckdb``, so two
builds of the product can be compared table by table on the same data. Prints, as JSON,
the requests of each nightly per source and per endpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

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


def nightly(dataset: Path, db: Path, port: int, selection: str) -> tuple[dict, float, int]:
    """One nightly against ``dataset`` served on ``port``: (stats, seconds, port).

    The same port every time: the database records the instance by its URL."""
    emulator = server.start(str(dataset), port=port)
    try:
        requests.get(f"{emulator.url}/rest/api/2/serverInfo", timeout=600)  # builds indexes
        requests.delete(f"{emulator.url}/_sandbox/stats", timeout=10)
        sandbox = SandboxResource()
        common = {"token": "bench", "sandbox": sandbox}
        resources = {
            "sandbox": sandbox,
            "jira": JiraResource(url=emulator.url, user="bench", **common),
            "gitlab": GitlabResource(url=emulator.url, **common),
            "confluence": ConfluenceResource(url=f"{emulator.url}/wiki", user="bench", **common),
            "duckdb": DuckDBResource(database=str(db)),
            "reports": ReportsResource(folder=str(db.parent / "reports")),
        }
        definitions = defs.load_fn()
        started = time.monotonic()
        result = dg.materialize(
            [*definitions.assets, *definitions.asset_checks],
            resources=resources,
            selection=selection,
        )
        seconds = time.monotonic() - started
        if not result.success:
            raise SystemExit("the nightly failed")
        stats = requests.get(f"{emulator.url}/_sandbox/stats", timeout=10).json()
        return stats, seconds, emulator.port
    finally:
        emulator.stop()


def summary(stats: dict, seconds: float) -> dict:
    return {
        "seconds": round(seconds, 1),
        "requests": stats["requests"],
        "by_endpoint": dict(sorted(stats["by_endpoint"].items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", required=True, help="a generated dataset (left as is)")
    parser.add_argument("--work", required=True, help="folder for the copy and the databases")
    parser.add_argument("--days", type=int, default=1, help="days advanced between nightlies")
    parser.add_argument("--selection", default=NIGHTLY, help="asset selection of a nightly")
    args = parser.parse_args()
    work = Path(args.work)
    data, db = work / "dataset", work / "nightly.duckdb"
    shutil.copytree(args.dataset, data)
    manifest = json.loads((data / "manifest.json").read_text())
    os.environ["DRIFTGATE_AS_OF"] = manifest["as_of"]

    first, first_s, port = nightly(data, db, 0, args.selection)
    copy_database(db, work / "first.duckdb")
    advanced = advance(data, days=args.days)
    os.environ["DRIFTGATE_AS_OF"] = advanced.to_as_of
    second, second_s, _ = nightly(data, db, port, args.selection)
    copy_database(db, work / "second.duckdb")
    print(
        json.dumps(
            {
                "dataset": str(args.dataset),
                "flavor": manifest.get("jira_flavor"),
                "first": summary(first, first_s),
                "advanced": {"days": args.days, "touched": advanced.touched},
                "second": summary(second, second_s),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
