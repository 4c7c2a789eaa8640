"""Benchmark: the first nightly in process against the same nightly with the multiprocess
executor, each unit of the policy's scope fetched in its own step.

    uv run python benchmarks/fanout_nightly.py --dataset /tmp/fanout-med --latency-ms 20

The dataset (``driftgate sandbox generate --scale medium``) is served by ``driftgate
sandbox serve`` in its own process, with ``--latency-ms`` added to every answer; the
policy lists each Jira project, GitLab group and Confluence space of the dataset (one
unit each) and allows ``--source-pool`` requests in flight per source; the Dagster
instance's pools come from the policy (``driftgate pools``: ``parallel_requests //
requests_per_step`` fetch steps per source, ``duckdb`` 1). Both runs go through ``dg launch --job
nightly`` into fresh databases, judged as of the dataset's ``as_of``; the analysis tables
are then compared (tests/operations/test_multiprocess.py's comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dagster_project.defs.automation import (  # noqa: E402
    MULTIPROCESS_RUN_CONFIG,
    pooled_home,
)
from dagster_project.sandbox.dataset import scope_of  # noqa: E402
from dagster_project.sandbox.runtime import emulator_env  # noqa: E402
from tests.operations.test_multiprocess import normalized, query  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", required=True, help="a generated dataset folder")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument(
        "--source-pool", type=int, default=2, help="the policy's parallel_requests per source"
    )
    parser.add_argument("--work", help="folder for databases and the instance (default: temp)")
    args = parser.parse_args()
    dataset = Path(args.dataset).resolve()
    work = Path(args.work or tempfile.mkdtemp(prefix="driftgate-fanout-"))
    work.mkdir(parents=True, exist_ok=True)

    manifest = json.loads((dataset / "manifest.json").read_text())
    policy = yaml.safe_load((REPO / "dagster_project/policy/default.yaml").read_text())
    policy["scope"] = scope_of(dataset)
    policy["operations"]["parallel_requests"] = dict.fromkeys(SOURCES, args.source_pool)
    (work / "policy.yaml").write_text(yaml.safe_dump(policy))
    home = pooled_home(work / "dagster_home")
    dg = str(Path(sys.executable).with_name("dg"))
    # the pools as the policy sets them: parallel_requests // requests_per_step steps
    subprocess.run(
        [str(Path(sys.executable).with_name("driftgate")), "pools"],
        env={**os.environ, "DAGSTER_HOME": str(home), "DRIFTGATE_POLICY": str(work / "policy.yaml")},
        check=True, capture_output=True,
    )  # fmt: skip

    serve = subprocess.Popen(
        [str(Path(sys.executable).with_name("driftgate")), "sandbox", "serve",
         "--dataset", str(dataset), "--latency-ms", str(args.latency_ms)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = serve.stdout.readline().strip()
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            **emulator_env(url),
            "DRIFTGATE_POLICY": str(work / "policy.yaml"),
            "DRIFTGATE_AS_OF": manifest["as_of"],
        }  # fmt: skip
        results = {}
        for name, extra in (
            ("in_process", []),
            ("multiprocess", ["-c", str(MULTIPROCESS_RUN_CONFIG)]),
        ):
            folder = work / name
            folder.mkdir(exist_ok=True)
            run_env = {
                **env,
                "DRIFTGATE_DB": str(folder / "driftgate.duckdb"),
                "DRIFTGATE_REPORTS": str(folder / "reports"),
            }
            started = time.monotonic()
            done = subprocess.run(
                [dg, "launch", "--job", "nightly", *extra],
                cwd=REPO, env=run_env, capture_output=True, text=True,
            )  # fmt: skip
            elapsed = time.monotonic() - started
            (work / f"{name}.log").write_text(done.stderr)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed; see {work / f'{name}.log'}")
            results[name] = {"wall_s": round(elapsed, 1), "db": folder / "driftgate.duckdb"}
            print(f"{name}: {elapsed:.1f} s", flush=True)
    finally:
        serve.terminate()
        serve.wait(timeout=30)

    first, second = results["in_process"]["db"], results["multiprocess"]["db"]
    tables = [
        f"{s}.{t}"
        for s, t in query(first, "SELECT schema_name, table_name FROM duckdb_tables() "
                                 "WHERE schema_name IN ('chain', 'analysis')")
    ]  # fmt: skip
    differing = [t for t in tables if normalized(first, t) != normalized(second, t)]
    rows = query(first, "SELECT count(*) FROM raw.objects")[0][0]
    print(
        json.dumps(
            {
                "dataset": str(dataset),
                "latency_ms": args.latency_ms,
                "units": {k: len(v) for k, v in policy["scope"].items()},
                "source_pool": args.source_pool,
                "in_process_s": results["in_process"]["wall_s"],
                "multiprocess_s": results["multiprocess"]["wall_s"],
                "raw_rows": rows,
                "tables_compared": len(tables),
                "tables_differing": differing,
                "raw_identical": Counter(query(first, RAW)) == Counter(query(second, RAW)),
                "work": str(work),
            },
            indent=2,
        )
    )


SOURCES = ("jira", "gitlab", "confluence")
RAW = "SELECT source, object_type, object_key, content_hash, deleted FROM raw.objects"


if __name__ == "__main__":
    main()
