"""The GitLab emulator driven by the real python-gitlab client over HTTP.

Every expectation comes from the hand-made dataset files, so a test fails when the
emulator drops, duplicates, filters or reshapes what a real GitLab would have served.
Page counts are checked against the request counter: python-gitlab follows only the
``Link`` header, so a missing header shows up as a short result, never as an error.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gitlab
import pytest
import requests

from dagster_project.sandbox.emulator import server
from tests.conftest import HANDMADE, sandbox_stats

GITLAB = HANDMADE / "gitlab"
TIMEOUT = 5


def _jsonl(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (GITLAB / name).read_text().splitlines() if line]


PROJECTS: list[dict[str, Any]] = json.loads((GITLAB / "projects.json").read_text())
MRS = _jsonl("merge_requests.jsonl")
NOTES = {(r["project_id"], r["iid"]): r["notes"] for r in _jsonl("mr_notes.jsonl")}
CHANGES = {(r["project_id"], r["iid"]): r["changes"] for r in _jsonl("mr_changes.jsonl")}
APPROVALS = {(r["project_id"], r["iid"]): r["approvals"] for r in _jsonl("mr_approvals.jsonl")}
COMMITS = {c["id"]: c for c in _jsonl("commits.jsonl")}
DEPLOYMENTS = _jsonl("deployments.jsonl")
PAYMENTS = 201  # acme/payments/payments-api
LEDGER = 202  # acme/payments/ledger-service
STOREFRONT = 203  # acme/web-storefront


def _mr(project_id: int, iid: int) -> dict[str, Any]:
    return next(m for m in MRS if m["project_id"] == project_id and m["iid"] == iid)


def _count(url: str, endpoint: str) -> int:
    return sandbox_stats(url)["by_endpoint"].get(endpoint, 0)


def _pushed_shas(notes: list[dict[str, Any]]) -> set[str]:
    """Short shas listed by the "added N commits" system notes of an MR."""
    found: set[str] = set()
    for note in notes:
        if note["system"] and note["body"].startswith("added "):
            found |= set(re.findall(r"<li>([0-9a-f]{8}) - ", note["body"]))
    return found


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[server.RunningEmulator]:
    """One emulator for the read-only tests: stopping a server costs half a second."""
    running = server.start(str(HANDMADE))
    yield running
    running.stop()


@pytest.fixture
def served(shared_emulator: server.RunningEmulator) -> server.RunningEmulator:
    """The shared emulator with its request counters zeroed for this test."""
    requests.delete(f"{shared_emulator.url}/_sandbox/stats", timeout=TIMEOUT).raise_for_status()
    return shared_emulator


@pytest.fixture
def gl(served: server.RunningEmulator) -> gitlab.Gitlab:
    return gitlab.Gitlab(served.url, private_token="t", timeout=TIMEOUT)


# -- the dataset itself ---------------------------------------------------------------
def test_handmade_dataset_is_the_org_the_other_tests_assume() -> None:
    """Three projects in two groups, ~45 MRs keyed to PAY/WEB issues, files at two refs."""
    assert sorted(p["id"] for p in PROJECTS) == [PAYMENTS, LEDGER, STOREFRONT]
    assert {p["namespace"]["full_path"] for p in PROJECTS} == {"acme", "acme/payments"}
    assert len(MRS) == 46
    keyed = [
        m
        for m in MRS
        if re.search(r"\b(PAY|WEB)-\d+\b", f"{m['title']} {m['source_branch']} {m['description']}")
    ]
    assert 35 <= len(keyed) < len(MRS)  # a few chores and releases name no issue
    assert {m["state"] for m in MRS} == {"opened", "closed", "merged"}
    touched = {c["new_path"] for changes in CHANGES.values() for c in changes}
    assert "api/openapi.yaml" in touched
    assert any(p.startswith("tests/contract/") for p in touched)
    assert any(p.startswith("observability/") for p in touched)
    assert all(c.get("stats") for c in COMMITS.values())
    spec_main = GITLAB / "files" / str(PAYMENTS) / "main" / "api" / "openapi.yaml"
    spec_tag = GITLAB / "files" / str(PAYMENTS) / "v1.4.0" / "api" / "openapi.yaml"
    assert spec_main.read_bytes() != spec_tag.read_bytes()


# -- projects and groups --------------------------------------------------------------
def test_projects_iterator_follows_link_through_every_page(
    served: server.RunningEmulator, gl: gitlab.Gitlab
) -> None:
    """One request per page, and every id exactly once: the Link chain is complete."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Link on another host would warn
        listed = gl.projects.list(iterator=True, per_page=1)
        ids = [p.id for p in listed]
    assert sorted(ids) == sorted(p["id"] for p in PROJECTS)
    assert listed.total == len(PROJECTS)
    assert _count(served.url, "GET /api/v4/projects") == len(PROJECTS)

    all_at_once = gl.projects.list(get_all=True, per_page=2)
    assert sorted(p.id for p in all_at_once) == sorted(ids)


