"""GitLab's GraphQL API (``/api/graphql``) over the dataset the REST side serves.

The subset the ingestion reads — a project's merge requests by iid, their notes,
approvers and diff refs — executed by graphql-core against a schema that keeps GitLab's names and
types, with the behaviours a client depends on:

* an MR's ``diffRefs`` from the ``diff_refs`` REST gives on ``/changes``;
* the same notes as REST ``/notes``, oldest first (ties by id); merge requests newest
  first, GitLab's default ``created_desc``;
* global ids ``gid://gitlab/<Class>/<id>`` (a note's class is its REST ``type``, else
  ``Note``), iids as strings, times to the second: GitLab's ``Time`` scalar is Ruby's
  ``Time#iso8601``, which drops the milliseconds REST keeps;
* connections paged by ``first``/``after`` (or ``last``/``before``), at most 100 nodes a
  page, keyset cursors, ``pageInfo`` and ``count``;
* errors as GraphQL answers them: HTTP 200 with ``{"errors": [...]}``, graphql-ruby's
  wording for an unknown field or argument, and GitLab's complexity limit (250, 200 for
  an anonymous caller) computed the way its ``BaseField`` does for these fields;
* a project the caller cannot see resolves to null: without a token only public
  projects are visible; a wrong token is 401 ``{"errors": [{"message": "Invalid token"}]}``
  (the app answers that, see ``app.py``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    execute,
    get_named_type,
    get_operation_ast,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values
from werkzeug.wrappers import Request, Response

from dagster_project.lib.sources.timeparse import parse_ts
from dagster_project.sandbox.emulator.http import Recent, json_reply

if TYPE_CHECKING:
    from dagster_project.sandbox.emulator.gitlab import GitlabApi

PATH = "/api/graphql"
MAX_PAGE_SIZE = 100  # GitLab's default_max_page_size
MAX_COMPLEXITY = {"authenticated": 250, "anonymous": 200}
# Fields GitLab resolves with a resolver class (their complexity adds 1), and among
# them the connections whose complexity grows with the page size asked for.
RESOLVED = {("Query", "project"), ("Project", "mergeRequest")}
RESOLVED_CONNECTIONS = {("Project", "mergeRequests"), ("MergeRequest", "notes")}
COMPLEXITY_PER_NODE = 0.01  # BaseResolver.complexity_multiplier
INVALID_CURSOR = "Please provide a valid cursor"
DOCUMENTS_KEPT = 64  # parsed queries kept, oldest dropped first

SDL = """
scalar Time
scalar NoteID
scalar UserID

type Query {
  project(fullPath: ID!): Project
}

type Project {
  id: ID!
  fullPath: ID!
  name: String!
  mergeRequest(iid: String!): MergeRequest
  mergeRequests(iids: [String!], state: MergeRequestState, first: Int, after: String,
                last: Int, before: String): MergeRequestConnection
}

enum MergeRequestState { merged opened closed locked all }
enum NotesFilterType { ALL_NOTES ONLY_COMMENTS ONLY_ACTIVITY }

type MergeRequest {
  id: ID!
  iid: String!
  projectId: Int!
  title: String!
  state: MergeRequestState!
  createdAt: Time!
  updatedAt: Time!
  approved: Boolean!
  diffRefs: DiffRefs
  approvedBy(first: Int, after: String, last: Int, before: String): UserCoreConnection
  notes(filter: NotesFilterType, first: Int, after: String, last: Int,
        before: String): NoteConnection!
}

type DiffRefs {
  baseSha: String
  headSha: String!
  startSha: String!
}

type Note {
  id: NoteID!
  body: String!
  system: Boolean!
  internal: Boolean
  createdAt: Time!
  updatedAt: Time!
  author: UserCore
  resolvable: Boolean!
  resolved: Boolean!
}

type UserCore {
  id: UserID!
  username: String!
  name: String!
  webUrl: String!
  avatarUrl: String
  bot: Boolean!
}

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

