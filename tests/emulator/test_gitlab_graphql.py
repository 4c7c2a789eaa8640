"""The GitLab emulator's GraphQL side (``/api/graphql``), driven by python-gitlab's own
GraphQL client and by plain HTTP where the answer's shape is the point.

Every expectation comes from the hand-made dataset: GraphQL must serve the very notes
REST serves, in the same order, paged with GitLab's connection semantics, and answer
errors the way GitLab does (HTTP 200, ``{"errors": [...]}``).
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gitlab
import pytest
import requests
from gql.transport.exceptions import TransportQueryError

from dagster_project.sandbox.emulator import server
from tests.conftest import HANDMADE, sandbox_stats

GITLAB = HANDMADE / "gitlab"
TIMEOUT = 5
PAYMENTS = "acme/payments/payments-api"  # project 201
NOTES_QUERY = """
query($path: ID!, $iid: String!, $first: Int, $after: String, $last: Int, $before: String) {
  project(fullPath: $path) {
    mergeRequest(iid: $iid) {
      notes(first: $first, after: $after, last: $last, before: $before) {
        count
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        nodes { id body system createdAt author { username } }
      }
    }
  }
}
"""


def _jsonl(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (GITLAB / name).read_text().splitlines() if line]


PROJECTS: list[dict[str, Any]] = json.loads((GITLAB / "projects.json").read_text())
MRS = _jsonl("merge_requests.jsonl")
NOTES = {(r["project_id"], r["iid"]): r["notes"] for r in _jsonl("mr_notes.jsonl")}


@pytest.fixture(scope="module")
def emulator() -> Iterator[server.RunningEmulator]:
    running = server.start(str(HANDMADE))
    yield running
    running.stop()


def _client(url: str, token: str = "t") -> gitlab.GraphQL:
    return gitlab.GraphQL(url, token=token, timeout=TIMEOUT)


def _execute(client: gitlab.GraphQL, query: str, **variables: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # gql 4 on python-gitlab 8.6
        return client.execute(query, variable_values=variables)


def _post(url: str, body: Any, **headers: str) -> requests.Response:
    return requests.post(
        f"{url}/api/graphql", json=body, headers={"PRIVATE-TOKEN": "t", **headers}, timeout=TIMEOUT
    )


def _rest_notes(url: str, project_id: int, iid: int) -> list[dict[str, Any]]:
    rest = gitlab.Gitlab(url, private_token="t", timeout=TIMEOUT)
    mr = rest.projects.get(project_id, lazy=True).mergerequests.get(iid, lazy=True)
    return [n.asdict() for n in mr.notes.list(get_all=True, sort="asc", order_by="created_at")]


def _pages(client: gitlab.GraphQL, path: str, iid: int, first: int) -> list[dict[str, Any]]:
    """Every page of an MR's notes, following endCursor while hasNextPage."""
    pages, after = [], None
    while True:
        data = _execute(client, NOTES_QUERY, path=path, iid=str(iid), first=first, after=after)
        page = data["project"]["mergeRequest"]["notes"]
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            return pages
        after = page["pageInfo"]["endCursor"]


def test_notes_are_the_rest_notes_in_the_same_order(emulator: server.RunningEmulator) -> None:
    """The same notes as REST ``sort=asc``: ids carry the note's class, times drop the
    milliseconds as GitLab's Time scalar does."""
    client = _client(emulator.url)
    busiest = max(NOTES, key=lambda k: len(NOTES[k]))
    path = next(p["path_with_namespace"] for p in PROJECTS if p["id"] == busiest[0])
    rest = _rest_notes(emulator.url, *busiest)

    (page,) = _pages(client, path, busiest[1], first=100)

    assert len(rest) == len(page["nodes"]) == page["count"] > 10
    for graphql_note, rest_note in zip(page["nodes"], rest, strict=True):
        assert graphql_note["id"] == f"gid://gitlab/{rest_note['type'] or 'Note'}/{rest_note['id']}"
        assert graphql_note["body"] == rest_note["body"]
        assert graphql_note["system"] == rest_note["system"]
        assert graphql_note["author"]["username"] == rest_note["author"]["username"]
        assert graphql_note["createdAt"] == rest_note["created_at"][:19] + "Z"
    assert {n["id"].split("/")[3] for n in page["nodes"]} >= {"Note", "DiffNote"}