def test_project_by_id_or_encoded_path_and_404(gl: gitlab.Gitlab) -> None:
    """``/projects/acme%2Fpayments%2Fledger-service`` resolves; unknown ids get GitLab's 404."""
    assert gl.projects.get("acme/payments/ledger-service").id == LEDGER
    assert gl.projects.get(PAYMENTS).path_with_namespace == "acme/payments/payments-api"
    with pytest.raises(gitlab.GitlabGetError) as err:
        gl.projects.get(999)
    assert err.value.response_code == 404
    assert err.value.error_message == "404 Project Not Found"


def test_project_list_filters_and_views(gl: gitlab.Gitlab) -> None:
    """search, simple, order_by/sort behave like GitLab's (default: newest first)."""
    assert [p.id for p in gl.projects.list(get_all=True, search="ledger")] == [LEDGER]
    simple = gl.projects.list(get_all=True, simple=True)
    assert all("permissions" not in p.attributes and "namespace" in p.attributes for p in simple)
    newest_first = sorted(PROJECTS, key=lambda p: p["created_at"], reverse=True)
    assert [p.id for p in gl.projects.list(get_all=True)] == [p["id"] for p in newest_first]
    by_name = gl.projects.list(get_all=True, order_by="name", sort="asc")
    assert [p.name for p in by_name] == sorted(p["name"] for p in PROJECTS)


def test_membership_reads_captured_permissions(serve: Callable[..., Any], tmp_path: Path) -> None:
    """``membership=True`` drops projects where the token's user has no access."""
    (tmp_path / "gitlab").mkdir()
    shutil.copy(HANDMADE / "manifest.json", tmp_path / "manifest.json")
    projects = json.loads((GITLAB / "projects.json").read_text())
    for project in projects:
        if project["id"] == STOREFRONT:
            project["permissions"] = {"project_access": None, "group_access": None}
    (tmp_path / "gitlab" / "projects.json").write_text(json.dumps(projects))
    client = gitlab.Gitlab(serve(tmp_path).url, private_token="t", timeout=TIMEOUT)
    assert len(client.projects.list(get_all=True)) == 3
    member = client.projects.list(get_all=True, membership=True)
    assert sorted(p.id for p in member) == [PAYMENTS, LEDGER]


def test_group_projects_include_subgroups(gl: gitlab.Gitlab) -> None:
    """``acme`` holds one project itself and two more through its ``payments`` subgroup."""
    acme = gl.groups.get("acme")
    assert [p.id for p in acme.projects.list(get_all=True)] == [STOREFRONT]
    nested = acme.projects.list(get_all=True, include_subgroups=True)
    assert sorted(p.id for p in nested) == [PAYMENTS, LEDGER, STOREFRONT]
    payments = gl.groups.get("acme/payments")
    assert sorted(p.id for p in payments.projects.list(get_all=True)) == [PAYMENTS, LEDGER]
    assert len(acme.mergerequests.list(get_all=True)) == len(MRS)
    with pytest.raises(gitlab.GitlabGetError):
        gl.groups.get("nope")


def test_keyset_pagination_pages_by_id_after(
    served: server.RunningEmulator, gl: gitlab.Gitlab
) -> None:
    """Keyset pages follow ``id_after`` in Link; the last page carries no Link at all."""
    listed = gl.projects.list(
        iterator=True, pagination="keyset", order_by="id", sort="asc", per_page=2
    )
    assert [p.id for p in listed] == [PAYMENTS, LEDGER, STOREFRONT]
    assert _count(served.url, "GET /api/v4/projects") == 2

    first = requests.get(
        f"{served.url}/api/v4/projects",
        params={"pagination": "keyset", "order_by": "id", "sort": "asc", "per_page": 2},
        headers={"PRIVATE-TOKEN": "t"},
        timeout=TIMEOUT,
    )
    assert "id_after=202" in first.links["next"]["url"]
    last = requests.get(first.links["next"]["url"], headers={"PRIVATE-TOKEN": "t"}, timeout=TIMEOUT)
    assert [p["id"] for p in last.json()] == [STOREFRONT]
    assert "Link" not in last.headers

    with pytest.raises(gitlab.GitlabListError) as err:  # real GitLab: only some endpoints
        gl.mergerequests.list(get_all=True, scope="all", pagination="keyset", order_by="id")
    assert err.value.response_code == 405


