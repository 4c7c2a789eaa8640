"""GitLab ingestion through python-gitlab's HTTP layer: incremental, paged by ``Link``.

Every list is paged here, not by the client's ``GitlabList``: the first request carries
``per_page`` (the policy's page size), each next page is the ``Link: rel="next"`` URL
(python-gitlab's only pagination signal too), and that URL is followed only when its
scheme, host and port are the configured ones. ``requests`` forwards ``PRIVATE-TOKEN``
to any host, so a foreign next-page link stops the run with an error instead. Each page
request goes through ``lib/retry.py`` with the client's own retries off (429 included),
and ``X-Total`` is recorded as the reported total of every full listing.

One run:

* projects: the policy's ids/paths, its groups' projects (subgroups included), or else
  every project the token is a member of; vanished ones are tombstoned;
* merge requests: listed by ``updated_at`` ascending from the watermark minus the
  overlap (``/merge_requests?scope=all`` without a project scope, else per project or
  group). An MR whose ``updated_at`` differs from the stored one is fetched with its
  ``/changes``, every note and its approval state; the notes, approvers and diff refs
  of a listing page's changed MRs come through GraphQL in a few queries
  (``gitlab_graphql.py``; REST per MR where GraphQL is off or unavailable). An MR whose
  diff refs equal those of its stored ``/changes`` keeps them: a note or an approval
  leaves the refs as they were, and a diff between the same commits is the same diff.
  A listing page commits its MRs with all of that and the watermark in one
  transaction. A listing that shifted under its offsets (a key seen twice, ``X-Total``
  moving between pages) is read once more from the same start;
* deployments: per project, by ``updated_at`` ascending from the watermark. The
  per-project listings (deployments, commits, the default branch's tree, tags) of the
  next projects are read, within the step's request slots, while one project's are
  stored; a full listing of deployments or commits is read in its own turn instead,
  so what is held grows with the night's changes, not with a project's history;
* commits (``all=True``, ``with_stats=True``, ``since`` the watermark) and repository
  files: only for projects whose ``last_activity_at`` moved since their last sync.
  GitLab moves it at most once an hour, so a project synced less than an hour after its
  recorded activity is synced again. Files are the default branch's tree entries that
  match the policy's spec, contract-test or observability globs; a file's content is
  fetched only when its blob id changed, and stored with the git id of the bytes read;
* reconciliation every ``reconcile_every_days``: keys-only MR listings (``view=simple``)
  fetch MRs listed but stored with another ``updated_at`` or never stored, and tombstone
  stored MRs (with changes, notes, approvals) that an ``iids[]`` lookup confirms gone;
  full commit and deployment listings tombstone what vanished. A listing whose
  ``X-Total`` moved between pages tombstones nothing. A first run is a full listing and
  counts as one.

A record that fails validation (what the product reads of it) is quarantined with the
reason and the run goes on; an MR re-delivered unchanged is not quarantined twice.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote, urlsplit

import gitlab
import requests
from gitlab.exceptions import GitlabHttpError
from pydantic import ValidationError, field_validator

from dagster_project.lib.connections import Connection
from dagster_project.lib.gitlab_text import git_blob_id, matches_any
from dagster_project.lib.inflight import ahead, in_order, read_ahead
from dagster_project.lib.policy import Policy
from dagster_project.lib.rawstore import (
    Batch,
    Children,
    ListingRecord,
    Quarantined,
    RawObject,
    RawStore,
)
from dagster_project.lib.retry import SourceError, status_of, with_retries
from dagster_project.lib.sources.gitlab_graphql import (
    DiffRefs,
    GitlabGraphql,
    GraphqlUnavailable,
    MrRef,
    note_number,
)
from dagster_project.lib.sources.payloads import Lenient, checked_timestamp, validation_reason
from dagster_project.lib.sources.timeparse import parse_ts

RECONCILE = "reconcile"
DIFF_REFS = "diff_refs"  # the part kept beside a stored /changes answer (raw.parts)
REST_REFS = ("base_sha", "head_sha", "start_sha")
KEPT = object()  # an MR's stored changes are still its diff: nothing to add
UPDATED_AT = "updated_at"  # kept beside a stored MR: the next listing is compared with it
ACTIVITY = "project_activity"  # last_activity_at of a project when it was last synced
SYNCED = "project_synced"  # when that sync started
ACTIVITY_THROTTLE = timedelta(hours=1)  # GitLab moves last_activity_at at most this often
DEFAULT_PORTS = {"http": 80, "https": 443}

T = TypeVar("T")


# -- what the product reads, validated before it is stored -------------------------------
class ProjectPayload(Lenient):
    id: int
    path_with_namespace: str
    default_branch: str | None = None
    last_activity_at: str | None = None

    _ts = field_validator("last_activity_at")(checked_timestamp)


class MergeRequestPayload(Lenient):
    id: int
    iid: int
    project_id: int
    title: str
    description: str | None = None
    state: str
    source_branch: str
    target_branch: str
    created_at: str
    updated_at: str
    merged_at: str | None = None
    closed_at: str | None = None
    labels: list[str | dict[str, Any]] = []
    author: dict[str, Any] | None = None

    _ts = field_validator("created_at", "updated_at", "merged_at", "closed_at")(checked_timestamp)


class NotePayload(Lenient):
    id: int
    body: str | None = None
    system: bool = False
    created_at: str
    author: dict[str, Any] | None = None

    _ts = field_validator("created_at")(checked_timestamp)


class GraphqlNotePayload(Lenient):
    """A ``Note`` node as GitLab's GraphQL API answers it (see gitlab_graphql.py)."""

    id: str
    body: str | None = None
    system: bool = False
    createdAt: str  # noqa: N815  (GraphQL's name)
    author: dict[str, Any] | None = None

    _ts = field_validator("createdAt")(checked_timestamp)

    @field_validator("id")
    @classmethod
    def _gid(cls, v: str) -> str:
        if note_number({"id": v}) is None:
            raise ValueError(f"not a note's global id: {v!r}")
        return v


def note_key(mr_key: str, note: Any) -> str:
    """``<mr key>!<note id>``, the note id read from a REST note or a GraphQL node."""
    if isinstance(note, dict) and isinstance(note.get("id"), str):
        return f"{mr_key}!{GraphqlNotePayload.model_validate(note).id.rsplit('/', 1)[1]}"
    return f"{mr_key}!{NotePayload.model_validate(note).id}"


