"""Bounded retries: transient faults retried with Retry-After, others fail at once."""

import random

import pytest
import requests

from dagster_project.lib.retry import RetryPolicy, SourceError, with_retries


class FakeResponse:
    def __init__(self, status, headers=None):
        self.status_code = status
        self.headers = headers or {}


def http_error(status, headers=None):
    return requests.HTTPError(f"{status} error", response=FakeResponse(status, headers))


def flaky(failures):
    calls = {"n": 0}

    def fn():
        calls["n"] += 1
        if calls["n"] <= len(failures):
            raise failures[calls["n"] - 1]
        return "ok"

    return fn, calls


def test_transient_failures_are_retried_honouring_retry_after():
    sleeps = []
    fn, calls = flaky(
        [
            http_error(429, {"Retry-After": "3"}),
            requests.ConnectionError("reset"),
            requests.exceptions.ChunkedEncodingError("truncated"),
        ]
    )
    assert with_retries(fn, what="x", sleep=sleeps.append, rng=random.Random(1)) == "ok"
    assert calls["n"] == 4
    assert sleeps[0] == 3.0  # the server's hint, not the backoff
    assert all(0 < s <= 30 for s in sleeps[1:])


def test_gives_up_after_the_bounded_attempts_with_one_line():
    fn, calls = flaky([http_error(503)] * 10)
    with pytest.raises(SourceError) as err:
        with_retries(
            fn,
            what="jira GET search",
            policy=RetryPolicy(attempts=3, base_s=0),
            sleep=lambda s: None,
        )
    assert calls["n"] == 3
    assert "gave up after 3 attempts" in str(err.value)
    assert "\n" not in str(err.value)


def test_client_errors_are_not_retried_and_secrets_are_scrubbed():
    refused = requests.HTTPError("token s3cr3t-token refused", response=FakeResponse(401))
    fn, calls = flaky([refused] * 3)
    with pytest.raises(SourceError) as err:
        with_retries(fn, what="gitlab GET projects", secrets=["s3cr3t-token"], sleep=lambda s: None)
    assert calls["n"] == 1
    assert "s3cr3t-token" not in str(err.value) and "***" in str(err.value)
    assert "401" in str(err.value)


def test_rate_limit_reset_headers_are_honoured_without_retry_after():
    from dagster_project.lib.retry import retry_after_of

    epoch = http_error(429, {"X-RateLimit-Reset": "1795000010"})
    assert retry_after_of(epoch, now=lambda: 1795000004.0) == 6.0
    delta = http_error(429, {"RateLimit-Reset": "7"})
    assert retry_after_of(delta) == 7.0
    both = http_error(429, {"Retry-After": "2", "X-RateLimit-Reset": "1795000010"})
    assert retry_after_of(both, now=lambda: 1795000004.0) == 2.0
    assert retry_after_of(http_error(503, {})) is None


def test_the_source_deadline_stops_retries_instead_of_waiting_past_it():
    now = {"t": 100.0}
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        now["t"] += s

    fn, calls = flaky([http_error(429, {"Retry-After": "60"})] * 10)
    with pytest.raises(SourceError) as err:
        with_retries(
            fn,
            what="gitlab GET /projects",
            policy=RetryPolicy(attempts=10, deadline_at=150.0),
            sleep=sleep,
            clock=lambda: now["t"],
        )
    assert calls["n"] == 1 and sleeps == []  # a 60 s wait would cross the deadline
    assert "deadline passed" in str(err.value)

    passed, calls = flaky([])
    with pytest.raises(SourceError, match="stopped before this request"):
        with_retries(passed, what="x", policy=RetryPolicy(deadline_at=99.0), clock=lambda: 100.0)
    assert calls["n"] == 0
