"""The nightly job with the multiprocess executor: each unit of each source fetched in its
own step, in parallel within its pool, one step at a time in the database, and every
chain and analysis table the same as the in-process run's.

Both runs go through ``dg launch`` on a Dagster instance of their own whose pools are
limited (``duckdb`` 1, each source 2), as an operator would run them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import yaml

from dagster_project.defs.automation import (
    MULTIPROCESS_RUN_CONFIG,
    apply_pool_limits,
    pooled_home,
)
from dagster_project.lib.policy import load_policy
from dagster_project.sandbox.simulator import generate

# Two launches of the nightly, each step in its own process: minutes on a busy machine.
pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-03-31T18:00:00Z"
# Several units per source; payments-api is also in the payments group (fetched twice).
SCOPE = {
    "jira_projects": ["PAY", "WEB", "MOB"],
    "gitlab_groups": ["payments", "web"],
    "gitlab_projects": ["payments/payments-api"],
    "confluence_spaces": ["PAY", "WEB"],
}
UNITS = {
    "jira": {"project_PAY", "project_WEB", "project_MOB"},
    "gitlab": {"group_payments", "group_web", "project_payments_payments_api_1fcfce58"},
    "confluence": {"space_PAY", "space_WEB"},
}
SOURCE_POOL = 2


@pytest.fixture(scope="module")
def organisation(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("org") / "dataset"
    generate(root, seed=11, issues=60, flavor="cloud")
    return root


def launch(tmp: Path, url: str, name: str, config: Path | None = None) -> tuple[Path, float]:
    """``dg launch --job nightly`` into ``tmp/name``; returns the database and the time."""
    home = tmp / "dagster_home"
    folder = tmp / name
    folder.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "JIRA_URL": f"{url}/",
        "JIRA_USER": "driftgate",
        "JIRA_TOKEN": "t",
        "GITLAB_URL": url,
        "GITLAB_TOKEN": "t",
        "CONFLUENCE_URL": f"{url}/wiki",
        "CONFLUENCE_USER": "driftgate",
        "CONFLUENCE_TOKEN": "t",
        "DRIFTGATE_DB": str(folder / "driftgate.duckdb"),
        "DRIFTGATE_REPORTS": str(folder / "reports"),
        "DRIFTGATE_POLICY": str(tmp / "policy.yaml"),
        "DRIFTGATE_AS_OF": AS_OF,
    }
    command = [str(Path(sys.executable).with_name("dg")), "launch", "--job", "nightly"]
    if config:
        command += ["-c", str(config)]
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / "driftgate.duckdb", elapsed


@pytest.fixture(scope="module")
def runs(organisation, tmp_path_factory):
    from dagster_project.sandbox.emulator import server

    tmp = tmp_path_factory.mktemp("runs")
    policy = yaml.safe_load((REPO / "dagster_project/policy/default.yaml").read_text())
    policy["scope"] = SCOPE
    policy["operations"]["parallel_requests"] = dict.fromkeys(UNITS, SOURCE_POOL)
    policy["operations"]["requests_per_step"] = 1  # so each pool allows SOURCE_POOL steps
    (tmp / "policy.yaml").write_text(yaml.safe_dump(policy))
    home = pooled_home(tmp / "dagster_home")
    # the pools as the policy sets them (`driftgate pools`)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        limits = apply_pool_limits(instance, load_policy(tmp / "policy.yaml"))
    assert limits == {source: SOURCE_POOL for source in UNITS} | {"duckdb": 1}
    running = server.start(str(organisation))
    try:
        in_process = launch(tmp, running.url, "in_process")
        multiprocess = launch(tmp, running.url, "multiprocess", MULTIPROCESS_RUN_CONFIG)
    finally:
        running.stop()
    print(f"\nnightly in process {in_process[1]:.1f}s, multiprocess {multiprocess[1]:.1f}s")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        events = {}
        for record in instance.get_run_records():
            logged = [e for e in instance.all_logs(record.dagster_run.run_id) if e.dagster_event]
            engine = " ".join(e.message or "" for e in logged if e.dagster_event.is_engine_event)
            events["multiprocess" if "multiprocess executor" in engine else "in_process"] = logged
    assert set(events) == {"in_process", "multiprocess"}
    return {"db": {"in_process": in_process[0], "multiprocess": multiprocess[0]}, "events": events}


def steps(entries: list[dg.EventLogEntry]) -> dict[str, tuple[float, float]]:
    """Step key -> (start, end) from a run's event log."""
    start: dict[str, float] = {}
    span: dict[str, tuple[float, float]] = {}
    for entry in entries:
        kind, key = entry.dagster_event_type, entry.step_key
        if kind == dg.DagsterEventType.STEP_START:
            start[key] = entry.timestamp
        elif kind == dg.DagsterEventType.STEP_SUCCESS:
            span[key] = (start[key], entry.timestamp)
    return span