class _Change(Lenient):
    old_path: str
    new_path: str
    diff: str | None = None
    new_file: bool = False
    renamed_file: bool = False
    deleted_file: bool = False


class ChangesPayload(Lenient):
    changes: list[_Change]


class CommitPayload(Lenient):
    id: str
    committed_date: str | None = None
    created_at: str | None = None
    parent_ids: list[str] = []
    stats: dict[str, Any] | None = None

    _ts = field_validator("committed_date", "created_at")(checked_timestamp)

    @field_validator("id")
    @classmethod
    def _sha(cls, v: str) -> str:
        if not (7 <= len(v) <= 64) or any(c not in "0123456789abcdef" for c in v.lower()):
            raise ValueError(f"not a commit sha: {v!r}")
        return v

    @property
    def when(self) -> datetime:
        stamp = self.committed_date or self.created_at
        if stamp is None:
            raise ValueError("no committed_date or created_at")
        return parse_ts(stamp)


class DeploymentPayload(Lenient):
    id: int
    created_at: str | None = None
    updated_at: str | None = None

    _ts = field_validator("created_at", "updated_at")(checked_timestamp)


class TreeEntry(Lenient):
    id: str
    type: str
    path: str


class ProjectFiles:
    """A project's stored files, read in one look-up when its repository is synced: the
    blob id of each key under each ref read (the default branch, each tag), so a tag's
    tree costs no look-up of its own, and where each blob's bytes are, so a blob read
    at one ref is not asked for again at another: a git blob id names its bytes, and a
    tag's spec is most often the default branch's."""

    # The bytes of payloads read in this run kept for other refs: beyond it (a project
    # with thousands of large tagged specs) a repeated blob is read again.
    HELD_BYTES = 32 * 2**20

    def __init__(self, by_parent: dict[str, dict[str, str]], stored: dict[str, int]):
        self._by_parent = by_parent  # parent -> key -> blob id
        self._stored = stored  # blob id -> raw_id of a stored payload with those bytes
        self._read: dict[str, dict[str, Any]] = {}  # blob id -> payload read in this run
        self._held = 0

    @classmethod
    def read(cls, store: RawStore, project_id: int) -> ProjectFiles:
        rows = store.con.execute(
            "SELECT parent_key, object_key, payload->>'$.blob_id', raw_id FROM raw.latest "
            "WHERE source = ? AND object_type = 'file' AND NOT deleted "
            "AND (parent_key = ? OR starts_with(parent_key, ?))",
            [store.source, str(project_id), f"{project_id}@"],
        ).fetchall()
        by_parent: dict[str, dict[str, str]] = {}
        stored: dict[str, int] = {}
        for parent, key, blob_id, raw_id in rows:
            by_parent.setdefault(parent, {})[key] = blob_id
            if blob_id:
                stored.setdefault(blob_id, raw_id)
        return cls(by_parent, stored)

    def at(self, parent: str) -> dict[str, str]:
        """Key -> blob id of the files stored under a ref."""
        return self._by_parent.get(parent, {})

    def remember(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A payload just read, for the refs synced after it (while they fit)."""
        size = int(payload.get("size") or 0)
        if payload["blob_id"] not in self._read and self._held + size <= self.HELD_BYTES:
            self._read[payload["blob_id"]] = payload
            self._held += size
        return payload

    def contents(self, store: RawStore, blob_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Blob id -> a payload holding those bytes, for the ids read or stored before."""
        found = {b: self._read[b] for b in blob_ids if b in self._read}
        wanted = {self._stored[b]: b for b in blob_ids if b not in found and b in self._stored}
        for raw_id, payload in (store.payloads(wanted) if wanted else {}).items():
            found[wanted[raw_id]] = self.remember(payload)
        return found


def _key_of(raw: Any, *fields: str) -> str | None:
    if not isinstance(raw, dict):
        return None
    values = [raw.get(f) for f in fields]
    return "!".join(str(v) for v in values) if all(v is not None for v in values) else None


def query_time(mark: datetime) -> str:
    """A watermark as GitLab's ISO-8601 query parameters take it, floored to the second."""
    return mark.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the client --------------------------------------------------------------------------
@dataclass
class Page:
    items: list[Any]
    total: int | None  # X-Total; None where GitLab does not count (above 10,000)


@dataclass
class Listing:
    """A whole list read page by page: what it held and whether it stayed still."""

    items: list[Any] = field(default_factory=list)
    totals: list[int | None] = field(default_factory=list)

    @property
    def reported(self) -> int | None:
        return self.totals[-1] if self.totals and None not in self.totals else None

    @property
    def stable(self) -> bool:
        """No page saw a different X-Total: nothing was added or removed meanwhile."""
        return len({t for t in self.totals if t is not None}) <= 1


class MrThread(NamedTuple):
    """What an MR's conversation gives besides its changes."""

    notes: Listing
    approvals: Any | None  # the approval state, None where GitLab gives none
    diff_refs: DiffRefs | None  # from GraphQL; None over REST


class LinkHostError(SourceError):
    """A next-page link naming another host: following it would hand over the token."""


class GitlabSource:
    """One run's view of a GitLab instance (API v4) through python-gitlab."""

    def __init__(self, conn: Connection, policy: Policy):
        self.conn = conn
        self.policy = policy
        self.page_size = policy.ingest.page_size
        self.overlap = timedelta(minutes=policy.ingest.overlap_minutes)
        self.globs = {
            "spec": list(policy.ingest.spec_globs),
            "contract_test": list(policy.ingest.contract_test_globs),
            "observability": list(policy.ingest.observability_globs),
        }
        self.requests = 0
        self._counting = threading.Lock()
        # Per-object calls of one listing page sent at once (lib/inflight.py); every
        # request of the step, whichever thread sends it, takes one of as many slots.
        self.in_flight = policy.operations.step_requests("gitlab")
        self.slots = threading.BoundedSemaphore(self.in_flight)
        self._secrets = (conn.token,)
        self.gl = gitlab.Gitlab(
            conn.url,
            private_token=conn.token,
            timeout=conn.timeout_s,
            retry_transient_errors=False,
        )
        self._origin = _origin(self.gl.api_url)
        self.graphql: GitlabGraphql | None = None
        self.notes_via = "rest: ingest.gitlab_graphql is off"
        if policy.ingest.gitlab_graphql:
            self.graphql = GitlabGraphql(
                conn.url,
                conn.token,
                timeout_s=conn.timeout_s,
                page_size=self.page_size,
                call=self._call,
                count=self._count,
                slots=self.slots,
            )
            self.notes_via = "graphql"
        # python-gitlab's HTTP errors carry the status but not the response: keep each
        # thread's last one so lib/retry.py can honour Retry-After.
        self._last = threading.local()
        self.gl.session.hooks["response"].append(self._remember)

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last.response = response

    # -- requests ---------------------------------------------------------------------
    def _count(self) -> None:
        with self._counting:
            self.requests += 1

    def _http(self, url: str, query: dict[str, Any] | None) -> requests.Response:
        """One GET through the client's session and headers; errors keep their response."""
        self._count()
        self._last.response = None
        try:
            with self.slots:
                response = self.gl.http_get(
                    url,
                    query_data=query,
                    raw=True,
                    max_retries=0,
                    obey_rate_limit=False,
                    retry_transient_errors=False,
                )
        except GitlabHttpError as exc:
            if self._last.response is not None:
                exc.response = self._last.response  # type: ignore[attr-defined]
            raise
        assert isinstance(response, requests.Response)
        return response

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return with_retries(
            fn, what=f"gitlab {what}", policy=self.conn.retry_policy, secrets=self._secrets
        )

    def get_json(self, path: str, query: dict[str, Any] | None = None) -> Any:
        # The body is parsed inside the retried call: a truncated answer is retried.
        return self._call(f"GET {path}", lambda: self._http(path, query).json())

    def get_optional_json(self, path: str) -> Any | None:
        """A single object, or None where GitLab does not offer it (403/404)."""
        try:
            return self.get_json(path)
        except SourceError as exc:
            if status_of(exc.__cause__) in (403, 404):
                return None
            raise

    def get_raw(self, path: str, query: dict[str, Any]) -> bytes:
        return self._call(f"GET {path}", lambda: self._http(path, query).content)

    def pages(self, path: str, params: dict[str, Any], *, optional: bool = False) -> Iterator[Page]:
        """Every page of a list: ``per_page`` first, then ``Link: rel="next"`` verbatim.

        ``optional``: a list GitLab does not have (403/404 on the first page: no
        repository, a feature turned off) has no pages rather than failing the run.
        """
        url: str = path
        query: dict[str, Any] | None = {**params, "per_page": self.page_size}
        number = 0
        while True:
            number += 1
            what = f"GET {path} (page {number})"

            def call(u: str = url, q: dict[str, Any] | None = query) -> tuple[Any, Any]:
                response = self._http(u, q)
                return response, response.json()

            try:
                response, data = self._call(what, call)
            except SourceError as exc:
                if optional and number == 1 and status_of(exc.__cause__) in (403, 404):
                    return
                raise
            if not isinstance(data, list):
                raise SourceError(f"gitlab {what}: expected a list, got {type(data).__name__}")
            yield Page(data, _int_header(response.headers.get("X-Total")))
            next_url = (response.links.get("next") or {}).get("url")
            if not next_url:
                return
            self._check_link(next_url, what)
            url, query = next_url, None

    def list_all(self, path: str, params: dict[str, Any], *, optional: bool = False) -> Listing:
        listing = Listing()
        for page in self.pages(path, params, optional=optional):
            listing.items.extend(page.items)
            listing.totals.append(page.total)
        return listing

    def _check_link(self, url: str, what: str) -> None:
        if _origin(url) != self._origin:
            host = urlsplit(url).netloc or "(none)"
            raise LinkHostError(
                f"gitlab {what}: the next-page link points at {host}, not at the configured "
                f"{urlsplit(self.gl.api_url).netloc}; refusing to send the token there"
            )

    # -- objects ----------------------------------------------------------------------
    def project_listing(self) -> Listing:
        scope = self.policy.scope
        if not scope.gitlab_projects and not scope.gitlab_groups:
            return self.list_all("/projects", {"membership": True, "order_by": "id", "sort": "asc"})
        listing = Listing()
        for ident in scope.gitlab_projects:
            project = self.get_optional_json(f"/projects/{_ident(ident)}")
            if project is None:
                raise SourceError(f"gitlab: project {ident!r} of the policy scope is not found")
            listing.items.append(project)
        for ident in scope.gitlab_groups:
            group = self.list_all(
                f"/groups/{_ident(ident)}/projects",
                {"include_subgroups": True, "order_by": "id", "sort": "asc"},
            )
            listing.items.extend(group.items)
        listing.totals = [None]  # several listings: no single total applies
        return listing

    def mr_scopes(self, projects: list[ProjectPayload]) -> list[tuple[str, str, dict[str, Any]]]:
        """(watermark scope, list path, extra params) of every MR listing the run needs."""
        scope = self.policy.scope
        if not scope.gitlab_projects and not scope.gitlab_groups:
            return [("*", "/merge_requests", {"scope": "all"})]
        out = [
            (f"group:{g}", f"/groups/{_ident(g)}/merge_requests", {}) for g in scope.gitlab_groups
        ]
        explicit = {str(p).lower() for p in scope.gitlab_projects}
        out += [
            (f"project:{p.id}", f"/projects/{p.id}/merge_requests", {})
            for p in projects
            if str(p.id) in explicit or p.path_with_namespace.lower() in explicit
        ]
        return out

    def merge_requests_by_iid(self, project_id: int, iids: list[int]) -> list[Any]:
        """The listed shape of chosen MRs of one project (``iids[]``), in one request or few."""
        out: list[Any] = []
        for start in range(0, len(iids), self.page_size):
            chunk = iids[start : start + self.page_size]
            listing = self.list_all(
                f"/projects/{project_id}/merge_requests",
                {"state": "all", "iids[]": chunk},
                optional=True,  # a deleted project took its MRs with it
            )
            out.extend(listing.items)
        return out

    def mr_changes(self, project_id: int, iid: int) -> Any:
        return self.get_json(f"/projects/{project_id}/merge_requests/{iid}/changes")

    def mr_threads(self, refs: list[MrRef]) -> dict[MrRef, MrThread]:
        """Every note, the approval state and the diff refs of each MR: GraphQL in bulk,
        REST ``/approvals`` where the notes do not explain the approvers, REST for
        everything where GraphQL is off or unavailable (no diff refs then)."""
        threads = self._graphql_threads(refs)
        if threads is None:
            return dict(zip(refs, in_order(self._rest_thread, refs, self.in_flight), strict=True))
        out: dict[MrRef, MrThread] = {}
        for ref, thread in threads.items():
            notes = Listing(items=thread.notes, totals=list(thread.counts))
            approvals = thread.approvals if thread.approvals_explained() else None
            out[ref] = MrThread(notes, approvals or self._rest_approvals(ref), thread.diff_refs)
        return out

    def _graphql_threads(self, refs: list[MrRef]) -> dict[MrRef, Any] | None:
        if self.graphql is None or not refs:
            return None
        try:
            return self.graphql.threads(refs)
        except GraphqlUnavailable as exc:
            self.graphql, self.notes_via = None, f"rest: {exc}"  # for the rest of the run
            return None

    def _rest_thread(self, ref: MrRef) -> MrThread:
        base = f"/projects/{ref.project_id}/merge_requests/{ref.iid}"
        notes = self.list_all(f"{base}/notes", {"sort": "asc", "order_by": "created_at"})
        return MrThread(notes, self._rest_approvals(ref), None)

    def _rest_approvals(self, ref: MrRef) -> Any | None:
        return self.get_optional_json(
            f"/projects/{ref.project_id}/merge_requests/{ref.iid}/approvals"
        )

    def raw_file(self, project_id: int, path: str, ref: str) -> bytes:
        return self.get_raw(
            f"/projects/{project_id}/repository/files/{quote(path, safe='')}/raw", {"ref": ref}
        )


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme)


