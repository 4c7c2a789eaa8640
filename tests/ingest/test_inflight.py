"""Per-object requests sent a few at once: never more than the policy allows, and the same
raw layer as one request at a time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from dagster_project.lib.inflight import in_order, read_ahead
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


class Pages:
    """A listing whose pages take a while to arrive; records when each was asked for,
    when the caller was done with the one before, and which thread asked."""

    def __init__(self, count: int, fail_at: int | None = None, delay_s: float = 0.03):
        self.count, self.fail_at, self.delay_s = count, fail_at, delay_s
        self.asked: list[tuple[int, float]] = []
        self.produced: list[int] = []
        self.threads: set[int] = set()

    def __iter__(self):
        for number in range(self.count):
            self.asked.append((number, time.monotonic()))
            self.threads.add(threading.get_ident())
            time.sleep(self.delay_s)
            if number == self.fail_at:
                raise ValueError(f"page {number}")
            self.produced.append(number)
            yield number


def test_read_ahead_asks_for_the_next_page_while_the_caller_handles_this_one():
    pages = Pages(5)
    handled: list[tuple[int, float]] = []
    for number in read_ahead(iter(pages)):
        time.sleep(0.05)  # storing the page
        handled.append((number, time.monotonic()))
    assert [n for n, _ in handled] == list(range(5))
    asked = dict(pages.asked)
    # page n+1 was asked for before the caller was done with page n
    assert all(asked[n + 1] < done for n, done in handled[:-1])
    assert threading.get_ident() not in pages.threads


def test_read_ahead_raises_a_failure_where_the_serial_loop_would():
    pages = Pages(6, fail_at=3)
    seen = []
    with pytest.raises(ValueError, match="page 3"):
        for number in read_ahead(iter(pages)):
            seen.append(number)
    assert seen == [0, 1, 2]


def test_read_ahead_closed_early_waits_for_the_page_on_its_way_and_asks_no_more():
    pages = Pages(10, delay_s=0.05)
    ahead = read_ahead(iter(pages))
    assert next(ahead) == 0
    ahead.close()  # the caller failed storing page 0
    # page 1 was on its way: it arrived before close returned, and nothing after it
    assert pages.produced == [0, 1]
    time.sleep(0.15)
    assert [n for n, _ in pages.asked] == [0, 1]


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
