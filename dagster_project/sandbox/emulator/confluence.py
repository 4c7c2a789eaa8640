"""Confluence REST API v1 emulator, served only under ``/wiki`` as Confluence Cloud does.

Served (all GET; the dataset is read-only):

    /wiki/rest/api/content                     spaceKey, type, title, status, expand, start, limit
    /wiki/rest/api/content/search              cql (see cql.py), expand, start, limit
    /wiki/rest/api/search                      cql, wrapper results, ``content.``-prefixed expand
    /wiki/rest/api/content/{id}                expand, status, version (a historical body)
    /wiki/rest/api/content/{id}/version        version history, newest first; expand=content.body.storage
    /wiki/rest/api/content/{id}/version/{n}
    /wiki/rest/api/content/{id}/history        expand=lastUpdated,previousVersion,nextVersion
    /wiki/rest/api/content/{id}/label          prefix, start, limit
    /wiki/rest/api/content/{id}/child          expand=page
    /wiki/rest/api/content/{id}/child/{type}   page (attachment and comment are empty)
    /wiki/rest/api/space, /space/{key}, /space/{key}/content, /space/{key}/content/{type}

What makes it faithful, because ingestion correctness depends on it:

* Nothing answers at ``/rest/api/...`` without ``/wiki``. ``_links.base`` is
  ``http://host/wiki``, ``_links.context`` is ``/wiki`` and ``_links.next`` is relative
  (``/rest/api/content?...&start=25``), exactly like Cloud. A client that resolves
  ``next`` against the site root (atlassian-python-api's ``_get_paged``) gets a 404 here,
  as it does in production.
* Only what ``expand`` asks for is expanded; the rest is listed in ``_expandable``. A
  single content GET without ``expand`` expands ``space,history,version`` (the default
  of the real endpoint).
* ``limit`` is capped (``max_limit``; ``max_body_limit`` when bodies are expanded) and the
  effective value is echoed, with ``start`` and ``size``; ``next`` is present only while
  more results exist.
* Error bodies carry the real messages: ``No content found with id: ContentId{id=N}``,
  ``No space with key : K``, ``Could not parse cql : ...``.

Dataset (format v1): ``confluence/spaces.json`` (a list of space objects, or a ``/space``
answer with ``results``), ``confluence/pages.jsonl`` (content objects with body.storage,
version, metadata.labels, ancestors, optionally space and history) and
``confluence/page_versions.jsonl`` (``{"page_id", "number", "when", "by", "body"}``, with
``by`` a user object or a plain name, and ``body`` a storage string or a body object).
The page object holds the latest version; older bodies come from page_versions.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from hashlib import md5
from typing import Any
from urllib.parse import quote, unquote

from werkzeug.wrappers import Request, Response

from dagster_project.lib.sources.timeparse import parse_ts
from dagster_project.sandbox.dataset import Dataset, DatasetError, JsonlTable
from dagster_project.sandbox.emulator import cql
from dagster_project.sandbox.emulator.http import (
    HttpError,
    Recent,
    Router,
    int_param,
    json_reply,
    list_param,
    query_items,
    raw_path_of,
)

WIKI = "/wiki"
API = "/rest/api"
CACHED_QUERIES = 16  # CQL queries whose hits are kept for paging

# Expandable properties of a content object, in the order Confluence lists them.
CONTENT_EXPANDABLE = (
    "childTypes",
    "container",
    "metadata",
    "operations",
    "children",
    "restrictions",
    "history",
    "ancestors",
    "body",
    "version",
    "descendants",
    "space",
)
BODY_REPRESENTATIONS = (
    "editor",
    "atlas_doc_format",
    "view",
    "export_view",
    "styled_view",
    "dynamic",
    "storage",
    "editor2",
    "anonymous_export_view",
)
SPACE_EXPANDABLE = (
    "settings",
    "metadata",
    "operations",
    "lookAndFeel",
    "identifiers",
    "permissions",
    "icon",
    "description",
    "theme",
    "history",
    "homepage",
)
HISTORY_EXPANDABLE = ("lastUpdated", "previousVersion", "contributors", "nextVersion")
DEFAULT_SINGLE_EXPAND = "space,history,version"
REASONS = {400: "Bad Request", 404: "Not Found"}

Tree = dict[str, Any]


def error(status: int, message: str) -> HttpError:
    """An HttpError whose body has the shape Confluence uses (statusCode, data, message)."""
    body = {
        "statusCode": status,
        "data": {
            "authorized": False,
            "valid": True,
            "allowedInReadOnlyMode": True,
            "errors": [],
            "successful": False,
        },
        "message": message,
        "reason": REASONS.get(status, ""),
    }
    return HttpError(status, body)


def no_content(page_id: str) -> HttpError:
    return error(404, f"No content found with id: ContentId{{id={page_id}}}")


def expand_tree(values: Iterable[str] | None, prefix: str = "") -> Tree:
    """``["body.storage", "version"]`` -> ``{"body": {"storage": {}}, "version": {}}``.

    With a prefix (``content.`` on /search), only the prefixed paths count, unprefixed.
    """
    tree: Tree = {}
    for value in values or ():
        if prefix:
            if value == prefix.rstrip("."):
                continue
            if not value.startswith(prefix):
                continue
            value = value[len(prefix) :]
        node = tree
        for part in value.split("."):
            if part:
                node = node.setdefault(part, {})
    return tree


def parse_when(value: Any) -> float | None:
    """An ISO-8601 timestamp as epoch seconds (naive values are UTC); None when absent."""
    if value in (None, ""):
        return None
    return parse_ts(str(value)).timestamp()


def iso_utc(value: Any) -> str | None:
    """Confluence's ``lastModified`` form: UTC with milliseconds and ``Z``."""
    epoch = parse_when(value)
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def friendly(value: Any) -> str:
    epoch = parse_when(value)
    return "" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%b %d, %Y")