type MergeRequestConnection {
  count: Int!
  nodes: [MergeRequest]
  edges: [MergeRequestEdge]
  pageInfo: PageInfo!
}
type MergeRequestEdge { cursor: String! node: MergeRequest }

type NoteConnection {
  count: Int!
  nodes: [Note]
  edges: [NoteEdge]
  pageInfo: PageInfo!
}
type NoteEdge { cursor: String! node: Note }

type UserCoreConnection {
  count: Int!
  nodes: [UserCore]
  edges: [UserCoreEdge]
  pageInfo: PageInfo!
}
type UserCoreEdge { cursor: String! node: UserCore }
"""


# -- values as GitLab renders them ----------------------------------------------------
def gitlab_time(value: str) -> str:
    """``Time#iso8601`` in UTC: to the second, ``Z``."""
    return parse_ts(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gid(kind: str, ident: Any) -> str:
    return f"gid://gitlab/{kind}/{ident}"


def render_user(user: Any) -> dict[str, Any] | None:
    if not isinstance(user, dict):
        return None
    return {
        "id": gid("User", user.get("id", 0)),
        "username": user.get("username") or "",
        "name": user.get("name") or user.get("username") or "",
        "webUrl": user.get("web_url") or "",
        "avatarUrl": user.get("avatar_url"),
        "bot": bool(user.get("bot")),
    }


def render_diff_refs(refs: Any) -> dict[str, Any] | None:
    """REST's ``diff_refs`` as GraphQL's ``DiffRefs``: null for an MR without a diff."""
    if not isinstance(refs, dict) or not refs.get("head_sha"):
        return None
    return {
        "baseSha": refs.get("base_sha"),
        "headSha": refs["head_sha"],
        "startSha": refs.get("start_sha") or refs.get("base_sha") or refs["head_sha"],
    }


def render_note(note: dict[str, Any]) -> dict[str, Any]:
    """A REST note as GraphQL's ``Note``; its class (the REST ``type``) names its id."""
    return {
        "id": gid(note.get("type") or "Note", note["id"]),
        "body": note.get("body") or "",
        "system": bool(note.get("system")),
        "internal": bool(note.get("internal") or note.get("confidential")),
        "createdAt": gitlab_time(note["created_at"]),
        "updatedAt": gitlab_time(note.get("updated_at") or note["created_at"]),
        "author": render_user(note.get("author")),
        "resolvable": bool(note.get("resolvable")),
        "resolved": bool(note.get("resolved")),
    }


# -- connections ------------------------------------------------------------------------
def keyset_cursor(created_at: str, ident: int) -> str:
    """GitLab's keyset cursor: base64 JSON of the order's columns."""
    stamp = parse_ts(created_at).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f000 +0000")
    raw = json.dumps({"created_at": stamp, "id": str(ident)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_keyset(cursor: str) -> tuple[float, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode()))
        when = datetime.strptime(raw["created_at"][:26], "%Y-%m-%d %H:%M:%S.%f")
        return when.replace(tzinfo=UTC).timestamp(), int(raw["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise GraphQLError(INVALID_CURSOR) from exc


def offset_cursor(index: int) -> str:
    """graphql-ruby's array cursor: base64 of the 1-based position."""
    return base64.b64encode(str(index + 1).encode()).decode()


def decode_offset(cursor: str) -> int:
    try:
        return int(base64.b64decode(cursor.encode()).decode()) - 1
    except ValueError as exc:
        raise GraphQLError(INVALID_CURSOR) from exc


def window(size: int, args: dict[str, Any], locate: Callable[[str, bool], int]) -> tuple[int, int]:
    """The [lo, hi) slice of ``size`` nodes a connection's arguments select (Relay's
    algorithm, capped at GitLab's page size). ``locate(cursor, after)`` is the index
    just after (or at) the cursor's node."""
    lo, hi = 0, size
    if args.get("after"):
        lo = max(lo, locate(args["after"], True))
    if args.get("before"):
        hi = min(hi, locate(args["before"], False))
    first, last = args.get("first"), args.get("last")
    for name, value in (("first", first), ("last", last)):
        if value is not None and value < 0:
            raise GraphQLError(f"Argument '{name}' must be greater than or equal to 0")
    if first is None and last is None:
        first = MAX_PAGE_SIZE
    if first is not None:
        hi = min(hi, lo + min(first, MAX_PAGE_SIZE))
    if last is not None:
        lo = max(lo, hi - min(last, MAX_PAGE_SIZE))
    return lo, max(lo, hi)


def connection(nodes: list[dict[str, Any]], cursors: list[str], lo: int, hi: int) -> dict[str, Any]:
    page = list(range(lo, hi))
    return {
        "count": len(nodes),
        "nodes": [nodes[i] for i in page],
        "edges": [{"cursor": cursors[i], "node": nodes[i]} for i in page],
        "pageInfo": {
            "hasNextPage": hi < len(nodes),
            "hasPreviousPage": lo > 0,
            "startCursor": cursors[lo] if page else None,
            "endCursor": cursors[hi - 1] if page else None,
        },
    }


def keyset_connection(
    rows: list[tuple[float, int, dict[str, Any]]],
    cursors: list[str],
    args: dict[str, Any],
    *,
    descending: bool,
) -> dict[str, Any]:
    """``rows`` are (epoch, id, node) in the connection's order; cursors name a row's
    key, so a page stays right when rows are added before it."""
    keys = [(r[0], r[1]) for r in rows]

    def locate(cursor: str, after: bool) -> int:
        mark = decode_keyset(cursor)
        for i, key in enumerate(keys):
            beyond = key < mark if descending else key > mark
            if beyond or (not after and key == mark):
                return i
        return len(keys)

    lo, hi = window(len(keys), args, locate)
    return connection([r[2] for r in rows], cursors, lo, hi)


def array_connection(nodes: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
    def locate(cursor: str, after: bool) -> int:
        index = decode_offset(cursor)
        return index + 1 if after else index

    lo, hi = window(len(nodes), args, locate)
    return connection(nodes, [offset_cursor(i) for i in range(len(nodes))], lo, hi)


# -- complexity -------------------------------------------------------------------------
def _fields(
    selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode]
) -> Iterator[FieldNode]:
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _fields(fragment.selection_set, fragments)


def _field_cost(
    parent: GraphQLObjectType,
    node: FieldNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> int:
    """1 per field plus its children; a resolver adds 1, and a resolved connection
    multiplies by 1 + page size x 0.01 (GitLab's ``BaseField#field_complexity``)."""
    name = node.name.value
    definition = parent.fields.get(name)
    if definition is None:
        return 0  # __typename and the like
    child = get_named_type(definition.type)
    children = 0
    if isinstance(child, GraphQLObjectType):
        children = sum(
            _field_cost(child, f, fragments, variables)
            for f in _fields(node.selection_set, fragments)
        )
    key = (parent.name, name)
    if key not in RESOLVED and key not in RESOLVED_CONNECTIONS:
        return 1 + children
    cost = float(children + 1)
    if key in RESOLVED_CONNECTIONS:
        args = get_argument_values(definition, node, variables)
        limit = min(
            v for v in (args.get("first"), args.get("last"), MAX_PAGE_SIZE) if v is not None
        )
        cost += cost * limit * COMPLEXITY_PER_NODE
    return int(cost)


def complexity(
    schema: GraphQLSchema, operation: OperationDefinitionNode, document: Any, variables: dict
) -> int:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    root = schema.query_type
    assert root is not None
    return sum(
        _field_cost(root, f, fragments, variables)
        for f in _fields(operation.selection_set, fragments)
    )


# -- graphql-ruby's wording ---------------------------------------------------------------
RUBY_MESSAGES = (
    (
        re.compile(r"Cannot query field '(\w+)' on type '(\w+)'\..*", re.S),
        lambda m: (
            f"Field '{m[1]}' doesn't exist on type '{m[2]}'",
            {"code": "undefinedField", "typeName": m[2], "fieldName": m[1]},
        ),
    ),
    (
        re.compile(r"Unknown argument '(\w+)' on field '(\w+)\.(\w+)'\..*", re.S),
        lambda m: (
            f"Field '{m[3]}' doesn't accept argument '{m[1]}'",
            {
                "code": "argumentNotAccepted",
                "name": m[3],
                "typeName": "Field",
                "argumentName": m[1],
            },
        ),
    ),
)


def ruby_error(error: GraphQLError) -> dict[str, Any]:
    """A validation error worded as graphql-ruby (GitLab's server) words it."""
    out = dict(error.formatted)
    for pattern, build in RUBY_MESSAGES:
        match = pattern.fullmatch(error.message)
        if match:
            out["message"], out["extensions"] = build(match)
    return out


# -- the API ----------------------------------------------------------------------------
class GitlabGraphql:
    """``/api/graphql`` over one ``GitlabApi``'s dataset indexes."""

    def __init__(self, api: GitlabApi):
        self.api = api
        self.schema = build_schema(SDL)
        self._documents: Recent[Any] = Recent(DOCUMENTS_KEPT)  # query text -> document or errors
        self._bind("Query", "project", self.resolve_project)
        self._bind("Project", "mergeRequest", self.resolve_merge_request)
        self._bind("Project", "mergeRequests", self.resolve_merge_requests)
        self._bind("MergeRequest", "notes", self.resolve_notes)
        self._bind("MergeRequest", "approvedBy", self.resolve_approved_by)

    def _bind(self, type_name: str, field: str, resolver: Any) -> None:
        graphql_type = self.schema.type_map[type_name]
        assert isinstance(graphql_type, GraphQLObjectType)
        graphql_type.fields[field].resolve = resolver

    def register(self, router: Any, api: str) -> None:
        router.add(api, "POST", PATH, self.serve)
        router.add(api, "GET", PATH, self.serve)

    # -- HTTP -----------------------------------------------------------------------
    def serve(self, request: Request) -> Response:
        """One query, or a list of them (GitLab executes a multiplexed list in turn)."""
        try:
            body = self._body(request)
        except ValueError as exc:
            return json_reply({"errors": [{"message": str(exc)}]}, 400)
        anonymous = bool(request.environ.get("driftgate.anonymous"))
        if isinstance(body, list):
            return json_reply([self.run(b, anonymous=anonymous) for b in body])
        return json_reply(self.run(body, anonymous=anonymous))

    @staticmethod
    def _body(request: Request) -> Any:
        if request.method == "GET":
            variables = request.args.get("variables")
            return {
                "query": request.args.get("query"),
                "variables": json.loads(variables) if variables else None,
                "operationName": request.args.get("operationName"),
            }
        try:
            return json.loads(request.get_data() or b"null")
        except json.JSONDecodeError as exc:
            raise ValueError(f"Invalid JSON in the request body: {exc.msg}") from exc

    def run(self, body: Any, *, anonymous: bool = False) -> dict[str, Any]:
        """Parse, validate, bound the complexity, execute: GraphQL's answer as a dict."""
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return {"errors": [{"message": "No query string was present"}]}
        parsed = self._parsed(body["query"])
        if isinstance(parsed, list):
            return {"errors": parsed}
        document = parsed
        variables = body.get("variables") or {}
        operation = get_operation_ast(document, body.get("operationName"))
        if operation is None:
            return {"errors": [{"message": "An operation name is required"}]}
        limit = MAX_COMPLEXITY["anonymous" if anonymous else "authenticated"]
        try:
            score = complexity(self.schema, operation, document, variables)
        except GraphQLError as exc:
            return {"errors": [exc.formatted]}
        if score > limit:
            message = f"Query has complexity of {score}, which exceeds max complexity of {limit}"
            return {"errors": [{"message": message}]}
        result = execute(
            self.schema,
            document,
            variable_values=variables,
            operation_name=body.get("operationName"),
            context_value={"anonymous": anonymous},
        )
        out = result.formatted
        if out.get("data") is None and out.get("errors"):
            out.pop("data", None)  # a request that never ran has no data key
        return out

    def _parsed(self, query: str) -> Any:
        """The query's document, or its errors: parsed and validated once per text (a
        client sends the same few queries over and over)."""

        def build() -> Any:
            try:
                document = parse(query)
            except GraphQLError as exc:
                return [exc.formatted]
            errors = validate(self.schema, document)
            return [ruby_error(e) for e in errors] if errors else document

        return self._documents.get(query, build)

    # -- resolvers ------------------------------------------------------------------
    def resolve_project(self, _root: Any, info: Any, fullPath: str) -> dict[str, Any] | None:  # noqa: N803
        project = self.api.find_project(fullPath)
        if project is None or "/" not in fullPath:  # GitLab looks projects up by path only
            return None
        if info.context.get("anonymous") and project.get("visibility") != "public":
            return None
        return {
            "id": gid("Project", project["id"]),
            "fullPath": project["path_with_namespace"],
            "name": project.get("name") or project["path_with_namespace"],
            "_project": project,
        }

    def _render_mr(self, meta: dict[str, Any]) -> dict[str, Any]:
        mr = self.api.merge_requests.load(meta["_pos"])
        state = self.api.approval_state_of(meta)
        return {
            "id": gid("MergeRequest", mr["id"]),
            "iid": str(mr["iid"]),
            "projectId": int(mr["project_id"]),
            "title": mr.get("title") or "",
            "state": mr.get("state"),
            "createdAt": gitlab_time(mr["created_at"]),
            "updatedAt": gitlab_time(mr["updated_at"]),
            "approved": bool(state.get("approved")),
            "diffRefs": render_diff_refs(mr.get("diff_refs")),
            "_meta": meta,
            "_approvers": [
                render_user(a.get("user")) for a in state.get("approved_by") or () if a.get("user")
            ],
        }

    def resolve_merge_request(self, project: dict[str, Any], _info: Any, iid: str) -> Any:
        meta = self.api.find_mr(project["_project"], iid)
        return None if meta is None else self._render_mr(meta)

    def resolve_merge_requests(self, project: dict[str, Any], _info: Any, **args: Any) -> Any:
        if args.get("iids") is not None:  # by the index: a project may have 10^4 MRs
            found = (self.api.find_mr(project["_project"], i) for i in dict.fromkeys(args["iids"]))
            metas = [m for m in found if m is not None]
        else:
            metas = self.api.project_mrs(project["_project"])
        if args.get("state") not in (None, "all"):
            metas = [m for m in metas if m["state"] == args["state"]]
        metas = sorted(metas, key=lambda m: (m["created_at"] or 0, m["id"]), reverse=True)
        rows, cursors = [], []
        for meta in metas:
            mr = self.api.merge_requests.load(meta["_pos"])
            rows.append((meta["created_at"] or 0.0, meta["id"], meta))
            cursors.append(keyset_cursor(mr["created_at"], meta["id"]))
        page = keyset_connection(rows, cursors, args, descending=True)
        page["nodes"] = [self._render_mr(m) for m in page["nodes"]]
        page["edges"] = [dict(e, node=n) for e, n in zip(page["edges"], page["nodes"], strict=True)]
        return page

    def resolve_notes(self, mr: dict[str, Any], _info: Any, **args: Any) -> dict[str, Any]:
        notes = self.api.notes_of(mr["_meta"])
        chosen = args.get("filter") or "ALL_NOTES"
        if chosen != "ALL_NOTES":
            notes = [n for n in notes if bool(n.get("system")) == (chosen == "ONLY_ACTIVITY")]
        rows = [
            (parse_ts(n["created_at"]).timestamp(), int(n["id"]), render_note(n)) for n in notes
        ]
        cursors = [keyset_cursor(n["created_at"], n["id"]) for n in notes]
        return keyset_connection(rows, cursors, args, descending=False)

    def resolve_approved_by(self, mr: dict[str, Any], _info: Any, **args: Any) -> Any:
        return array_connection(mr["_approvers"], args)
