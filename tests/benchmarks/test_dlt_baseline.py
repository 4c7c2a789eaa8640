"""The dlt baseline (benchmarks/dlt_baseline.py) reads what Driftgate's raw layer reads.

Runs without dlt: the script's endpoint lists are compared with the endpoints Driftgate's
sources request from a small organisation, scoped as the benchmark scopes it. A source
that starts reading a new endpoint fails this until the baseline mirrors it too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from dagster_project.sandbox.simulator import generate
from tests.conftest import sandbox_stats
from tests.ingest.harness import materialize

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "dlt_baseline.py"
RAW = ['key:"raw/jira"', 'key:"raw/gitlab"', 'key:"raw/confluence"']


def baseline():
    spec = importlib.util.spec_from_file_location("dlt_baseline", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports nothing of dlt at module level
    return module


def test_the_baseline_mirrors_every_data_endpoint_driftgate_reads(serve, tmp_path, monkeypatch):
    bench = baseline()
    dataset = tmp_path / "org"
    generate(dataset, seed=7, issues=60, flavor="cloud")
    bench.write_policy(tmp_path / "policy.yaml", bench.scope_of(dataset), workers=2)
    monkeypatch.setenv("DRIFTGATE_POLICY", str(tmp_path / "policy.yaml"))
    emulator = serve(dataset)

    materialize(emulator.url, tmp_path / "db.duckdb", RAW)

    requested = set(sandbox_stats(emulator.url)["by_endpoint"])
    bookkeeping = bench.endpoints(bench.DRIFTGATE_ONLY, "cloud")
    mirrored = bench.endpoints(set().union(*bench.MIRRORED.values()), "cloud")
    assert requested - bookkeeping == mirrored
    assert set(bench.DLT_INSTEAD) <= mirrored


def test_server_flavour_mirrors_the_offset_search():
    bench = baseline()
    jira = bench.endpoints(bench.MIRRORED["jira"], "server")
    assert "GET /rest/api/2/search" in jira
    assert not any("/rest/api/3/" in e or "search/jql" in e for e in jira)
