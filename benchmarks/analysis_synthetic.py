"""Benchmark: the analysis layer alone on synthetic chain tables of N issues.

Run by hand (not part of the tests), after `benchmarks/ingest_scale.py --keep DIR`:

    uv run python benchmarks/analysis_synthetic.py DIR --issues 100000 [--out FILE]
        [--reuse] [--threads 2] [--memory-limit 8GB]

A real generated organisation is the template: DIR/bench.duckdb, its chain tables and
the raw rows the analysis reads, copied N / (its issues) times with shifted keys and
distinct texts (benchmarks/analysis_synthetic.sql says how) into FILE (default
DIR/synthetic-N.duckdb; rebuilt when it exists, unless --reuse). Every asset of the `analysis` group is
then rebuilt in dependency order as of the dataset's `as_of`, as its Dagster asset does
it (build and metadata, without the orchestration), printing each asset's wall time,
CPU time (every thread of the process) and the process's peak RSS so far (the copying
runs in a process of its own). Linear scaling
shows as the same per-issue time at every N. Record results in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import duckdb

from dagster_project.definitions import layer_tables
from dagster_project.lib.asof import parse_as_of
from dagster_project.lib.chainsql import build_table
from dagster_project.lib.policy import load_policy
from dagster_project.lib.rawstore import ensure_raw_schema
from dagster_project.metadata import table_metadata

SYNTHETIC_SQL = Path(__file__).with_name("analysis_synthetic.sql")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("work", help="the --keep folder of benchmarks/ingest_scale.py")
    parser.add_argument("--issues", type=int, required=True)
    parser.add_argument("--out", help="the synthetic database (default DIR/synthetic-N.duckdb)")
    parser.add_argument("--reuse", action="store_true", help="keep FILE when it exists")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="8GB")
    args = parser.parse_args()
    work = Path(args.work)
    out = Path(args.out or work / f"synthetic-{args.issues}.duckdb")
    as_of = parse_as_of(json.loads((work / "dataset" / "manifest.json").read_text())["as_of"])
    settings = {"threads": args.threads, "memory_limit": args.memory_limit}
    if not (args.reuse and out.exists()):
        started = time.monotonic()
        # in its own process: the peak RSS printed below is the analysis's alone
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            copies = pool.submit(build_synthetic, work / "bench.duckdb", out, args.issues, settings)
            copies = copies.result()
        print(f"synthetic chain: {copies} copies of {work / 'bench.duckdb'} in {out} "
              f"({time.monotonic() - started:.0f} s, {out.stat().st_size / 2**30:.1f} GiB)")  # fmt: skip
    run_analysis(out, as_of, settings)


def build_synthetic(source: Path, out: Path, issues: int, settings: dict) -> int:
    """Copies of the source organisation until there are `issues` issues (rounded to
    whole copies); returns the number of copies."""
    for stale in (out, out.with_name(out.name + ".wal")):
        stale.unlink(missing_ok=True)
    with duckdb.connect(str(out), config=settings) as con:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
        base = con.execute("SELECT count(*) FROM src.chain.work_items").fetchone()[0]
        copies = max(1, round(issues / base))
        ensure_raw_schema(con)
        con.execute("SET VARIABLE copies = ?", [copies])
        for statement in con.extract_statements(SYNTHETIC_SQL.read_text(encoding="utf-8")):
            con.execute(statement)
        con.execute("DETACH src")
        con.execute("CHECKPOINT")
    return copies


def run_analysis(db: Path, as_of, settings: dict) -> None:
    policy = load_policy()
    total_wall, total_cpu = time.monotonic(), time.process_time()
    with duckdb.connect(str(db), config=settings) as con:
        con.execute("SET enable_progress_bar = false")
        issues = con.execute("SELECT count(*) FROM chain.work_items").fetchone()[0]
        print(f"issues: {issues:,}; as_of {as_of.isoformat()}; {settings}")
        print(f"  {'asset':28s} {'wall':>8s} {'cpu':>8s} {'rows':>12s} {'peak RSS':>10s}")
        for table in layer_tables("analysis"):
            wall, cpu = time.monotonic(), time.process_time()
            rows = build_table(con, "analysis", table, policy, as_of, reuse=False)
            table_metadata(con, f"analysis.{table}", rows)
            print(f"  {table:28s} {time.monotonic() - wall:7.2f}s {time.process_time() - cpu:7.2f}s "
                  f"{rows:12,} {peak_rss_mb():8,.0f} MB", flush=True)  # fmt: skip
    wall, cpu = time.monotonic() - total_wall, time.process_time() - total_cpu
    print(f"analysis layer: {wall:.1f} s wall, {cpu:.1f} s CPU; {wall / issues * 1e6:.0f} µs "
          f"wall per issue; peak RSS {peak_rss_mb():,.0f} MB")  # fmt: skip


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
