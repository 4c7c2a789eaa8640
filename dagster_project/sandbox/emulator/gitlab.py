"""GitLab REST API v4 emulator over a dataset directory (``gitlab/`` of format v1).

Serves what the ingestion reads through python-gitlab, with the behaviours that decide
whether a client loses data: offset pagination with ``Link`` built from the request's
``Host`` (the only signal python-gitlab follows), ``X-Total`` dropped above 10,000
records, keyset pagination where real GitLab offers it, Python-literal booleans,
``%2F``-encoded file paths and project paths, and 404 bodies shaped like GitLab's.

Commit membership follows git: a branch is the ancestry of its head (``parent_ids``),
an MR's commits are ``base..head`` of its ``diff_refs``, and the default branch is every
commit of the project except those only reachable from unmerged MR heads.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from dagster_project.lib.sources.timeparse import parse_ts
from dagster_project.sandbox.dataset import Dataset, DatasetError, JsonlTable
from dagster_project.sandbox.emulator.gitlab_graphql import GitlabGraphql
from dagster_project.sandbox.emulator.http import (
    HttpError,
    Recent,
    Router,
    bool_param,
    int_param,
    json_reply,
    list_param,
    query_items,
    raw_path_of,
)

API = "gitlab"
V4 = "/api/v4"
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
COUNT_LIMIT = 10_000  # above this GitLab stops counting: no X-Total, no rel="last"
MAX_PROJECT_OFFSET = 50_000  # offset cap on /projects; keyset beyond it
MAX_DIFF_FILES = 1_000  # /changes returns at most this many files, then overflow
LIST_CACHE_SIZE = 64  # filtered, sorted lists kept for paging
KEYSET_UNAVAILABLE = "Keyset pagination is not yet available for this type of request"

# The account the sandbox token belongs to: `scope=created_by_me` matches its MRs only.
SANDBOX_USER: dict[str, Any] = {
    "id": 1,
    "username": "driftgate-sandbox",
    "name": "Driftgate Sandbox",
    "state": "active",
    "locked": False,
    "avatar_url": None,
    "web_url": "https://gitlab.example.com/driftgate-sandbox",
    "bot": True,
}

PROJECT_SIMPLE_KEYS = (
    "id", "description", "name", "name_with_namespace", "path", "path_with_namespace",
    "created_at", "default_branch", "tag_list", "topics", "ssh_url_to_repo",
    "http_url_to_repo", "web_url", "readme_url", "forks_count", "avatar_url", "star_count",
    "last_activity_at", "visibility", "namespace",
)  # fmt: skip
MR_SIMPLE_KEYS = (
    "id", "iid", "project_id", "title", "description", "state", "created_at", "updated_at",
    "web_url",
)  # fmt: skip
# Present on GET /merge_requests/:iid (and /changes) only, never in list answers.
MR_SINGLE_ONLY = (
    "subscribed", "changes_count", "latest_build_started_at", "latest_build_finished_at",
    "first_deployed_to_production_at", "pipeline", "head_pipeline", "diff_refs",
    "merge_error", "first_contribution", "user", "diverged_commits_count",
    "rebase_in_progress",
)  # fmt: skip
# Present on GET /repository/commits/:sha only.
COMMIT_SINGLE_ONLY = ("stats", "status", "last_pipeline", "project_id")

MR_STATES = ("opened", "closed", "locked", "merged", "all")
MR_SCOPES = ("created_by_me", "assigned_to_me", "reviews_for_me", "all")
MR_ORDER = ("created_at", "updated_at", "merged_at", "title")
PROJECT_ORDER = ("id", "name", "path", "created_at", "updated_at", "last_activity_at")
DEPLOYMENT_ORDER = ("id", "iid", "created_at", "updated_at", "finished_at", "ref")
DEPLOYMENT_STATUSES = ("created", "running", "success", "failed", "canceled", "blocked")

T = TypeVar("T")


# -- parameters --------------------------------------------------------------------------
def parse_time(value: str | None) -> float | None:
    """An ISO-8601 timestamp (``Z``, offsets, or a bare date read as UTC) as epoch seconds."""
    if value is None or value == "":
        return None
    text = value.strip()
    # An unencoded "+" in a query string arrives as a space.
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text)
    if text.endswith("z"):
        text = text[:-1] + "Z"
    return parse_ts(text).timestamp()


def time_param(request: Request, name: str) -> float | None:
    try:
        return parse_time(request.args.get(name))
    except ValueError as exc:
        raise HttpError(400, {"error": f"{name} is invalid"}) from exc


def choice_param(request: Request, name: str, choices: Sequence[str], default: str) -> str:
    value = request.args.get(name) or default
    if value not in choices:
        raise HttpError(400, {"error": f"{name} does not have a valid value"})
    return value


def sort_param(request: Request, default: str = "desc") -> bool:
    """True when the answer is sorted descending."""
    return choice_param(request, "sort", ("asc", "desc"), default) == "desc"


def page_size(request: Request) -> int:
    per_page = int_param(request, "per_page", DEFAULT_PER_PAGE)
    return min(per_page, MAX_PER_PAGE) if per_page > 0 else DEFAULT_PER_PAGE


def _sort_key(value: Any) -> tuple[int, Any]:
    """Missing values sort last ascending (first descending), as NULLs do in GitLab."""
    return (1, 0) if value is None else (0, value)


# -- pagination --------------------------------------------------------------------------
def page_url(request: Request, **overrides: Any) -> str:
    """The request's own URL on its Host, with query parameters replaced by ``overrides``.

    The path stays raw so ``%2F``-encoded ids survive; python-gitlab follows this URL
    verbatim, and warns when its host differs from the configured base URL.
    """
    items = [(k, v) for k, v in query_items(request) if k not in overrides]
    items += [(k, str(v)) for k, v in overrides.items()]
    return f"{request.scheme}://{request.host}{raw_path_of(request)}?{urlencode(items)}"


def link_header(links: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links)


def offset_page(
    request: Request, items: Sequence[T], *, max_offset: int | None = None
) -> tuple[Sequence[T], dict[str, str]]:
    """One page of ``items`` and GitLab's offset-pagination headers for it."""
    per_page = page_size(request)
    page = int_param(request, "page", 1, minimum=1)
    offset = (page - 1) * per_page
    if max_offset is not None and offset > max_offset:
        raise HttpError(
            405,
            {
                "error": f"Offset pagination has a maximum allowed offset of {max_offset} "
                "for requests that return objects of type Project. Remaining records can "
                "be retrieved using keyset pagination."
            },
        )
    total = len(items)
    counted = total <= COUNT_LIMIT
    total_pages = max(1, math.ceil(total / per_page))
    next_page = page + 1 if offset + per_page < total else None
    prev_page = page - 1 if page > 1 else None
    links: list[tuple[str, str]] = []
    if prev_page:
        links.append(("prev", page_url(request, page=prev_page, per_page=per_page)))
    if next_page:
        links.append(("next", page_url(request, page=next_page, per_page=per_page)))
    links.append(("first", page_url(request, page=1, per_page=per_page)))
    if counted:
        links.append(("last", page_url(request, page=total_pages, per_page=per_page)))
    headers = {
        "X-Per-Page": str(per_page),
        "X-Page": str(page),
        "X-Next-Page": str(next_page or ""),
        "X-Prev-Page": str(prev_page or ""),
        "Link": link_header(links),
    }
    if counted:
        headers["X-Total"] = str(total)
        headers["X-Total-Pages"] = str(total_pages)
    return items[offset : offset + per_page], headers


