"""Merge-request notes and approvers through GitLab's GraphQL API: the product's client
(python-gitlab's ``GraphQL`` over HTTP) against the emulator, no mocks.

Expectations come from the dataset files, request counts from the emulator's counter,
so a test fails when the bulk query stops being bulk, drops a page of notes or asks
REST for what GraphQL already answered.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gitlab
import pytest

from dagster_project.lib.connections import Connection
from dagster_project.lib.policy import Ingest, Policy
from dagster_project.lib.retry import SourceError
from dagster_project.lib.sources import gitlab_graphql
from dagster_project.lib.sources.gitlab_graphql import (
    PROJECTS_PER_QUERY,
    DiffRefs,
    GraphqlUnavailable,
    MrRef,
    note_number,
)
from dagster_project.lib.sources.gitlab_source import REST_REFS, GitlabSource
from dagster_project.sandbox.emulator.gitlab_graphql import gitlab_time
from dagster_project.sandbox.simulator import generate
from tests.conftest import HANDMADE, sandbox_stats
from tests.ingest.harness import copy_dataset

GRAPHQL = "POST /api/graphql"


def _jsonl(root: Path, name: str) -> list[dict[str, Any]]:
    text = (root / "gitlab" / name).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _refs(root: Path) -> list[MrRef]:
    paths = {
        p["id"]: p["path_with_namespace"]
        for p in json.loads((root / "gitlab" / "projects.json").read_text())
    }
    mrs = _jsonl(root, "merge_requests.jsonl")
    return [MrRef(m["project_id"], paths[m["project_id"]], m["iid"]) for m in mrs]


def _notes(root: Path) -> dict[tuple[int, int], list[dict[str, Any]]]:
    """Each MR's notes oldest first, as REST's ``sort=asc`` lists them."""
    return {
        (r["project_id"], r["iid"]): sorted(r["notes"], key=lambda n: (n["created_at"], n["id"]))
        for r in _jsonl(root, "mr_notes.jsonl")
    }


def _source(url: str, page_size: int = 100, token: str = "t", retries: int = 6) -> GitlabSource:
    policy = Policy(ingest=Ingest(page_size=page_size))
    conn = Connection(url=url, user="", token=token, max_retries=retries, retry_base_s=0.001)
    return GitlabSource(conn, policy)


def _calls(url: str) -> dict[str, int]:
    return sandbox_stats(url)["by_endpoint"]


def test_one_query_brings_the_notes_and_approvers_of_many_merge_requests(
    serve: Callable[..., Any],
) -> None:
    running = serve(HANDMADE)
    refs = _refs(HANDMADE)
    source = _source(running.url)

    threads = source.mr_threads(refs)

    assert isinstance(source.graphql.client, gitlab.GraphQL)  # python-gitlab's own client
    assert len(refs) == 46 and len({r.path for r in refs}) == PROJECTS_PER_QUERY
    assert _calls(running.url) == {GRAPHQL: 1}
    assert source.requests == 1
    expected = _notes(HANDMADE)
    diffs = {
        (m["project_id"], m["iid"]): m["diff_refs"]
        for m in _jsonl(HANDMADE, "merge_requests.jsonl")
    }
    for ref, (notes, approvals, diff_refs) in threads.items():
        dataset = expected[(ref.project_id, ref.iid)]
        # The refs REST's /changes gives, so a stored diff can be told unmoved.
        assert diff_refs == DiffRefs.of(diffs[(ref.project_id, ref.iid)], *REST_REFS)
        # The same notes, in the same order, as GitLab's GraphQL renders them.
        assert [note_number(n) for n in notes.items] == [n["id"] for n in dataset]
        assert [n["id"].split("/")[3] for n in notes.items] == [
            n["type"] or "Note" for n in dataset
        ]
        assert [n["createdAt"] for n in notes.items] == [
            gitlab_time(n["created_at"]) for n in dataset
        ]
        assert notes.reported == len(dataset)
        assert set(approvals) == {"iid", "approvedBy"}  # the GraphQL node, without diffRefs


def test_notes_beyond_a_page_are_followed_by_cursor_for_that_merge_request_only(
    serve: Callable[..., Any],
) -> None:
    running = serve(HANDMADE)
    page = 5
    source = _source(running.url, page_size=page)

    threads = source.mr_threads(_refs(HANDMADE))

    expected = _notes(HANDMADE)
    follow_ups = sum(math.ceil(len(n) / page) - 1 for n in expected.values() if len(n) > page)
    assert follow_ups > 10  # the dataset holds MRs with many pages of notes
    assert _calls(running.url) == {GRAPHQL: 1 + follow_ups}
    for ref, (notes, _, _) in threads.items():
        assert [note_number(n) for n in notes.items] == [
            n["id"] for n in expected[(ref.project_id, ref.iid)]
        ]
        assert len(set(notes.totals)) == 1  # the count held still from page to page


def test_a_query_too_complex_for_gitlab_is_split_and_later_ones_ask_for_less(
    serve: Callable[..., Any], tmp_path: Path
) -> None:
    """GitLab refuses a query above complexity 250: the batch is cut to what fits."""
    org = tmp_path / "org"
    generate(org, seed=11, issues=60, flavor="cloud")
    running = serve(org)
    refs = _refs(org)
    projects = len({r.path for r in refs})
    source = _source(running.url)
    assert source.graphql is not None
    source.graphql.per_query = 6  # more aliases than GitLab's limit admits

    threads = source.mr_threads(refs)

    assert projects > 6 and len(threads) == len(refs)
    fits = source.graphql.per_query
    assert 1 <= fits < 6
    assert _calls(running.url) == {GRAPHQL: 1 + math.ceil(projects / fits)}
    assert sum(len(t.notes.items) for t in threads.values()) == sum(
        len(r["notes"]) for r in _jsonl(org, "mr_notes.jsonl")
    )


def test_approvals_the_notes_do_not_explain_are_read_over_rest(
    serve: Callable[..., Any], tmp_path: Path
) -> None:
    """An approver without an "approved this merge request" note (an imported MR): only
    REST's approval state can tell when, so that MR's ``/approvals`` is read."""
    data = copy_dataset(HANDMADE, tmp_path / "data")
    records = _jsonl(data, "mr_notes.jsonl")
    record = next(r for r in records if (r["project_id"], r["iid"]) == (201, 1))
    record["notes"] = [n for n in record["notes"] if not n["body"].startswith("approved this")]
    text = "".join(json.dumps(r) + "\n" for r in records)
    (data / "gitlab" / "mr_notes.jsonl").write_text(text)
    running = serve(data)

    threads = _source(running.url).mr_threads(_refs(data))

    assert _calls(running.url) == {
        GRAPHQL: 1,
        "GET /api/v4/projects/{id}/merge_requests/{iid}/approvals": 1,
    }
    approvals = {(r.project_id, r.iid): t.approvals for r, t in threads.items()}
    rest = approvals[(201, 1)]
    assert rest["approved_by"][0]["approved_at"]  # REST's shape, with the time
    assert all("approvedBy" in a for k, a in approvals.items() if k != (201, 1))


def test_no_graphql_on_the_instance_means_rest_per_merge_request(
    serve: Callable[..., Any],
) -> None:
    """An instance answering 404 at /api/graphql: notes and approvals over REST."""
    running = serve(HANDMADE, gitlab_graphql=False)
    refs = _refs(HANDMADE)
    source = _source(running.url)

    threads = source.mr_threads(refs)

    calls = _calls(running.url)
    assert calls.pop(GRAPHQL) == 1  # asked once, then not again this run
    assert calls == {
        "GET /api/v4/projects/{id}/merge_requests/{iid}/notes": len(refs),
        "GET /api/v4/projects/{id}/merge_requests/{iid}/approvals": len(refs),
    }
    assert source.graphql is None and "404" in source.notes_via
    expected = _notes(HANDMADE)
    for ref, (notes, approvals, diff_refs) in threads.items():
        assert diff_refs is None  # REST's notes and approvals do not carry them
        assert [n["id"] for n in notes.items] == [
            n["id"] for n in expected[(ref.project_id, ref.iid)]
        ]
        assert "approved_by" in approvals


def test_query_errors_are_told_apart(serve: Callable[..., Any]) -> None:
    running = serve(HANDMADE)
    source = _source(running.url)
    assert source.graphql is not None

    # A field the server's schema lacks (an older GitLab): REST will do.
    with pytest.raises(GraphqlUnavailable, match="doesn't exist on type 'Note'"):
        source.graphql.query(
            "q",
            '{ project(fullPath: "a/b") { mergeRequest(iid: "1") { notes { nodes { nope } } } } }',
            {},
        )
    # Anything else in "errors" stops the run with GitLab's message.
    with pytest.raises(SourceError, match="valid cursor") as raised:
        source.graphql.query(
            "q",
            '{ project(fullPath: "acme/payments/payments-api") { mergeRequest(iid: "1") '
            '{ notes(after: "garbage") { nodes { id } } } } }',
            {},
        )
    assert not isinstance(raised.value, GraphqlUnavailable)
    # A project GraphQL does not show is an error, never an MR without notes.
    with pytest.raises(SourceError, match="not found or not visible"):
        source.mr_threads([MrRef(201, "acme/no-such-project", 1)])


def test_a_wrong_token_fails_instead_of_falling_back(serve: Callable[..., Any]) -> None:
    running = serve(HANDMADE, require_token="right")
    source = _source(running.url, token="wrong")

    with pytest.raises(SourceError, match="401") as raised:
        source.mr_threads(_refs(HANDMADE)[:2])

    assert not isinstance(raised.value, GraphqlUnavailable)
    assert _calls(running.url) == {GRAPHQL: 1}  # a 401 is not retried
    right = _source(running.url, token="right")
    assert len(right.mr_threads(_refs(HANDMADE)[:2])) == 2  # sent as Bearer, accepted


def test_faults_are_retried_and_lose_no_note(serve: Callable[..., Any]) -> None:
    running = serve(HANDMADE, faults="429=0.2,5xx=0.15,reset=0.1,truncate=0.1,seed=4,retry_after=0")
    source = _source(running.url, page_size=5, retries=12)  # about half the answers fail

    threads = source.mr_threads(_refs(HANDMADE))

    stats = sandbox_stats(running.url)
    assert {"429", "5xx", "reset", "truncate"} <= set(stats["faults"])
    expected = _notes(HANDMADE)
    for ref, (notes, _, _) in threads.items():
        assert [note_number(n) for n in notes.items] == [
            n["id"] for n in expected[(ref.project_id, ref.iid)]
        ]


def test_a_query_text_is_parsed_once_per_run_and_answers_the_same(
    serve: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    real_parse = gitlab_graphql.parse

    def counting(text: str) -> Any:
        parsed.append(text)
        return real_parse(text)

    monkeypatch.setattr(gitlab_graphql, "parse", counting)
    running = serve(HANDMADE)
    refs = _refs(HANDMADE)
    source = _source(running.url)

    first = source.mr_threads(refs)
    again = source.mr_threads(refs)

    assert _calls(running.url) == {GRAPHQL: 2}  # sent twice
    assert len(parsed) == 1  # parsed once
    assert again == first and len(first) == len(refs)
