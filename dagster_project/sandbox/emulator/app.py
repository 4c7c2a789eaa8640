"""The emulator: one WSGI app serving Jira (/rest), GitLab (/api/v4) and Confluence (/wiki).

Cross-cutting behaviour lives here: API detection by path, authentication
(``--require-token``), request statistics (``GET /_sandbox/stats``), latency and fault
injection, and error bodies shaped like each real API's.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.wrappers import Request, Response

from dagster_project.lib.reachability import SANDBOX_HEADER
from dagster_project.sandbox.dataset import Dataset
from dagster_project.sandbox.emulator.faults import FaultPlan
from dagster_project.sandbox.emulator.gitlab_graphql import PATH as GRAPHQL_PATH
from dagster_project.sandbox.emulator.http import HttpError, Router, json_reply, raw_path_of

APIS = ("jira", "gitlab", "confluence")


def api_of(path: str) -> str | None:
    if path.startswith("/rest/"):
        return "jira"
    if path.startswith("/api/v4/") or path.rstrip("/") == GRAPHQL_PATH:
        return "gitlab"
    if path.startswith("/wiki/"):
        return "confluence"
    return None


def error_body(api: str | None, status: int, message: str) -> Any:
    """An error body in the shape the real API uses for ``status``."""
    if api == "jira":
        return {"errorMessages": [message], "errors": {}}
    if api == "confluence":
        return {
            "statusCode": status,
            "data": {
                "authorized": status not in (401, 403),
                "valid": True,
                "errors": [],
                "successful": False,
            },
            "message": message,
        }
    if api == "gitlab":
        return {"message": message} if status != 404 else {"message": f"404 {message}"}
    return {"error": message}


AUTH_MESSAGES = {
    "jira": "Client must be authenticated to access this resource.",
    "gitlab": "401 Unauthorized",
    "confluence": "This request requires authentication",
}


class Stats:
    """Counts every request received, by API and by method + route template, and the
    most requests each API, and each route, had in flight at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_api: Counter[str] = Counter()
        self.by_endpoint: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.most_in_flight: Counter[str] = Counter()
        self.endpoint_in_flight: Counter[str] = Counter()
        self.most_by_endpoint: Counter[str] = Counter()

    def record(self, api: str | None, endpoint: str) -> None:
        with self._lock:
            self.by_api[api or "other"] += 1
            self.by_endpoint[endpoint] += 1

    @contextmanager
    def serving(self, api: str | None, endpoint: str) -> Iterator[None]:
        """While one request of ``api`` to ``endpoint`` is being answered."""
        name = api or "other"
        with self._lock:
            for counts, most, key in (
                (self.in_flight, self.most_in_flight, name),
                (self.endpoint_in_flight, self.most_by_endpoint, endpoint),
            ):
                counts[key] += 1
                most[key] = max(most[key], counts[key])
        try:
            yield
        finally:
            with self._lock:
                self.in_flight[name] -= 1
                self.endpoint_in_flight[endpoint] -= 1

    def snapshot(self, faults: FaultPlan | None) -> dict[str, Any]:
        with self._lock:
            requests = {name: self.by_api.get(name, 0) for name in APIS}
            if self.by_api.get("other"):
                requests["other"] = self.by_api["other"]
            out: dict[str, Any] = {
                "requests": requests,
                "by_endpoint": dict(sorted(self.by_endpoint.items())),
                "most_in_flight": dict(sorted(self.most_in_flight.items())),
                "most_in_flight_by_endpoint": dict(sorted(self.most_by_endpoint.items())),
            }
        if faults is not None:
            out["faults"] = dict(sorted(faults.injected.items()))
        return out

    def reset(self) -> None:
        with self._lock:
            self.by_api.clear()
            self.by_endpoint.clear()
            self.most_in_flight.clear()
            self.most_by_endpoint.clear()


class ConnectionReset(ConnectionError):
    """Signals the server to drop the connection with a TCP reset."""