_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)
_TAG = re.compile(r"<[^>]+>")


def plain_text(storage: str) -> str:
    """Storage-format XHTML as plain text: tags become spaces, entities are decoded."""
    text = _CDATA.sub(lambda m: " " + m.group(1) + " ", storage or "")
    text = html.unescape(_TAG.sub(" ", text))
    return " ".join(text.split())


def slug(title: str) -> str:
    return quote(title.replace(" ", "+"), safe="+")


def space_key_of(obj: dict[str, Any]) -> str | None:
    """The space key of a content object: its ``space``, else its expandable links."""
    space = obj.get("space")
    if isinstance(space, dict) and space.get("key"):
        return str(space["key"])
    expandable = obj.get("_expandable") or {}
    for name in ("space", "container"):
        link = expandable.get(name) or ""
        if "/rest/api/space/" in link:
            return unquote(link.rsplit("/rest/api/space/", 1)[1].split("?")[0].strip("/"))
    return None


def storage_value(body: Any) -> str | None:
    """A body as stored: a storage string, ``{"storage": {"value"}}`` or ``{"value"}``."""
    if body is None or isinstance(body, str):
        return body
    if isinstance(body, dict):
        storage = body.get("storage", body)
        if isinstance(storage, dict):
            return storage.get("value")
    raise DatasetError(f"unsupported body shape: {type(body).__name__}")


@dataclass(frozen=True)
class Ctx:
    """Per-request facts: the wiki base URL built from the Host the client used."""

    base: str  # http://host/wiki

    @classmethod
    def of(cls, request: Request) -> Ctx:
        return cls(request.host_url.rstrip("/") + WIKI)

    def rebase(self, url: str) -> str:
        """A captured absolute API link, moved onto this server."""
        if "://" in url and f"{API}/" in url:
            return self.base + url[url.index(f"{API}/") :]
        return url