def test_cursor_paging_follows_connection_semantics(emulator: server.RunningEmulator) -> None:
    client = _client(emulator.url)
    busiest = max(NOTES, key=lambda k: len(NOTES[k]))
    path = next(p["path_with_namespace"] for p in PROJECTS if p["id"] == busiest[0])
    total = len(NOTES[busiest])

    pages = _pages(client, path, busiest[1], first=4)

    assert [len(p["nodes"]) for p in pages] == [4] * (total // 4) + (
        [total % 4] if total % 4 else []
    )
    assert {p["count"] for p in pages} == {total}
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False] + [True] * (len(pages) - 1)
    whole = [n["id"] for p in pages for n in p["nodes"]]
    (single,) = _pages(client, path, busiest[1], first=100)
    assert whole == [n["id"] for n in single["nodes"]]
    # Backwards from the end with last/before gives the same notes.
    tail = _execute(client, NOTES_QUERY, path=path, iid=str(busiest[1]), last=3)
    notes = tail["project"]["mergeRequest"]["notes"]
    assert [n["id"] for n in notes["nodes"]] == whole[-3:]
    assert notes["pageInfo"]["hasPreviousPage"] and not notes["pageInfo"]["hasNextPage"]
    before = _execute(
        client,
        NOTES_QUERY,
        path=path,
        iid=str(busiest[1]),
        last=3,
        before=notes["pageInfo"]["startCursor"],
    )
    assert [n["id"] for n in before["project"]["mergeRequest"]["notes"]["nodes"]] == whole[-6:-3]


