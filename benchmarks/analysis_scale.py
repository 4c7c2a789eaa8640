"""Benchmark: the analysis layer alone, on a database a nightly run already filled.

Run by hand (not part of the tests), after `benchmarks/ingest_scale.py --keep DIR`:

    uv run python benchmarks/analysis_scale.py DIR [--threads 2] [--memory-limit 4GB]

Rebuilds every asset of the `analysis` group on DIR/bench.duckdb, judged as of the
dataset's `as_of`, and prints the wall time of each asset, the total, the rows of the
gate and finding tables and the peak RSS of the process. Record results in
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from dagster_project.definitions import defs
from dagster_project.lib.asof import AS_OF_TAG, parse_as_of
from dagster_project.lib.chainsql import policy_frames, policy_variables, register_functions
from dagster_project.lib.policy import load_policy
from dagster_project.lib.sql import SQL_DIR, run_sql


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("work", help="the --keep folder of benchmarks/ingest_scale.py")
    args = parser.parse_args()
    work = Path(args.work)
    db = work / "bench.duckdb"
    as_of = json.loads((work / "dataset" / "manifest.json").read_text())["as_of"]
    definitions = defs.load_fn()
    started = time.monotonic()
    analysis = [a for a in definitions.assets or [] if a.key.path[0] == "analysis"]
    checks = [
        c
        for c in definitions.asset_checks or []
        if next(iter(c.check_keys)).asset_key.path[0] == "analysis"
    ]
    result = dg.materialize(
        [*analysis, *checks],
        resources={"duckdb": DuckDBResource(database=str(db))},
        tags={AS_OF_TAG: as_of},
    )
    total = time.monotonic() - started
    steps = {
        e.step_key: e.event_specific_data.duration_ms / 1000  # type: ignore[union-attr]
        for e in result.all_events
        if e.event_type_value == "STEP_SUCCESS"
    }
    with duckdb.connect(str(db), read_only=True) as con:
        counts = {
            t: con.execute(f"SELECT count(*) FROM analysis.{t}").fetchone()[0]  # noqa: S608
            for t in ("subjects", "requirement_spans", "gate_evaluations", "findings")
        }
        issues = con.execute("SELECT count(*) FROM chain.work_items").fetchone()[0]
    print(f"machine: {platform.machine()} {platform.system()}, database {db}")
    print(f"issues: {issues:,}; as_of {as_of}")
    for step, seconds in sorted(steps.items(), key=lambda kv: -kv[1]):
        print(f"  {step:60s} {seconds:7.2f} s")
    print(f"analysis layer: {total:.1f} s wall (Dagster included); rows {counts}")
    print("per rule file (the SELECT alone, on the built tables):")
    for name, seconds in rule_timings(db, as_of):
        print(f"  {name:60s} {seconds:7.2f} s")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def rule_timings(db: Path, as_of: str) -> list[tuple[str, float]]:
    """Each rule file of the folder-built tables, timed alone: what one rule costs."""
    out = []
    with duckdb.connect(str(db)) as con:
        con.execute("SET TimeZone = 'UTC'")
        register_functions(con)
        policy = load_policy()
        for name, frame in policy_frames(policy).items():
            con.register(name, frame)
        run_sql(con, "prelude", policy_variables(policy, parse_as_of(as_of)), transaction=False)
        for folder in ("requirement_spans", "findings", "rework_events"):
            for file in sorted((SQL_DIR / "analysis" / folder).glob("*.sql")):
                select = file.read_text(encoding="utf-8").strip().rstrip(";")
                started = time.monotonic()
                con.execute(f"SELECT count(*) FROM ({select})").fetchone()  # noqa: S608
                out.append((f"{folder}/{file.stem}", time.monotonic() - started))
    return out


if __name__ == "__main__":
    main()
