"""Small HTTP vocabulary shared by the three API emulators: routes, replies, parameters."""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from werkzeug.wrappers import Request, Response

TRUE_WORDS = {"true", "1", "yes", "on"}


V = TypeVar("V")


class Recent(Generic[V]):
    """The values last built for a few keys, for requests that repeat (the pages of one
    listing, the same query text): the dataset never changes while served. A value is
    built outside the lock, so two threads asking at once may both build it."""

    def __init__(self, size: int):
        self.size = size
        self._values: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = build()
        with self._lock:
            self._values[key] = value
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return value


class HttpError(Exception):
    """Raised by a handler to answer with an error shaped like the real API's."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def json_reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    resp = Response(body, status=status, content_type="application/json;charset=UTF-8")
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


@dataclass
class Route:
    method: str
    template: str  # e.g. "/rest/api/{v}/issue/{key}/changelog": the stats key
    pattern: re.Pattern[str]
    handler: Callable[..., Response]
    api: str


def compile_template(template: str) -> re.Pattern[str]:
    """``{name}`` matches one path segment; ``{name:path}`` matches the rest."""

    def repl(match: re.Match[str]) -> str:
        name, _, kind = match.group(1).partition(":")
        return f"(?P<{name}>.+)" if kind == "path" else f"(?P<{name}>[^/]+)"

    return re.compile("^" + re.sub(r"\{([^}]+)\}", repl, template) + "/?$")


class Router:
    """Routes on the *raw* request path, so ``%2F`` inside a segment survives routing."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, api: str, method: str, template: str, handler: Callable[..., Response]) -> None:
        self.routes.append(Route(method, template, compile_template(template), handler, api))

    def route(self, api: str, method: str, *templates: str):
        def decorator(fn: Callable[..., Response]) -> Callable[..., Response]:
            for template in templates:
                self.add(api, method, template, fn)
            return fn

        return decorator

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method != method and not (method == "HEAD" and route.method == "GET"):
                continue
            m = route.pattern.match(raw_path)
            if m:
                return route, {k: unquote(v) for k, v in m.groupdict().items()}
        return None

    def path_known(self, raw_path: str) -> bool:
        return any(r.pattern.match(raw_path) for r in self.routes)


def raw_path_of(request: Request) -> str:
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return urlsplit(raw).path
    return request.path


def query_items(request: Request) -> list[tuple[str, str]]:
    return parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True)


def param(request: Request, name: str, default: str | None = None) -> str | None:
    return request.args.get(name, default)


def int_param(request: Request, name: str, default: int, *, minimum: int = 0) -> int:
    value = request.args.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise HttpError(400, {"message": f"{name} must be an integer"}) from exc
    return max(number, minimum)


def bool_param(request: Request, name: str, default: bool = False) -> bool:
    """Clients send Python literals (``True``): accept any case of true/1/yes/on."""
    value = request.args.get(name)
    if value is None:
        return default
    return value.strip().lower() in TRUE_WORDS


def list_param(request: Request, name: str) -> list[str] | None:
    """A list sent as repeated parameters, comma-joined, or both; None when absent."""
    values = request.args.getlist(name)
    if not values:
        return None
    out: list[str] = []
    for value in values:
        out.extend(part.strip() for part in value.split(","))
    return [v for v in out if v]
