"""Benchmark: the nightly job on a generated organisation, first run, quiet rerun and the
run after one simulated day, with the emulator in its own process.

    uv run python benchmarks/nightly_scale.py --issues 10000 --flavor server \
        --latency-ms 20 --work /tmp/bench-10k [--memory-limit 1GB] [--policy FILE] \
        [--json out.json]

Each nightly is ``driftgate run`` in its own process (the product's command, in-process
executor), so the peak RSS measured is the job's alone; the emulator
(``driftgate sandbox serve --latency-ms``) runs beside it and counts requests per
endpoint. Three runs on one database: the first nightly, the same nightly again with
nothing changed, and the nightly after ``driftgate sandbox advance --days 1`` (the
emulator is restarted on the advanced dataset; the run is judged one day later).

Printed per run: wall time, time per layer (sum of the layer's step durations from the
Dagster instance), requests per API and per endpoint, the listings' page minimum
(``ceil(listed / page_size)`` per listing scope, from ``raw.listings``) against the
listing requests made, peak RSS of the job process and the database size. The database
after the last run stays in ``--work`` (``driftgate.duckdb``; ``--keep-first`` keeps the
first nightly's as ``first.duckdb``) for ``analysis_scale.py`` and ``compare_chain.py``.
``--from-database`` starts from a database an earlier first nightly of the same dataset filled,
for the incremental figures of a large organisation without ingesting it again.
``--executor multiprocess`` runs each nightly through ``dg launch`` with the multiprocess
run config instead (the three sources' fetch steps side by side, within the pools the
policy sets). ``--smoke`` (about 2,000 issues in CI) runs the same code with no timing
judged.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import requests

from dagster_project.defs.automation import MULTIPROCESS_RUN_CONFIG, pooled_home
from dagster_project.lib.policy import load_policy
from dagster_project.lib.staging import copy_database
from dagster_project.sandbox.runtime import emulator_env

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Listing endpoints (the emulator's route templates) and the raw object type they list.
LISTINGS = {
    "GET /rest/api/2/search": ("jira", "issue"),
    "GET /rest/api/3/search/jql": ("jira", "issue"),
    "GET /api/v4/projects": ("gitlab", "project"),
    "GET /api/v4/groups/{id}/projects": ("gitlab", "project"),
    "GET /api/v4/projects/{id}/merge_requests": ("gitlab", "merge_request"),
    "GET /api/v4/groups/{id}/merge_requests": ("gitlab", "merge_request"),
    "GET /api/v4/merge_requests": ("gitlab", "merge_request"),
    "GET /api/v4/projects/{id}/repository/commits": ("gitlab", "commit"),
    "GET /api/v4/projects/{id}/deployments": ("gitlab", "deployment"),
    "GET /wiki/rest/api/content/search": ("confluence", "page"),
    "GET /wiki/rest/api/space": ("confluence", "space"),
}
# A run's peak RSS and CPU seconds: the wrapper's only child is the job process.
PEAK = (
    "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
    "r = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print(r.ru_maxrss, r.ru_utime + r.ru_stime, file=sys.stderr); "
    "sys.exit(rc)"
)


class Emulator:
    """``driftgate sandbox serve`` in its own process."""

    def __init__(self, dataset: Path, latency_ms: int, port: int = 0):
        self.proc = subprocess.Popen(
            [str(BIN / "driftgate"), "sandbox", "serve", "--dataset", str(dataset),
             "--latency-ms", str(latency_ms), "--port", str(port)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.url = (self.proc.stdout.readline() if self.proc.stdout else "").strip()
        started = time.monotonic()
        # every index the routes would build on first use: not part of a measured run
        requests.post(f"{self.url}/_sandbox/warm", timeout=1800).raise_for_status()
        self.index_s = time.monotonic() - started

    def stats(self, reset: bool = False) -> dict[str, Any]:
        if reset:
            requests.delete(f"{self.url}/_sandbox/stats", timeout=30)
        return requests.get(f"{self.url}/_sandbox/stats", timeout=30).json()

    def cpu_s(self) -> float | None:
        """CPU seconds (user + system) the emulator's process has used so far (Linux)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def nightly(
    work: Path, emulator: Emulator, as_of: str, extra_env: dict[str, str], executor: str
) -> dict:
    """One nightly against the emulator: ``driftgate run`` (in process), or ``dg launch``
    with the multiprocess run config, each step in its own process within the pools the
    policy sets (``driftgate pools``); its figures."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DRIFTGATE_", "JIRA_",
                                                                     "GITLAB_", "CONFLUENCE_"))},
        "DAGSTER_HOME": str(work / "dagster_home"),
        "DRIFTGATE_DB": str(work / "driftgate.duckdb"),
        "DRIFTGATE_REPORTS": str(work / "reports"),
        **emulator_env(emulator.url, user="bench"),
        **extra_env,
    }  # fmt: skip
    emulator.stats(reset=True)
    emulator_cpu = emulator.cpu_s()
    started = time.monotonic()
    if executor == "multiprocess":
        command = [
            str(BIN / "dg"), "launch", "--job", "nightly", "-c", str(MULTIPROCESS_RUN_CONFIG)
        ]  # fmt: skip
        env["DRIFTGATE_AS_OF"] = as_of
    else:
        command = [str(BIN / "driftgate"), "run", "--as-of", as_of]
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *command], cwd=REPO, env=env, capture_output=True, text=True
    )  # fmt: skip
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"driftgate run failed:\n{done.stdout}\n{done.stderr}")
    peak, cpu = done.stderr.strip().splitlines()[-1].split()
    stats = emulator.stats()
    emulator_after = emulator.cpu_s()
    db = work / "driftgate.duckdb"
    return {
        "wall_s": round(wall, 1),
        "layers_s": layer_times(work / "dagster_home"),
        "requests": stats["requests"],
        "requests_total": sum(stats["requests"].values()),
        # at most operations.parallel_requests per API (lib/inflight.py)
        "most_in_flight": stats.get("most_in_flight", {}),
        "by_endpoint": stats["by_endpoint"],
        "listings": listing_minimum(db, stats["by_endpoint"], extra_env.get("DRIFTGATE_POLICY")),
        # In process: the job's own figures. Multiprocess: the steps run in children of
        # Dagster's forkserver, which the wrapper never waits for: not measured.
        "peak_rss_mb": round(int(peak) / 1024) if executor == "in_process" else None,
        "job_cpu_s": round(float(cpu), 1) if executor == "in_process" else None,
        # what serving the requests cost the sandbox: a floor under the wall time when the
        # job and the emulator share the machine's cores
        "emulator_cpu_s": None
        if emulator_cpu is None or emulator_after is None
        else round(emulator_after - emulator_cpu, 1),
        "database_mb": round(db.stat().st_size / 2**20, 1),
    }


def layer_times(home: Path) -> dict[str, float]:
    """Seconds per layer of the latest run: its steps' durations summed by group."""
    code = (
        "import dagster as dg, json\n"
        "i = dg.DagsterInstance.get()\n"
        "run = i.get_runs(limit=1)[0]\n"
        "print(json.dumps([(s.step_key, s.start_time, s.end_time)"
        " for s in i.get_run_step_stats(run.run_id)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    layers: dict[str, float] = defaultdict(float)
    for step, start, end in json.loads(out):
        if start and end:
            layers[layer_of(step)] += end - start
    return {k: round(v, 1) for k, v in sorted(layers.items())}


def layer_of(step_key: str) -> str:
    """raw / chain / analysis / reports / checks from a step key."""
    head = step_key.split(".")[0].split("__")[0]
    if head.startswith("raw_") or head in ("raw",):
        return "raw"
    return head if head in ("chain", "analysis", "reports") else "checks and other"


def listing_minimum(
    db: Path, by_endpoint: dict[str, int], policy: str | None = None
) -> dict[str, dict[str, Any]]:
    """Per listed object type: the requests its listing endpoints took against
    ``ceil(listed / page_size)`` per listing scope in the latest run."""
    page = (load_policy(Path(policy)) if policy else load_policy()).ingest.page_size
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            """
            SELECT source, object_type, scope, listed FROM raw.listings
            WHERE run_id = (SELECT run_id FROM raw.listings ORDER BY listed_at DESC LIMIT 1)
            """
        ).fetchall()
    minimum: dict[tuple[str, str], int] = defaultdict(int)
    for source, object_type, _scope, listed in rows:
        minimum[(source, object_type)] += max(1, math.ceil(listed / page))
    made: dict[tuple[str, str], int] = defaultdict(int)
    for endpoint, count in by_endpoint.items():
        if endpoint in LISTINGS:
            made[LISTINGS[endpoint]] += count
    out = {}
    for key in sorted(set(made) | {k for k in minimum if k in set(LISTINGS.values())}):
        need = minimum.get(key, 0)
        out[f"{key[0]}/{key[1]}"] = {
            "requests": made.get(key, 0),
            "page_minimum": need,
            "ratio": round(made.get(key, 0) / need, 3) if need else None,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--issues", type=int, default=10000)
    parser.add_argument("--flavor", choices=("cloud", "server"), default="server")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--work", help="folder for dataset, database and instance")
    parser.add_argument(
        "--dataset", help="a generated dataset to copy instead of generating one (--issues ignored)"
    )
    parser.add_argument("--memory-limit", help="DRIFTGATE_DUCKDB_MEMORY_LIMIT for the job")
    parser.add_argument("--threads", help="DRIFTGATE_DUCKDB_THREADS for the job")
    parser.add_argument(
        "--policy", help="DRIFTGATE_POLICY for the job (e.g. operations.requests_per_step: 1)"
    )
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--keep-first",
        action="store_true",
        help="keep the first nightly's database as first.duckdb",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="serve on this port (URLs in payloads then match between two checkouts' databases)",
    )
    parser.add_argument(
        "--from-database",
        help="start from this database, filled by a first nightly of the same --dataset "
        "(copied; its raw layer complete): the first run measured is then a catch-up run, "
        "listings only for ingestion and every chain and analysis table built anew",
    )
    parser.add_argument(
        "--executor",
        choices=("in_process", "multiprocess"),
        default="in_process",
        help="multiprocess: dg launch with dagster_project/run_config/nightly_multiprocess.yaml "
        "(the three sources fetched side by side; peak RSS and job CPU are then not measured)",
    )
    parser.add_argument("--smoke", action="store_true", help="about 2,000 issues (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.issues = 2000
    work = Path(args.work or f"/tmp/driftgate-bench-{args.issues}")
    shutil.rmtree(work, ignore_errors=True)
    (work / "dagster_home").mkdir(parents=True)
    if args.executor == "multiprocess":
        pooled_home(work / "dagster_home")
    dataset = work / "dataset"
    extra_env = {}
    if args.memory_limit:
        extra_env["DRIFTGATE_DUCKDB_MEMORY_LIMIT"] = args.memory_limit
    if args.threads:
        extra_env["DRIFTGATE_DUCKDB_THREADS"] = args.threads
    if args.policy:
        extra_env["DRIFTGATE_POLICY"] = str(Path(args.policy).resolve())
    if args.executor == "multiprocess":  # the pools as the policy sets them
        subprocess.run(
            [str(BIN / "driftgate"), "pools"],
            env={**os.environ, **extra_env, "DAGSTER_HOME": str(work / "dagster_home")},
            check=True, capture_output=True,
        )  # fmt: skip

    started = time.monotonic()
    if args.dataset:  # advance rewrites the dataset: work on a copy
        shutil.copytree(args.dataset, dataset)
    else:
        subprocess.run(
            [str(BIN / "driftgate"), "sandbox", "generate", "--out", str(dataset), "--seed", "7",
             "--issues", str(args.issues), "--flavor", args.flavor],
            check=True, capture_output=True,
        )  # fmt: skip
    manifest = json.loads((dataset / "manifest.json").read_text())
    results: dict[str, Any] = {
        "machine": machine(),
        "issues": count_lines(dataset / "jira" / "issues.jsonl"),
        "flavor": manifest.get("jira_flavor", args.flavor),
        "executor": args.executor,
        "latency_ms": args.latency_ms,
        "duckdb_settings": extra_env,
        "generate_s": round(time.monotonic() - started, 1),
    }
    as_of = manifest["as_of"]

    if args.from_database:
        copy_database(Path(args.from_database), work / "driftgate.duckdb")
        results["from_database"] = args.from_database
    emulator = Emulator(dataset, args.latency_ms, args.port)
    results["emulator_index_s"] = round(emulator.index_s, 1)
    try:
        results["first"] = nightly(work, emulator, as_of, extra_env, args.executor)
        report("catch-up nightly" if args.from_database else "first nightly", results["first"])
        if args.keep_first:  # for comparing two builds table by table (compare_chain.py)
            copy_database(work / "driftgate.duckdb", work / "first.duckdb")
        results["quiet"] = nightly(work, emulator, as_of, extra_env, args.executor)
        report("nothing changed", results["quiet"])
    finally:
        emulator.stop()

    subprocess.run(
        [str(BIN / "driftgate"), "sandbox", "advance", "--dataset", str(dataset), "--days", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    next_day = json.loads((dataset / "manifest.json").read_text())["as_of"]
    if next_day == as_of:  # an older manifest keeps as_of: judge one day later
        next_day = (datetime.fromisoformat(as_of) + timedelta(days=1)).isoformat()
    emulator = Emulator(dataset, args.latency_ms, args.port)
    try:
        results["next_day"] = nightly(work, emulator, next_day, extra_env, args.executor)
        report("one day later", results["next_day"])
    finally:
        emulator.stop()

    for run in ("quiet", "next_day"):
        results[f"{run}_share"] = {
            "time": round(results[run]["wall_s"] / results["first"]["wall_s"], 3),
            "requests": round(
                results[run]["requests_total"] / results["first"]["requests_total"], 4
            ),
        }
    text = json.dumps(results, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    print(text)


def count_lines(path: Path) -> int:
    with path.open("rb") as lines:
        return sum(1 for line in lines if line.strip())


def report(name: str, run: dict[str, Any]) -> None:
    print(
        f"{name}: {run['wall_s']} s, {run['requests_total']} requests, "
        f"peak {run['peak_rss_mb']} MB, CPU job {run['job_cpu_s']} s and emulator "
        f"{run['emulator_cpu_s']} s, at once {run['most_in_flight']}, layers {run['layers_s']}",
        file=sys.stderr,
        flush=True,
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores {cpu}, Python {platform.python_version()}, DuckDB {duckdb.__version__}"


if __name__ == "__main__":
    main()