# -- offset pagination headers --------------------------------------------------------
def test_offset_headers_and_links_use_the_request_host(served: server.RunningEmulator) -> None:
    """X-* headers and Link rel prev/next/first/last, on the Host the client used."""
    base = served.url.replace("127.0.0.1", "localhost")
    url = f"{base}/api/v4/projects/{PAYMENTS}/merge_requests"
    headers = {"PRIVATE-TOKEN": "t"}
    total = sum(1 for m in MRS if m["project_id"] == PAYMENTS)
    page2 = requests.get(url, params={"per_page": 5, "page": 2}, headers=headers, timeout=TIMEOUT)
    assert len(page2.json()) == 5
    assert page2.headers["X-Total"] == str(total)
    assert page2.headers["X-Total-Pages"] == str(math.ceil(total / 5))
    assert (page2.headers["X-Page"], page2.headers["X-Per-Page"]) == ("2", "5")
    assert (page2.headers["X-Next-Page"], page2.headers["X-Prev-Page"]) == ("3", "1")
    assert set(page2.links) == {"prev", "next", "first", "last"}
    assert all(link["url"].startswith(base + "/api/v4/") for link in page2.links.values())
    assert "page=4" in page2.links["last"]["url"]

    last = requests.get(page2.links["last"]["url"], headers=headers, timeout=TIMEOUT)
    assert last.headers["X-Next-Page"] == ""
    assert "next" not in last.links
    assert len(last.json()) == total - 15

    default = requests.get(
        f"{base}/api/v4/merge_requests?scope=all", headers=headers, timeout=TIMEOUT
    )
    assert default.headers["X-Per-Page"] == "20" and len(default.json()) == 20
    capped = requests.get(url, params={"per_page": 500}, headers=headers, timeout=TIMEOUT)
    assert capped.headers["X-Per-Page"] == "100"


def test_counts_disappear_above_ten_thousand_records(
    serve: Callable[..., Any], tmp_path: Path
) -> None:
    """Past 10,000 records GitLab stops counting: no X-Total(-Pages), no rel=last."""
    shutil.copy(HANDMADE / "manifest.json", tmp_path / "manifest.json")
    (tmp_path / "gitlab").mkdir()
    (tmp_path / "gitlab" / "projects.json").write_text(json.dumps([PROJECTS[0]]))
    pid = PROJECTS[0]["id"]
    mr = dict(MRS[0], project_id=pid, iid=1)
    (tmp_path / "gitlab" / "merge_requests.jsonl").write_text(json.dumps(mr) + "\n")
    note = NOTES[(MRS[0]["project_id"], MRS[0]["iid"])][0]
    notes = [
        dict(note, id=i, created_at=f"2026-01-01T00:00:{i % 60:02d}.{i:06d}Z")
        for i in range(10_050)
    ]
    record = {"project_id": pid, "iid": 1, "notes": notes}
    (tmp_path / "gitlab" / "mr_notes.jsonl").write_text(json.dumps(record) + "\n")
    running = serve(tmp_path)
    client = gitlab.Gitlab(running.url, private_token="t", timeout=TIMEOUT)
    busy_mr = client.projects.get(pid, lazy=True).mergerequests.get(1, lazy=True)
    page = busy_mr.notes.list(iterator=True, per_page=100)
    assert page.total is None and page.total_pages is None
    assert page.next_page == 2
    last = requests.get(
        f"{running.url}/api/v4/projects/{pid}/merge_requests/1/notes?per_page=100&page=101",
        headers={"PRIVATE-TOKEN": "t"},
        timeout=TIMEOUT,
    )
    assert len(last.json()) == 50
    assert "X-Total" not in last.headers and "last" not in last.links
    assert "next" not in last.links and last.headers["X-Next-Page"] == ""