def _ident(ident: int | str) -> str:
    return quote(str(ident), safe="")


# -- one run -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ProjectPlan:
    """What one project's listings ask for this run."""

    project: ProjectPayload
    deployments: dict[str, Any]  # the query
    deployments_full: bool  # no watermark: a full listing
    synced: bool  # commits and files are read (its activity moved, or a reconciliation)
    commits: dict[str, Any]
    commits_full: bool


@dataclass
class ProjectListings:
    """A project's listings as read ahead of its turn: every page as the server gave it
    (None: read in its turn instead)."""

    started: datetime  # before the first of them was asked for
    deployments: list[Page] | None = None
    commits: list[Page] | None = None
    tree: list[Page] | None = None
    tags: list[Page] | None = None


@dataclass
class GitlabFetchResult:
    projects: int = 0
    mr_pages: int = 0
    mrs_listed: int = 0
    mrs_fetched: int = 0
    changes_kept: int = 0  # changed MRs whose diff had not moved: no /changes request
    relisted: int = 0  # MR listings read again because they shifted under their offsets
    commits_listed: int = 0
    projects_synced: int = 0
    projects_skipped: int = 0  # last_activity_at unchanged: no commit or tree request
    deployments_listed: int = 0
    files_fetched: int = 0
    files_reused: int = 0  # blobs read at another ref: not asked again
    reconciled: bool = False
    recovered: int = 0  # MRs fetched by reconciliation (missed or never stored)
    details: dict[str, Any] = field(default_factory=dict)


