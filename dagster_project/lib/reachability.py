"""Before a source is read: can its server be reached, and do the credentials work?

One authenticated GET per source, one attempt, short timeouts. A refused connection,
an unknown host, a TLS failure or rejected credentials are not worth minutes of
retries: the run reports them as one line naming the source, the host and the cause,
with the variable to check, and moves on.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from dagster_project.lib.connections import Connection
from dagster_project.lib.instances import normalise_url
from dagster_project.lib.retry import retry_after_of, scrub

# An authenticated read per source: 401/403 here means the credentials, not the scope.
PROBE_PATHS = {
    "jira": "/rest/api/2/myself",
    "gitlab": "/api/v4/user",
    "confluence": "/rest/api/space?limit=1",
}
ENV_PREFIX = {"jira": "JIRA", "gitlab": "GITLAB", "confluence": "CONFLUENCE"}
PROBE_TIMEOUT_S = 10.0  # connect and read, each; capped by the source's own timeout
# Sent by the sandbox emulator: the name of the dataset it serves, so the organisation is
# known whatever port serves it. Real servers never send it.
SANDBOX_HEADER = "X-Driftgate-Sandbox"
# A server that is up but busy (429, 5xx, a reset) gets this many attempts, spaced by
# RETRY_WAIT_S or its Retry-After (capped): seconds, never minutes.
ATTEMPTS = 3
RETRY_WAIT_S = 1.0
MAX_RETRY_AFTER_S = 10.0
RESET = "connection reset by the server"
TRUNCATED = "the answer was cut off"
TRANSIENT_CAUSES = {RESET, TRUNCATED}


@dataclass(frozen=True)
class SourceProblem:
    """Why a source cannot be read, as one line."""

    source: str
    host: str
    cause: str
    hint: str = ""

    def line(self) -> str:
        text = f"{self.source} ({self.host}): {self.cause}"
        return f"{text}; {self.hint}" if self.hint else text


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] or url


def auth_for(source: str, conn: Connection) -> dict:
    """The headers or basic auth each real client sends (see lib/sources)."""
    if source == "gitlab":
        return {"headers": {"PRIVATE-TOKEN": conn.token}}
    if conn.user or source == "jira":  # the jira client always sends basic auth
        return {"auth": (conn.user, conn.token)}
    return {"headers": {"Authorization": f"Bearer {conn.token}"}}


@dataclass(frozen=True)
class Reach:
    """What the first request told: a problem, or which instance answered."""

    problem: SourceProblem | None
    instance: str | None = None  # the organisation: the normalised URL or sandbox:<name>


def probe(
    source: str,
    conn: Connection,
    *,
    timeout_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Reach:
    """One authenticated GET (a few when the server says it is busy): the problem, or
    the instance that answered."""
    url = conn.url.rstrip("/") + PROBE_PATHS[source]
    host = host_of(conn.url)
    timeout = min(timeout_s or PROBE_TIMEOUT_S, conn.timeout_s)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = requests.get(
                url, timeout=(timeout, timeout), allow_redirects=False, **auth_for(source, conn)
            )
        except requests.RequestException as exc:
            cause = network_cause(exc, timeout)
            if cause in TRANSIENT_CAUSES and attempt < ATTEMPTS:
                sleep(RETRY_WAIT_S)
                continue
            hint = f"check {ENV_PREFIX[source]}_URL"
            return Reach(SourceProblem(source, host, scrub(cause, (conn.token,)), hint))
        busy = response.status_code == 429 or response.status_code >= 500
        if busy and attempt < ATTEMPTS:
            hinted = retry_after_of(requests.HTTPError(response=response))
            sleep(min(hinted if hinted is not None else RETRY_WAIT_S, MAX_RETRY_AFTER_S))
            continue
        problem = http_problem(source, host, response)
        if problem is not None:
            return Reach(problem)
        sandbox = response.headers.get(SANDBOX_HEADER)
        return Reach(None, f"sandbox:{sandbox}" if sandbox else normalise_url(conn.url))
    raise AssertionError("unreachable")


def http_problem(source: str, host: str, response: requests.Response) -> SourceProblem | None:
    status = response.status_code
    var = ENV_PREFIX[source]
    if status < 300:
        return None
    if status == 401:
        who = f"{var}_TOKEN" if source == "gitlab" else f"{var}_USER and {var}_TOKEN"
        return SourceProblem(
            source, host, "401 Unauthorized: the credentials were refused", hint=f"check {who}"
        )
    if status == 403:
        return SourceProblem(
            source,
            host,
            "403 Forbidden: the account may not read this",
            hint=f"check the permissions of {var}_TOKEN's account",
        )
    if status == 404:
        return SourceProblem(
            source,
            host,
            f"404 Not Found at {urlsplit(response.url).path}",
            hint=f"check that {var}_URL is the site's base URL",
        )
    if 300 <= status < 400:
        target = response.headers.get("Location", "?")
        return SourceProblem(
            source,
            host,
            f"HTTP {status} redirect to {host_of(target)}",
            hint=f"check {var}_URL (https, context path)",
        )
    return SourceProblem(source, host, f"HTTP {status} from the server")


def network_cause(exc: BaseException, timeout_s: float) -> str:
    """The root cause of a failed request in words: refused, DNS, TLS, timeout."""
    if isinstance(exc, requests.exceptions.SSLError) or _in_chain(exc, ssl.SSLError):
        detail = _innermost(exc, ssl.SSLError)
        reason = getattr(detail, "reason", None) or "handshake failed"
        return f"TLS error: {str(reason).lower().replace('_', ' ')}"
    if isinstance(exc, requests.Timeout) or _in_chain(exc, TimeoutError, socket.timeout):
        return f"timed out after {timeout_s:g}s"
    if _in_chain(exc, socket.gaierror) or "NameResolutionError" in _chain_names(exc):
        return "DNS: the host name does not resolve"
    if _in_chain(exc, ConnectionRefusedError):
        return "connection refused (nothing listens on that port)"
    if _in_chain(exc, ConnectionResetError):
        return RESET
    if isinstance(
        exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
    ):
        return TRUNCATED
    return f"cannot connect: {type(exc).__name__}"


def _causes(exc: BaseException):
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nxt in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
        todo.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))


def _in_chain(exc: BaseException, *types: type[BaseException]) -> bool:
    return any(isinstance(e, types) for e in _causes(exc))


def _innermost(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    found = [e for e in _causes(exc) if isinstance(e, kind)]
    return found[-1] if found else None


def _chain_names(exc: BaseException) -> set[str]:
    return {type(e).__name__ for e in _causes(exc)}