def keyset_page(
    request: Request, items: Sequence[T], *, after: int, cursor: Callable[[T], dict[str, Any]]
) -> tuple[Sequence[T], dict[str, str]]:
    """``items[after:]`` cut to one page; ``Link: rel="next"`` only when more remain."""
    per_page = page_size(request)
    page = items[after : after + per_page]
    headers: dict[str, str] = {}
    if after + per_page < len(items):
        url = page_url(request, per_page=per_page, **cursor(page[-1]))
        headers["Link"] = link_header([("next", url)])
    return page, headers


def keyset_requested(request: Request) -> bool:
    return request.args.get("pagination") == "keyset"


def reject_keyset(request: Request) -> None:
    """Real GitLab answers 405 to keyset pagination on endpoints that lack it."""
    if keyset_requested(request):
        raise HttpError(405, {"error": KEYSET_UNAVAILABLE})


# -- git objects -------------------------------------------------------------------------
def git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _strip(obj: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    drop = set(keys)
    return {k: v for k, v in obj.items() if k not in drop}


def _pick(obj: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {k: obj[k] for k in keys if k in obj}


def _user_id(user: Any) -> Any:
    return user.get("id") if isinstance(user, dict) else None


def _label_names(labels: Any) -> tuple[str, ...]:
    out = []
    for label in labels or ():
        out.append(label.get("name", "") if isinstance(label, dict) else str(label))
    return tuple(out)


class _Lazy:
    """Values built once on first use, under a lock (the server is threaded)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._values: dict[str, Any] = {}

    def get(self, name: str, build: Callable[[], T]) -> T:
        with self._lock:
            if name not in self._values:
                self._values[name] = build()
            return self._values[name]


class GitlabApi:
    """The ``/api/v4`` routes over one dataset's ``gitlab/`` folder."""

    def __init__(self, dataset: Dataset, **options: Any):
        self.dataset = dataset
        self.options = options
        self.user: dict[str, Any] = dict(options.get("user") or SANDBOX_USER)
        self._lazy = _Lazy()
        self._lists: Recent[list[Any]] = Recent(LIST_CACHE_SIZE)

    # -- registration ------------------------------------------------------------------
    def register(self, router: Router) -> None:
        routes: list[tuple[str, Callable[..., Response]]] = [
            ("/user", self.current_user),
            ("/version", self.version),
            ("/projects", self.list_projects),
            ("/projects/{id}", self.get_project),
            ("/groups/{id}", self.get_group),
            ("/groups/{id}/projects", self.list_group_projects),
            ("/groups/{id}/merge_requests", self.list_group_merge_requests),
            ("/merge_requests", self.list_all_merge_requests),
            ("/projects/{id}/merge_requests", self.list_project_merge_requests),
            ("/projects/{id}/merge_requests/{iid}", self.get_merge_request),
            ("/projects/{id}/merge_requests/{iid}/changes", self.mr_changes),
            ("/projects/{id}/merge_requests/{iid}/diffs", self.mr_diffs),
            ("/projects/{id}/merge_requests/{iid}/versions", self.mr_versions),
            ("/projects/{id}/merge_requests/{iid}/versions/{version_id}", self.mr_version),
            ("/projects/{id}/merge_requests/{iid}/notes", self.mr_notes),
            ("/projects/{id}/merge_requests/{iid}/notes/{note_id}", self.mr_note),
            ("/projects/{id}/merge_requests/{iid}/approvals", self.mr_approvals),
            ("/projects/{id}/merge_requests/{iid}/commits", self.mr_commits),
            ("/projects/{id}/repository/commits", self.list_commits),
            ("/projects/{id}/repository/commits/{sha}", self.get_commit),
            ("/projects/{id}/repository/tree", self.tree),
            ("/projects/{id}/repository/tags", self.list_tags),
            ("/projects/{id}/repository/files/{file_path}/raw", self.raw_file),
            ("/projects/{id}/repository/files/{file_path}", self.get_file),
            ("/projects/{id}/deployments", self.list_deployments),
            ("/projects/{id}/deployments/{deployment_id}", self.get_deployment),
        ]
        for template, handler in routes:
            router.add(API, "GET", V4 + template, handler)
        if self.options.get("graphql", True):
            GitlabGraphql(self).register(router, API)

    def _cached(self, request: Request, build: Callable[[], list[T]]) -> list[T]:
        """A filtered, sorted list reused across the pages of one query.

        The dataset never changes while served, so paging through N records costs one
        filter and sort, not one per page.
        """
        params = tuple(
            sorted((k, v) for k, v in query_items(request) if k not in ("page", "per_page"))
        )
        return self._lists.get((raw_path_of(request), params), build)

    # -- dataset indexes ---------------------------------------------------------------
    @property
    def projects(self) -> list[dict[str, Any]]:
        return self._lazy.get("projects", lambda: list(self.dataset.json("gitlab/projects.json")))

    @property
    def _project_lookup(self) -> dict[str, dict[str, Any]]:
        def build() -> dict[str, dict[str, Any]]:
            out: dict[str, dict[str, Any]] = {}
            for project in self.projects:
                out[str(project["id"])] = project
                path = project.get("path_with_namespace")
                if path:
                    out[path.lower()] = project
            return out

        return self._lazy.get("project_lookup", build)

    @property
    def groups(self) -> dict[int, dict[str, Any]]:
        """Groups known from the projects' namespaces, ancestors included."""

        def build() -> dict[int, dict[str, Any]]:
            out: dict[int, dict[str, Any]] = {}
            for project in self.projects:
                ns = project.get("namespace") or {}
                if ns.get("kind") != "group" or "id" not in ns:
                    continue
                out.setdefault(int(ns["id"]), dict(ns))
            for ns in list(out.values()):
                parent_id, path = ns.get("parent_id"), ns.get("full_path", "")
                if parent_id and int(parent_id) not in out and "/" in path:
                    parent_path = path.rsplit("/", 1)[0]
                    out[int(parent_id)] = {
                        "id": int(parent_id),
                        "name": parent_path.rsplit("/", 1)[-1],
                        "path": parent_path.rsplit("/", 1)[-1],
                        "kind": "group",
                        "full_path": parent_path,
                        "parent_id": None,
                    }
            return out

        return self._lazy.get("groups", build)

    @property
    def merge_requests(self) -> JsonlTable:
        def index(mr: dict[str, Any]) -> dict[str, Any]:
            return {
                "project_id": int(mr["project_id"]),
                "iid": int(mr["iid"]),
                "id": int(mr["id"]),
                "state": mr["state"],
                "created_at": parse_time(mr["created_at"]),
                "updated_at": parse_time(mr["updated_at"]),
                "merged_at": parse_time(mr.get("merged_at")),
                "title": mr.get("title") or "",
                "author_id": _user_id(mr.get("author")),
                "author_username": (mr.get("author") or {}).get("username"),
                "assignee_ids": tuple(_user_id(u) for u in mr.get("assignees") or ()),
                "reviewer_ids": tuple(_user_id(u) for u in mr.get("reviewers") or ()),
                "reviewer_usernames": tuple(
                    (u or {}).get("username") for u in mr.get("reviewers") or ()
                ),
                "labels": _label_names(mr.get("labels")),
                "source_branch": mr.get("source_branch"),
                "target_branch": mr.get("target_branch"),
                "draft": bool(mr.get("draft") or mr.get("work_in_progress")),
                "sha": mr.get("sha"),
                "base_sha": (mr.get("diff_refs") or {}).get("base_sha"),
                "squashed": bool(mr.get("squash_commit_sha")),
            }

        return self.dataset.table("gitlab/merge_requests.jsonl", index)

    @property
    def _mr_positions(self) -> dict[tuple[int, int], int]:
        def build() -> dict[tuple[int, int], int]:
            return {(m["project_id"], m["iid"]): m["_pos"] for m in self.merge_requests.metas}

        return self._lazy.get("mr_positions", build)

    def _project_mrs(self, project_id: int) -> list[dict[str, Any]]:
        def build() -> dict[int, list[dict[str, Any]]]:
            out: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for meta in self.merge_requests.metas:
                out[meta["project_id"]].append(meta)
            return dict(out)

        return self._lazy.get("mrs_by_project", build).get(project_id, [])

    def _per_mr(self, rel: str) -> tuple[JsonlTable, dict[tuple[int, int], list[int]]]:
        """A JSON Lines file of ``{"project_id", "iid", ...}`` records, grouped by MR."""

        def index(record: dict[str, Any]) -> dict[str, Any]:
            return {"project_id": int(record["project_id"]), "iid": int(record["iid"])}

        table = self.dataset.table(rel, index)

        def build() -> dict[tuple[int, int], list[int]]:
            out: dict[tuple[int, int], list[int]] = defaultdict(list)
            for meta in table.metas:
                out[(meta["project_id"], meta["iid"])].append(meta["_pos"])
            return dict(out)

        return table, self._lazy.get(rel, build)

    @property
    def commits(self) -> JsonlTable:
        def index(commit: dict[str, Any]) -> dict[str, Any]:
            return {
                "project_id": int(commit["project_id"]),
                "id": commit["id"],
                "committed_date": parse_time(commit.get("committed_date") or commit["created_at"]),
                "parent_ids": tuple(commit.get("parent_ids") or ()),
            }

        return self.dataset.table("gitlab/commits.jsonl", index)

    def _project_commits(self, project_id: int) -> dict[str, dict[str, Any]]:
        def build() -> dict[int, dict[str, dict[str, Any]]]:
            out: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
            for meta in self.commits.metas:
                out[meta["project_id"]][meta["id"]] = meta
            return dict(out)

        return self._lazy.get("commits_by_project", build).get(project_id, {})

    @property
    def deployments(self) -> JsonlTable:
        def index(dep: dict[str, Any]) -> dict[str, Any]:
            env = dep.get("environment") or {}
            return {
                "project_id": int(dep["project_id"]),
                "id": int(dep["id"]),
                "iid": int(dep.get("iid") or 0),
                "environment": env.get("name") if isinstance(env, dict) else env,
                "status": dep.get("status"),
                "ref": dep.get("ref"),
                "created_at": parse_time(dep.get("created_at")),
                "updated_at": parse_time(dep.get("updated_at")),
                "finished_at": parse_time((dep.get("deployable") or {}).get("finished_at")),
            }

        return self.dataset.table("gitlab/deployments.jsonl", index)

    # -- lookups -----------------------------------------------------------------------
    def find_project(self, ident: str) -> dict[str, Any] | None:
        """A project by id or full path (any case), as GitLab resolves both."""
        return self._project_lookup.get(ident) or self._project_lookup.get(ident.lower())

    def _project(self, ident: str) -> dict[str, Any]:
        project = self.find_project(ident)
        if project is None:
            raise HttpError(404, "Project Not Found")
        return project

    def _group(self, ident: str) -> dict[str, Any]:
        for group in self.groups.values():
            if str(group["id"]) == ident or group.get("full_path", "").lower() == ident.lower():
                return group
        raise HttpError(404, "Group Not Found")

    def find_mr(self, project: dict[str, Any], iid: str) -> dict[str, Any] | None:
        """The index entry of a project's MR by iid, or None."""
        try:
            pos = self._mr_positions.get((int(project["id"]), int(iid)))
        except ValueError:
            pos = None
        return None if pos is None else self.merge_requests.metas[pos]

    def project_mrs(self, project: dict[str, Any]) -> list[dict[str, Any]]:
        """Index entries of a project's MRs."""
        return self._project_mrs(int(project["id"]))

    def _mr_meta(self, project: dict[str, Any], iid: str) -> dict[str, Any]:
        meta = self.find_mr(project, iid)
        if meta is None:
            raise HttpError(404, "Not found")
        return meta

    def _mr_records(self, rel: str, meta: dict[str, Any]) -> list[dict[str, Any]]:
        table, positions = self._per_mr(rel)
        return [table.load(pos) for pos in positions.get((meta["project_id"], meta["iid"]), ())]

    # -- user, version -----------------------------------------------------------------
    def current_user(self, request: Request) -> Response:
        return json_reply(self.user)

    def version(self, request: Request) -> Response:
        return json_reply({"version": "17.9.2-ee", "revision": "sandbox", "enterprise": True})

    # -- projects ----------------------------------------------------------------------
    def list_projects(self, request: Request) -> Response:
        projects = self._filter_projects(request, self.projects)
        return self._project_page(request, projects, keyset=True)

    def list_group_projects(self, request: Request, id: str) -> Response:
        group = self._group(id)
        full_path = group.get("full_path", "")
        nested = bool_param(request, "include_subgroups")

        def in_group(project: dict[str, Any]) -> bool:
            ns_path = (project.get("namespace") or {}).get("full_path", "")
            return ns_path == full_path or (nested and ns_path.startswith(full_path + "/"))

        projects = self._filter_projects(request, [p for p in self.projects if in_group(p)])
        return self._project_page(request, projects, keyset=False)

    def _filter_projects(
        self, request: Request, projects: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        out = list(projects)
        if bool_param(request, "membership"):
            out = [p for p in out if self._is_member(p)]
        if bool_param(request, "owned"):
            owner = self.user["id"]
            out = [p for p in out if _user_id(p.get("owner")) == owner]
        if request.args.get("archived") is not None:
            archived = bool_param(request, "archived")
            out = [p for p in out if bool(p.get("archived")) == archived]
        visibility = request.args.get("visibility")
        if visibility:
            out = [p for p in out if p.get("visibility") == visibility]
        search = (request.args.get("search") or "").lower()
        if search:
            with_ns = bool_param(request, "search_namespaces")
            fields = ("name", "path", "description") + (
                ("path_with_namespace", "name_with_namespace") if with_ns else ()
            )
            out = [p for p in out if any(search in str(p.get(f) or "").lower() for f in fields)]
        for name, op in (("last_activity_after", 1), ("last_activity_before", -1)):
            bound = time_param(request, name)
            if bound is not None:
                out = [
                    p
                    for p in out
                    if (t := parse_time(p.get("last_activity_at"))) is not None
                    and (t - bound) * op >= 0
                ]
        return out

    def _is_member(self, project: dict[str, Any]) -> bool:
        """Membership as the captured ``permissions`` say; without them, assume member."""
        if "permissions" not in project:
            return True
        perms = project.get("permissions") or {}
        return bool(perms.get("project_access") or perms.get("group_access"))

    def _project_page(
        self, request: Request, projects: list[dict[str, Any]], *, keyset: bool
    ) -> Response:
        order_by = choice_param(request, "order_by", PROJECT_ORDER, "created_at")
        desc = sort_param(request)
        if keyset_requested(request):
            if not keyset or order_by != "id":
                raise HttpError(405, {"error": KEYSET_UNAVAILABLE})
            ordered = sorted(projects, key=lambda p: int(p["id"]), reverse=desc)
            bound_name = "id_before" if desc else "id_after"
            bound = request.args.get(bound_name)
            after = 0
            if bound not in (None, ""):
                limit = int_param(request, bound_name, 0)
                after = next(
                    (
                        i
                        for i, p in enumerate(ordered)
                        if (int(p["id"]) < limit if desc else int(p["id"]) > limit)
                    ),
                    len(ordered),
                )
            page, headers = keyset_page(
                request, ordered, after=after, cursor=lambda p: {bound_name: p["id"]}
            )
        else:
            ordered = sorted(
                projects,
                key=lambda p: (_sort_key(self._project_value(p, order_by)), int(p["id"])),
                reverse=desc,
            )
            page, headers = offset_page(
                request, ordered, max_offset=MAX_PROJECT_OFFSET if keyset else None
            )
        simple = bool_param(request, "simple")
        body = [_pick(p, PROJECT_SIMPLE_KEYS) if simple else p for p in page]
        return json_reply(body, headers=headers)

    @staticmethod
    def _project_value(project: dict[str, Any], order_by: str) -> Any:
        value = project.get(order_by)
        if order_by.endswith("_at"):
            return parse_time(value)
        if order_by == "id":
            return int(value)
        return (value or "").lower()

    def get_project(self, request: Request, id: str) -> Response:
        return json_reply(self._project(id))

    def get_group(self, request: Request, id: str) -> Response:
        group = dict(self._group(id))
        group.setdefault("full_name", group.get("full_path", "").replace("/", " / "))
        return json_reply(group)

    # -- merge requests ----------------------------------------------------------------
    def list_all_merge_requests(self, request: Request) -> Response:
        return self._mr_list(request, None, default_scope="created_by_me")

    def list_group_merge_requests(self, request: Request, id: str) -> Response:
        group = self._group(id)
        full_path = group.get("full_path", "")
        ids = {
            int(p["id"])
            for p in self.projects
            if (ns := (p.get("namespace") or {}).get("full_path", "")) == full_path
            or ns.startswith(full_path + "/")
        }
        return self._mr_list(request, ids, default_scope="all")

    def list_project_merge_requests(self, request: Request, id: str) -> Response:
        project = self._project(id)
        return self._mr_list(request, {int(project["id"])}, default_scope="all")

    def _mr_list(
        self, request: Request, project_ids: set[int] | None, *, default_scope: str
    ) -> Response:
        reject_keyset(request)

        def build() -> list[dict[str, Any]]:
            metas = self._filter_mrs(request, project_ids, default_scope)
            order_by = choice_param(request, "order_by", MR_ORDER, "created_at")
            desc = sort_param(request)
            metas.sort(key=lambda m: (_sort_key(m[order_by]), m["id"]), reverse=desc)
            return metas

        page, headers = offset_page(request, self._cached(request, build))
        simple = request.args.get("view") == "simple"
        body = []
        for meta in page:
            mr = self.merge_requests.load(meta["_pos"])
            body.append(_pick(mr, MR_SIMPLE_KEYS) if simple else _strip(mr, MR_SINGLE_ONLY))
        return json_reply(body, headers=headers)

    def _filter_mrs(
        self, request: Request, project_ids: set[int] | None, default_scope: str
    ) -> list[dict[str, Any]]:
        state = choice_param(request, "state", MR_STATES, "all")
        scope = request.args.get("scope") or default_scope
        scope = scope.replace("-", "_")
        if scope not in MR_SCOPES:
            raise HttpError(400, {"error": "scope does not have a valid value"})
        bounds = {
            name: time_param(request, name)
            for name in ("created_after", "created_before", "updated_after", "updated_before")
        }
        me = self.user["id"]
        labels = list_param(request, "labels")
        iids = {int(v) for v in request.args.getlist("iids[]") if v.isdigit()}
        checks: list[Callable[[dict[str, Any]], bool]] = []
        if state != "all":
            checks.append(lambda m: m["state"] == state)
        if scope == "created_by_me":
            checks.append(lambda m: m["author_id"] == me)
        elif scope == "assigned_to_me":
            checks.append(lambda m: me in m["assignee_ids"])
        elif scope == "reviews_for_me":
            checks.append(lambda m: me in m["reviewer_ids"])
        for name, bound in bounds.items():
            if bound is None:
                continue
            field = name.split("_")[0] + "_at"
            if name.endswith("_after"):
                checks.append(lambda m, f=field, b=bound: m[f] is not None and m[f] >= b)
            else:
                checks.append(lambda m, f=field, b=bound: m[f] is not None and m[f] <= b)
        for param, field in (
            ("source_branch", "source_branch"),
            ("target_branch", "target_branch"),
            ("author_username", "author_username"),
        ):
            value = request.args.get(param)
            if value:
                checks.append(lambda m, f=field, v=value: m[f] == v)
        author_id = request.args.get("author_id")
        if author_id:
            checks.append(lambda m: str(m["author_id"]) == author_id)
        for param, field in (("assignee_id", "assignee_ids"), ("reviewer_id", "reviewer_ids")):
            value = (request.args.get(param) or "").lower()
            if value == "none":
                checks.append(lambda m, f=field: not m[f])
            elif value == "any":
                checks.append(lambda m, f=field: bool(m[f]))
            elif value:
                checks.append(lambda m, f=field, v=value: v in {str(x) for x in m[f]})
        reviewer_username = request.args.get("reviewer_username")
        if reviewer_username:
            checks.append(lambda m: reviewer_username in m["reviewer_usernames"])
        if labels:
            lowered = [label.lower() for label in labels]
            if lowered == ["none"]:
                checks.append(lambda m: not m["labels"])
            elif lowered == ["any"]:
                checks.append(lambda m: bool(m["labels"]))
            else:
                checks.append(lambda m: set(labels) <= set(m["labels"]))
        wip = (request.args.get("wip") or "").lower()
        if wip in ("yes", "no"):
            checks.append(lambda m: m["draft"] == (wip == "yes"))
        if iids:
            checks.append(lambda m: m["iid"] in iids)
        if project_ids is None:
            candidates: Iterable[dict[str, Any]] = self.merge_requests.metas
        else:
            candidates = (m for pid in sorted(project_ids) for m in self._project_mrs(pid))
        metas = [m for m in candidates if all(check(m) for check in checks)]
        search = (request.args.get("search") or "").lower()
        if search:
            fields = list_param(request, "in") or ["title", "description"]
            metas = [
                m
                for m in metas
                if any(
                    search in str(self.merge_requests.load(m["_pos"]).get(f) or "").lower()
                    for f in fields
                )
            ]
        return metas

    def get_merge_request(self, request: Request, id: str, iid: str) -> Response:
        meta = self._mr_meta(self._project(id), iid)
        return json_reply(self.merge_requests.load(meta["_pos"]))

    def _changes_of(self, meta: dict[str, Any]) -> list[dict[str, Any]]:
        changes: list[dict[str, Any]] = []
        for record in self._mr_records("gitlab/mr_changes.jsonl", meta):
            changes.extend(record.get("changes") or ())
        return changes

    def mr_changes(self, request: Request, id: str, iid: str) -> Response:
        """The MR object plus ``changes``; past the file limit, cut with ``overflow``."""
        meta = self._mr_meta(self._project(id), iid)
        mr = self.merge_requests.load(meta["_pos"])
        changes = self._changes_of(meta)
        overflow = len(changes) > MAX_DIFF_FILES
        mr["changes"] = changes[:MAX_DIFF_FILES]
        mr["overflow"] = overflow
        if overflow:
            mr["changes_count"] = f"{MAX_DIFF_FILES}+"
        return json_reply(mr)

    def mr_diffs(self, request: Request, id: str, iid: str) -> Response:
        reject_keyset(request)
        meta = self._mr_meta(self._project(id), iid)
        page, headers = offset_page(request, self._changes_of(meta))
        return json_reply(list(page), headers=headers)

    def _versions_of(self, meta: dict[str, Any]) -> list[dict[str, Any]]:
        """Diff versions as recorded, or the latest one derived from ``diff_refs``."""
        recorded: list[dict[str, Any]] = []
        for record in self._mr_records("gitlab/mr_changes.jsonl", meta):
            recorded.extend(record.get("versions") or ())
        if recorded:
            return sorted(recorded, key=lambda v: int(v["id"]), reverse=True)
        mr = self.merge_requests.load(meta["_pos"])
        refs = mr.get("diff_refs") or {}
        if not refs.get("head_sha"):
            return []
        return [
            {
                "id": int(mr["id"]),
                "head_commit_sha": refs.get("head_sha"),
                "base_commit_sha": refs.get("base_sha"),
                "start_commit_sha": refs.get("start_sha"),
                "created_at": mr.get("updated_at"),
                "merge_request_id": int(mr["id"]),
                "state": "collected",
                "real_size": str(len(self._changes_of(meta))),
                "patch_id_sha": None,
            }
        ]

    def mr_versions(self, request: Request, id: str, iid: str) -> Response:
        reject_keyset(request)
        meta = self._mr_meta(self._project(id), iid)
        page, headers = offset_page(request, self._versions_of(meta))
        return json_reply([_strip(v, ("commits", "diffs")) for v in page], headers=headers)

    def mr_version(self, request: Request, id: str, iid: str, version_id: str) -> Response:
        meta = self._mr_meta(self._project(id), iid)
        versions = self._versions_of(meta)
        version = next((v for v in versions if str(v["id"]) == version_id), None)
        if version is None:
            raise HttpError(404, "Not found")
        out = dict(version)
        if "commits" not in out:
            out["commits"] = [self._render_commit(c) for c in self._mr_commit_list(meta)]
        if "diffs" not in out:
            latest = versions[0]["id"] == version["id"]
            out["diffs"] = self._changes_of(meta) if latest else []
        return json_reply(out)

    def notes_of(self, meta: dict[str, Any], order_by: str = "created_at") -> list[dict[str, Any]]:
        """An MR's notes, system ones included, oldest first (ties by id): the order of
        REST's ``sort=asc`` and of GraphQL's ``notes``."""
        notes: list[dict[str, Any]] = []
        for record in self._mr_records("gitlab/mr_notes.jsonl", meta):
            notes.extend(record.get("notes") or ())
        notes.sort(key=lambda n: (_sort_key(parse_time(n.get(order_by))), n["id"]))
        return notes

    def mr_notes(self, request: Request, id: str, iid: str) -> Response:
        """Notes (system ones included), newest first unless ``sort=asc``."""
        reject_keyset(request)
        meta = self._mr_meta(self._project(id), iid)
        order_by = choice_param(request, "order_by", ("created_at", "updated_at"), "created_at")
        notes = self.notes_of(meta, order_by)
        if sort_param(request):
            notes.reverse()
        page, headers = offset_page(request, notes)
        return json_reply(list(page), headers=headers)

    def mr_note(self, request: Request, id: str, iid: str, note_id: str) -> Response:
        meta = self._mr_meta(self._project(id), iid)
        for record in self._mr_records("gitlab/mr_notes.jsonl", meta):
            for note in record.get("notes") or ():
                if str(note.get("id")) == note_id:
                    return json_reply(note)
        raise HttpError(404, "Note Not Found")

    def approval_state_of(self, meta: dict[str, Any]) -> dict[str, Any]:
        """The MR's approval state as ``/approvals`` answers it."""
        for record in self._mr_records("gitlab/mr_approvals.jsonl", meta):
            if record.get("approvals"):
                return record["approvals"]
        mr = self.merge_requests.load(meta["_pos"])
        state = _pick(
            mr,
            ("id", "iid", "project_id", "title", "description", "state", "created_at",
             "updated_at", "merge_status"),
        )  # fmt: skip
        state.update(
            approved=True, approvals_required=0, approvals_left=0, approved_by=[],
            suggested_approvers=[], approvers=[], approver_groups=[], user_has_approved=False,
            user_can_approve=False, approval_rules_left=[], has_approval_rules=False,
            merge_request_approvers_available=False, multiple_approval_rules_available=False,
            invalid_approvers_rules=[], require_password_to_approve=False,
        )  # fmt: skip
        return state

    def mr_approvals(self, request: Request, id: str, iid: str) -> Response:
        return json_reply(self.approval_state_of(self._mr_meta(self._project(id), iid)))

    def mr_commits(self, request: Request, id: str, iid: str) -> Response:
        reject_keyset(request)
        meta = self._mr_meta(self._project(id), iid)
        page, headers = offset_page(request, self._mr_commit_list(meta))
        return json_reply([self._render_commit(c) for c in page], headers=headers)

    def _mr_commit_list(self, meta: dict[str, Any]) -> list[dict[str, Any]]:
        """``base..head`` of the MR, newest first, as full commit objects."""
        graph = self._project_commits(meta["project_id"])
        head, base = meta["sha"], meta["base_sha"]
        if head not in graph:
            return []
        # Commit dates grow from parent to child, so nothing older than the merge base
        # can be on the branch: both walks stop there instead of crossing all history.
        floor = graph[base]["committed_date"] if base in graph else None
        shas = self._ancestry(graph, [head], floor=floor) - self._ancestry(
            graph, [base], floor=floor
        )
        return self._load_commits(graph, shas)

    # -- commits -----------------------------------------------------------------------
    @staticmethod
    def _ancestry(
        graph: dict[str, dict[str, Any]],
        heads: Iterable[str | None],
        first_parent: bool = False,
        floor: float | None = None,
    ) -> set[str]:
        """Commits reachable from ``heads``; with ``floor``, none committed before it."""
        seen: set[str] = set()
        stack = [h for h in heads if h and h in graph]
        while stack:
            sha = stack.pop()
            if sha in seen:
                continue
            date = graph[sha]["committed_date"]
            if floor is not None and date is not None and date < floor:
                continue
            seen.add(sha)
            parents = graph[sha]["parent_ids"]
            if first_parent:
                parents = parents[:1]
            stack.extend(p for p in parents if p in graph and p not in seen)
        return seen

    def _load_commits(self, graph: dict[str, dict[str, Any]], shas: Iterable[str]) -> list[Any]:
        metas = sorted(
            (graph[s] for s in shas),
            key=lambda m: (_sort_key(m["committed_date"]), m["id"]),
            reverse=True,
        )
        return [self.commits.load(m["_pos"]) for m in metas]

    def _main_tips(self, project_id: int) -> list[str]:
        """Heads of the default branch: childless commits that are not an MR's own head.

        A merged MR's head stays a candidate (fast-forward merges leave it as the tip),
        unless the MR was squashed, whose branch commits never reach the target.
        """

        def build() -> dict[int, list[str]]:
            branch_heads: dict[int, set[str]] = defaultdict(set)
            for meta in self.merge_requests.metas:
                if meta["sha"] and (meta["state"] != "merged" or meta["squashed"]):
                    branch_heads[meta["project_id"]].add(meta["sha"])
            out: dict[int, list[str]] = {}
            for pid in {m["project_id"] for m in self.commits.metas}:
                graph = self._project_commits(pid)
                parents = {p for meta in graph.values() for p in meta["parent_ids"]}
                childless = [s for s in graph if s not in parents]
                tips = [s for s in childless if s not in branch_heads[pid]]
                out[pid] = sorted(
                    tips or childless,
                    key=lambda s, g=graph: (_sort_key(g[s]["committed_date"]), s),
                    reverse=True,
                )
            return out

        return self._lazy.get("main_tips", build).get(project_id, [])

    def _default_branch_commits(self, project_id: int) -> set[str]:
        return self._lazy.get(
            f"default_branch:{project_id}",
            lambda: self._ancestry(self._project_commits(project_id), self._main_tips(project_id)),
        )

    def _ref_head(self, project: dict[str, Any], ref: str) -> str | None:
        """The commit a ref or sha points at, when the dataset can tell."""
        pid = int(project["id"])
        graph = self._project_commits(pid)
        if ref in graph:
            return ref
        if re.fullmatch(r"[0-9a-f]{7,40}", ref):
            matches = [sha for sha in graph if sha.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
        if ref == project.get("default_branch"):
            tips = self._main_tips(pid)
            return tips[0] if tips else None
        return self._branch_heads(pid).get(ref)

    def _branch_heads(self, project_id: int) -> dict[str, str]:
        """Source branch -> the head of its most recently updated MR (among those whose
        head is in the dataset's commits): what the branch points at."""

        def build() -> dict[str, str]:
            graph = self._project_commits(project_id)
            best: dict[str, dict[str, Any]] = {}
            for m in self._project_mrs(project_id):
                if m["sha"] not in graph:
                    continue
                held = best.get(m["source_branch"])
                if held is None or (m["updated_at"] or 0) > (held["updated_at"] or 0):
                    best[m["source_branch"]] = m  # the first of equals wins, as max() does
            return {branch: m["sha"] for branch, m in best.items()}

        return self._lazy.get(f"branch_heads:{project_id}", build)

    def warm(self) -> None:
        """Build the indexes every route would build on first use (a benchmark measures
        the product, not the emulator's start)."""
        _ = self._project_lookup, self.groups, self._mr_positions, self.deployments
        for rel in (
            "gitlab/mr_changes.jsonl",
            "gitlab/mr_notes.jsonl",
            "gitlab/mr_approvals.jsonl",
        ):
            self._per_mr(rel)
        for project in self.projects:
            pid = int(project["id"])
            self._project_mrs(pid)
            self._main_tips(pid)
            self._branch_heads(pid)

    def list_commits(self, request: Request, id: str) -> Response:
        reject_keyset(request)
        project = self._project(id)
        pid = int(project["id"])
        graph = self._project_commits(pid)

        def build() -> list[dict[str, Any]]:
            ref = request.args.get("ref_name") or project.get("default_branch") or ""
            first_parent = bool_param(request, "first_parent")
            if bool_param(request, "all"):
                shas: set[str] = set(graph)
            elif ref == project.get("default_branch") and not first_parent:
                shas = self._default_branch_commits(pid)
            else:
                shas = self._ancestry(graph, [self._ref_head(project, ref)], first_parent)
            since, until = time_param(request, "since"), time_param(request, "until")
            if since is not None:
                shas = {s for s in shas if (graph[s]["committed_date"] or 0) >= since}
            if until is not None:
                shas = {s for s in shas if (graph[s]["committed_date"] or 0) <= until}
            return sorted(
                (graph[s] for s in shas),
                key=lambda m: (_sort_key(m["committed_date"]), m["id"]),
                reverse=True,
            )

        page, headers = offset_page(request, self._cached(request, build))
        with_stats = bool_param(request, "with_stats")
        body = []
        for meta in page:
            commit = self.commits.load(meta["_pos"])
            rendered = self._render_commit(commit)
            if with_stats and "stats" in commit:
                rendered["stats"] = commit["stats"]
            body.append(rendered)
        return json_reply(body, headers=headers)

    @staticmethod
    def _render_commit(commit: dict[str, Any]) -> dict[str, Any]:
        return _strip(commit, COMMIT_SINGLE_ONLY)

    def get_commit(self, request: Request, id: str, sha: str) -> Response:
        project = self._project(id)
        head = self._ref_head(project, sha)
        if head is None:
            raise HttpError(404, "Commit Not Found")
        commit = self.commits.load(self._project_commits(int(project["id"]))[head]["_pos"])
        if not bool_param(request, "stats", True):
            commit.pop("stats", None)
        return json_reply(commit)

    # -- repository files --------------------------------------------------------------
    def _ref_root(self, project: dict[str, Any], ref: str | None) -> tuple[str, Path]:
        ref = ref or project.get("default_branch") or "main"
        if ref.startswith("/") or ".." in ref.split("/"):
            raise HttpError(404, "Commit Not Found")
        root = self.dataset.root / "gitlab" / "files" / str(project["id"]) / ref
        if not root.is_dir():
            raise HttpError(404, "Commit Not Found")
        return ref, root

    def _snapshot(self, project: dict[str, Any], ref: str, root: Path) -> list[dict[str, Any]]:
        """Every tree and blob under a ref, with git object ids, in GitLab's tree order."""

        def build() -> list[dict[str, Any]]:
            entries: list[dict[str, Any]] = []

            def walk(directory: Path, prefix: str) -> str:
                rows = []
                for child in directory.iterdir():
                    path = f"{prefix}{child.name}"
                    if child.is_dir():
                        sha = walk(child, path + "/")
                        entries.append({"id": sha, "name": child.name, "type": "tree",
                                        "path": path, "mode": "040000"})  # fmt: skip
                        rows.append((child.name + "/", b"40000", child.name, sha))
                    else:
                        sha = git_blob_id(child.read_bytes())
                        entries.append({"id": sha, "name": child.name, "type": "blob",
                                        "path": path, "mode": "100644"})  # fmt: skip
                        rows.append((child.name, b"100644", child.name, sha))
                body = b"".join(
                    mode + b" " + name.encode() + b"\0" + bytes.fromhex(sha)
                    for _key, mode, name, sha in sorted(rows)
                )
                return hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()

            walk(root, "")
            entries.sort(key=lambda e: (e["type"] != "tree", e["path"]))
            return entries

        return self._lazy.get(f"tree:{project['id']}:{ref}", build)

    def list_tags(self, request: Request, id: str) -> Response:
        """Tags: the file refs of a project that are neither its default branch nor the
        (first folder of the) source branch of one of its merge requests."""
        project = self._project(id)
        pid = int(project["id"])
        root = self.dataset.root / "gitlab" / "files" / str(pid)
        branches = {project.get("default_branch")}
        branches |= {str(m["source_branch"]).split("/")[0] for m in self._project_mrs(pid)}
        names = sorted(
            (d.name for d in root.iterdir() if d.is_dir() and d.name not in branches)
            if root.is_dir()
            else [],
            reverse=True,  # GitLab lists the newest-named first by default (order_by=updated)
        )
        tags = []
        for name in names:
            commit_id = (
                self._ref_head(project, name) or hashlib.sha1(f"{pid}:{name}".encode()).hexdigest()
            )
            tags.append(
                {
                    "name": name,
                    "message": "",
                    "target": commit_id,
                    "commit": {"id": commit_id, "short_id": commit_id[:8], "title": name},
                    "release": None,
                    "protected": False,
                }
            )
        page, headers = offset_page(request, tags)
        return json_reply(list(page), headers=headers)

    def tree(self, request: Request, id: str) -> Response:
        project = self._project(id)
        ref, root = self._ref_root(project, request.args.get("ref"))
        entries = self._snapshot(project, ref, root)
        base = (request.args.get("path") or "").strip("/")
        if base and not any(e["path"] == base and e["type"] == "tree" for e in entries):
            raise HttpError(404, "Tree Not Found")
        prefix = base + "/" if base else ""
        recursive = bool_param(request, "recursive")
        selected = [
            e
            for e in entries
            if e["path"].startswith(prefix) and (recursive or "/" not in e["path"][len(prefix) :])
        ]
        if keyset_requested(request):
            token = request.args.get("page_token")
            after = 0
            if token:
                after = next((i + 1 for i, e in enumerate(selected) if e["id"] == token), 0)
            page, headers = keyset_page(
                request, selected, after=after, cursor=lambda e: {"page_token": e["id"]}
            )
        else:
            page, headers = offset_page(request, selected)
        return json_reply(list(page), headers=headers)

    def _file(self, request: Request, id: str, file_path: str) -> tuple[dict[str, Any], bytes]:
        project = self._project(id)
        ref, _root = self._ref_root(project, request.args.get("ref"))
        try:
            target = self.dataset.file_path(project["id"], ref, file_path)
        except DatasetError as exc:
            raise HttpError(404, "File Not Found") from exc
        if not target.is_file():
            raise HttpError(404, "File Not Found")
        content = target.read_bytes()
        # A ref the commits cannot place (a tag, say) gets a stable stand-in id.
        stand_in = hashlib.sha1(f"{project['id']}:{ref}".encode()).hexdigest()
        commit_id = self._ref_head(project, ref) or stand_in
        meta = {
            "file_name": target.name,
            "file_path": file_path,
            "size": len(content),
            "encoding": "base64",
            "content_sha256": hashlib.sha256(content).hexdigest(),
            "ref": ref,
            "blob_id": git_blob_id(content),
            "commit_id": commit_id,
            "last_commit_id": commit_id,
            "execute_filemode": False,
        }
        return meta, content

    @staticmethod
    def _file_headers(meta: dict[str, Any]) -> dict[str, str]:
        names = {
            "X-Gitlab-Blob-Id": "blob_id", "X-Gitlab-Commit-Id": "commit_id",
            "X-Gitlab-Content-Sha256": "content_sha256", "X-Gitlab-Encoding": "encoding",
            "X-Gitlab-File-Name": "file_name", "X-Gitlab-File-Path": "file_path",
            "X-Gitlab-Last-Commit-Id": "last_commit_id", "X-Gitlab-Ref": "ref",
            "X-Gitlab-Size": "size", "X-Gitlab-Execute-Filemode": "execute_filemode",
        }  # fmt: skip
        return {h: str(meta[k]).lower() if k == "execute_filemode" else str(meta[k])
                for h, k in names.items()}  # fmt: skip

    def get_file(self, request: Request, id: str, file_path: str) -> Response:
        meta, content = self._file(request, id, file_path)
        body = dict(meta, content=base64.b64encode(content).decode("ascii"))
        return json_reply(body, headers=self._file_headers(meta))

    def raw_file(self, request: Request, id: str, file_path: str) -> Response:
        meta, content = self._file(request, id, file_path)
        try:
            content.decode("utf-8")
            content_type = "text/plain; charset=utf-8"
        except UnicodeDecodeError:
            content_type = "application/octet-stream"
        response = Response(content, status=200, content_type=content_type)
        for name, value in self._file_headers(meta).items():
            response.headers[name] = value
        return response

    # -- deployments -------------------------------------------------------------------
    def list_deployments(self, request: Request, id: str) -> Response:
        reject_keyset(request)
        pid = int(self._project(id)["id"])
        order_by = choice_param(request, "order_by", DEPLOYMENT_ORDER, "id")
        desc = sort_param(request, "asc")
        status = request.args.get("status")
        if status and status not in DEPLOYMENT_STATUSES:
            raise HttpError(400, {"error": "status does not have a valid value"})
        environment = request.args.get("environment")
        bounds = [
            (time_param(request, name), name)
            for name in ("updated_after", "updated_before", "finished_after", "finished_before")
        ]
        metas = []
        for meta in self.deployments.metas:
            if meta["project_id"] != pid:
                continue
            if status and meta["status"] != status:
                continue
            if environment and meta["environment"] != environment:
                continue
            keep = True
            for bound, name in bounds:
                if bound is None:
                    continue
                value = meta[name.split("_")[0] + "_at"]
                after = name.endswith("_after")
                keep = keep and value is not None and (value >= bound if after else value <= bound)
            if keep:
                metas.append(meta)
        metas.sort(key=lambda m: (_sort_key(m[order_by]), m["id"]), reverse=desc)
        page, headers = offset_page(request, metas)
        body = [_strip(self.deployments.load(m["_pos"]), ("project_id",)) for m in page]
        return json_reply(body, headers=headers)

    def get_deployment(self, request: Request, id: str, deployment_id: str) -> Response:
        pid = int(self._project(id)["id"])
        for meta in self.deployments.metas:
            if meta["project_id"] == pid and str(meta["id"]) == deployment_id:
                return json_reply(_strip(self.deployments.load(meta["_pos"]), ("project_id",)))
        raise HttpError(404, "Not found")