class Emulator:
    """WSGI application serving one dataset through the three REST APIs and GitLab's
    GraphQL subset the ingestion reads."""

    def __init__(
        self,
        dataset: Dataset,
        *,
        require_token: str | None = None,
        faults: FaultPlan | None = None,
        latency_ms: int = 0,
        jira_flavor: str | None = None,
        gitlab_graphql: bool = True,
    ):
        from dagster_project.sandbox.emulator import confluence, gitlab, jira

        self.dataset = dataset
        self.require_token = require_token
        self.faults = faults
        self.latency_ms = latency_ms
        self.stats = Stats()
        self.router = Router()
        self.jira = jira.JiraApi(dataset, flavor=jira_flavor or dataset.manifest.jira_flavor)
        self.gitlab = gitlab.GitlabApi(dataset, graphql=gitlab_graphql)
        self.confluence = confluence.ConfluenceApi(dataset)
        for api in (self.jira, self.gitlab, self.confluence):
            api.register(self.router)

    def warm(self) -> None:
        """Build every index the APIs would build on their first request (Confluence
        builds its own on start), so a measured run does not pay for them."""
        self.jira.warm()
        self.gitlab.warm()

    # -- WSGI -------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self.respond(request)
        return response(environ, start_response)

    def respond(self, request: Request) -> Response:
        response = self._respond(request)
        # Which organisation this is, whatever port serves it: a database bound to a
        # sandbox dataset stays bound when the emulator restarts elsewhere.
        response.headers[SANDBOX_HEADER] = self.dataset.manifest.name
        return response

    def _respond(self, request: Request) -> Response:
        path = raw_path_of(request)
        if path.startswith("/_sandbox/"):
            return self._sandbox(request, path)

        api = api_of(path)
        matched = self.router.match(request.method, path)
        endpoint = f"{request.method} {matched[0].template if matched else path}"
        self.stats.record(api, endpoint)
        with self.stats.serving(api, endpoint):
            return self._serve(request, api, matched, path)

    def _serve(self, request: Request, api: str | None, matched: Any, path: str) -> Response:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)

        fault = self.faults.draw() if self.faults else None
        if fault and fault[0] == "reset":
            request.environ["driftgate.reset"] = True
            raise ConnectionReset()
        if fault and fault[0] == "slow":
            time.sleep(self.faults.slow_ms / 1000)  # type: ignore[union-attr]
        if fault and fault[0] in ("429", "5xx"):
            return self._fault_reply(api, fault[1])

        response = self._dispatch(request, api, matched, path)
        if fault and fault[0] == "truncate":
            body = response.get_data()
            response.set_data(body[: max(len(body) // 2, 1)])
            response.headers["Content-Length"] = str(len(body))
        return response

    def _dispatch(self, request: Request, api: str | None, matched: Any, path: str) -> Response:
        if api is None:
            return json_reply(error_body(None, 404, f"no API at {path}"), 404)
        if self.require_token and not self._authorized(api, request):
            if path.rstrip("/") == GRAPHQL_PATH:
                return self._graphql_unauthorized(request, matched)
            headers = {"WWW-Authenticate": 'Basic realm="sandbox"'} if api != "gitlab" else {}
            return json_reply(error_body(api, 401, AUTH_MESSAGES[api]), 401, headers)
        if request.method not in ("GET", "HEAD") and matched is None:
            if self.router.path_known(path):
                return json_reply(
                    error_body(api, 403, "The sandbox is read-only: writes are forbidden."), 403
                )
        if matched is None:
            if self.router.path_known(path):
                return json_reply(error_body(api, 405, "Method Not Allowed"), 405)
            return json_reply(error_body(api, 404, "Not Found"), 404)
        route, params = matched
        try:
            return route.handler(request, **params)
        except HttpError as err:
            body = err.body
            if isinstance(body, str):
                body = error_body(api, err.status, body)
            return json_reply(body, err.status, err.headers)

    def _graphql_unauthorized(self, request: Request, matched: Any) -> Response:
        """GitLab's GraphQL serves a caller without credentials as anonymous (public
        projects only) and answers a wrong token with 401 in GraphQL's error shape."""
        presented = request.headers.get("Authorization") or request.headers.get("PRIVATE-TOKEN")
        if presented or matched is None:
            return json_reply({"errors": [{"message": "Invalid token"}]}, 401)
        request.environ["driftgate.anonymous"] = True
        route, params = matched
        return route.handler(request, **params)

    def _authorized(self, api: str, request: Request) -> bool:
        token = self.require_token
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip() == token:
            return True
        if api == "gitlab":
            return request.headers.get("PRIVATE-TOKEN") == token
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip()).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return False
            _user, _, secret = decoded.partition(":")
            return secret == token
        return False

    def _fault_reply(self, api: str | None, status: int) -> Response:
        assert self.faults is not None
        retry_after = str(self.faults.retry_after)
        if status == 429:
            headers = {
                "Retry-After": retry_after,
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time()) + self.faults.retry_after),
                "RateLimit-Limit": "100",
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(int(time.time()) + self.faults.retry_after),
                "RateLimit-Reason": "jira-burst-based",
            }
            return json_reply(error_body(api, 429, "Rate limit exceeded."), 429, headers)
        if status == 503:
            return json_reply(
                error_body(api, 503, "Service Unavailable"), 503, {"Retry-After": retry_after}
            )
        if status == 502:
            html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            return Response(html, status=502, content_type="text/html")
        return json_reply(error_body(api, 500, "Internal Server Error"), 500)

    # -- /_sandbox --------------------------------------------------------------------
    def _sandbox(self, request: Request, path: str) -> Response:
        if path.rstrip("/") == "/_sandbox/stats":
            if request.method == "DELETE":
                self.stats.reset()
                return Response(status=204)
            return json_reply(self.stats.snapshot(self.faults))
        if path.rstrip("/") == "/_sandbox/warm" and request.method == "POST":
            self.warm()
            return Response(status=204)
        if path.rstrip("/") == "/_sandbox/manifest":
            m = self.dataset.manifest
            return json_reply(
                {"format": m.format, "name": m.name, "as_of": m.as_of, "jira_flavor": m.jira_flavor}
            )
        return json_reply({"error": f"no sandbox endpoint {path}"}, 404)