# -- merge requests -------------------------------------------------------------------
@pytest.mark.parametrize("project_id", [PAYMENTS, LEDGER, STOREFRONT])
def test_project_mrs_every_page(
    served: server.RunningEmulator, gl: gitlab.Gitlab, project_id: int
) -> None:
    """``state="all"`` with 4 per page returns each MR once in ceil(n/4) requests."""
    expected = sorted(m["iid"] for m in MRS if m["project_id"] == project_id)
    project = gl.projects.get(project_id, lazy=True)
    listed = project.mergerequests.list(get_all=True, state="all", per_page=4)
    assert sorted(m.iid for m in listed) == expected
    endpoint = "GET /api/v4/projects/{id}/merge_requests"
    assert _count(served.url, endpoint) == math.ceil(len(expected) / 4)
    assert all("diff_refs" not in m.attributes for m in listed)  # list view, as GitLab


def test_global_mrs_default_scope_is_created_by_me(
    served: server.RunningEmulator, gl: gitlab.Gitlab
) -> None:
    """Without ``scope="all"`` the sandbox user (author of nothing) sees no MR."""
    assert gl.mergerequests.list(get_all=True) == []
    listed = gl.mergerequests.list(get_all=True, scope="all")
    assert sorted((m.project_id, m.iid) for m in listed) == sorted(
        (m["project_id"], m["iid"]) for m in MRS
    )
    # 46 MRs at the default 20 per page: 3 requests, plus the empty created_by_me one.
    assert _count(served.url, "GET /api/v4/merge_requests") == 1 + math.ceil(len(MRS) / 20)


def test_updated_after_state_and_order(gl: gitlab.Gitlab) -> None:
    """Incremental reads: ``updated_after`` is inclusive, ``state`` and sorting hold."""
    bound = "2026-03-15T00:00:00Z"
    recent = gl.mergerequests.list(get_all=True, scope="all", updated_after=bound)
    expected = {(m["project_id"], m["iid"]) for m in MRS if m["updated_at"] >= bound}
    assert 0 < len(expected) < len(MRS)
    assert {(m.project_id, m.iid) for m in recent} == expected

    exact = max(MRS, key=lambda m: m["updated_at"])
    latest = gl.mergerequests.list(get_all=True, scope="all", updated_after=exact["updated_at"])
    assert [(m.project_id, m.iid) for m in latest] == [(exact["project_id"], exact["iid"])]

    project = gl.projects.get(PAYMENTS, lazy=True)
    merged = project.mergerequests.list(get_all=True, state="merged")
    assert {m.iid for m in merged} == {
        m["iid"] for m in MRS if m["project_id"] == PAYMENTS and m["state"] == "merged"
    }
    ordered = project.mergerequests.list(get_all=True, order_by="updated_at", sort="asc")
    assert [m.updated_at for m in ordered] == sorted(m.updated_at for m in ordered)
    before = project.mergerequests.list(get_all=True, updated_before="2026-02-01T00:00:00Z")
    assert all(m.updated_at <= "2026-02-01T00:00:00Z" for m in before) and before

    with pytest.raises(gitlab.GitlabListError) as err:
        project.mergerequests.list(get_all=True, state="bogus")
    assert err.value.response_code == 400


def test_single_mr_and_unknown_iid(gl: gitlab.Gitlab) -> None:
    """The single view carries ``diff_refs``; an unknown iid is a 404."""
    project = gl.projects.get(PAYMENTS, lazy=True)
    mr = project.mergerequests.get(2)
    assert mr.diff_refs == _mr(PAYMENTS, 2)["diff_refs"]
    with pytest.raises(gitlab.GitlabGetError) as err:
        project.mergerequests.get(999)
    assert err.value.response_code == 404


def test_changes_diffs_and_versions(gl: gitlab.Gitlab) -> None:
    """``/changes`` (MR + changes), paged ``/diffs`` and ``/versions`` agree with the data."""
    mr = gl.projects.get(PAYMENTS, lazy=True).mergerequests.get(3, lazy=True)
    changes = mr.changes()
    expected = CHANGES[(PAYMENTS, 3)]
    assert changes["iid"] == 3 and changes["overflow"] is False
    assert [c["new_path"] for c in changes["changes"]] == [c["new_path"] for c in expected]
    assert changes["changes"][0]["diff"] == expected[0]["diff"]

    diffs = gl.http_list(f"/projects/{PAYMENTS}/merge_requests/3/diffs", get_all=True, per_page=1)
    assert [d["new_path"] for d in diffs] == [c["new_path"] for c in expected]

    versions = mr.diffs.list(get_all=True)
    assert len(versions) == 1
    assert versions[0].head_commit_sha == _mr(PAYMENTS, 3)["sha"]
    detail = mr.diffs.get(versions[0].id)
    assert [d["new_path"] for d in detail.diffs] == [c["new_path"] for c in expected]