class GitlabIngest:
    """One ingestion run: the source, the store and what the run has seen so far."""

    def __init__(self, source: GitlabSource, store: RawStore, now: datetime):
        self.source = source
        self.store = store
        self.now = now
        self.result = GitlabFetchResult()
        self.quarantined = self._quarantined_mrs()
        # MR key -> its stored updated_at, for the MRs looked up and those stored since
        self.stored_updated: dict[str, str] = {}
        self._updated_read: set[str] = set()
        # (MR key, updated_at) of MRs in the open batch
        self._after_commit: list[tuple[str, str]] = []
        # MR key -> the diff refs of the changes this run handed over for it (see _diff_moved)
        self._handed_refs: dict[str, Any] = {}
        self.paths: dict[int, str] = {}  # project id -> full path, for GraphQL

    def run(self) -> GitlabFetchResult:
        projects = self.sync_projects()
        scopes = self.source.mr_scopes(projects)
        first_run = all(self.store.watermark("merge_request", s) is None for s, _, _ in scopes)
        for scope, path, params in scopes:
            self.sync_merge_requests(scope, path, params)
        reconcile = self._reconcile_due(first_run)
        plans = [self._plan(project, full=reconcile) for project in projects]
        # The next projects' listings are read while one project's are stored.
        for plan, listed in zip(
            plans, ahead(self._read_listings, plans, self.source.in_flight), strict=True
        ):
            self.sync_deployments(plan, listed.deployments)
            self.sync_repository(plan, listed)
        if reconcile:
            for scope, path, params in scopes:
                self.reconcile_merge_requests(scope, path, params)
            self.result.reconciled = True
        if reconcile or first_run:  # a first run's listings are full: a reconciliation
            self.store.commit(Batch(watermarks={(RECONCILE, "*"): self.now}))
        self.result.details["requests"] = self.source.requests
        self.result.details["mr_notes_via"] = self.source.notes_via
        return self.result

    # -- projects ---------------------------------------------------------------------
    def sync_projects(self) -> list[ProjectPayload]:
        listing = self.source.project_listing()
        batch = Batch()
        projects: dict[int, ProjectPayload] = {}
        for raw in listing.items:
            try:
                project = ProjectPayload.model_validate(raw)
            except ValidationError as exc:
                batch.quarantined.append(
                    Quarantined("project", _key_of(raw, "id"), validation_reason(exc), raw)
                )
                continue
            projects[project.id] = project
            batch.objects.append(RawObject("project", str(project.id), raw))
        self.store.commit(batch)
        self.store.record_listing(
            "project", listed=len(listing.items), reported=listing.reported, full=True
        )
        if listing.stable:
            self.store.tombstone_missing("project", {str(pid) for pid in projects})
        self.result.projects = len(projects)
        self.paths.update({p.id: p.path_with_namespace for p in projects.values()})
        return [projects[pid] for pid in sorted(projects)]

    # -- merge requests ---------------------------------------------------------------
    def look_up_updated(self, keys: Iterable[str]) -> None:
        """Read the stored ``updated_at`` of the listed MRs this run has not looked up
        yet, from the committed store: only the MRs a listing holds (the overlap window
        re-lists a few each night), not all of them. What the run stores is added to
        ``stored_updated`` as it is handed over, so the look-up comes before it."""
        unread = [key for key in dict.fromkeys(keys) if key not in self._updated_read]
        if not unread:
            return
        self._updated_read.update(unread)
        stored = self.store.committed().kept_or_stored_parts(
            "merge_request", unread, UPDATED_AT, "$.updated_at"
        )
        for key, updated in stored.items():
            self.stored_updated.setdefault(key, updated)

    def _quarantined_mrs(self) -> set[tuple[str | None, str | None]]:
        """(key, updated_at) of MRs already quarantined: an unchanged one is not again."""
        rows = self.store.con.execute(
            "SELECT DISTINCT object_key, payload->>'$.updated_at' FROM raw.quarantine "
            "WHERE source = ? AND object_type = 'merge_request'",
            [self.store.source],
        ).fetchall()
        return {(k, u) for k, u in rows}

    def sync_merge_requests(self, scope: str, path: str, params: dict[str, Any]) -> None:
        mark = self.store.watermark("merge_request", scope)
        query = {**params, "state": "all", "order_by": "updated_at", "sort": "asc"}
        if mark is not None:
            query["updated_after"] = query_time(mark - self.source.overlap)
        for attempt in range(2):
            listed, totals, shifted = 0, [], False
            seen: set[str] = set()
            for page in read_ahead(self.source.pages(path, query)):
                self.result.mr_pages += 1
                totals.append(page.total)
                shifted = shifted or len({t for t in totals if t is not None}) > 1
                batch = Batch()
                newest: datetime | None = None
                keys = self.collect_merge_requests(page.items, batch)
                for raw, key in zip(page.items, keys, strict=True):
                    listed += 1
                    if key is None:
                        continue
                    shifted = shifted or key in seen
                    seen.add(key)
                    updated = parse_ts(raw["updated_at"])
                    newest = max(newest, updated) if newest else updated
                if newest is not None and (mark is None or newest > mark):
                    # Sorted ascending: the page's newest covers every MR listed so far.
                    batch.watermarks[("merge_request", scope)] = newest
                    mark = newest if mark is None else max(mark, newest)
                self.commit(batch)
            self.result.mrs_listed += listed
            reported = totals[-1] if totals and None not in totals else None
            full = "updated_after" not in query and attempt == 0
            self.store.record_listing(
                "merge_request", listed=listed, reported=reported, full=full, scope=scope
            )
            if not shifted:
                return
            self.result.relisted += 1  # read once more from the same start: nothing skipped

    def _validated_mr(self, raw: Any, batch: Batch) -> MergeRequestPayload | None:
        """The listed MR, or None with it quarantined (once per ``updated_at``: the
        overlap window re-delivers it)."""
        try:
            return MergeRequestPayload.model_validate(raw)
        except ValidationError as exc:
            key = _key_of(raw, "project_id", "iid")
            marker = (key, raw.get("updated_at") if isinstance(raw, dict) else None)
            if marker not in self.quarantined:
                self.quarantined.add(marker)
                reason = validation_reason(exc)
                batch.quarantined.append(Quarantined("merge_request", key, reason, raw))
            return None

    def collect_merge_requests(self, raws: list[Any], batch: Batch) -> list[str | None]:
        """Add the listed MRs that changed, with their changes, notes and approval state,
        to ``batch``; returns each listed MR's key, None for one quarantined.

        The notes and approvers of all of them come in one request or a few
        (``GitlabSource.mr_threads``), their changes in one request each. The changes of
        MRs not stored before are asked for while the notes are on their way: they are
        asked whatever the notes query says (only a stored MR's diff refs can spare its
        ``/changes``), and both share the step's in-flight slots."""
        keys: list[str | None] = []
        changed: dict[str, tuple[MergeRequestPayload, Any]] = {}
        mrs = [self._validated_mr(raw, batch) for raw in raws]
        self.look_up_updated(f"{mr.project_id}!{mr.iid}" for mr in mrs if mr is not None)
        for raw, mr in zip(raws, mrs, strict=True):
            key = None if mr is None else f"{mr.project_id}!{mr.iid}"
            keys.append(key)
            # An MR re-delivered unchanged by the overlap window is not fetched again.
            if mr is not None and key is not None and self.stored_updated.get(key) != mr.updated_at:
                changed[key] = (mr, raw)
        refs = {key: self._ref(mr, raw) for key, (mr, raw) in changed.items()}

        def changes_of(keys: list[str]) -> dict[str, Any]:
            fetched = in_order(
                lambda key: self.source.mr_changes(changed[key][0].project_id, changed[key][0].iid),
                keys,
                self.source.in_flight,
            )
            return dict(zip(keys, fetched, strict=True))

        new = [key for key in changed if key not in self.stored_updated]
        with ThreadPoolExecutor(max_workers=1) as side:
            asked = side.submit(self.source.mr_threads, list(refs.values())) if refs else None
            changes = changes_of(new)
            threads = asked.result() if asked is not None else {}
        moved = self._diff_moved({key: threads[ref].diff_refs for key, ref in refs.items()})
        changes.update(changes_of([key for key in moved if key not in changes]))
        self.result.changes_kept += len(changed) - len(moved)
        for key, (mr, raw) in changed.items():
            self._add_merge_request(key, mr, raw, changes.get(key, KEPT), threads[refs[key]], batch)
        return keys

    def _diff_moved(self, refs: dict[str, DiffRefs | None]) -> list[str]:
        """The MRs whose ``/changes`` to ask for: all but those whose stored changes were
        computed between the diff refs GitLab gives now (kept beside them, or read from
        the stored payload where stored before that)."""
        known = {key: r for key, r in refs.items() if r is not None and key in self.stored_updated}
        if not known:  # new MRs: no look-up, which would wait for the batch being written
            return list(refs)
        # What the store held before this run, overlaid with what this run handed over:
        # read without waiting for the batches still being written.
        before = [key for key in known if key not in self._handed_refs]
        stored = self.store.committed().kept_or_stored_parts(
            "mr_change", before, DIFF_REFS, "$.diff_refs"
        )
        stored.update({key: self._handed_refs[key] for key in known if key in self._handed_refs})
        return [
            key
            for key in refs
            if key not in known or DiffRefs.of(stored.get(key), *REST_REFS) != known[key]
        ]

    def _ref(self, mr: MergeRequestPayload, raw: Any) -> MrRef:
        path = self._project_path(mr, raw) if self.source.graphql is not None else ""
        return MrRef(mr.project_id, path, mr.iid)

    def _project_path(self, mr: MergeRequestPayload, raw: Any) -> str:
        """The full path GraphQL names an MR's project by: from the project listing, else
        the MR's own ``references.full``, else ``/projects/:id``."""
        path = self.paths.get(mr.project_id)
        if path is None:
            full = str((raw.get("references") or {}).get("full") or "")
            path = full.rsplit("!", 1)[0] if "!" in full else None
        if path is None:
            project = self.source.get_optional_json(f"/projects/{mr.project_id}") or {}
            path = str(project.get("path_with_namespace") or mr.project_id)
        self.paths[mr.project_id] = path
        return path

    def _add_merge_request(
        self,
        key: str,
        mr: MergeRequestPayload,
        raw: Any,
        changes: Any,
        thread: MrThread,
        batch: Batch,
    ) -> None:
        """The MR, its changes (unless ``KEPT``: the stored ones are still its diff), its
        notes and approval state."""
        notes, approvals, _refs = thread
        batch.objects.append(
            RawObject("merge_request", key, raw, parts={UPDATED_AT: mr.updated_at})
        )
        if changes is not KEPT:
            self._add_changes(key, changes, batch)
        note_keys: set[str] = set()
        for note in notes.items:
            try:
                this = note_key(key, note)
            except ValidationError as exc:
                number = _note_id(note)
                reason = validation_reason(exc)
                batch.quarantined.append(
                    Quarantined("mr_note", f"{key}!{number}" if number else None, reason, note)
                )
                continue
            note_keys.add(this)
            batch.objects.append(RawObject("mr_note", this, note, parent_key=key))
        if approvals is not None:
            batch.objects.append(RawObject("mr_approval", key, approvals, parent_key=key))
        # Deleted notes (and an approval state GitLab no longer gives) become tombstones
        # in the MR's own transaction, as does the listing of its notes.
        batch.gone.append(Children("mr_note", key, note_keys))
        if approvals is None:
            batch.gone.append(Children("mr_approval", key, set()))
        batch.listings.append(
            ListingRecord("mr_note", len(notes.items), notes.reported, full=True, scope=key)
        )
        self._after_commit.append((key, mr.updated_at))
        self.result.mrs_fetched += 1

    def _add_changes(self, key: str, changes: Any, batch: Batch) -> None:
        try:
            ChangesPayload.model_validate(changes)
        except ValidationError as exc:
            batch.quarantined.append(Quarantined("mr_change", key, validation_reason(exc), changes))
            return
        refs = changes.get("diff_refs")
        parts = {DIFF_REFS: refs} if isinstance(refs, dict) else None
        batch.objects.append(RawObject("mr_change", key, changes, parent_key=key, parts=parts))
        self._handed_refs[key] = refs

    def commit(self, batch: Batch) -> None:
        """Commit a batch, then remember what its MRs now look like in the store."""
        self.store.commit(batch)
        for key, updated in self._after_commit:
            self.stored_updated[key] = updated
        self._after_commit.clear()

    def reconcile_merge_requests(self, scope: str, path: str, params: dict[str, Any]) -> None:
        """Keys-only listing: fetch what the incremental listings missed, tombstone the gone.

        An MR listed with another ``updated_at`` than the stored one, or never stored (an
        offset listing that shifted while MRs changed can skip one), is fetched again; a
        stored MR the listing lacks is asked for by iid, and tombstoned with its changes,
        notes and approval state only when GitLab does not return it either.
        """
        query = {**params, "state": "all", "view": "simple", "order_by": "created_at"}
        query["sort"] = "asc"
        listing = self.source.list_all(path, query)
        listed: set[str] = set()
        stale: dict[int, list[int]] = {}
        self.look_up_updated(
            key for key in (_key_of(raw, "project_id", "iid") for raw in listing.items) if key
        )
        for raw in listing.items:
            key = _key_of(raw, "project_id", "iid")
            if key is None:
                continue
            listed.add(key)
            if self.stored_updated.get(key) != raw.get("updated_at"):
                stale.setdefault(int(raw["project_id"]), []).append(int(raw["iid"]))
        self.store.record_listing(
            "merge_request", listed=len(listed), reported=listing.reported, full=True, scope=scope
        )
        absent = self._stored_mr_keys_in(scope) - listed if listing.stable else set()
        for key in absent:
            project_id, iid = key.split("!", 1)
            stale.setdefault(int(project_id), []).append(int(iid))
        found: set[str] = set()
        for project_id, iids in sorted(stale.items()):
            batch = Batch()
            raws = self.source.merge_requests_by_iid(project_id, sorted(iids))
            for raw, collected in zip(raws, self.collect_merge_requests(raws, batch), strict=True):
                key = _key_of(raw, "project_id", "iid")
                found.add(key or "")  # there, even if quarantined
                if collected is not None and key not in absent:
                    self.result.recovered += 1
            self.commit(batch)
        for key in sorted(absent - found):
            for kind in ("mr_note", "mr_change", "mr_approval"):
                self.store.tombstone_missing(kind, set(), parent_key=key)
            self.store.record_listing("mr_note", listed=0, reported=0, full=True, scope=key)
            self.store.tombstone_missing(
                "merge_request", self.store.stored_keys("merge_request") - {key}
            )
            self.stored_updated.pop(key, None)

    def _stored_mr_keys_in(self, scope: str) -> set[str]:
        keys = self.store.stored_keys("merge_request")
        if scope.startswith("project:"):
            prefix = scope.split(":", 1)[1] + "!"
            return {k for k in keys if k.startswith(prefix)}
        if scope.startswith("group:"):
            members = {
                str(p["id"])
                for _, p in self.store.latest_payloads("project")
                if _in_group(p, scope.split(":", 1)[1])
            }
            return {k for k in keys if k.split("!", 1)[0] in members}
        return keys

    # -- per project: deployments, commits and files ---------------------------------
    def _plan(self, project: ProjectPayload, *, full: bool) -> ProjectPlan:
        """What a project's listings ask for, from the store's marks (read here, on the
        run's thread, before any of them is read)."""
        scope = str(project.id)
        deployments_mark = None if full else self.store.watermark("deployment", scope)
        deployments: dict[str, Any] = {"order_by": "updated_at", "sort": "asc"}
        if deployments_mark is not None:
            deployments["updated_after"] = query_time(deployments_mark - self.source.overlap)
        synced = full or not self._activity_unchanged(project)
        commits_mark = None if full else self.store.watermark("commit", scope)
        commits: dict[str, Any] = {"all": True, "with_stats": True}
        if commits_mark is not None:
            commits["since"] = query_time(commits_mark - self.source.overlap)
        return ProjectPlan(
            project, deployments, deployments_mark is None, synced, commits, commits_mark is None
        )

    def _read_listings(self, plan: ProjectPlan) -> ProjectListings:
        """Every page of the project's listings that a night's changes bound (requests
        only: nothing is stored). A full listing of deployments or commits (a first run,
        a reconciliation) grows with the project's history: it is read in its turn,
        page by page, not held."""
        project = plan.project
        started = datetime.now(UTC)
        listed = ProjectListings(started)
        if not plan.deployments_full:
            listed.deployments = list(self._deployment_pages(plan))
        if plan.synced and project.default_branch:
            if not plan.commits_full:
                listed.commits = list(self._commit_pages(plan))
            listed.tree = list(self._tree_pages(project, project.default_branch))
            listed.tags = list(self._tag_pages(project))
        return listed

    def _deployment_pages(self, plan: ProjectPlan) -> Iterator[Page]:
        path = f"/projects/{plan.project.id}/deployments"
        return self.source.pages(path, plan.deployments, optional=True)

    def _commit_pages(self, plan: ProjectPlan) -> Iterator[Page]:
        path = f"/projects/{plan.project.id}/repository/commits"
        return self.source.pages(path, plan.commits, optional=True)

    def _tree_pages(self, project: ProjectPayload, ref: str) -> Iterator[Page]:
        return self.source.pages(
            f"/projects/{project.id}/repository/tree",
            {"recursive": True, "ref": ref},
            optional=True,  # no repository, or an empty one: no files
        )

    def _tag_pages(self, project: ProjectPayload) -> Iterator[Page]:
        return self.source.pages(f"/projects/{project.id}/repository/tags", {}, optional=True)

    def sync_deployments(self, plan: ProjectPlan, pages: list[Page] | None) -> None:
        """From the pages read ahead, or (None) read now."""
        project = plan.project
        scope = str(project.id)
        listed: set[str] = set()
        totals: list[int | None] = []
        for page in read_ahead(self._deployment_pages(plan)) if pages is None else pages:
            totals.append(page.total)
            batch = Batch()
            newest: datetime | None = None
            for raw in page.items:
                try:
                    dep = DeploymentPayload.model_validate(raw)
                except ValidationError as exc:
                    key = _key_of(raw, "id")
                    batch.quarantined.append(
                        Quarantined(
                            "deployment",
                            f"{project.id}:{key}" if key else None,
                            validation_reason(exc),
                            raw,
                        )
                    )
                    continue
                key = f"{project.id}:{dep.id}"
                listed.add(key)
                batch.objects.append(RawObject("deployment", key, raw, parent_key=scope))
                stamp = dep.updated_at or dep.created_at
                if stamp:
                    moment = parse_ts(stamp)
                    newest = max(newest, moment) if newest else moment
            if newest is not None:
                batch.watermarks[("deployment", scope)] = newest
            self.store.commit(batch)
        self.result.deployments_listed += len(listed)
        self._close_listing("deployment", scope, listed, totals, full=plan.deployments_full)

    def _close_listing(
        self, kind: str, scope: str, listed: set[str], totals: list[int | None], *, full: bool
    ) -> None:
        """Record what a per-project listing found; a full one whose X-Total held still
        while it was read also turns what it no longer lists into tombstones."""
        reported = totals[-1] if totals and None not in totals else None
        self.store.record_listing(
            kind, listed=len(listed), reported=reported, full=full, scope=scope
        )
        if full and len({t for t in totals if t is not None}) <= 1:
            self.store.tombstone_missing(kind, listed, parent_key=scope)

    def _activity_unchanged(self, project: ProjectPayload) -> bool:
        if project.last_activity_at is None:
            return False
        scope = str(project.id)
        seen, synced = self.store.watermark(ACTIVITY, scope), self.store.watermark(SYNCED, scope)
        if seen is None or synced is None:
            return False
        return parse_ts(project.last_activity_at) <= seen and synced >= seen + ACTIVITY_THROTTLE

    def sync_repository(self, plan: ProjectPlan, listed: ProjectListings) -> None:
        project = plan.project
        if not plan.synced:
            self.result.projects_skipped += 1
            return
        if project.default_branch:  # an empty repository has neither commits nor files
            self.sync_commits(plan, listed.commits)
            # A project is synced once a run: what is committed of its files is all there is.
            files = ProjectFiles.read(self.store.committed(), project.id)
            self.sync_files(project, project.default_branch, files, pages=listed.tree)
            self.sync_tagged_specs(project, files, listed.tags)
        # when its listings started: activity after that moment is synced next time
        marks: dict[tuple[str, str], datetime] = {(SYNCED, str(project.id)): listed.started}
        if project.last_activity_at:
            marks[(ACTIVITY, str(project.id))] = parse_ts(project.last_activity_at)
        self.store.commit(Batch(watermarks=marks))
        self.result.projects_synced += 1

    def sync_commits(self, plan: ProjectPlan, pages: list[Page] | None) -> None:
        """From the pages read ahead, or (None) read now."""
        scope = str(plan.project.id)
        listed: set[str] = set()
        totals: list[int | None] = []
        newest: datetime | None = None
        for page in read_ahead(self._commit_pages(plan)) if pages is None else pages:
            totals.append(page.total)
            batch = Batch()
            for raw in page.items:
                try:
                    commit = CommitPayload.model_validate(raw)
                    when = commit.when
                except (ValidationError, ValueError) as exc:
                    sha = raw.get("id") if isinstance(raw, dict) else None
                    reason = (
                        validation_reason(exc) if isinstance(exc, ValidationError) else str(exc)
                    )
                    batch.quarantined.append(
                        Quarantined("commit", f"{scope}:{sha}" if sha else None, reason, raw)
                    )
                    continue
                key = f"{scope}:{commit.id}"
                listed.add(key)
                newest = max(newest, when) if newest else when
                batch.objects.append(RawObject("commit", key, raw, parent_key=scope))
            # Newest first: the watermark may only move once the whole listing is stored.
            self.store.commit(batch)
        if newest is not None:
            self.store.commit(Batch(watermarks={("commit", scope): newest}))
        self.result.commits_listed += len(listed)
        self._close_listing("commit", scope, listed, totals, full=plan.commits_full)

    def sync_files(
        self,
        project: ProjectPayload,
        ref: str,
        files: ProjectFiles,
        kinds: tuple[str, ...] | None = None,
        pages: Iterable[Page] | None = None,
    ) -> None:
        """The files the policy's globs name at ``ref`` (``kinds`` narrows the globs), from
        the tree's ``pages`` when they were read ahead."""
        scope = str(project.id)
        # Default-branch files are listed per project; any other ref on its own.
        parent = scope if ref == project.default_branch else f"{scope}@{ref}"
        globs = [g for kind, g in self.source.globs.items() if kinds is None or kind in kinds]
        stored = files.at(parent)
        present: set[str] = set()
        for page in self._tree_pages(project, ref) if pages is None else pages:
            batch = Batch()
            unread: list[tuple[str, TreeEntry]] = []
            for raw in page.items:
                try:
                    entry = TreeEntry.model_validate(raw)
                except ValidationError as exc:
                    path = raw.get("path") if isinstance(raw, dict) else None
                    batch.quarantined.append(
                        Quarantined(
                            "file",
                            f"{scope}:{ref}:{path}" if path else None,
                            validation_reason(exc),
                            raw,
                        )
                    )
                    continue
                if entry.type != "blob" or not any(matches_any(entry.path, g) for g in globs):
                    continue
                key = f"{scope}:{ref}:{entry.path}"
                present.add(key)
                if stored.get(key) == entry.id:
                    continue  # same blob: content unchanged
                unread.append((key, entry))
            # A blob already read at another ref (a tag's spec as the default branch has
            # it) is the same bytes: its content is not asked again.
            known = files.contents(self.store.committed(), [entry.id for _, entry in unread])
            to_read = list({e.id: e for _, e in unread if e.id not in known}.values())
            read = in_order(
                lambda entry: self._file_payload(project.id, ref, entry),
                to_read,
                self.source.in_flight,
            )
            for entry, payload in zip(to_read, read, strict=True):
                known[entry.id] = files.remember(payload)
            for key, entry in unread:
                payload = {**known[entry.id], "ref": ref, "path": entry.path}
                batch.objects.append(RawObject("file", key, payload, parent))
            self.result.files_fetched += len(to_read)
            self.result.files_reused += len(unread) - len(to_read)
            self.store.commit(batch)
        # The listing and what it no longer holds in one transaction, from the keys read
        # before it: no look-up per ref.
        self.store.commit(
            Batch(
                gone=[Children("file", parent, present, stored=set(stored))],
                listings=[ListingRecord("file", len(present), None, True, parent)],
            )
        )

    def sync_tagged_specs(
        self, project: ProjectPayload, files: ProjectFiles, tags: list[Page] | None
    ) -> None:
        """API specs at every tag not read yet: an approved spec is usually a tagged
        version, and a tag, once read, does not move."""
        read = {
            scope
            for (scope,) in self.store.committed()
            .con.execute(
                "SELECT DISTINCT scope FROM raw.listings WHERE source = ? "
                "AND object_type = 'file' AND scope LIKE ?",
                [self.store.source, f"{project.id}@%"],
            )
            .fetchall()
        }
        for page in self._tag_pages(project) if tags is None else tags:
            for raw in page.items:
                name = raw.get("name") if isinstance(raw, dict) else None
                if isinstance(name, str) and name and f"{project.id}@{name}" not in read:
                    self.sync_files(project, name, files, kinds=("spec",))

    def _file_payload(self, project_id: int, ref: str, entry: TreeEntry) -> dict[str, Any]:
        content = self.source.raw_file(project_id, entry.path, ref)
        payload: dict[str, Any] = {
            "project_id": project_id,
            "ref": ref,
            "path": entry.path,
            # The id of what was read: should the branch move between the tree and this
            # read, the next run sees a different id in the tree and reads it again.
            "blob_id": git_blob_id(content),
            "size": len(content),
        }
        try:
            payload["content"] = content.decode("utf-8")
        except UnicodeDecodeError:
            payload["content"] = base64.b64encode(content).decode("ascii")
            payload["encoding"] = "base64"
        return payload

    # -- reconciliation ---------------------------------------------------------------
    def _reconcile_due(self, first_run: bool) -> bool:
        every = self.source.policy.ingest.reconcile_every_days
        if first_run or every <= 0:
            return False
        last = self.store.watermark(RECONCILE)
        return last is None or self.now - last >= timedelta(days=every)


def _note_id(note: Any) -> str | None:
    """A note's number for a quarantine key, from a REST note or a GraphQL node."""
    number = note_number(note)
    return str(number) if number is not None else _key_of(note, "id")


def _in_group(project: dict[str, Any], group: str) -> bool:
    namespace = project.get("namespace") or {}
    full_path = str(namespace.get("full_path") or "")
    ident = group.lower()
    return (
        str(namespace.get("id")) == group
        or full_path.lower() == ident
        or full_path.lower().startswith(ident + "/")
    )


def ingest_gitlab(source: GitlabSource, store: RawStore, *, now: datetime) -> GitlabFetchResult:
    """Fetch what changed since the watermarks (everything on the first run) into raw."""
    return GitlabIngest(source, store, now).run()