def test_a_page_holds_at_most_one_hundred_nodes(serve: Callable[..., Any], tmp_path: Path) -> None:
    shutil.copy(HANDMADE / "manifest.json", tmp_path / "manifest.json")
    (tmp_path / "gitlab").mkdir()
    (tmp_path / "gitlab" / "projects.json").write_text(json.dumps([PROJECTS[0]]))
    pid = PROJECTS[0]["id"]
    (tmp_path / "gitlab" / "merge_requests.jsonl").write_text(
        json.dumps(dict(MRS[0], project_id=pid, iid=1)) + "\n"
    )
    note = NOTES[(MRS[0]["project_id"], MRS[0]["iid"])][0]
    notes = [
        dict(note, id=i, created_at=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.{i:03d}Z")
        for i in range(1, 251)
    ]
    record = {"project_id": pid, "iid": 1, "notes": notes}
    (tmp_path / "gitlab" / "mr_notes.jsonl").write_text(json.dumps(record) + "\n")
    running = serve(tmp_path)
    client = _client(running.url)

    pages = _pages(client, PROJECTS[0]["path_with_namespace"], 1, first=500)

    assert [len(p["nodes"]) for p in pages] == [100, 100, 50]
    assert [int(n["id"].rsplit("/", 1)[1]) for p in pages for n in p["nodes"]] == list(
        range(1, 251)
    )
    assert sandbox_stats(running.url)["by_endpoint"] == {"POST /api/graphql": 3}


def test_merge_requests_by_iid_newest_first(emulator: server.RunningEmulator) -> None:
    client = _client(emulator.url)
    query = """query($path: ID!, $iids: [String!]) { project(fullPath: $path) {
        mergeRequests(iids: $iids) { count nodes { iid projectId createdAt
          diffRefs { baseSha headSha startSha } approvedBy { nodes { username } } } } } }"""

    data = _execute(client, query, path=PAYMENTS, iids=["1", "3", "2", "999"])

    nodes = data["project"]["mergeRequests"]["nodes"]
    expected = sorted(
        (m for m in MRS if m["project_id"] == 201 and m["iid"] in (1, 2, 3)),
        key=lambda m: m["created_at"],
        reverse=True,
    )
    assert [n["iid"] for n in nodes] == [str(m["iid"]) for m in expected]
    assert data["project"]["mergeRequests"]["count"] == 3
    approvals = {
        r["iid"]: r["approvals"] for r in _jsonl("mr_approvals.jsonl") if r["project_id"] == 201
    }
    for node, mr in zip(nodes, expected, strict=True):
        refs = mr["diff_refs"]  # what REST gives on the single MR and on /changes
        assert node["diffRefs"] == {
            "baseSha": refs["base_sha"],
            "headSha": refs["head_sha"],
            "startSha": refs["start_sha"],
        }
        assert [u["username"] for u in node["approvedBy"]["nodes"]] == [
            a["user"]["username"] for a in approvals[int(node["iid"])]["approved_by"]
        ]


def test_query_errors_come_back_in_graphql_shape_with_http_200(
    emulator: server.RunningEmulator,
) -> None:
    unknown = _post(emulator.url, {"query": f'{{ project(fullPath: "{PAYMENTS}") {{ nope }} }}'})
    assert unknown.status_code == 200
    body = unknown.json()
    assert "data" not in body
    (error,) = body["errors"]
    assert error["message"] == "Field 'nope' doesn't exist on type 'Project'"
    assert error["extensions"]["code"] == "undefinedField" and error["locations"]

    argument = _post(
        emulator.url, {"query": f'{{ project(fullPath: "{PAYMENTS}", nope: 1) {{ id }} }}'}
    )
    assert (
        argument.json()["errors"][0]["message"] == "Field 'project' doesn't accept argument 'nope'"
    )

    syntax = _post(emulator.url, {"query": "{ project("})
    assert syntax.status_code == 200 and syntax.json()["errors"][0]["message"]
    # a query is parsed once and kept: asked again, the same answer
    again = _post(emulator.url, {"query": f'{{ project(fullPath: "{PAYMENTS}") {{ nope }} }}'})
    assert again.json() == body
    assert _post(emulator.url, {"query": "{ project("}).json() == syntax.json()

    typed = _post(
        emulator.url,
        {
            "query": 'query($iids: [String!]) { project(fullPath: "a/b") '
            "{ mergeRequests(iids: $iids) { count } } }",
            "variables": {"iids": [1]},
        },
    )
    assert typed.status_code == 200 and "String" in typed.json()["errors"][0]["message"]

    cursor = _post(
        emulator.url,
        {
            "query": f'{{ project(fullPath: "{PAYMENTS}") {{ mergeRequest(iid: "1") '
            '{ notes(after: "garbage") { count } } } }'
        },
    )
    answer = cursor.json()
    assert cursor.status_code == 200
    assert answer["data"]["project"]["mergeRequest"] is None  # a non-null field failed
    assert answer["errors"][0]["message"] == "Please provide a valid cursor"
    assert answer["errors"][0]["path"] == ["project", "mergeRequest", "notes"]


def test_complexity_is_bounded_as_gitlab_bounds_it(emulator: server.RunningEmulator) -> None:
    alias = (
        'p{i}: project(fullPath: "{path}") {{ mergeRequests(first: 100) {{ nodes {{ iid '
        "notes(first: 100) {{ count pageInfo {{ hasNextPage endCursor }} nodes {{ id body "
        "system internal createdAt updatedAt author {{ id username }} }} }} }} }} }}"
    )
    three = "{ " + " ".join(alias.format(i=i, path=PAYMENTS) for i in range(3)) + " }"
    four = "{ " + " ".join(alias.format(i=i, path=PAYMENTS) for i in range(4)) + " }"

    assert "errors" not in _post(emulator.url, {"query": three}).json()
    answer = _post(emulator.url, {"query": four})
    assert answer.status_code == 200
    message = answer.json()["errors"][0]["message"]
    assert message.startswith("Query has complexity of ")
    assert message.endswith(", which exceeds max complexity of 250")


def test_tokens_as_rest_requires_them(serve: Callable[..., Any]) -> None:
    """PRIVATE-TOKEN or Bearer pass; a wrong token is 401 in GraphQL's shape; no token
    is an anonymous caller, who sees no private project."""
    running = serve(require_token="t")
    query = {"query": f'{{ project(fullPath: "{PAYMENTS}") {{ fullPath }} }}'}
    seen = {"data": {"project": {"fullPath": PAYMENTS}}}
    assert _post(running.url, query).json() == seen
    assert (
        _post(running.url, query, **{"PRIVATE-TOKEN": "", "Authorization": "Bearer t"}).json()
        == seen
    )
    assert _execute(_client(running.url), query["query"]) == seen["data"]

    wrong = _post(running.url, query, **{"PRIVATE-TOKEN": "nope"})
    assert wrong.status_code == 401
    assert wrong.json() == {"errors": [{"message": "Invalid token"}]}
    with pytest.raises(TransportQueryError, match="Invalid token"):  # gql reads the body
        _execute(_client(running.url, token="nope"), query["query"])

    anonymous = requests.post(f"{running.url}/api/graphql", json=query, timeout=TIMEOUT)
    assert anonymous.status_code == 200 and anonymous.json() == {"data": {"project": None}}


def test_requests_are_counted_and_graphql_can_be_turned_off(serve: Callable[..., Any]) -> None:
    running = serve()
    query = {"query": f'{{ project(fullPath: "{PAYMENTS}") {{ id }} }}'}
    _post(running.url, query)
    _post(running.url, [query, query])  # a multiplexed list: one request
    assert sandbox_stats(running.url)["by_endpoint"] == {"POST /api/graphql": 2}

    without = serve(gitlab_graphql=False)
    answer = _post(without.url, query)
    assert answer.status_code == 404 and answer.json() == {"message": "404 Not Found"}