def test_notes_default_page_size_and_newest_first(
    served: server.RunningEmulator, gl: gitlab.Gitlab
) -> None:
    """All notes of the busiest MR, 20 per page, newest first; system notes included."""
    key = max(NOTES, key=lambda k: len(NOTES[k]))
    expected = NOTES[key]
    assert len(expected) > 40  # three pages at the default page size
    mr = gl.projects.get(key[0], lazy=True).mergerequests.get(key[1], lazy=True)
    notes = mr.notes.list(get_all=True)
    assert len(notes) == len(expected)
    assert _count(served.url, "GET /api/v4/projects/{id}/merge_requests/{iid}/notes") == 3
    created = [n.created_at for n in notes]
    assert created == sorted(created, reverse=True)
    bodies = [n.body for n in notes if n.system]
    assert any(re.match(r"added \d+ commits?\n", b) for b in bodies)
    assert "approved this merge request" in bodies
    ascending = mr.notes.list(get_all=True, sort="asc")
    assert [n.id for n in ascending] == [n.id for n in reversed(notes)]


def test_approvals_match_approval_notes(gl: gitlab.Gitlab) -> None:
    """Approvers recorded in the approval state are the authors of "approved" notes."""
    key = (PAYMENTS, 2)
    approvals = gl.projects.get(PAYMENTS, lazy=True).mergerequests.get(2, lazy=True)
    state = approvals.approvals.get()
    approvers = {a["user"]["username"] for a in state.approved_by}
    noted = {
        n["author"]["username"]
        for n in NOTES[key]
        if n["system"] and n["body"] == "approved this merge request"
    }
    assert approvers == noted and state.approved is True
    assert state.approvals_left == APPROVALS[key]["approvals_left"]

    without = next(m for m in MRS if (m["project_id"], m["iid"]) not in APPROVALS)
    fallback = gl.http_get(
        f"/projects/{without['project_id']}/merge_requests/{without['iid']}/approvals"
    )
    assert fallback["iid"] == without["iid"] and fallback["approved_by"] == []


def test_mr_commits_are_the_branch_range(gl: gitlab.Gitlab) -> None:
    """``/commits`` of an MR is base..head: every pushed commit, never the base or merge."""
    key = max(NOTES, key=lambda k: len(_pushed_shas(NOTES[k])))
    record = _mr(*key)
    commits = gl.projects.get(key[0], lazy=True).mergerequests.get(key[1], lazy=True).commits()
    ids = [c.id for c in commits]
    assert record["sha"] == ids[0]  # newest first
    assert _pushed_shas(NOTES[key]) <= {i[:8] for i in ids}
    assert record["diff_refs"]["base_sha"] not in ids
    assert record["merge_commit_sha"] not in ids
    assert all("stats" not in c.attributes for c in commits)


# -- repository commits ---------------------------------------------------------------
def test_commits_with_stats_only_when_asked(
    served: server.RunningEmulator, gl: gitlab.Gitlab
) -> None:
    """``with_stats=True`` (sent as a Python literal) adds stats; otherwise none."""
    project = gl.projects.get(PAYMENTS, lazy=True)
    plain = project.commits.list(get_all=True, per_page=10)
    assert plain and all("stats" not in c.attributes for c in plain)
    endpoint = "GET /api/v4/projects/{id}/repository/commits"
    assert _count(served.url, endpoint) == math.ceil(len(plain) / 10)
    with_stats = project.commits.list(get_all=True, with_stats=True, per_page=10)
    assert [c.id for c in with_stats] == [c.id for c in plain]
    assert all(c.stats == COMMITS[c.id]["stats"] for c in with_stats)


