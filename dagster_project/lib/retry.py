"""Bounded retries for source requests: Retry-After honoured, jittered exponential backoff.

The clients' own retry loops are unbounded or blind to some faults (``jira`` sleeps
10 x 2^n s on a reset, atlassian-python-api retries resets forever, python-gitlab
ignores 5xx by default), so every page request goes through :func:`with_retries`
instead, with the clients' retries turned down. When the attempts run out the error is
one line naming the request, never the credentials.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import requests

T = TypeVar("T")

RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class SourceError(RuntimeError):
    """A source request that failed for good; the message is one line, secret-free."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_s: float = 0.5
    max_s: float = 30.0
    max_retry_after_s: float = 120.0
    deadline_at: float | None = None  # time.monotonic(); no attempt or wait beyond it


def status_of(exc: BaseException) -> int | None:
    for attr in ("status_code", "response_code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def retry_after_of(exc: BaseException, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked us to wait: Retry-After, else a rate-limit reset header.

    ``X-RateLimit-Reset``/``RateLimit-Reset`` hold an epoch (Jira, GitLab) or, in the
    IETF draft form, seconds from now; both are read.
    """
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    if not hasattr(headers, "get"):
        return None
    for name in ("Retry-After", "X-RateLimit-Reset", "RateLimit-Reset"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        if name != "Retry-After" and seconds > 1e9:  # an epoch
            seconds = seconds - now()
        return max(seconds, 0.0)
    return None


def is_transient(exc: BaseException) -> bool:
    """Network faults, truncated bodies and the statuses a server sends when overloaded."""
    if isinstance(
        exc,
        requests.ConnectionError
        | requests.Timeout
        | requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError
        | json.JSONDecodeError
        | ConnectionError
        | TimeoutError,
    ):
        return True
    status = status_of(exc)
    if status in RETRYABLE_STATUS:
        return True
    # python-gitlab wraps resets and truncations in GitlabHttpError/GitlabParsingError
    # without a status; their message carries the cause.
    name = type(exc).__name__
    if name in ("GitlabParsingError", "GitlabConnectionError"):
        return True
    return False


def _from_a_client(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    return isinstance(exc, requests.RequestException) or module.split(".")[0] in (
        "jira",
        "gitlab",
        "atlassian",
        "requests",
        "urllib3",
    )


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def describe(exc: BaseException) -> str:
    status = status_of(exc)
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if status and str(status) not in message:
        message = f"HTTP {status}: {message}"
    return f"{type(exc).__name__}: {message}"[:300]


def with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy = RetryPolicy(),
    secrets: Iterable[str] = (),
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``fn`` until it succeeds, retrying transient failures within ``policy``."""
    secrets = tuple(secrets)
    for attempt in range(1, policy.attempts + 1):
        if policy.deadline_at is not None and clock() >= policy.deadline_at:
            raise SourceError(f"{what}: the source's deadline passed; stopped before this request")
        try:
            return fn()
        except Exception as exc:  # classified below; anything else is re-raised as is
            if not is_transient(exc):
                if status_of(exc) is None and not _from_a_client(exc):
                    raise  # a defect, not a source failure: keep its traceback
                raise SourceError(scrub(f"{what}: {describe(exc)}", secrets)) from exc
            if attempt == policy.attempts:
                raise SourceError(
                    scrub(f"{what}: gave up after {attempt} attempts: {describe(exc)}", secrets)
                ) from exc
            hinted = retry_after_of(exc)
            if hinted is not None:
                delay = min(hinted, policy.max_retry_after_s)
            else:
                delay = min(policy.max_s, policy.base_s * 2 ** (attempt - 1))
                # seeded only for a retry (from the OS: tens of microseconds that every
                # request paid, though almost every request succeeds at once)
                rng = rng or random.Random()
                delay *= rng.uniform(0.5, 1.0)
            if policy.deadline_at is not None and clock() + delay >= policy.deadline_at:
                raise SourceError(
                    scrub(
                        f"{what}: the source's deadline passed after {attempt} attempts: "
                        f"{describe(exc)}",
                        secrets,
                    )
                ) from exc
            sleep(delay)
    raise AssertionError("unreachable")
