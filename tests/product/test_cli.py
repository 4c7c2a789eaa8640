"""The `driftgate` command as users run it: a subprocess, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import requests

from tests.conftest import HANDMADE

REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-token-4d1f9"


def driftgate(*args: str, cwd: Path, env: dict | None = None, timeout: int = 300):
    full_env = {**os.environ, **(env or {})}
    for name in ("JIRA_URL", "GITLAB_URL", "CONFLUENCE_URL", "DAGSTER_HOME"):
        if env is None or name not in env:
            full_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "dagster_project.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_errors_are_one_line_and_non_zero(tmp_path):
    missing = driftgate("run", "--dataset", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0
    assert "is not a dataset" in missing.stderr

    bad = tmp_path / "policy.yaml"
    bad.write_text("confluence:\n  labels:\n    prd_label: prd\n")
    checked = driftgate("policy", "check", str(bad), cwd=tmp_path)
    assert checked.returncode == 1
    assert "confluence.labels.prd_label" in checked.stderr
    assert checked.stderr.strip().count("\n") == 0


def test_run_help_names_the_variables_and_the_real_as_of_default(tmp_path):
    dataset = tmp_path / "data" / "sandbox" / "demo"
    shutil.copytree(HANDMADE, dataset)
    result = driftgate("run", "--help", cwd=tmp_path)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for name in ("JIRA_URL", "JIRA_TOKEN", "GITLAB_URL", "GITLAB_TOKEN", "CONFLUENCE_URL",
                 "CONFLUENCE_USER", "DRIFTGATE_DB", "DRIFTGATE_REPORTS", "DRIFTGATE_POLICY",
                 "DRIFTGATE_DATASET", "DRIFTGATE_AS_OF", "DAGSTER_HOME"):  # fmt: skip
        assert name in text
    # the default it would take here: the demo dataset's own as_of
    assert "data/sandbox/demo: 2026-03-31T18:00:00.000+00:00" in text
    assert "the sandbox never fills in beside a real server" in text


def test_policy_check_explains_a_valid_file(tmp_path):
    good = tmp_path / "policy.yaml"
    good.write_text("scope:\n  jira_projects: [PAY, WEB]\n  confluence_spaces: [DOC]\n")
    checked = driftgate("policy", "check", str(good), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "valid policy" in checked.stdout
    assert "PAY, WEB" in checked.stdout and "DOC" in checked.stdout


def test_sandbox_serve_prints_its_url_first(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster_project.cli",
            "sandbox",
            "serve",
            "--dataset",
            str(HANDMADE),
            "--require-token",
            SECRET,
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(f"{url}/rest/api/2/serverInfo", timeout=5).status_code == 401
        ok = requests.get(f"{url}/api/v4/projects", headers={"PRIVATE-TOKEN": SECRET}, timeout=5)
        assert ok.status_code == 200 and len(ok.json()) > 0
        stats = requests.get(f"{url}/_sandbox/stats", timeout=5).json()
        assert stats["requests"] == {"jira": 1, "gitlab": 1, "confluence": 0}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_run_against_configured_servers_never_leaks_the_token(serve, tmp_path):
    """The path real servers take: URLs and tokens from the environment (EnvVar)."""
    data = shutil.copytree(HANDMADE, tmp_path / "data")
    issues = data / "jira" / "issues.jsonl"
    rows = [json.loads(line) for line in issues.read_text().splitlines() if line]
    rows[2]["key"] = "PAY-<script>alert(1)</script>"  # quarantined, then shown in the report
    issues.write_text("".join(json.dumps(r) + "\n" for r in rows))
    emulator = serve(data, require_token=SECRET)
    env = {
        "JIRA_URL": emulator.url,
        "JIRA_USER": "svc",
        "JIRA_TOKEN": SECRET,
        "GITLAB_URL": emulator.url,
        "GITLAB_TOKEN": SECRET,
        "CONFLUENCE_URL": f"{emulator.url}/wiki",
        "CONFLUENCE_USER": "svc",
        "CONFLUENCE_TOKEN": SECRET,
        "DRIFTGATE_DB": str(tmp_path / "dg.duckdb"),
        "DRIFTGATE_REPORTS": str(tmp_path / "reports"),
    }
    result = driftgate("run", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    report = (tmp_path / "reports" / "latest.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    assert "<script>" not in report
    for text in (result.stdout, result.stderr, report):
        assert SECRET not in text
    import duckdb

    with duckdb.connect(str(tmp_path / "dg.duckdb"), read_only=True) as con:
        dumped = con.execute("SELECT string_agg(payload::VARCHAR, '') FROM raw.objects").fetchone()[
            0
        ]
    assert SECRET not in dumped


@pytest.mark.timeout(600)
def test_demo_runs_end_to_end_from_an_empty_folder(tmp_path):
    """README command one: zero configuration, a generated organisation, a report."""
    result = driftgate("demo", cwd=tmp_path, env={})
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "data" / "sandbox" / "demo" / "manifest.json").exists()
    report = tmp_path / "reports" / "latest.html"
    assert report.exists()
    assert f"report:   {report.resolve()}" in result.stdout
    html = report.read_text()
    assert "Ingestion completeness" in html
    assert "Complete:" in html  # every reported object stored or quarantined
    manifest = json.loads((tmp_path / "data/sandbox/demo/manifest.json").read_text())
    assert f"Judged as of {manifest['as_of'][:10]}" in html  # the organisation's "now"
    for section in ("Trend", "Quality gates", "Gaps", "Drift", "Rework share of capacity",
                    "What the rework followed"):  # fmt: skip
        assert f"<h2>{section}</h2>" in html
    assert str(tmp_path) not in html  # no local path: sources are named, not files
    assert "Jira (sandbox)" in html
    assert html.count("<polyline") == 4  # two charts of two series over the judged days
    assert result.stdout.count("(history)") == 4  # earlier days judged for the trend
    assert (tmp_path / "reports" / "exports" / "findings.parquet").exists()
    # the runs are recorded in the instance `dg dev` opens with the same DAGSTER_HOME
    instance = dg.DagsterInstance.from_config(str(tmp_path / ".dagster_home"))
    runs = instance.get_runs()
    assert len(runs) == 5 and {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
    assert sorted(r.tags["driftgate/as_of"][:10] for r in runs)[-1] == manifest["as_of"][:10]
    assert instance.get_latest_materialization_event(dg.AssetKey(["analysis", "findings"]))