def test_default_branch_holds_merged_work_only(gl: gitlab.Gitlab) -> None:
    """main = every commit but those only on unmerged MR branches, as git would have it."""
    project = gl.projects.get(PAYMENTS, lazy=True)
    main = {c.id for c in project.commits.list(get_all=True, per_page=100)}
    everything = {c.id for c in project.commits.list(get_all=True, all=True, per_page=100)}
    assert everything == {c["id"] for c in COMMITS.values() if c["project_id"] == PAYMENTS}
    unmerged: set[str] = set()
    for record in MRS:
        if record["project_id"] != PAYMENTS:
            continue
        if record["state"] == "merged":
            assert record["sha"] in main and record["merge_commit_sha"] in main
        else:
            mr = project.mergerequests.get(record["iid"], lazy=True)
            unmerged |= {c.id for c in mr.commits(get_all=True)}
    assert unmerged and not unmerged & main
    assert main | unmerged == everything
    deployed = {d["sha"] for d in DEPLOYMENTS if d["project_id"] == PAYMENTS}
    assert deployed <= main

    branch = _mr(PAYMENTS, 8)  # open: its branch is reachable by ref_name
    on_branch = {c.id for c in project.commits.list(get_all=True, ref_name=branch["source_branch"])}
    assert branch["sha"] in on_branch and branch["diff_refs"]["base_sha"] in on_branch


def test_since_until_and_single_commit(gl: gitlab.Gitlab) -> None:
    """Date bounds on committed_date; a single commit by sha, short sha or branch."""
    project = gl.projects.get(LEDGER, lazy=True)
    window = project.commits.list(
        get_all=True, since="2026-02-01T00:00:00Z", until="2026-02-28T23:59:59Z"
    )
    assert window
    assert all("2026-02-01" <= c.committed_date[:10] <= "2026-02-28" for c in window)
    assert len(window) < len(project.commits.list(get_all=True))

    head = _mr(LEDGER, 3)["merge_commit_sha"]
    commit = project.commits.get(head)
    assert commit.stats == COMMITS[head]["stats"] and commit.project_id == LEDGER
    assert project.commits.get(head[:8]).id == head
    latest = max(project.commits.list(get_all=True), key=lambda c: c.committed_date)
    assert project.commits.get("main").id == latest.id
    with pytest.raises(gitlab.GitlabGetError) as err:
        project.commits.get("0" * 40)
    assert err.value.error_message == "404 Commit Not Found"


def test_booleans_are_parsed_case_insensitively(served: server.RunningEmulator) -> None:
    """GitLab coerces True/true/1/yes alike; only true-words switch stats on."""
    url = f"{served.url}/api/v4/projects/{PAYMENTS}/repository/commits"
    for value, expect in (("True", True), ("TRUE", True), ("1", True), ("yes", True),
                          ("False", False), ("0", False)):  # fmt: skip
        body = requests.get(
            url, params={"with_stats": value}, headers={"PRIVATE-TOKEN": "t"}, timeout=TIMEOUT
        ).json()
        assert all(("stats" in c) is expect for c in body), value


# -- repository files -----------------------------------------------------------------
def test_raw_file_bytes_through_encoded_path(
    served: server.RunningEmulator, gl: gitlab.Gitlab
) -> None:
    """``api%2Fopenapi.yaml`` reaches the file route; bytes are exact at both refs."""
    project = gl.projects.get(PAYMENTS, lazy=True)
    files = GITLAB / "files" / str(PAYMENTS)
    main = (files / "main" / "api" / "openapi.yaml").read_bytes()
    tagged = (files / "v1.4.0" / "api" / "openapi.yaml").read_bytes()
    assert project.files.raw(file_path="api/openapi.yaml", ref="main") == main
    assert project.files.raw(file_path="api/openapi.yaml", ref="v1.4.0") == tagged
    assert project.files.raw(file_path="api/openapi.yaml") == main  # default branch
    endpoint = "GET /api/v4/projects/{id}/repository/files/{file_path}/raw"
    assert _count(served.url, endpoint) == 3

    meta = project.files.get(file_path="api/openapi.yaml", ref="v1.4.0")
    assert meta.decode() == tagged and meta.size == len(tagged)
    assert base64.b64decode(meta.content) == tagged
    git_id = hashlib.sha1(b"blob %d\0" % len(tagged) + tagged).hexdigest()
    assert meta.blob_id == git_id and meta.file_name == "openapi.yaml"


def test_missing_file_and_ref_are_404(gl: gitlab.Gitlab) -> None:
    """A missing file is GitlabGetError 404 with GitLab's own message."""
    project = gl.projects.get(PAYMENTS, lazy=True)
    with pytest.raises(gitlab.GitlabGetError) as err:
        project.files.raw(file_path="api/asyncapi.yaml", ref="main")
    assert err.value.response_code == 404
    assert err.value.error_message == "404 File Not Found"
    with pytest.raises(gitlab.GitlabGetError) as err:
        project.files.get(file_path="api/openapi.yaml", ref="no-such-branch")
    assert err.value.response_code == 404
    with pytest.raises(gitlab.GitlabGetError):
        project.files.raw(file_path="../../202/main/README.md", ref="main")


