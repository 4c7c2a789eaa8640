"""Benchmark: generate an organisation, serve it, run the whole nightly job on it.

Run by hand (not part of the tests):

    uv run python benchmarks/ingest_scale.py --issues 3000 [--flavor cloud] [--keep DIR]

Prints generation time, the emulator's index time, the nightly job's wall time, the
requests it made per API, the rows stored and the peak memory of this process (the job
and the in-process emulator together). Record results in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb
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
from dagster_project.sandbox.emulator import server
from dagster_project.sandbox.simulator import generate


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--issues", type=int, default=3000)
    parser.add_argument("--flavor", choices=("cloud", "server"), default="cloud")
    parser.add_argument("--keep", help="folder to keep the dataset and database in")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="driftgate-bench-"))
    dataset, db = work / "dataset", work / "bench.duckdb"

    started = time.monotonic()
    summary = generate(dataset, seed=7, issues=args.issues, flavor=args.flavor)
    generated = time.monotonic() - started

    started = time.monotonic()
    emulator = server.start(str(dataset))
    requests.get(f"{emulator.url}/rest/api/2/serverInfo", timeout=600)  # builds the indexes
    indexed = time.monotonic() - started
    requests.delete(f"{emulator.url}/_sandbox/stats", timeout=10)

    sandbox = SandboxResource()
    common = {"token": "bench", "sandbox": sandbox}
    resources = {
        "sandbox": sandbox,
        "jira": JiraResource(url=emulator.url, user="bench", **common),
        "gitlab": GitlabResource(url=emulator.url, **common),
        "confluence": ConfluenceResource(url=f"{emulator.url}/wiki", user="bench", **common),
        "duckdb": DuckDBResource(database=str(db)),
        "reports": ReportsResource(folder=str(work / "reports")),
    }
    definitions = defs.load_fn()
    started = time.monotonic()
    nightly = 'not key:"reports/daily_snapshot"'  # the partitioned snapshot has its own job
    result = dg.materialize(
        [*definitions.assets, *definitions.asset_checks], resources=resources, selection=nightly
    )
    nightly_s = time.monotonic() - started
    stats = requests.get(f"{emulator.url}/_sandbox/stats", timeout=10).json()

    started = time.monotonic()
    dg.materialize(
        [*definitions.assets, *definitions.asset_checks], resources=resources, selection=nightly
    )
    quiet = time.monotonic() - started
    quiet_stats = requests.get(f"{emulator.url}/_sandbox/stats", timeout=10).json()
    emulator.stop()

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM raw.objects").fetchone()[0]
        missing = con.execute("SELECT sum(missing) FROM analysis.ingest_completeness").fetchone()[0]
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()} {platform.processor() or ''} "
                f"{platform.python_version()}",
                "issues": args.issues,
                "flavor": args.flavor,
                "counts": summary.counts,
                "generate_s": round(generated, 1),
                "emulator_index_s": round(indexed, 1),
                "nightly_s": round(nightly_s, 1),
                "nightly_success": result.success,
                "requests": stats["requests"],
                "second_run_s": round(quiet - 0, 1),
                "second_run_requests": {
                    k: quiet_stats["requests"][k] - stats["requests"][k] for k in stats["requests"]
                },
                "raw_rows": rows,
                "missing": missing,
                "peak_rss_mb": round(peak_rss_mb()),
                "database_mb": round(db.stat().st_size / 2**20, 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