class ConfluenceApi:
    """Serves a dataset's Confluence part through the v1 REST API under /wiki."""

    def __init__(
        self,
        dataset: Dataset,
        *,
        max_limit: int = 200,
        max_body_limit: int = 100,
        tz: tzinfo = UTC,
        **options: object,
    ):
        self.dataset = dataset
        self.max_limit = max_limit
        self.max_body_limit = max_body_limit
        self.tz = tz  # the searching user's time zone, for CQL dates
        self._users: dict[str, dict[str, Any]] = {}
        self._cloud_users = False
        self._page_spaces: dict[str, dict[str, Any]] = {}
        # The hits of the last few CQL queries, for paging through one (nor does the
        # clock relative dates count from change while served).
        self._hits: Recent[list[dict[str, Any]]] = Recent(CACHED_QUERIES)

        raw_spaces = dataset.json("confluence/spaces.json", default=[])
        if isinstance(raw_spaces, dict):
            raw_spaces = raw_spaces.get("results", [])
        self.spaces: dict[str, dict[str, Any]] = {}
        for space in raw_spaces:
            if not isinstance(space, dict) or not space.get("key"):
                raise DatasetError(f"confluence/spaces.json: a space without a key: {space!r:.80}")
            self.spaces[str(space["key"])] = space

        self.pages: JsonlTable = dataset.table("confluence/pages.jsonl", self._index_page)
        self.versions: JsonlTable = dataset.table("confluence/page_versions.jsonl", _index_version)
        for key, space in self._page_spaces.items():
            self.spaces.setdefault(key, space)

        self.by_id: dict[str, dict[str, Any]] = {}
        self.children: dict[str, list[dict[str, Any]]] = {}
        for meta in self.pages.metas:
            if meta["id"] in self.by_id:
                raise DatasetError(f"confluence/pages.jsonl: duplicate content id {meta['id']}")
            self.by_id[meta["id"]] = meta
            if meta["parent"]:
                self.children.setdefault(meta["parent"], []).append(meta)

        # page id -> {version number: position in page_versions.jsonl}
        self.history: dict[str, dict[int, int]] = {}
        first_when: dict[str, tuple[int, float | None]] = {}
        for vmeta in self.versions.metas:
            numbers = self.history.setdefault(vmeta["page_id"], {})
            if vmeta["number"] in numbers:
                raise DatasetError(
                    "confluence/page_versions.jsonl: duplicate version "
                    f"{vmeta['number']} of page {vmeta['page_id']}"
                )
            numbers[vmeta["number"]] = vmeta["_pos"]
            seen = first_when.get(vmeta["page_id"])
            if seen is None or vmeta["number"] < seen[0]:
                first_when[vmeta["page_id"]] = (vmeta["number"], vmeta["when"])
        for meta in self.pages.metas:
            numbers = self.history.get(meta["id"], {})
            if meta["version"] is None:
                meta["version"] = max(numbers, default=1)
            if meta["lastmodified"] is None and meta["version"] in numbers:
                meta["lastmodified"] = self.versions.metas[numbers[meta["version"]]]["when"]
            if meta["created"] is None:
                first = first_when.get(meta["id"])
                meta["created"] = first[1] if first and first[0] == 1 else meta["lastmodified"]

    # -- dataset index --------------------------------------------------------------------
    def _index_page(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The few fields kept in memory per page, for filtering, sorting and paging."""
        page_id = str(obj["id"])
        version = obj.get("version") or {}
        history = obj.get("history") or {}
        last_updated = history.get("lastUpdated") or {}
        labels = ((obj.get("metadata") or {}).get("labels") or {}).get("results") or []
        ancestors = [str(a["id"]) for a in obj.get("ancestors") or []]
        for user in (version.get("by"), history.get("createdBy"), last_updated.get("by")):
            self._remember_user(user)
        key = space_key_of(obj)
        if key and isinstance(obj.get("space"), dict):
            self._page_spaces.setdefault(key, obj["space"])
        return {
            "id": page_id,
            "space": key,
            "type": obj.get("type", "page"),
            "status": obj.get("status", "current"),
            "title": obj.get("title", ""),
            "labels": [str(label["name"]) for label in labels],
            "lastmodified": parse_when(version.get("when") or last_updated.get("when")),
            "created": parse_when(history.get("createdDate")),
            "version": int(version["number"]) if "number" in version else None,
            "parent": ancestors[-1] if ancestors else None,
            "ancestors": ancestors,
        }

    def _remember_user(self, user: Any) -> None:
        """Users seen in pages, so a version whose ``by`` is a plain name gets the object."""
        if not isinstance(user, dict):
            return
        if user.get("accountId"):
            self._cloud_users = True
        for field in ("accountId", "username", "userKey", "displayName", "publicName", "email"):
            value = user.get(field)
            if value:
                self._users.setdefault(str(value).casefold(), user)

    def _user(self, by: Any, ctx: Ctx) -> dict[str, Any]:
        """A version author as the API returns it: always a user object."""
        if isinstance(by, dict):
            user = dict(by)
        elif by:
            user = dict(self._users.get(str(by).casefold()) or self._synthetic_user(str(by)))
        else:
            return {"type": "anonymous", "displayName": "Anonymous"}
        links = user.get("_links")
        if isinstance(links, dict) and "self" in links:
            user["_links"] = {**links, "self": ctx.rebase(links["self"])}
        return user

    def _synthetic_user(self, name: str) -> dict[str, Any]:
        picture = {
            "path": "/images/icons/profilepics/default.svg",
            "width": 48,
            "height": 48,
            "isDefault": True,
        }
        if self._cloud_users:
            return {
                "type": "known",
                "accountId": md5(name.encode(), usedforsecurity=False).hexdigest()[:24],
                "accountType": "atlassian",
                "email": "",
                "publicName": name,
                "profilePicture": picture,
                "displayName": name,
                "_expandable": {"operations": "", "personalSpace": ""},
            }
        return {
            "type": "known",
            "username": name,
            "userKey": md5(name.encode(), usedforsecurity=False).hexdigest(),
            "profilePicture": picture,
            "displayName": name,
            "_expandable": {"status": ""},
        }

    # -- routes ---------------------------------------------------------------------------
    def register(self, router: Router) -> None:
        routes: list[tuple[str, Callable[..., Response]]] = [
            ("/content", self.content_list),
            ("/content/search", self.content_search),
            ("/content/{id}", self.content_get),
            ("/content/{id}/version", self.version_list),
            ("/content/{id}/version/{number}", self.version_get),
            ("/content/{id}/history", self.history_get),
            ("/content/{id}/label", self.labels_get),
            ("/content/{id}/child", self.child_get),
            ("/content/{id}/child/{type}", self.child_type_get),
            ("/search", self.search),
            ("/space", self.space_list),
            ("/space/{key}", self.space_get),
            ("/space/{key}/content", self.space_content),
            ("/space/{key}/content/{type}", self.space_content_type),
            ("/user/current", self.current_user),
        ]
        for template, handler in routes:
            router.add("confluence", "GET", WIKI + API + template, handler)

    def current_user(self, request: Request) -> Response:
        """The authenticated user; ``timeZone`` is the zone CQL dates are read in."""
        return json_reply(
            {
                "type": "known",
                "username": "driftgate-sandbox",
                "userKey": "driftgate-sandbox",
                "displayName": "Driftgate Sandbox",
                "timeZone": "UTC",
                "_links": {"base": Ctx.of(request).base, "context": WIKI},
            }
        )

    # -- helpers --------------------------------------------------------------------------
    def _meta(self, page_id: str) -> dict[str, Any]:
        meta = self.by_id.get(page_id)
        if meta is None:
            raise no_content(page_id)
        return meta

    def _numbers(self, meta: dict[str, Any]) -> list[int]:
        return sorted(set(self.history.get(meta["id"], {})) | {meta["version"]})

    def _window(self, request: Request, body: bool, default: int = 25) -> tuple[int, int]:
        """(start, effective limit): the requested limit capped at the server maximum."""
        start = int_param(request, "start", 0)
        limit = int_param(request, "limit", default, minimum=1)
        return start, min(limit, self.max_body_limit if body else self.max_limit)

    def _links(
        self, request: Request, ctx: Ctx, start: int, limit: int, total: int | None
    ) -> dict[str, str]:
        """``_links`` of a paged answer: base, context, relative next/prev, absolute self."""
        path = raw_path_of(request)[len(WIKI) :].rstrip("/")
        kept = [(k, v) for k, v in query_items(request) if k not in ("start", "limit")]

        def relative(at: int) -> str:
            items = [*kept, ("limit", str(limit)), ("start", str(at))]
            return path + "?" + "&".join(f"{quote(k)}={quote(v, safe=',')}" for k, v in items)

        links = {"base": ctx.base, "context": WIKI}
        if total is not None and start + limit < total:
            links["next"] = relative(start + limit)
        if start > 0:
            links["prev"] = relative(max(start - limit, 0))
        query = request.query_string.decode("latin-1")
        links["self"] = ctx.base + path + ("?" + query if query else "")
        return links

    def _paged(
        self,
        request: Request,
        ctx: Ctx,
        items: list[Any],
        render: Callable[[Any], dict[str, Any]],
        *,
        body: bool = False,
        default_limit: int = 25,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        start, limit = self._window(request, body, default_limit)
        results = [render(item) for item in items[start : start + limit]]
        out: dict[str, Any] = {"results": results, "start": start, "limit": limit}
        out["size"] = len(results)
        out.update(extra or {})
        out["_links"] = self._links(request, ctx, start, limit, len(items))
        return out

    def _cql(self, request: Request) -> cql.Query:
        text = request.args.get("cql", "")
        try:
            return cql.parse(text, self.tz)
        except cql.CqlError as exc:
            raise error(
                400,
                "com.atlassian.confluence.api.service.exceptions.BadRequestException: "
                f"Could not parse cql : {text} ({exc})",
            ) from exc

    def _matching(self, request: Request) -> list[dict[str, Any]]:
        """The current pages the request's CQL matches, in its order."""

        def build() -> list[dict[str, Any]]:
            query = self._cql(request)

            def text_of(meta: Any) -> str:
                page = self.pages.load(meta["_pos"])
                return plain_text(self._body(meta, page, meta["version"]))

            found = [
                m
                for m in self.pages.metas
                if m["status"] == "current" and query.matches(m, text_of)
            ]
            return query.sort(found)  # type: ignore[return-value]

        return self._hits.get(request.args.get("cql", ""), build)

    def _version_record(self, meta: dict[str, Any], number: int) -> dict[str, Any] | None:
        pos = self.history.get(meta["id"], {}).get(number)
        return None if pos is None else self.versions.load(pos)

    def _body(self, meta: dict[str, Any], page: dict[str, Any], number: int) -> str:
        if number == meta["version"]:
            value = storage_value(page.get("body"))
            if value is not None:
                return value
        record = self._version_record(meta, number)
        return (storage_value(record.get("body")) if record else None) or ""

    # -- rendering ------------------------------------------------------------------------
    def _version(
        self,
        ctx: Ctx,
        meta: dict[str, Any],
        page: dict[str, Any],
        number: int,
        tree: Tree | None = None,
    ) -> dict[str, Any]:
        """One version object; ``tree`` may ask for ``content`` (and its expansions)."""
        stored = page.get("version")
        if number == meta["version"] and isinstance(stored, dict):
            version = {k: v for k, v in stored.items() if k not in ("_links", "_expandable")}
            version["by"] = self._user(stored.get("by"), ctx)
            expandable = dict(stored.get("_expandable") or {})
        else:
            record = self._version_record(meta, number) or {}
            version = {
                "by": self._user(record.get("by"), ctx),
                "when": record.get("when"),
                "friendlyWhen": friendly(record.get("when")),
                "message": record.get("message", ""),
                "number": number,
                "minorEdit": bool(record.get("minorEdit", False)),
            }
            expandable = {"collaborators": ""}
        page_id = meta["id"]
        historical = number != meta["version"]
        content_link = f"{API}/content/{page_id}" + (
            f"?status=historical&version={number}" if historical else ""
        )
        if tree and "content" in tree:
            version["content"] = self._content(ctx, meta, page, tree["content"], number=number)
            expandable.pop("content", None)
        else:
            expandable["content"] = content_link
        version["_expandable"] = expandable
        version["_links"] = {"self": f"{ctx.base}{API}/content/{page_id}/version/{number}"}
        return version

    def _history(
        self, ctx: Ctx, meta: dict[str, Any], page: dict[str, Any], tree: Tree, number: int
    ) -> dict[str, Any]:
        stored = page.get("history") or {}
        numbers = self._numbers(meta)
        first = self._version(ctx, meta, page, numbers[0])
        out: dict[str, Any] = {
            "latest": number == meta["version"],
            "createdBy": self._user(stored.get("createdBy") or first["by"], ctx),
            "createdDate": stored.get("createdDate") or first["when"],
        }
        neighbours = {
            "lastUpdated": number,
            "previousVersion": max((n for n in numbers if n < number), default=None),
            "nextVersion": min((n for n in numbers if n > number), default=None),
        }
        expandable: dict[str, str] = {}
        for name in HISTORY_EXPANDABLE:
            target = neighbours.get(name)
            if name in tree and target is not None:
                out[name] = self._version(ctx, meta, page, target, tree[name])
            elif name not in tree or name == "contributors":
                expandable[name] = ""
        out["_expandable"] = expandable
        out["_links"] = {"self": f"{ctx.base}{API}/content/{meta['id']}/history"}
        return out

    @staticmethod
    def _label_list(page: dict[str, Any], prefix: str | None = None) -> list[dict[str, Any]]:
        labels = ((page.get("metadata") or {}).get("labels") or {}).get("results") or []
        if prefix:
            labels = [lab for lab in labels if lab.get("prefix", "global") == prefix]
        return labels

    def _labels(self, ctx: Ctx, meta: dict[str, Any], page: dict[str, Any]) -> dict[str, Any]:
        labels = self._label_list(page)
        return {
            "results": labels,
            "start": 0,
            "limit": 200,
            "size": len(labels),
            "_links": {"self": f"{ctx.base}{API}/content/{meta['id']}/label"},
        }

    def _body_object(
        self, ctx: Ctx, meta: dict[str, Any], page: dict[str, Any], tree: Tree, number: int
    ) -> dict[str, Any]:
        stored = page.get("body") if number == meta["version"] else None
        out: dict[str, Any] = {}
        expandable: dict[str, str] = {}
        link = f"{API}/content/{meta['id']}"
        if number != meta["version"]:
            link += f"?status=historical&version={number}"
        for rep in BODY_REPRESENTATIONS:
            if rep in tree and rep == "storage":
                out[rep] = {
                    "value": self._body(meta, page, number),
                    "representation": "storage",
                    "embeddedContent": [],
                    "_expandable": {"content": link},
                }
            elif rep in tree and isinstance(stored, dict) and isinstance(stored.get(rep), dict):
                out[rep] = stored[rep]
            else:
                expandable[rep] = ""
        out["_expandable"] = expandable
        return out

    def _space(self, ctx: Ctx, key: str | None, tree: Tree) -> dict[str, Any] | None:
        stored = self.spaces.get(key) if key else None
        return None if stored is None else self._render_space(ctx, stored, tree)

    def _render_space(self, ctx: Ctx, stored: dict[str, Any], tree: Tree) -> dict[str, Any]:
        key = str(stored["key"])
        defaults = {
            "settings": f"{API}/space/{key}/settings",
            "lookAndFeel": f"{API}/settings/lookandfeel?spaceKey={key}",
            "theme": f"{API}/space/{key}/theme",
        }
        expandable = dict(stored.get("_expandable") or {})
        out: dict[str, Any] = {}
        for name, value in stored.items():
            if name in ("_expandable", "_links"):
                continue
            if name in SPACE_EXPANDABLE and name not in tree:
                if name == "homepage" and isinstance(value, dict) and value.get("id"):
                    expandable[name] = f"{API}/content/{value['id']}"
                else:
                    expandable.setdefault(name, defaults.get(name, ""))
                continue
            out[name] = value
            expandable.pop(name, None)
        for name in SPACE_EXPANDABLE:
            if name not in out:
                expandable.setdefault(name, defaults.get(name, ""))
        out["_expandable"] = expandable
        links = {
            k: v for k, v in (stored.get("_links") or {}).items() if k not in ("base", "context")
        }
        links.setdefault("webui", f"/spaces/{key}")
        links["self"] = f"{ctx.base}{API}/space/{quote(key)}"
        out["_links"] = links
        return out

    def _content(
        self,
        ctx: Ctx,
        meta: dict[str, Any],
        page: dict[str, Any],
        tree: Tree,
        *,
        number: int | None = None,
        single: bool = False,
    ) -> dict[str, Any]:
        """A content object with exactly the expansions in ``tree``, at version ``number``."""
        number = meta["version"] if number is None else number
        historical = number != meta["version"]
        page_id, key = meta["id"], meta["space"]
        out: dict[str, Any] = {
            "id": page_id,
            "type": meta["type"],
            "status": "historical" if historical else meta["status"],
            "title": meta["title"],
        }
        links_when_folded = {
            "container": f"{API}/space/{key}" if key else "",
            "children": f"{API}/content/{page_id}/child",
            "restrictions": f"{API}/content/{page_id}/restriction/byOperation",
            "history": f"{API}/content/{page_id}/history",
            "descendants": f"{API}/content/{page_id}/descendant",
            "space": f"{API}/space/{key}" if key else "",
        }
        expandable: dict[str, str] = {}
        for name in CONTENT_EXPANDABLE:
            value = None
            if name in tree:
                value = self._expansion(ctx, meta, page, name, tree[name], number)
            if value is None:
                expandable[name] = links_when_folded.get(name, "")
            else:
                out[name] = value
        if "extensions" in page:
            out["extensions"] = page["extensions"]
        out["_expandable"] = expandable
        stored_links = page.get("_links") or {}
        links = {
            k: stored_links[k] for k in ("webui", "edit", "editui", "tinyui") if k in stored_links
        }
        if "webui" not in links and key:
            links["webui"] = f"/spaces/{key}/pages/{page_id}/{slug(meta['title'])}"
        links["self"] = f"{ctx.base}{API}/content/{page_id}" + (
            f"?status=historical&version={number}" if historical else ""
        )
        if single:
            links.update(base=ctx.base, context=WIKI, collection=f"{API}/content")
        out["_links"] = links
        return out

    def _expansion(
        self,
        ctx: Ctx,
        meta: dict[str, Any],
        page: dict[str, Any],
        name: str,
        sub: Tree,
        number: int,
    ) -> Any:
        """The value of one expanded property, or None when the emulator cannot expand it."""
        if name == "body":
            return self._body_object(ctx, meta, page, sub, number)
        if name == "version":
            return self._version(ctx, meta, page, number, sub)
        if name == "history":
            return self._history(ctx, meta, page, sub, number)
        if name in ("space", "container"):
            return self._space(ctx, meta["space"], sub)
        if name == "ancestors":
            ancestors = []
            for ancestor in page.get("ancestors") or []:
                ancestor = dict(ancestor)
                links = ancestor.get("_links")
                if isinstance(links, dict) and "self" in links:
                    ancestor["_links"] = {**links, "self": ctx.rebase(links["self"])}
                ancestors.append(ancestor)
            return ancestors
        if name == "metadata":
            out: dict[str, Any] = {}
            expandable = {"currentuser": "", "comments": "", "properties": "", "frontend": ""}
            if "labels" in sub:
                out["labels"] = self._labels(ctx, meta, page)
            else:
                expandable["labels"] = ""
            out["_expandable"] = expandable
            return out
        if name == "children":
            out = {}
            expandable = {
                t: f"{API}/content/{meta['id']}/child/{t}"
                for t in ("attachment", "comment", "page")
            }
            if "page" in sub:
                kids = self.children.get(meta["id"], [])[:25]
                out["page"] = {
                    "results": [
                        self._content(ctx, k, self.pages.load(k["_pos"]), {}) for k in kids
                    ],
                    "start": 0,
                    "limit": 25,
                    "size": len(kids),
                    "_links": {"self": f"{ctx.base}{API}/content/{meta['id']}/child/page"},
                }
                expandable.pop("page")
            out["_expandable"] = expandable
            out["_links"] = {"self": f"{ctx.base}{API}/content/{meta['id']}/child"}
            return out
        return None

    def _render(self, ctx: Ctx, tree: Tree) -> Callable[[dict[str, Any]], dict[str, Any]]:
        return lambda meta: self._content(ctx, meta, self.pages.load(meta["_pos"]), tree)

    # -- handlers: content ----------------------------------------------------------------
    def content_list(self, request: Request) -> Response:
        ctx = Ctx.of(request)
        tree = expand_tree(list_param(request, "expand"))
        space = request.args.get("spaceKey")
        kind = request.args.get("type", "page")
        title = request.args.get("title")
        statuses = set(list_param(request, "status") or ["current"])
        items = [
            m
            for m in self.pages.metas
            if (not space or m["space"] == space)
            and m["type"] == kind
            and (title is None or m["title"].casefold() == title.casefold())
            and ("any" in statuses or m["status"] in statuses)
        ]
        return json_reply(
            self._paged(request, ctx, items, self._render(ctx, tree), body="body" in tree)
        )

    def content_search(self, request: Request) -> Response:
        ctx = Ctx.of(request)
        tree = expand_tree(list_param(request, "expand"))
        hits = self._matching(request)
        page = self._paged(
            request,
            ctx,
            hits,
            self._render(ctx, tree),
            body="body" in tree,
            extra={"totalSize": len(hits)},
        )
        return json_reply(page)

    def search(self, request: Request) -> Response:
        """/rest/api/search, the endpoint ``Confluence.cql()`` calls: wrapped results."""
        began = time.monotonic()
        ctx = Ctx.of(request)
        query = self._cql(request)
        tree = expand_tree(list_param(request, "expand"), prefix="content.")
        excerpt_mode = request.args.get("excerpt", "highlight")
        hits = self._matching(request)

        def wrap(meta: dict[str, Any]) -> dict[str, Any]:
            page = self.pages.load(meta["_pos"])
            content = self._content(ctx, meta, page, tree)
            space = self.spaces.get(meta["space"] or "") or {}
            when = (page.get("version") or {}).get("when")
            excerpt = ""
            if excerpt_mode != "none":
                excerpt = plain_text(self._body(meta, page, meta["version"]))[:300]
            return {
                "content": content,
                "title": meta["title"],
                "excerpt": excerpt,
                "url": content["_links"].get("webui", ""),
                "resultGlobalContainer": {
                    "title": space.get("name", meta["space"] or ""),
                    "displayUrl": f"/spaces/{meta['space']}",
                },
                "breadcrumbs": [],
                "entityType": "content",
                "iconCssClass": f"aui-icon content-type-{meta['type']}",
                "lastModified": iso_utc(when),
                "friendlyLastModified": friendly(when),
                "score": 0.0,
            }

        extra: dict[str, Any] = {"totalSize": len(hits), "cqlQuery": query.text}
        out = self._paged(request, ctx, hits, wrap, body="body" in tree, extra=extra)
        out["searchDuration"] = int((time.monotonic() - began) * 1000)
        out["_links"] = out.pop("_links")
        return json_reply(out)

    def content_get(self, request: Request, id: str) -> Response:
        ctx = Ctx.of(request)
        meta = self._meta(id)
        expand = list_param(request, "expand")
        tree = expand_tree(expand if expand is not None else DEFAULT_SINGLE_EXPAND.split(","))
        number = meta["version"]
        if request.args.get("version"):
            number = int_param(request, "version", meta["version"], minimum=1)
            if number not in self._numbers(meta):
                raise no_content(id)
        page = self.pages.load(meta["_pos"])
        return json_reply(self._content(ctx, meta, page, tree, number=number, single=True))

    def version_list(self, request: Request, id: str) -> Response:
        ctx = Ctx.of(request)
        meta = self._meta(id)
        page = self.pages.load(meta["_pos"])
        tree = expand_tree(list_param(request, "expand"))
        numbers = sorted(self._numbers(meta), reverse=True)
        body = "body" in tree.get("content", {})

        def render(number: int) -> dict[str, Any]:
            return self._version(ctx, meta, page, number, tree)

        return json_reply(self._paged(request, ctx, numbers, render, body=body, default_limit=200))

    def version_get(self, request: Request, id: str, number: str) -> Response:
        ctx = Ctx.of(request)
        meta = self._meta(id)
        if not number.isdigit() or int(number) not in self._numbers(meta):
            raise no_content(id)
        page = self.pages.load(meta["_pos"])
        tree = expand_tree(list_param(request, "expand"))
        version = self._version(ctx, meta, page, int(number), tree)
        version["_links"].update(base=ctx.base, context=WIKI)
        return json_reply(version)

    def history_get(self, request: Request, id: str) -> Response:
        ctx = Ctx.of(request)
        meta = self._meta(id)
        page = self.pages.load(meta["_pos"])
        tree = expand_tree(list_param(request, "expand"))
        history = self._history(ctx, meta, page, tree, meta["version"])
        history["_links"].update(base=ctx.base, context=WIKI)
        return json_reply(history)

    def labels_get(self, request: Request, id: str) -> Response:
        ctx = Ctx.of(request)
        meta = self._meta(id)
        labels = self._label_list(self.pages.load(meta["_pos"]), request.args.get("prefix"))
        return json_reply(self._paged(request, ctx, labels, dict, default_limit=200))

    def child_get(self, request: Request, id: str) -> Response:
        ctx = Ctx.of(request)
        meta = self._meta(id)
        page = self.pages.load(meta["_pos"])
        tree = expand_tree(list_param(request, "expand"))
        out = self._expansion(ctx, meta, page, "children", tree, meta["version"])
        out["_links"].update(base=ctx.base, context=WIKI)
        return json_reply(out)

    def child_type_get(self, request: Request, id: str, type: str) -> Response:
        ctx = Ctx.of(request)
        self._meta(id)
        if type not in ("page", "attachment", "comment"):
            raise error(404, f"No child type {type} for content {id}")
        tree = expand_tree(list_param(request, "expand"))
        items = self.children.get(id, []) if type == "page" else []
        return json_reply(
            self._paged(request, ctx, items, self._render(ctx, tree), body="body" in tree)
        )

    # -- handlers: spaces -----------------------------------------------------------------
    def _space_or_404(self, key: str) -> dict[str, Any]:
        space = self.spaces.get(key)
        if space is None:
            raise error(404, f"No space with key : {key}")
        return space

    def space_list(self, request: Request) -> Response:
        ctx = Ctx.of(request)
        tree = expand_tree(list_param(request, "expand"))
        keys = list_param(request, "spaceKey")
        kind = request.args.get("type")
        status = request.args.get("status")
        items = [
            s
            for s in self.spaces.values()
            if (keys is None or s["key"] in keys)
            and (kind is None or s.get("type") == kind)
            and (status is None or s.get("status", "current") == status)
        ]
        return json_reply(
            self._paged(request, ctx, items, lambda s: self._render_space(ctx, s, tree))
        )

    def space_get(self, request: Request, key: str) -> Response:
        ctx = Ctx.of(request)
        tree = expand_tree(list_param(request, "expand"))
        out = self._render_space(ctx, self._space_or_404(key), tree)
        out["_links"].update(base=ctx.base, context=WIKI)
        return json_reply(out)

    def _space_items(self, request: Request, key: str, kind: str) -> list[dict[str, Any]]:
        root_only = request.args.get("depth", "all") == "root"
        return [
            m
            for m in self.pages.metas
            if m["space"] == key
            and m["type"] == kind
            and m["status"] == "current"
            and not (root_only and m["ancestors"])
        ]

    def space_content(self, request: Request, key: str) -> Response:
        ctx = Ctx.of(request)
        self._space_or_404(key)
        tree = expand_tree(list_param(request, "expand"))
        render = self._render(ctx, tree)
        out: dict[str, Any] = {}
        for kind in ("page", "blogpost"):
            part = self._paged(
                request, ctx, self._space_items(request, key, kind), render, body="body" in tree
            )
            part["_links"] = {"self": f"{ctx.base}{API}/space/{quote(key)}/content/{kind}"}
            out[kind] = part
        out["_links"] = {"base": ctx.base, "context": WIKI}
        return json_reply(out)

    def space_content_type(self, request: Request, key: str, type: str) -> Response:
        ctx = Ctx.of(request)
        self._space_or_404(key)
        tree = expand_tree(list_param(request, "expand"))
        items = self._space_items(request, key, type)
        return json_reply(
            self._paged(request, ctx, items, self._render(ctx, tree), body="body" in tree)
        )


def _index_version(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "page_id": str(obj["page_id"]),
        "number": int(obj["number"]),
        "when": parse_when(obj.get("when")),
    }
