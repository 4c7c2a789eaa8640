"""Per-object requests sent a few at once: never more than the policy allows, and the same
raw layer as one request at a time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from dagster_project.lib.inflight import in_order
from dagster_project.sandbox.simulator import generate
from tests.conftest import sandbox_stats
from tests.ingest.harness import materialize, table

RAW = ['key:"raw/jira"', 'key:"raw/gitlab"', 'key:"raw/confluence"']


class Probe:
    """A call that records how many of its kind run at once and in which thread."""

    def __init__(self, delay_s: float = 0.02, fail_on: set[int] | None = None):
        self.delay_s = delay_s
        self.fail_on = fail_on or set()
        self.lock = threading.Lock()
        self.running = self.most = 0
        self.started: list[int] = []
        self.threads: set[int] = set()

    def __call__(self, item: int) -> int:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.started.append(item)
            self.threads.add(threading.get_ident())
        try:
            time.sleep(self.delay_s)
            if item in self.fail_on:
                raise ValueError(f"item {item}")
            return item * 10
        finally:
            with self.lock:
                self.running -= 1


def test_in_order_keeps_the_order_and_the_bound():
    probe = Probe()
    assert in_order(probe, list(range(12)), 3) == [i * 10 for i in range(12)]
    assert probe.most == 3
    assert sorted(probe.started) == list(range(12))


def test_one_worker_calls_in_the_callers_thread():
    probe = Probe(delay_s=0)
    assert in_order(probe, [1, 2, 3], 1) == [10, 20, 30]
    assert probe.threads == {threading.get_ident()} and probe.most == 1


def test_the_first_failure_in_order_is_raised_and_the_rest_is_not_sent():
    probe = Probe(delay_s=0.05, fail_on={1, 3})
    with pytest.raises(ValueError, match="item 1"):
        in_order(probe, list(range(40)), 2)
    # the failure stopped the calls not yet started (a few may have begun meanwhile)
    assert len(probe.started) < 40
    assert probe.running == 0  # none outlives the call


@pytest.fixture(scope="module")
def organisation(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("org") / "demo"
    generate(root, seed=11, issues=60, flavor="cloud")
    return root


def _ingest(url: str, tmp: Path, monkeypatch, per_step: int) -> tuple[dict, list[tuple]]:
    tmp.mkdir()
    policy = tmp / "policy.yaml"
    policy.write_text(f"operations:\n  requests_per_step: {per_step}\n")
    monkeypatch.setenv("DRIFTGATE_POLICY", str(policy))
    requests.delete(f"{url}/_sandbox/stats", timeout=10)
    db = tmp / "dg.duckdb"
    materialize(url, db, RAW)
    stored = table(
        db,
        "SELECT source, object_type, object_key, content_hash, deleted FROM raw.current "
        "ORDER BY ALL",
    )
    return sandbox_stats(url), stored


def test_per_object_requests_overlap_within_the_policy(serve, organisation, tmp_path, monkeypatch):
    # one emulator for both runs (payloads name its port); latency keeps each request
    # open long enough for the next one to overlap it
    url = serve(organisation, latency_ms=15).url
    serial, serial_rows = _ingest(url, tmp_path / "one", monkeypatch, 1)
    paired, paired_rows = _ingest(url, tmp_path / "two", monkeypatch, 2)

    assert set(serial["most_in_flight"].values()) == {1}
    # GitLab's changes and Confluence's version histories come two at a time, and no API
    # ever sees more than the policy's two (parallel_requests defaults to 2 per source)
    assert paired["most_in_flight"]["gitlab"] == 2
    assert paired["most_in_flight"]["confluence"] == 2
    assert max(paired["most_in_flight"].values()) <= 2
    # the same requests, and the same objects stored
    assert paired["by_endpoint"] == serial["by_endpoint"]
    assert paired_rows == serial_rows and len(serial_rows) > 1000
