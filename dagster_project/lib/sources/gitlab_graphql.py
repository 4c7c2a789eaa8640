"""Merge-request notes and approvers in bulk, through GitLab's GraphQL API.

Over REST every changed merge request costs a ``/notes`` listing and an ``/approvals``
call; at 88,000 MRs that was two thirds of a first nightly's GitLab requests. One
GraphQL query answers both for the changed MRs of a listing page, a few projects at a
time (``project(fullPath:) { mergeRequests(iids:) { ... } }`` under aliases). An MR with
more notes than one page gets follow-up queries by cursor, for that MR only.

The client is python-gitlab's own (``gitlab.GraphQL``: gql over httpx), sent the REST
client's token (as ``Authorization: Bearer``, as python-gitlab does), its own retries
off: every query goes through ``lib/retry.py`` like a REST page. Errors are told apart:

* HTTP 404/403/405, or a query error saying a field or argument does not exist (an old
  or reduced schema): :class:`GraphqlUnavailable`, and the caller falls back to REST;
* "Query has complexity of N, which exceeds max complexity of M": the batch is split
  and later batches hold fewer projects;
* anything else in ``errors`` (HTTP 200, GraphQL's shape): a :class:`SourceError`.

What is stored is what GraphQL answers, not a REST look-alike (raw keeps every API
object as received): a note is the ``Note`` node, keyed by the number in its global id
(``gid://gitlab/DiscussionNote/123`` -> 123, the REST note id, so a database read
over REST before goes on with the same keys); the approval state is the MR node's
``approvedBy``. ``sql/chain/mr_notes.sql`` reads both shapes:

    REST note           GraphQL Note
    id                  id: gid://gitlab/<class>/<id> (the number)
    created_at          createdAt (to the second: GitLab's Time scalar has no fraction)
    author.username     author.username
    system, body        system, body
    type                <class> of the id; "Note" is REST's null

Each MR's ``diffRefs`` comes along, not stored: the ingestion compares it with the
``diff_refs`` of the MR's stored ``/changes`` and asks for the changes again only when
the diff moved (a push, a rebase), not for every note or approval.

``approvedBy`` users carry no approval time. Each approval writes an "approved this merge
request" system note by the approver at that moment, which the chain reads instead; so
REST ``/approvals`` (whose ``approved_at`` newer GitLab versions fill) is asked only for
an MR whose approvers are not all matched by such notes (imported MRs), or that has more
approvers than one page.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import gitlab
import httpx
from gitlab.exceptions import GitlabHttpError
from gql.transport.exceptions import (
    TransportConnectionFailed,
    TransportProtocolError,
    TransportQueryError,
)
from graphql import DocumentNode, parse

from dagster_project.lib.retry import SourceError, status_of

PAGE_SIZE = 100  # GitLab's max_page_size: MRs per alias (notes: the policy's page size)
PROJECTS_PER_QUERY = 3  # aliases a bulk query starts with (GitLab's complexity limit)
UNAVAILABLE_STATUS = (403, 404, 405)  # no GraphQL here (disabled, proxied away, too old)
SCHEMA_MISMATCH = re.compile(r"doesn't exist on type|doesn't accept argument")
TOO_COMPLEX = re.compile(r"complexity of (\d+), which exceeds max complexity of (\d+)")
GID = re.compile(r"^gid://gitlab/([A-Za-z:]+)/(\d+)$")
APPROVED = "approved this merge request"

# Against GitLab's complexity limit a note field costs 4 in the bulk query (a connection
# of 100 inside another) and an MR's diffRefs 8: three projects a query fit under 250
# (249) only without what nothing reads (a note's updatedAt, the MRs' pageInfo).
NOTE_FIELDS = """
fragment NoteFields on Note {
  id body system internal createdAt author { id username }
}
"""
NOTES = "notes(first: %d%s) { count pageInfo { hasNextPage endCursor } nodes { ...NoteFields } }"
BULK_ALIAS = """
  p%(i)d: project(fullPath: $path%(i)d) {
    mergeRequests(iids: $iids%(i)d, first: %(size)d) {
      nodes {
        iid
        diffRefs { baseSha headSha startSha }
        approvedBy { pageInfo { hasNextPage } nodes { id username } }
        %(notes)s
      }
    }
  }"""
FOLLOW_UP = """query MergeRequestNotesPage($path: ID!, $iid: String!, $after: String) {
  project(fullPath: $path) { mergeRequest(iid: $iid) { %s } }
}
"""


class GraphqlUnavailable(SourceError):
    """GitLab offers no usable GraphQL for this query: fall back to REST."""


class GraphqlTooComplex(SourceError):
    """The query is above the server's complexity limit: ask for less at once."""

    def fitting(self, aliases: int) -> int:
        """How many of ``aliases`` alike aliases fit under the limit the error names."""
        match = TOO_COMPLEX.search(str(self))
        if match is None:
            return aliases // 2
        score, limit = int(match[1]), int(match[2])
        return min(aliases - 1, aliases * limit // score)


class GraphqlConnectionError(ConnectionError):
    """A reset, a timeout or a truncated answer: transient, retried by lib/retry.py."""


class GraphqlHttpError(Exception):
    """An HTTP error status whose body was in GraphQL's shape (401 "Invalid token")."""

    def __init__(self, status: int, message: str, response: httpx.Response | None):
        super().__init__(f"HTTP {status}: {message}")
        self.response_code = status
        self.response = response


class DiffRefs(NamedTuple):
    """The commits an MR's diff is computed between: equal refs, equal diff (git objects
    never change), so ``/changes`` need not be asked again."""

    base_sha: str | None
    head_sha: str
    start_sha: str | None

    @classmethod
    def of(cls, value: Any, base: str, head: str, start: str) -> DiffRefs | None:
        """From GraphQL's ``diffRefs`` or REST's ``diff_refs`` (field names given); None
        without a head."""
        if not isinstance(value, dict) or not value.get(head):
            return None
        return cls(value.get(base), str(value[head]), value.get(start))


class MrRef(NamedTuple):
    """One merge request as the bulk query names it."""

    project_id: int
    path: str  # the project's full path (GraphQL looks projects up by path)
    iid: int


@dataclass
class Thread:
    """An MR's notes as GraphQL listed them, and its approval state when complete."""

    notes: list[Any] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # NoteConnection.count of each page
    cursor: str | None = None  # where the next page starts, while there is one
    approvals: Any | None = None  # the MR node's approval fields, as received
    approvers_paged: bool = False  # more approvers than one page
    diff_refs: DiffRefs | None = None  # the MR's latest diff (None: GitLab gave none)

    def approvals_explained(self) -> bool:
        """Every approver has an "approved this merge request" note: the notes carry
        each approval's time, and REST ``/approvals`` adds nothing the chain reads."""
        if self.approvers_paged or self.approvals is None:
            return False
        noted = {
            (n.get("author") or {}).get("username")
            for n in self.notes
            if isinstance(n, dict) and n.get("system") and str(n.get("body")).startswith(APPROVED)
        }
        approvers = (self.approvals.get("approvedBy") or {}).get("nodes") or []
        return all(isinstance(u, dict) and u.get("username") in noted for u in approvers)


def note_number(node: Any) -> int | None:
    """The REST note id inside a GraphQL global id."""
    match = GID.match(str(node.get("id"))) if isinstance(node, dict) else None
    return int(match[2]) if match else None


def bulk_query(aliases: int, notes_per_page: int) -> str:
    """One query for the MRs of ``aliases`` projects: their approvers and first page of
    notes."""
    variables = ", ".join(f"$path{i}: ID!, $iids{i}: [String!]" for i in range(aliases))
    notes = NOTES % (notes_per_page, "")
    body = "".join(BULK_ALIAS % {"i": i, "size": PAGE_SIZE, "notes": notes} for i in range(aliases))
    return f"query MergeRequestNotes({variables}) {{{body}\n}}\n{NOTE_FIELDS}"


def follow_up_query(notes_per_page: int) -> str:
    """The next page of one MR's notes, after a cursor."""
    return FOLLOW_UP % (NOTES % (notes_per_page, ", after: $after")) + NOTE_FIELDS


def _groups(refs: list[MrRef]) -> list[tuple[str, list[MrRef]]]:
    """(project path, MRs) groups of at most PAGE_SIZE MRs: one alias each."""
    by_path: dict[str, list[MrRef]] = {}
    for ref in refs:
        by_path.setdefault(ref.path, []).append(ref)
    return [
        (path, mrs[i : i + PAGE_SIZE])
        for path, mrs in by_path.items()
        for i in range(0, len(mrs), PAGE_SIZE)
    ]


class GitlabGraphql:
    """Bulk note and approver queries for one run; ``call`` retries, ``count`` counts."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout_s: float,
        page_size: int,
        call: Callable[[str, Callable[[], Any]], Any],
        count: Callable[[], None],
        slots: threading.BoundedSemaphore,
    ):
        self.page_size = page_size  # notes per page
        self._call = call
        self._count = count
        self._slots = slots  # shared with the step's REST requests
        self._documents: dict[str, DocumentNode] = {}  # query text -> parsed, see _post
        self._last: httpx.Response | None = None
        self.per_query = PROJECTS_PER_QUERY
        # The headers python-gitlab's GraphQL client sends, on a client of our own so
        # the status and Retry-After of every answer are at hand.
        http = httpx.Client(
            headers={"User-Agent": gitlab.const.USER_AGENT, "Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            event_hooks={"response": [self._remember]},
        )
        self.client = gitlab.GraphQL(
            url, client=http, max_retries=0, obey_rate_limit=False, retry_transient_errors=False
        )

    def _remember(self, response: httpx.Response) -> None:
        self._last = response

    # -- one query ----------------------------------------------------------------------
    def query(self, what: str, query: str, variables: dict[str, Any]) -> Any:
        """The ``data`` of one query, retried like a REST page; errors classified."""
        try:
            data, errors = self._call(what, lambda: self._post(query, variables))
        except SourceError as exc:
            if status_of(exc.__cause__) in UNAVAILABLE_STATUS:
                raise GraphqlUnavailable(str(exc)) from exc
            raise
        if errors:
            message = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
            kind = SourceError
            if SCHEMA_MISMATCH.search(message):
                kind = GraphqlUnavailable
            elif TOO_COMPLEX.search(message):
                kind = GraphqlTooComplex
            raise kind(f"gitlab {what}: {message[:300]}")
        return data

    def _post(self, query: str, variables: dict[str, Any]) -> tuple[Any, list[Any]]:
        self._count()
        self._last = None
        try:
            with warnings.catch_warnings():
                # python-gitlab 8.6 hands variables to gql 4 the older way, which gql
                # still honours with a DeprecationWarning.
                warnings.filterwarnings("ignore", "Using variable_values", DeprecationWarning)
                document = self._documents.get(query)
                if document is None:
                    document = self._documents[query] = parse(query)
                with self._slots:
                    # python-gitlab hands the query to gql, which takes a parsed
                    # document as it takes text: the few query texts of a run are
                    # parsed once, not once per query sent.
                    return self.client.execute(document, variable_values=variables), []
        except TransportQueryError as exc:
            status = self._last.status_code if self._last is not None else 200
            if status >= 400:
                raise GraphqlHttpError(status, str(exc), self._last) from exc
            return exc.data, list(exc.errors or [])
        except GitlabHttpError as exc:
            exc.response = self._last  # type: ignore[attr-defined]  # for Retry-After
            raise
        except (TransportConnectionFailed, TransportProtocolError, httpx.TransportError) as exc:
            raise GraphqlConnectionError(str(exc)) from exc

    # -- notes and approvers of many MRs ----------------------------------------------
    def threads(self, refs: list[MrRef]) -> dict[MrRef, Thread]:
        """Every note and the approvers of each MR in ``refs``: ``per_query`` projects a
        query, fewer for the rest of the run once GitLab finds a query too complex."""
        out: dict[MrRef, Thread] = {}
        groups = _groups(refs)
        while groups:
            batch = groups[: self.per_query]
            try:
                out.update(self._bulk(batch))
            except GraphqlTooComplex as exc:
                if len(batch) == 1:
                    raise GraphqlUnavailable(
                        "gitlab graphql: one project's query exceeds the complexity limit"
                    ) from None
                self.per_query = max(1, exc.fitting(len(batch)))
                continue
            del groups[: len(batch)]
        for ref, thread in out.items():
            self._follow_up(ref, thread)
        return out

    def _bulk(self, batch: list[tuple[str, list[MrRef]]]) -> dict[MrRef, Thread]:
        variables: dict[str, Any] = {}
        for i, (path, mrs) in enumerate(batch):
            variables[f"path{i}"] = path
            variables[f"iids{i}"] = [str(m.iid) for m in mrs]
        query = bulk_query(len(batch), self.page_size)
        data = self.query("POST /api/graphql (notes)", query, variables)
        out: dict[MrRef, Thread] = {}
        for i, (path, mrs) in enumerate(batch):
            project = (data or {}).get(f"p{i}")
            if project is None:
                raise SourceError(f"gitlab graphql: project {path!r} not found or not visible")
            nodes = {str(n.get("iid")): n for n in project["mergeRequests"]["nodes"] or ()}
            for ref in mrs:
                node = nodes.get(str(ref.iid))
                if node is None:
                    raise SourceError(
                        f"gitlab graphql: merge request {path}!{ref.iid} not returned"
                    )
                out[ref] = self._thread(node)
        return out

    @staticmethod
    def _thread(node: dict[str, Any]) -> Thread:
        thread = Thread(
            approvals={k: v for k, v in node.items() if k not in ("notes", "diffRefs")},
            diff_refs=DiffRefs.of(node.get("diffRefs"), "baseSha", "headSha", "startSha"),
        )
        approvers = node.get("approvedBy") or {}
        thread.approvers_paged = bool((approvers.get("pageInfo") or {}).get("hasNextPage"))
        _add_page(thread, node["notes"])
        return thread

    def _follow_up(self, ref: MrRef, thread: Thread) -> None:
        """The MR's further note pages, by cursor, until GitLab says there are none."""
        while thread.cursor is not None:
            variables = {"path": ref.path, "iid": str(ref.iid), "after": thread.cursor}
            query = follow_up_query(self.page_size)
            data = self.query("POST /api/graphql (notes page)", query, variables)
            mr = ((data or {}).get("project") or {}).get("mergeRequest")
            if mr is None:
                raise SourceError(f"gitlab graphql: merge request {ref.path}!{ref.iid} vanished")
            _add_page(thread, mr["notes"])


def _add_page(thread: Thread, notes: dict[str, Any]) -> None:
    thread.notes.extend(notes.get("nodes") or ())
    thread.counts.append(int(notes.get("count") or 0))
    info = notes.get("pageInfo") or {}
    thread.cursor = info.get("endCursor") if info.get("hasNextPage") else None
