"""Jira REST API emulator: one dataset served as Jira Server/DC or as Jira Cloud.

The dataset stores issues as a search with ``expand=changelog`` returns them, with the
complete changelog. What differs between the two products is applied when answering:

* Server/DC (``flavor="server"``): ``/rest/api/2`` only; ``/search`` pages with
  ``startAt``/``maxResults``/``total`` and echoes the effective page size (capped at
  100); changelogs are embedded whole, oldest first; users carry ``name``/``key``;
  rich text is wiki markup. There is no ``/search/jql`` and no changelog endpoint.
* Cloud (``flavor="cloud"``): ``/rest/api/2`` and ``/rest/api/3``; ``/search/jql``
  pages with an opaque ``nextPageToken`` (absent on the last page) and no ``total``,
  refuses unbounded JQL, and returns only ``id`` unless fields are asked for; the old
  ``/search`` answers 410; search embeds the 100 most recent histories, newest first,
  with the true ``changelog.total``, and ``/issue/{key}/changelog`` pages all of them;
  users carry ``accountId`` only; v3 bodies are ADF, v2 bodies wiki markup.

Rich text (description, environment, comments, worklog comments, textarea custom fields)
is converted to what the API version asks for, whichever form the dataset holds, and
users are converted to the flavour's shape, so one dataset serves both ways.

Choices where the real products leave room: the emulator's clock is the manifest's
``as_of`` (``serverTime``, relative JQL dates such as ``-1d``); the searching user's
time zone is UTC (``/myself`` says so); a search without ORDER BY is ordered by key
descending; every order is made total by the issue id, so pages never overlap or skip.
Strict validation (Server's default ``validateQuery=true``, always on Cloud) refuses
unknown projects and issue keys with Jira's 400 messages.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from dagster_project.lib import richtext
from dagster_project.lib.sources.timeparse import parse_ts
from dagster_project.sandbox.dataset import Dataset, JsonlTable
from dagster_project.sandbox.emulator import jql
from dagster_project.sandbox.emulator.http import (
    HttpError,
    Recent,
    Router,
    int_param,
    json_reply,
    list_param,
)

SERVER_PAGE_CAP = 100  # jira.search.views.default.max as most instances set it
CLOUD_PAGE_CAP = 100  # /search/jql with fields; id-only pages may hold up to 5000
CLOUD_ID_PAGE_CAP = 5000
CHANGELOG_EMBED_CAP = 100  # Cloud embeds at most this many histories per issue
CHANGELOG_PAGE_CAP = 100
DEFAULT_PAGE = 50
CACHED_QUERIES = 16  # JQL queries whose matches are kept for paging
ISSUE_EXPAND = "operations,versionedRepresentations,editmeta,changelog,renderedFields"
RICH_SYSTEM_FIELDS = ("description", "environment")
USER_FIELDS_IN_CHANGELOG = {"assignee", "reporter", "creator"}

REMOVED_SEARCH = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."
    " A full migration guideline is available at"
    " https://developer.atlassian.com/changelog/#CHANGE-2046"
)
UNBOUNDED = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)
NO_ISSUE = "Issue does not exist or you do not have permission to see it."
BAD_MAX_RESULTS = "The max results parameter has to be between 1 and 5,000."
BAD_TOKEN = "The provided next page token is invalid or expired."
CLOUD_SEARCH_BODY = {
    "jql",
    "nextPageToken",
    "maxResults",
    "fields",
    "expand",
    "properties",
    "fieldsByKeys",
    "failFast",
    "reconcileIssues",
}
SERVER_SEARCH_BODY = {"jql", "startAt", "maxResults", "validateQuery", "fields", "expand"}
SERVER_INFO = {
    "version": "9.12.15",
    "versionNumbers": [9, 12, 15],
    "deploymentType": "Server",
    "buildNumber": 9120015,
    "buildDate": "2024-10-01T00:00:00.000+0000",
    "scmInfo": "sandbox",
    "serverTitle": "Driftgate sandbox",
}
CLOUD_INFO = {
    "version": "1001.0.0-SNAPSHOT",
    "versionNumbers": [1001, 0, 0],
    "deploymentType": "Cloud",
    "buildNumber": 100289,
    "buildDate": "2026-01-05T00:00:00.000+0000",
    "scmInfo": "sandbox",
    "serverTitle": "Jira",
    "defaultLocale": {"locale": "en_US"},
    "serverTimeZone": "Etc/UTC",
}


def epoch_ms(value: str) -> int:
    return int(parse_ts(value).timestamp() * 1000)


def jira_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}+0000"
    )


def account_id(user_key: str) -> str:
    """A stable Cloud accountId for a Server user (24 hex digits, like real ones)."""
    return hashlib.sha1(f"driftgate-user:{user_key}".encode()).hexdigest()[:24]


def _is_user(obj: dict[str, Any]) -> bool:
    return "displayName" in obj and ("accountId" in obj or "name" in obj)


class _Selection:
    """Which fields a request asked for: ``*all``, ``*navigable``, ids/names, ``-x``."""

    def __init__(self, mode: str, include: set[str], exclude: set[str], keyed: bool = False):
        self.mode = mode  # all | navigable | listed
        self.include = include
        self.exclude = exclude
        self.keyed = keyed  # "key" (or "self") asked for explicitly

    @property
    def empty(self) -> bool:
        return self.mode == "listed" and not self.include

    def wants(self, field_id: str, navigable: bool) -> bool:
        if field_id in self.exclude:
            return False
        if self.mode == "all" or field_id in self.include:
            return True
        return self.mode == "navigable" and navigable


# Changelog item "field" values of Cloud events that carry no fieldId (seen in captures).
NON_FIELD_EVENTS = frozenset(
    {"workflow", "parent", "remoteissuelink", "issueparentassociation", "epic child", "worklogid"}
)


class JiraApi:
    """Serves ``jira/*`` of a dataset under ``/rest/api/{2,3}`` as Server or Cloud."""

    def __init__(self, dataset: Dataset, flavor: str = "cloud", **_options: object):
        if flavor not in ("cloud", "server"):
            raise ValueError(f"jira flavor must be 'cloud' or 'server', not {flavor!r}")
        self.dataset = dataset
        self.flavor = flavor
        self.cloud = flavor == "cloud"
        self.versions = ("2", "3") if self.cloud else ("2",)
        self._lock = threading.Lock()
        self._loaded = False
        self._results: Recent[tuple[list[int], list[str]]] = Recent(CACHED_QUERIES)
        as_of = dataset.manifest.as_of
        self.now = parse_ts(as_of) if as_of else datetime.now(UTC)

    # -- dataset ------------------------------------------------------------------------
    def warm(self) -> None:
        self._load()

    def _load(self) -> None:
        """Index the dataset on first use, so starting the emulator stays cheap."""
        with self._lock:
            if self._loaded:
                return
            self.fields: list[dict[str, Any]] = self.dataset.json("jira/fields.json")
            self.statuses: list[dict[str, Any]] = self.dataset.json("jira/statuses.json")
            self.field_defs = {f["id"]: f for f in self.fields if isinstance(f, dict)}
            self.field_ids: dict[str, str] = {}
            for fdef in self.field_defs.values():
                for name in [fdef.get("name"), *(fdef.get("clauseNames") or [])]:
                    if name:
                        self.field_ids.setdefault(str(name).casefold(), fdef["id"])
            self.rich_fields = set(RICH_SYSTEM_FIELDS) | {
                fid
                for fid, fdef in self.field_defs.items()
                if str((fdef.get("schema") or {}).get("custom", "")).endswith(":textarea")
            }
            self.projects: dict[str, dict[str, Any]] = {}
            self.issues = self.dataset.table("jira/issues.jsonl", self._index_issue)
            self.by_key = {m["key"].upper(): m for m in self.issues.metas}
            self.by_id = {m["id"]: m for m in self.issues.metas}
            links = self.dataset.table("jira/remotelinks.jsonl", _index_links)
            self.links: JsonlTable = links
            self.links_by_key: dict[str, list[int]] = {}
            for meta in links.metas:
                self.links_by_key.setdefault(meta["issue_key"], []).append(meta["_pos"])
            aliases: dict[str, str] = {}
            for key, project in self.projects.items():
                for alias in (key, project.get("name"), project.get("id")):
                    if alias:
                        aliases[str(alias).lower()] = key
            self.catalog = jql.Catalog(projects=aliases, keys=self._issue_id)
            self._loaded = True

    def _index_issue(self, obj: dict[str, Any]) -> dict[str, Any]:
        fields = obj.get("fields") or {}
        key = str(obj["key"])
        project = fields.get("project") or {}
        project_key = str(project.get("key") or key.rpartition("-")[0]).upper()
        if project_key not in self.projects:
            self.projects[project_key] = project or {"key": project_key, "name": project_key}
        return {
            "key": key,
            "id": int(obj["id"]),
            "project": project_key,
            "num": jql.key_order(key)[1],
            "created": epoch_ms(fields["created"]),
            "updated": epoch_ms(fields["updated"]),
        }

    def _issue_id(self, key_or_id: str) -> int | None:
        meta = self._meta(key_or_id)
        return meta["id"] if meta else None

    def _meta(self, key_or_id: str) -> dict[str, Any] | None:
        text = str(key_or_id).strip()
        if text.isdigit():
            return self.by_id.get(int(text))
        return self.by_key.get(text.upper())

    def _known(self, key_or_id: str) -> dict[str, Any]:
        """The index entry of an issue by key or id; 404 as Jira words it when unknown."""
        self._load()
        meta = self._meta(key_or_id)
        if meta is None:
            raise HttpError(404, NO_ISSUE)
        return meta

    def _issue(self, key_or_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        meta = self._known(key_or_id)
        return meta, self.issues.load(meta["_pos"])

    # -- routes --------------------------------------------------------------------------
    def register(self, router: Router) -> None:
        for v in self.versions:

            def add(method: str, path: str, handler: Callable[..., Response], v: str = v) -> None:
                router.add("jira", method, f"/rest/api/{v}{path}", _bind(handler, v))

            add("GET", "/serverInfo", self.server_info)
            add("GET", "/myself", self.myself)
            add("GET", "/field", self.field_list)
            add("GET", "/status", self.status_list)
            add("GET", "/project", self.project_list)
            add("GET", "/project/{key}", self.project)
            add("GET", "/issue/{key}", self.issue)
            add("GET", "/issue/{key}/remotelink", self.remote_links)
            add("GET", "/issue/{key}/comment", self.comments)
            if self.cloud:
                add("GET", "/search/jql", self.search_jql)
                add("POST", "/search/jql", self.search_jql)
                add("POST", "/search/approximate-count", self.approximate_count)
                add("GET", "/search", self.removed_search)
                add("POST", "/search", self.removed_search)
                add("GET", "/issue/{key}/changelog", self.changelog)
            else:
                add("GET", "/search", self.search)
                add("POST", "/search", self.search)

    # -- small resources -------------------------------------------------------------------
    def server_info(self, request: Request, v: str) -> Response:
        """What the client reads first: ``versionNumbers`` and ``deploymentType``."""
        identity = CLOUD_INFO if self.cloud else SERVER_INFO
        return json_reply(
            {"baseUrl": _base_url(request), **identity, "serverTime": jira_time(self.now)}
        )

    def myself(self, request: Request, v: str) -> Response:
        """The authenticated user; time zone UTC, the zone JQL dates are read in."""
        auth = request.authorization
        name = (auth.username if auth and auth.username else None) or "sandbox"
        user: dict[str, Any] = {
            "self": "",
            "name": name,
            "key": name,
            "emailAddress": f"{name}@sandbox.invalid",
            "avatarUrls": {},
            "displayName": name,
            "active": True,
            "timeZone": "UTC",
            "locale": "en_US",
        }
        user = self._user(user, _base_url(request), v)
        if not self.cloud:
            user["self"] = f"{_base_url(request)}/rest/api/{v}/user?username={name}"
        user["groups"] = {"size": 1, "items": []}
        user["applicationRoles"] = {"size": 1, "items": []}
        user["expand"] = "groups,applicationRoles"
        return json_reply(user)

    def field_list(self, request: Request, v: str) -> Response:
        self._load()
        return json_reply(self.fields)

    def status_list(self, request: Request, v: str) -> Response:
        self._load()
        return json_reply(self.statuses)

    def project_list(self, request: Request, v: str) -> Response:
        self._load()
        return json_reply([self.projects[k] for k in sorted(self.projects)])

    def project(self, request: Request, v: str, key: str) -> Response:
        self._load()
        found = self.catalog.projects.get(key.lower())
        if found is None:
            raise HttpError(404, f"No project could be found with key '{key}'.")
        return json_reply(self.projects[found])

    # -- issues ---------------------------------------------------------------------------
    def issue(self, request: Request, v: str, key: str) -> Response:
        _meta, obj = self._issue(key)
        selection = self._selection(list_param(request, "fields"), "*all")
        expand = set(list_param(request, "expand") or [])
        return json_reply(self._render(obj, request, v, selection, expand, names_inline=True))

    def remote_links(self, request: Request, v: str, key: str) -> Response:
        meta = self._known(key)
        out = []
        for pos in self.links_by_key.get(meta["key"].upper(), []):
            out.extend(self.links.load(pos).get("links") or [])
        return json_reply(out)

    def comments(self, request: Request, v: str, key: str) -> Response:
        _meta, obj = self._issue(key)
        comment = (obj.get("fields") or {}).get("comment") or {}
        items = comment.get("comments") or []
        start = int_param(request, "startAt", 0)
        size = min(int_param(request, "maxResults", 5000, minimum=1), 5000)
        base = _base_url(request)
        page = [self._comment(c, base, v) for c in items[start : start + size]]
        return json_reply(
            {"startAt": start, "maxResults": size, "total": len(items), "comments": page}
        )

    def changelog(self, request: Request, v: str, key: str) -> Response:
        """Cloud's paged changelog: every history, oldest first."""
        meta, obj = self._issue(key)
        histories = self._histories(obj)
        start = int_param(request, "startAt", 0)
        size = min(
            int_param(request, "maxResults", CHANGELOG_PAGE_CAP, minimum=1), CHANGELOG_PAGE_CAP
        )
        base = _base_url(request)
        page = [self._history(h, base, v) for h in histories[start : start + size]]
        last = start + size >= len(histories)
        self_url = f"{base}/rest/api/{v}/issue/{meta['id']}/changelog"
        body: dict[str, Any] = {
            "self": f"{self_url}?{urlencode({'maxResults': size, 'startAt': start})}",
        }
        if not last:
            body["nextPage"] = (
                f"{self_url}?{urlencode({'maxResults': size, 'startAt': start + size})}"
            )
        body.update(maxResults=size, startAt=start, total=len(histories), isLast=last, values=page)
        return json_reply(body)

    # -- search ---------------------------------------------------------------------------
    def removed_search(self, request: Request, v: str) -> Response:
        raise HttpError(410, REMOVED_SEARCH)

    def search(self, request: Request, v: str) -> Response:
        """Server/DC ``/search``: offset paging with ``total``; pages are always full."""
        self._load()
        if request.method == "POST":
            body = _json_body(request, SERVER_SEARCH_BODY)
            jql_text = str(body.get("jql") or "")
            start = _int(body.get("startAt"), 0, "startAt")
            size = _int(body.get("maxResults"), DEFAULT_PAGE, "maxResults")
            fields = _str_list(body.get("fields"))
            expand = set(_str_list(body.get("expand")) or [])
            validate = _validate_mode(body.get("validateQuery", True))
        else:
            jql_text = request.args.get("jql", "")
            start = int_param(request, "startAt", 0)
            size = int_param(request, "maxResults", DEFAULT_PAGE)
            fields = list_param(request, "fields")
            expand = set(list_param(request, "expand") or [])
            validate = _validate_mode(request.args.get("validateQuery", "true"))
        size = min(size, SERVER_PAGE_CAP)
        ids, warnings = self._run(jql_text, strict=validate)
        selection = self._selection(fields, "*navigable")
        page = ids[start : start + size]
        body_out: dict[str, Any] = {
            "expand": "names,schema",
            "startAt": start,
            "maxResults": size,
            "total": len(ids),
            "issues": [
                self._render(self.issues.load(self.by_id[i]["_pos"]), request, v, selection, expand)
                for i in page
            ],
        }
        if warnings:
            body_out["warningMessages"] = warnings
        self._add_names(body_out, selection, expand)
        return json_reply(body_out)

    def search_jql(self, request: Request, v: str) -> Response:
        """Cloud ``/search/jql``: token paging, no total, the token absent on the last page."""
        self._load()
        if request.method == "POST":
            body = _json_body(request, CLOUD_SEARCH_BODY)
            jql_text = body.get("jql")
            token = body.get("nextPageToken")
            if not isinstance(jql_text, str | None) or not isinstance(token, str | None):
                raise HttpError(
                    400,
                    "Invalid request payload. Refer to the REST API documentation and try again.",
                )
            size = _int(body.get("maxResults"), DEFAULT_PAGE, "maxResults")
            fields = _str_list(body.get("fields"))
            expand = set(_str_list(body.get("expand")) or [])
        else:
            jql_text = request.args.get("jql")
            token = request.args.get("nextPageToken")
            size = int_param(request, "maxResults", DEFAULT_PAGE, minimum=-(2**31))
            fields = list_param(request, "fields")
            expand = set(list_param(request, "expand") or [])
        jql_text = jql_text or ""
        start = self._token_offset(token, jql_text) if token else 0
        if not 1 <= size <= CLOUD_ID_PAGE_CAP:
            raise HttpError(400, BAD_MAX_RESULTS)
        selection = self._selection(fields, "id")
        size = min(size, CLOUD_ID_PAGE_CAP if selection.empty else CLOUD_PAGE_CAP)
        ids, _warnings = self._run(jql_text, strict=True, bounded=True)
        page = ids[start : start + size]
        end = start + len(page)
        body_out: dict[str, Any] = {
            "issues": [
                self._render(self.issues.load(self.by_id[i]["_pos"]), request, v, selection, expand)
                for i in page
            ]
        }
        if end < len(ids):
            body_out["nextPageToken"] = _make_token(jql_text, end)
        body_out["isLast"] = end >= len(ids)
        self._add_names(body_out, selection, expand)
        return json_reply(body_out)

    def approximate_count(self, request: Request, v: str) -> Response:
        self._load()
        body = _json_body(request, {"jql"})
        ids, _ = self._run(str(body.get("jql") or ""), strict=True, bounded=True)
        return json_reply({"count": len(ids)})

    def _run(
        self, jql_text: str, *, strict: bool, bounded: bool = False
    ) -> tuple[list[int], list[str]]:
        """Matching issue ids in result order; the last few queries are kept for paging."""
        try:
            query = jql.parse(jql_text, self.field_ids)
            if bounded and not query.bounded:
                raise jql.JqlError(UNBOUNDED)
        except jql.JqlError as err:
            raise HttpError(400, str(err)) from err
        return self._results.get((jql_text, strict), lambda: self._matching(query, strict))

    def _matching(self, query: jql.Query, strict: bool) -> tuple[list[int], list[str]]:
        try:
            predicate, warnings = jql.compile_query(
                query, self.catalog, now=self.now, strict=strict
            )
        except jql.JqlError as err:
            raise HttpError(400, str(err)) from err
        matched = [m for m in self.issues.metas if predicate(m)]
        return [m["id"] for m in jql.sort_metas(matched, query.order_by)], warnings

    def _token_offset(self, token: str, jql_text: str) -> int:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode()))
            if data["q"] != _query_hash(jql_text):
                raise ValueError("token of another query")
            return int(data["o"])
        except (ValueError, KeyError, TypeError) as err:
            raise HttpError(400, BAD_TOKEN) from err

    # -- rendering ------------------------------------------------------------------------
    def _selection(self, requested: list[str] | None, default: str) -> _Selection:
        tokens = [default] if requested is None else requested
        mode, include, exclude, keyed = "listed", set(), set(), False
        for token in tokens:
            if token == "*all":
                mode = "all"
            elif token == "*navigable":
                mode = "navigable" if mode != "all" else mode
            elif token in ("key", "self"):
                keyed = True
            elif token in ("id", "*none"):
                continue
            elif token.startswith("-"):
                exclude.add(self._field_id(token[1:]))
            else:
                include.add(self._field_id(token))
        return _Selection(mode, include, exclude, keyed)

    def _field_id(self, name: str) -> str:
        if name in self.field_defs:
            return name
        return self.field_ids.get(name.casefold(), name)

    def _add_names(self, body: dict[str, Any], selection: _Selection, expand: set[str]) -> None:
        """``expand=names,schema`` adds field id -> name / schema maps beside the issues."""
        if not expand & {"names", "schema"}:
            return
        chosen = [
            fdef
            for fid, fdef in self.field_defs.items()
            if selection.wants(fid, bool(fdef.get("navigable", True)))
        ]
        if "names" in expand:
            body["names"] = {f["id"]: f.get("name") for f in chosen}
        if "schema" in expand:
            body["schema"] = {f["id"]: f["schema"] for f in chosen if f.get("schema")}

    def _render(
        self,
        obj: dict[str, Any],
        request: Request,
        v: str,
        selection: _Selection,
        expand: set[str],
        *,
        names_inline: bool = False,
    ) -> dict[str, Any]:
        base = _base_url(request)
        issue_id = str(obj.get("id"))
        if self.cloud and selection.empty and not selection.keyed:
            out: dict[str, Any] = {"id": issue_id}  # Cloud's id-only answer
        else:
            out = {
                "expand": obj.get("expand", ISSUE_EXPAND),
                "id": issue_id,
                "self": f"{base}/rest/api/{v}/issue/{issue_id}",
                "key": obj.get("key"),
            }
        if not selection.empty:
            fields = {}
            for fid, value in (obj.get("fields") or {}).items():
                fdef = self.field_defs.get(fid, {})
                if selection.wants(fid, bool(fdef.get("navigable", True))):
                    fields[fid] = self._field_value(fid, value, base, v)
            out["fields"] = fields
        if "changelog" in expand:
            out["changelog"] = self._embedded_changelog(obj, base, v)
        if names_inline:
            self._add_names(out, selection, expand)
        return out

    def _field_value(self, fid: str, value: Any, base: str, v: str) -> Any:
        if fid in self.rich_fields:
            return self._rich(value, v)
        if fid == "comment" and isinstance(value, dict):
            value = dict(value)
            value["comments"] = [self._comment(c, base, v) for c in value.get("comments") or []]
            return value
        if fid == "worklog" and isinstance(value, dict):
            value = dict(value)
            worklogs = []
            for log in value.get("worklogs") or []:
                log = self._users(log, base, v)
                if isinstance(log, dict) and "comment" in log:
                    log["comment"] = self._rich(log["comment"], v)
                worklogs.append(log)
            value["worklogs"] = worklogs
            return value
        return self._users(value, base, v)

    def _rich(self, value: Any, v: str) -> Any:
        return richtext.to_adf(value) if v == "3" else richtext.to_wiki(value)

    def _comment(self, comment: dict[str, Any], base: str, v: str) -> dict[str, Any]:
        out = self._users(comment, base, v)
        if "body" in out:
            out["body"] = self._rich(out["body"], v)
        return out

    def _users(self, value: Any, base: str, v: str) -> Any:
        """Copy ``value`` with every user object in the flavour's shape."""
        if isinstance(value, list):
            return [self._users(item, base, v) for item in value]
        if not isinstance(value, dict):
            return value
        if _is_user(value):
            return self._user(value, base, v)
        return {k: self._users(item, base, v) for k, item in value.items()}

    def _user(self, user: dict[str, Any], base: str, v: str) -> dict[str, Any]:
        if self.cloud and "accountId" not in user:
            ident = account_id(str(user.get("key") or user.get("name")))
            out = {"self": f"{base}/rest/api/{v}/user?accountId={ident}", "accountId": ident}
            out.update((k, val) for k, val in user.items() if k not in ("self", "name", "key"))
            out.setdefault("accountType", "atlassian")
            return out
        if not self.cloud and "name" not in user:
            ident = str(user.get("accountId"))
            out = {
                "self": f"{base}/rest/api/{v}/user?username={ident}",
                "name": ident,
                "key": ident,
            }
            out.update(
                (k, val) for k, val in user.items() if k not in ("self", "accountId", "accountType")
            )
            return out
        return dict(user)

    def _histories(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        """All histories, oldest first (the dataset may store them in any order)."""
        histories = [
            h for h in (obj.get("changelog") or {}).get("histories") or [] if isinstance(h, dict)
        ]
        return sorted(histories, key=lambda h: (epoch_ms(h["created"]), _int_or_zero(h.get("id"))))

    def _embedded_changelog(self, obj: dict[str, Any], base: str, v: str) -> dict[str, Any]:
        histories = self._histories(obj)
        total = len(histories)
        if self.cloud:
            histories = list(reversed(histories[-CHANGELOG_EMBED_CAP:]))
        return {
            "startAt": 0,
            "maxResults": len(histories),
            "total": total,
            "histories": [self._history(h, base, v) for h in histories],
        }

    def _history(self, history: dict[str, Any], base: str, v: str) -> dict[str, Any]:
        out = self._users(history, base, v)
        items = []
        for item in out.get("items") or []:
            item = dict(item)
            field = str(item.get("field", ""))
            if self.cloud:
                # Cloud names the field id of a field change; events that are not field
                # changes (Workflow, RemoteIssueLink, Parent...) come without one.
                if "fieldId" not in item and field and field.casefold() not in NON_FIELD_EVENTS:
                    known = self._field_id(field)
                    if known in self.field_defs:
                        item["fieldId"] = known
                if field.lower() in USER_FIELDS_IN_CHANGELOG:
                    for side in ("from", "to"):
                        if item.get(side) and not _looks_like_account(str(item[side])):
                            item[side] = account_id(str(item[side]))
            items.append(item)
        out["items"] = items
        return out


# -- helpers ------------------------------------------------------------------------------


def _bind(handler: Callable[..., Response], v: str) -> Callable[..., Response]:
    def bound(request: Request, **params: str) -> Response:
        return handler(request, v, **params)

    return bound


def _index_links(obj: dict[str, Any]) -> dict[str, Any]:
    return {"issue_key": str(obj["issue_key"]).upper()}


def _base_url(request: Request) -> str:
    return request.host_url.rstrip("/")


def _query_hash(jql_text: str) -> str:
    return hashlib.sha1(jql_text.encode()).hexdigest()[:12]


def _make_token(jql_text: str, offset: int) -> str:
    raw = json.dumps({"q": _query_hash(jql_text), "o": offset}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _looks_like_account(value: str) -> bool:
    return len(value) == 24 and all(c in "0123456789abcdef" for c in value)


def _int_or_zero(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _int(value: Any, default: int, name: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise HttpError(
            400, "Invalid request payload. Refer to the REST API documentation and try again."
        )
    try:
        return int(value)
    except ValueError as err:
        raise HttpError(400, f"{name} must be an integer") from err


def _str_list(value: Any) -> list[str] | None:
    """A POST body list (``["a", "b"]``) or comma-joined string; None when absent."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        out.extend(part.strip() for part in str(item).split(","))
    return [p for p in out if p]


def _validate_mode(value: Any) -> bool:
    """``validateQuery``: true/strict (the default) refuse unknown values; warn/false do not."""
    return str(value).strip().lower() in ("true", "1", "yes", "strict")


def _json_body(request: Request, allowed: set[str]) -> dict[str, Any]:
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError as err:
        raise HttpError(
            400, "Invalid request payload. Refer to the REST API documentation and try again."
        ) from err
    if not isinstance(body, dict):
        raise HttpError(
            400, "Invalid request payload. Refer to the REST API documentation and try again."
        )
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise HttpError(
            400,
            f'Unrecognized field "{unknown[0]}". Invalid request payload. Refer to the REST API'
            " documentation and try again.",
        )
    return body