def most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = top = 0
    for _, step in edges:
        running += step
        top = max(top, running)
    return top


def test_each_unit_is_its_own_step_and_the_pools_hold(runs):
    in_process = " ".join(e.message or "" for e in runs["events"]["in_process"])
    assert "Executing steps in process" in in_process  # the nightly job's default

    spans = steps(runs["events"]["multiprocess"])
    for source, units in UNITS.items():
        fetches = {
            k.split("[")[1].rstrip("]"): v for k, v in spans.items() if f"fetch_{source}_unit[" in k
        }
        assert set(fetches) == units, source
        assert most_at_once(list(fetches.values())) <= SOURCE_POOL, source
    fetch_spans = [v for k, v in spans.items() if ".fetch_" in k]
    assert most_at_once(fetch_spans) >= 2  # units really were fetched side by side
    # Everything else opens the database: one step at a time.
    database = [v for k, v in spans.items() if ".fetch_" not in k and "_units" not in k]
    assert len(database) > 40
    assert most_at_once(database) == 1


def test_the_multiprocess_run_gives_the_in_process_tables(runs):
    first, second = runs["db"]["in_process"], runs["db"]["multiprocess"]
    tables = [
        f"{schema}.{name}"
        for schema, name in query(first, "SELECT schema_name, table_name FROM duckdb_tables() "
                                         "WHERE schema_name IN ('chain', 'analysis')")
    ]  # fmt: skip
    assert len(tables) > 25
    analysis_rows = 0
    for table in tables:
        a, b = normalized(first, table), normalized(second, table)
        assert a == b, f"{table} differs: {list((a - b).elements())[:2]}"
        analysis_rows += sum(a.values()) if table.startswith("analysis.") else 0
    assert analysis_rows > 100
    for raw in ("raw.latest", "raw.objects"):  # the current rows and the whole history
        rows = f"SELECT source, object_type, object_key, content_hash, deleted FROM {raw}"  # noqa: S608
        assert Counter(query(first, rows)) == Counter(query(second, rows)), raw


def query(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def normalized(db: Path, table: str) -> Counter:
    """The table's rows as a multiset, every raw_id replaced by the raw row it names
    (source, type, key, content hash): the numbers differ between databases whose
    sources were loaded in another order, the rows they point at must not."""
    with duckdb.connect(str(db), read_only=True) as con:
        names = {
            raw_id: f"{s}/{t}/{k}#{h}"
            for raw_id, s, t, k, h in con.execute(
                "SELECT raw_id, source, object_type, object_key, content_hash FROM raw.objects"
            ).fetchall()
        }
        cursor = con.execute(f"SELECT * FROM {table}")  # noqa: S608 - names from the catalog
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall()

    def walk(key: str, value: Any) -> Any:
        if key.endswith("raw_id") and isinstance(value, int) and not isinstance(value, bool):
            return names.get(value, value)
        if isinstance(value, dict):
            return {k: walk(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(key, v) for v in value]
        return value

    def cell(column: str, value: Any) -> Any:
        if isinstance(value, str) and value[:1] in "{[":
            try:
                value = json.loads(value)
            except ValueError:
                return value
        if isinstance(value, dict | list):
            return json.dumps(walk(column, value), sort_keys=True, default=str)
        return walk(column, value)

    return Counter(tuple(cell(c, v) for c, v in zip(columns, row, strict=True)) for row in rows)
