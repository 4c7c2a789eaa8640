"""The report as a reader's browser shows it: headless Chromium (Debian's package, which
.ci/run installs) opens it from a file, finds every section, logs no console error and
runs no script; hostile text from the three tools stays text."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dagster_project.lib.report_html import render

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]  # fmt: skip
SECTIONS = ("Trend", "Quality gates", "Gaps", "Drift", "Rework share of capacity",
            "What the rework followed", "Ingestion completeness")  # fmt: skip


@pytest.fixture(scope="session")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = "chromium not found (Debian package chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser tests")
    pytest.skip(reason)


def browse(chromium: str, page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra, page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


def test_the_demo_report_shows_every_section_without_console_errors(judged_org, chromium, tmp_path):
    org = judged_org("demo", "cloud")
    report = org.db.parent / "reports" / "latest.html"
    dom = browse(chromium, report, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in SECTIONS[1:]:  # one judged day: no trend yet
        assert f"<h2>{section}</h2>" in dom.stdout
    assert "<script" not in dom.stdout
    assert console_errors(dom.stderr) == []
    shot = tmp_path / "report.png"
    taken = browse(chromium, report, tmp_path, f"--screenshot={shot}", "--window-size=1200,1800")
    assert taken.returncode == 0 and shot.stat().st_size > 10_000


HOSTILE = [
    "<script>document.title='owned'</script>",
    "<img src=x onerror=\"document.body.setAttribute('data-owned','1')\">",
    "javascript:document.title='owned'",
]


def test_hostile_source_text_stays_text_in_the_browser(chromium, tmp_path):
    text = " ".join(HOSTILE)
    finding = {"rule_id": "epic_without_prd", "severity": "high", "subject_key": text,
               "summary": text, "web_url": HOSTILE[2], "waived": False}  # fmt: skip
    gate = {"gate_id": "ui_gate", "subject_key": "WEB-1", "subject_title": text,
            "status": "late", "triggered_at": "2026-01-01 10:00", "missing": text,
            "web_url": HOSTILE[2]}  # fmt: skip
    page = tmp_path / "hostile.html"
    page.write_text(render(
        "report.html.j2", title=text, as_of="2026-01-01", sources=[("Jira", text)], cap=50,
        completeness=[{"source": "jira", "object_type": text, "expected": 1, "stored": 1,
                       "quarantined": 0, "missing": 0, "quarantine_reasons": text}],
        quarantine=[{"source": "jira", "object_type": "issue", "object_key": text,
                     "reason": text, "fetched_at": "2026-01-01"}],
        missing_total=0, quarantined_total=0,
        headline={"gate_compliance": 0.5, "gates_judged": 2, "open_gaps": 1, "open_drift": 1,
                  "rework_share": 0.1},
        charts={"rates": None, "counts": None},
        gates=[{"gate_id": "ui_gate", "title": text, "compliant": 1, "late": 1, "violated": 0,
                "waived": 0, "not_applicable": 0}],
        gate_teams=[{"gate_id": "ui_gate", "team": text, "compliant": 1, "judged": 2}],
        bypassed=[gate], gaps=[finding], drift=[finding],
        rework=[{"team": text, "delivered_items": 1, "delivered_hours": 1, "rework_events": 1,
                 "rework_hours": 1, "share": 0.5, "rework_deployments": 0,
                 "production_deployments": 1, "small": True}],
        root_causes=[{"factor": text, "exposed_items": 1, "exposed_reworked": 1,
                      "clean_items": 1, "clean_reworked": 0, "relative_risk": 3.0,
                      "ci_low": 0.2, "ci_high": 40.0, "small_sample": True}],
    ), encoding="utf-8")  # fmt: skip
    dom = browse(chromium, page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    title = dom.stdout.split("<title>")[1].split("</title>")[0]
    assert title.strip() != "owned" and "&lt;script&gt;" in title  # no script ran
    assert "data-owned" not in dom.stdout.replace("&quot;", '"').split("<body")[1].split(">")[0]
    assert "<script" not in dom.stdout and "<img" not in dom.stdout
    assert 'href="javascript:' not in dom.stdout.lower()
    assert dom.stdout.count("&lt;script&gt;") >= 5  # shown as text, everywhere it appears
    assert console_errors(dom.stderr) == []
