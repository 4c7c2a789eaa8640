"""Per-object requests sent a few at once: never more than the policy allows, and the same
raw layer as one request at a time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from dagster_project.lib.inflight import ahead, in_order, offset_pages, read_ahead
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


def test_ahead_runs_the_next_calls_while_the_caller_takes_one_and_keeps_the_order():
    probe = Probe(delay_s=0.03)
    taken: list[int] = []
    for result in ahead(probe, range(8), 3):
        with probe.lock:  # what was started but not taken yet
            waiting = len(probe.started) - len(taken)
        assert waiting <= 3
        taken.append(result)
        time.sleep(0.03)  # storing it
    assert taken == [i * 10 for i in range(8)]
    assert probe.most == 3 and threading.get_ident() not in probe.threads


def test_ahead_with_one_worker_calls_in_the_callers_thread_as_it_takes():
    probe = Probe(delay_s=0)
    results = ahead(probe, [1, 2, 3], 1)
    assert probe.started == []  # nothing before it is asked for
    assert next(results) == 10 and probe.started == [1]
    assert list(results) == [20, 30] and probe.threads == {threading.get_ident()}


def test_ahead_raises_a_failure_in_order_and_closed_early_leaves_nothing_running():
    probe = Probe(delay_s=0.02, fail_on={2})
    seen = []
    with pytest.raises(ValueError, match="item 2"):
        for result in ahead(probe, range(10), 2):
            seen.append(result)
    assert seen == [0, 10] and probe.running == 0
    assert max(probe.started) <= 4  # at most two started beyond the one that failed
    probe = Probe(delay_s=0.05)
    results = ahead(probe, range(10), 2)
    assert next(results) == 0
    results.close()
    assert probe.running == 0  # the calls on their way were awaited
    time.sleep(0.1)
    assert len(probe.started) == 3  # and none started after them


class OffsetListing:
    """A listing paged by offset as Jira Server pages its search: ``fetch(start)`` grants
    at most ``cap`` items and reports the total; ``on_fetch`` may change the listing as
    a page is read (issues updated meanwhile move to its end)."""

    def __init__(self, count: int, cap: int, delay_s: float = 0.02, on_fetch=None):
        self.items = list(range(count))
        self.cap, self.delay_s, self.on_fetch = cap, delay_s, on_fetch
        self.lock = threading.Lock()
        self.running = self.most = 0
        self.asked: list[int] = []

    def __call__(self, start: int) -> tuple[list[int], int]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.asked.append(start)
        try:
            with self.lock:
                if self.on_fetch:
                    self.on_fetch(self, start)
                page, total = self.items[start : start + self.cap], len(self.items)
            time.sleep(self.delay_s)
            return page, total
        finally:
            with self.lock:
                self.running -= 1


def _read(listing: OffsetListing, workers: int) -> list[int]:
    return [item for page, _ in offset_pages(listing, workers) for item in page]


def test_offset_pages_come_in_order_with_as_many_asked_at_once_as_allowed():
    listing = OffsetListing(95, cap=10)
    assert _read(listing, 3) == list(range(95))
    assert listing.most == 3
    assert sorted(listing.asked) == list(range(0, 95, 10))  # each page asked once
    one_at_a_time = OffsetListing(95, cap=10)
    assert _read(one_at_a_time, 1) == list(range(95)) and one_at_a_time.most == 1


def test_the_first_page_sets_the_size_the_server_grants():
    listing = OffsetListing(23, cap=4)  # asked for more, granted 4 a page
    assert _read(listing, 2) == list(range(23))
    assert sorted(listing.asked) == list(range(0, 23, 4))


def test_a_listing_that_grows_or_shrinks_while_read_ends_where_its_pages_say():
    def grow(listing, start):
        if start == 20 and len(listing.items) == 50:
            listing.items.extend(range(50, 65))

    grown = OffsetListing(50, cap=10, on_fetch=grow)
    assert _read(grown, 2) == list(range(65))

    def shrink(listing, start):
        if start == 10:
            del listing.items[40:]

    shrunk = OffsetListing(60, cap=10, on_fetch=shrink)
    assert _read(shrunk, 3) == list(range(40))


def test_a_short_page_before_the_end_is_continued_from_where_it_stopped():
    def cap_once(listing, start):
        listing.cap = 6 if start == 20 else 10  # one page granted fewer than the first

    listing = OffsetListing(57, cap=10, on_fetch=cap_once)
    # every item exactly once: the pages asked for past the short one are dropped
    assert _read(listing, 3) == list(range(57))
    assert 26 in listing.asked


def test_offset_pages_raise_a_failure_in_order_and_leave_no_request_running():
    def fail(listing, start):
        if start == 30:
            raise ValueError("page at 30")

    listing = OffsetListing(100, cap=10, on_fetch=fail)
    seen: list[int] = []
    with pytest.raises(ValueError, match="page at 30"):
        for page, _ in offset_pages(listing, 2):
            seen.extend(page)
    assert seen == list(range(30))
    assert listing.running == 0


def test_offset_pages_closed_early_wait_for_the_pages_on_their_way():
    listing = OffsetListing(200, cap=10, delay_s=0.05)
    pages = offset_pages(listing, 2)
    next(pages)
    next(pages)
    pages.close()
    assert listing.running == 0
    asked = len(listing.asked)
    time.sleep(0.15)
    assert len(listing.asked) == asked <= 4


@pytest.fixture(scope="module")
def organisation(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("org") / "demo"
    generate(root, seed=11, issues=60, flavor="cloud")
    return root


def _ingest(
    url: str, tmp: Path, monkeypatch, per_step: int, page_size: int = 100
) -> tuple[dict, list[tuple]]:
    tmp.mkdir()
    policy = tmp / "policy.yaml"
    policy.write_text(
        f"operations:\n  requests_per_step: {per_step}\ningest:\n  page_size: {page_size}\n"
    )
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
    # the next project's repository tree and tags are read while one project is stored
    for listing in ("tree", "tags"):
        endpoint = f"GET /api/v4/projects/{{id}}/repository/{listing}"
        assert serial["most_in_flight_by_endpoint"][endpoint] == 1
        assert paired["most_in_flight_by_endpoint"][endpoint] == 2


def test_server_search_pages_come_two_at_a_time_and_store_the_same(serve, tmp_path, monkeypatch):
    root = tmp_path / "org"
    generate(root, seed=11, issues=60, flavor="server")
    url = serve(root, latency_ms=15).url
    serial, serial_rows = _ingest(url, tmp_path / "one", monkeypatch, 1, page_size=10)
    paired, paired_rows = _ingest(url, tmp_path / "two", monkeypatch, 2, page_size=10)

    assert serial["by_endpoint"]["GET /rest/api/2/search"] >= 6  # pages of 10
    search = "GET /rest/api/2/search"
    assert serial["most_in_flight"]["jira"] == 1
    assert serial["most_in_flight_by_endpoint"][search] == 1
    # two search pages on the wire at once, and never more than the policy's two requests
    assert paired["most_in_flight_by_endpoint"][search] == 2
    assert paired["most_in_flight"]["jira"] == 2
    assert paired["by_endpoint"] == serial["by_endpoint"]
    assert paired_rows == serial_rows
