"""The scale benchmark's smoke variant (about 2,000 issues): the code that measures the
nightly at 10k and 100k keeps working. No timing is judged here; request counts are,
because they do not depend on the machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Three nightlies of a 2,000-issue organisation: about two minutes on a quiet machine.
pytestmark = pytest.mark.timeout(1500)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("bench")
    out = work / "results.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "nightly_scale.py"), "--smoke",
         "--work", str(work / "run"), "--json", str(out), "--memory-limit", "1GB"],
        cwd=REPO, capture_output=True, text=True, timeout=1400,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return json.loads(out.read_text())


def test_three_runs_are_measured(results: dict) -> None:
    assert results["issues"] == 2000
    assert results["duckdb_settings"] == {"DRIFTGATE_DUCKDB_MEMORY_LIMIT": "1GB"}
    for run in ("first", "quiet", "next_day"):
        figures = results[run]
        assert set(figures["layers_s"]) >= {"raw", "chain", "analysis", "reports"}
        assert figures["peak_rss_mb"] > 0 and figures["database_mb"] > 0
        assert figures["job_cpu_s"] > 0 and figures["emulator_cpu_s"] >= 0
        assert sum(figures["by_endpoint"].values()) == figures["requests_total"]
    assert results["first"]["emulator_cpu_s"] > 0  # thousands of requests served
    # the per-object calls went out two at a time, never more (the default policy)
    assert results["first"]["most_in_flight"]["gitlab"] == 2
    assert max(results["first"]["most_in_flight"].values()) <= 2


def test_quiet_and_next_day_runs_ask_for_what_changed(results: dict) -> None:
    first = results["first"]["requests_total"]
    quiet = results["quiet"]["requests_total"]
    next_day = results["next_day"]["requests_total"]
    assert quiet < next_day < first
    assert results["quiet_share"]["requests"] == round(quiet / first, 4)
    # the quiet run lists each source once and fetches no object again
    assert not any("/{key}/" in e or "/{iid}/" in e for e in results["quiet"]["by_endpoint"])


def test_listings_stay_within_five_percent_of_their_page_minimum(results: dict) -> None:
    listings = results["first"]["listings"]
    assert {"jira/issue", "gitlab/merge_request", "gitlab/commit", "confluence/page"} <= set(
        listings
    )
    for name, figures in listings.items():
        if name == "confluence/space":
            continue  # the reachability probe reads this endpoint too (limit=1)
        assert figures["requests"] <= 1.05 * figures["page_minimum"], (name, figures)