def test_repository_tree_recursive_paged(served: server.RunningEmulator, gl: gitlab.Gitlab) -> None:
    """The recursive tree lists every file and folder of the ref, across pages."""
    project = gl.projects.get(PAYMENTS, lazy=True)
    root = GITLAB / "files" / str(PAYMENTS) / "main"
    blobs = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    trees = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()}
    entries = project.repository_tree(recursive=True, get_all=True, per_page=5)
    assert {e["path"] for e in entries if e["type"] == "blob"} == blobs
    assert {e["path"] for e in entries if e["type"] == "tree"} == trees
    endpoint = "GET /api/v4/projects/{id}/repository/tree"
    assert _count(served.url, endpoint) == math.ceil((len(blobs) + len(trees)) / 5)

    top = project.repository_tree(get_all=True)  # sends recursive=False
    assert {e["name"] for e in top} == {p.name for p in root.iterdir()}
    contract = project.repository_tree(path="tests/contract", get_all=True)
    assert {e["path"] for e in contract} == {"tests/contract/bank_gateway", "tests/contract/ledger"}
    tagged = project.repository_tree(ref="v1.4.0", recursive=True, get_all=True)
    assert {e["path"] for e in tagged if e["type"] == "blob"} == {"README.md", "api/openapi.yaml"}
    with pytest.raises(gitlab.GitlabGetError):
        project.repository_tree(path="no/such/dir", get_all=True)


# -- deployments ----------------------------------------------------------------------
def test_deployments_filters(gl: gitlab.Gitlab) -> None:
    """Per-project deployments, filtered by environment and status; none is empty."""
    project = gl.projects.get(PAYMENTS, lazy=True)
    expected = [d for d in DEPLOYMENTS if d["project_id"] == PAYMENTS]
    listed = project.deployments.list(get_all=True, per_page=2)
    assert [d.id for d in listed] == sorted(d["id"] for d in expected)
    raw = gl.http_list(f"/projects/{PAYMENTS}/deployments", get_all=True)
    assert all("project_id" not in d for d in raw)  # not part of GitLab's deployment object
    production = project.deployments.list(get_all=True, environment="production")
    assert {d.id for d in production} == {
        d["id"] for d in expected if d["environment"]["name"] == "production"
    }
    failed = project.deployments.list(get_all=True, status="failed")
    assert [d.status for d in failed] == ["failed"]
    assert gl.projects.get(LEDGER, lazy=True).deployments.list(get_all=True) == []


# -- authentication -------------------------------------------------------------------
def test_token_checked_for_private_and_bearer(serve: Callable[..., Any]) -> None:
    """With a required token, a wrong one is 401; PRIVATE-TOKEN and Bearer both pass."""
    running = serve(require_token="t")
    wrong = gitlab.Gitlab(running.url, private_token="nope", timeout=TIMEOUT)
    with pytest.raises(gitlab.GitlabAuthenticationError) as err:
        wrong.projects.get(PAYMENTS)
    assert err.value.response_code == 401
    right = gitlab.Gitlab(running.url, private_token="t", timeout=TIMEOUT)
    assert right.projects.get(PAYMENTS).id == PAYMENTS
    bearer = gitlab.Gitlab(running.url, oauth_token="t", timeout=TIMEOUT)
    assert len(bearer.projects.list(get_all=True)) == len(PROJECTS)


# -- faults as the client sees them ---------------------------------------------------
def test_rate_limit_is_retried_then_raised(serve: Callable[..., Any]) -> None:
    """429 is retried up to ``max_retries`` (honouring Retry-After), then raised."""
    running = serve(faults="429=1.0,retry_after=0")
    client = gitlab.Gitlab(running.url, private_token="t", timeout=TIMEOUT)
    with pytest.raises(gitlab.GitlabGetError) as err:
        client.projects.get(PAYMENTS, max_retries=2)
    assert err.value.response_code == 429
    assert sandbox_stats(running.url)["requests"]["gitlab"] == 3


def test_server_error_raises_without_transient_retries(serve: Callable[..., Any]) -> None:
    """Without ``retry_transient_errors`` a 5xx surfaces at once."""
    running = serve(faults="5xx=1.0,retry_after=0")
    client = gitlab.Gitlab(running.url, private_token="t", timeout=TIMEOUT)
    with pytest.raises(gitlab.GitlabGetError) as err:
        client.projects.get(PAYMENTS)
    assert err.value.response_code in (500, 502, 503)
    assert sandbox_stats(running.url)["requests"]["gitlab"] == 1


def test_short_5xx_bursts_are_absorbed_by_transient_retries(serve: Callable[..., Any]) -> None:
    """Bursts shorter than the retry budget cost requests, never records."""
    running = serve(faults="5xx=0.3,burst=2,retry_after=0,seed=3")
    client = gitlab.Gitlab(
        running.url, private_token="t", timeout=TIMEOUT, retry_transient_errors=True
    )
    listed = client.mergerequests.list(get_all=True, scope="all", per_page=5)
    assert len({(m.project_id, m.iid) for m in listed}) == len(MRS)
    stats = sandbox_stats(running.url)
    injected = stats["faults"]["5xx"]
    assert injected > 0
    pages = math.ceil(len(MRS) / 5)
    assert stats["by_endpoint"]["GET /api/v4/merge_requests"] == pages + injected


def test_connection_reset_raises_connection_error(serve: Callable[..., Any]) -> None:
    """A reset is a ``requests`` ConnectionError, not retried by default."""
    running = serve(faults="reset=1.0")
    client = gitlab.Gitlab(running.url, private_token="t", timeout=TIMEOUT)
    with pytest.raises(requests.exceptions.ConnectionError):
        client.projects.get(PAYMENTS)


def test_truncated_body_fails_loudly(serve: Callable[..., Any]) -> None:
    """A body shorter than its Content-Length never parses into a partial object."""
    running = serve(faults="truncate=1.0")
    client = gitlab.Gitlab(running.url, private_token="t", timeout=TIMEOUT)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, gitlab.GitlabParsingError)):
        client.projects.list(get_all=True)


def test_tags_are_the_refs_that_are_not_branches(serve):
    """A file ref that is neither the default branch nor a merge request's source branch
    is served as a tag, pointing at a stable commit id."""
    gl = gitlab.Gitlab(serve().url, private_token="t")
    tags = gl.projects.get(201, lazy=True).tags.list(get_all=True)
    assert [t.name for t in tags] == ["v1.4.0"]
    assert len(tags[0].target) == 40 and tags[0].commit["id"] == tags[0].target
    assert gl.projects.get(202, lazy=True).tags.list(get_all=True) == []


def test_a_branch_points_at_the_head_of_its_latest_merge_request(tmp_path):
    """The branch index answers what a scan of the project's MRs would: the head of the
    most recently updated MR of that source branch whose head is a known commit."""
    from dagster_project.sandbox.simulator import generate

    generate(tmp_path / "org", seed=3, issues=60, flavor="server")
    running = server.build(str(tmp_path / "org"))
    api = running.app.gitlab
    try:
        checked = 0
        for project in api.projects:
            pid = int(project["id"])
            graph = api._project_commits(pid)
            mrs = api._project_mrs(pid)
            for branch in {m["source_branch"] for m in mrs} - {project.get("default_branch")}:
                known = [m for m in mrs if m["source_branch"] == branch and m["sha"] in graph]
                want = max(known, key=lambda m: m["updated_at"])["sha"] if known else None
                assert api._ref_head(project, branch) == want, (pid, branch)
                checked += want is not None
        assert checked > 0
    finally:
        running.app.dataset.close()  # built, never started


def test_warm_builds_the_indexes_before_any_request(tmp_path):
    """``POST /_sandbox/warm`` builds what first requests would, and counts no request."""
    from dagster_project.sandbox.simulator import generate

    generate(tmp_path / "org", seed=3, issues=60, flavor="server")
    running = server.start(str(tmp_path / "org"))
    try:
        assert not running.app.jira._loaded
        assert requests.post(f"{running.url}/_sandbox/warm", timeout=60).status_code == 204
        assert running.app.jira._loaded
        built = set(running.app.gitlab._lazy._values)
        assert {"mrs_by_project", "commits_by_project", "main_tips", "mr_positions"} <= built
        assert any(name.startswith("branch_heads:") for name in built)
        assert sum(sandbox_stats(running.url)["requests"].values()) == 0
    finally:
        running.stop()
