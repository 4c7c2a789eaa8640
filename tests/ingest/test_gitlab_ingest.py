"""GitLab ingestion end to end: the product's assets and resources, python-gitlab over
HTTP, the emulator serving a dataset, a temporary DuckDB.

Expectations come from the dataset files, and API cost from the emulator's request
counter, so a test fails when ingestion drops, duplicates or re-fetches something.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
import yaml
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from dagster_project.lib.connections import Connection
from dagster_project.lib.gitlab_text import git_blob_id, matches_any
from dagster_project.lib.policy import Ingest, Policy
from dagster_project.lib.rawstore import Batch, RawObject, RawStore
from dagster_project.lib.sources.gitlab_graphql import PROJECTS_PER_QUERY
from dagster_project.lib.sources.gitlab_source import (
    DIFF_REFS,
    REST_REFS,
    UPDATED_AT,
    DiffRefs,
    GitlabIngest,
    GitlabSource,
    LinkHostError,
    ProjectFiles,
)
from dagster_project.lib.staging import copy_database
from dagster_project.sandbox.emulator import server
from dagster_project.sandbox.emulator.gitlab_graphql import render_user
from tests.conftest import HANDMADE, sandbox_stats
from tests.ingest.harness import copy_dataset, kill_midway, materialize, staged, table
from tests.lib.test_pipelined_store import HeldWriter
from tests.realdata_gitlab import build_gitlab_dataset

GITLAB = HANDMADE / "gitlab"
CHAIN = (
    "merge_requests",
    "mr_change_files",
    "mr_changes",
    "mr_note_kinds",
    "mr_notes",
    "mr_approvals",
    "mr_review_rounds",
    "mr_mentions",
    "commits",
    "repository_files",
    "deployments",
)
RAW = 'key:"raw/gitlab"'
SELECTION = [RAW, *(f'key:"chain/{t}"' for t in CHAIN)]
GLOBS = [*Ingest().spec_globs, *Ingest().contract_test_globs, *Ingest().observability_globs]


# -- the dataset as files ------------------------------------------------------------------
def _jsonl(root: Path, name: str) -> list[dict[str, Any]]:
    path = root / "gitlab" / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_jsonl(root: Path, name: str, rows: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
    (root / "gitlab" / name).write_text(text)


def _projects(root: Path) -> list[dict[str, Any]]:
    return json.loads((root / "gitlab" / "projects.json").read_text())


def _tags(root: Path, project: dict[str, Any]) -> list[str]:
    """File refs that are neither the default branch nor a merge request's branch."""
    branches = {project["default_branch"]} | {
        m["source_branch"].split("/")[0]
        for m in _jsonl(root, "merge_requests.jsonl")
        if m["project_id"] == project["id"]
    }
    base = root / "gitlab" / "files" / str(project["id"])
    return [d.name for d in base.iterdir() if d.is_dir() and d.name not in branches]


def _matched_files(root: Path) -> set[str]:
    """Keys of the files the default policy's globs name at each default branch, and of
    the API specs at each tag."""
    out = set()
    for project in _projects(root):
        refs = [(project["default_branch"], GLOBS)]
        refs += [(tag, Ingest().spec_globs) for tag in _tags(root, project)]
        for ref, globs in refs:
            base = root / "gitlab" / "files" / str(project["id"]) / ref
            for path in base.rglob("*"):
                rel = path.relative_to(base).as_posix()
                if path.is_file() and matches_any(rel, globs):
                    out.add(f"{project['id']}:{ref}:{rel}")
    return out


# -- running ---------------------------------------------------------------------------------
def _policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **ingest: Any) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "ingest": ingest}))
    monkeypatch.setenv("DRIFTGATE_POLICY", str(path))


def _run(url: str, db: Path, selection: list[str] = SELECTION, **options: Any) -> dict[str, int]:
    """Materialize raw/gitlab (and by default the GitLab chain); the GitLab requests the
    run made, by endpoint."""
    requests.delete(f"{url}/_sandbox/stats", timeout=10)
    materialize(url, db, selection, **options)
    stats = sandbox_stats(url)
    assert stats["requests"]["jira"] == stats["requests"]["confluence"] == 0
    return {k.removeprefix("GET /api/v4"): v for k, v in stats["by_endpoint"].items()}


def _keys(db: Path, object_type: str) -> set[str]:
    rows = table(
        db,
        "SELECT object_key FROM raw.latest WHERE source = 'gitlab' AND object_type = ? "
        "AND NOT deleted",
        [object_type],
    )
    return {r[0] for r in rows}


def _chain(db: Path) -> dict[str, list[tuple]]:
    """Every GitLab chain table, raw ids left out (they count rows, not content)."""
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            t: sorted(
                con.execute(f"SELECT COLUMNS(lambda c: c <> 'raw_id') FROM chain.{t}").fetchall(),  # noqa: S608
                key=repr,
            )
            for t in CHAIN
        }


@pytest.fixture(scope="module")
def handmade_ingest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    """One full ingest of the hand-made dataset at the default policy, shared read-only:
    tests that go on from it copy the DuckDB file."""
    running = server.start(str(HANDMADE))
    db = tmp_path_factory.mktemp("handmade") / "driftgate.duckdb"
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("DRIFTGATE_POLICY", raising=False)
            yield db, _run(running.url, db)
    finally:
        running.stop()


def _copy_db(db: Path, tmp_path: Path) -> Path:
    return copy_database(db, tmp_path / "driftgate.duckdb")


# -- tests -----------------------------------------------------------------------------------
def test_full_ingest_equals_the_dataset(handmade_ingest: tuple[Path, dict]) -> None:
    db, _ = handmade_ingest
    mrs = _jsonl(HANDMADE, "merge_requests.jsonl")
    notes = _jsonl(HANDMADE, "mr_notes.jsonl")
    assert _keys(db, "merge_request") == {f"{m['project_id']}!{m['iid']}" for m in mrs}
    assert _keys(db, "mr_change") == _keys(db, "mr_approval") == _keys(db, "merge_request")
    assert {k.rsplit("!", 1)[1] for k in _keys(db, "mr_note")} == {
        str(n["id"]) for r in notes for n in r["notes"]
    }
    assert len(_keys(db, "mr_note")) == 392
    assert _keys(db, "commit") == {
        f"{c['project_id']}:{c['id']}" for c in _jsonl(HANDMADE, "commits.jsonl")
    }
    assert _keys(db, "deployment") == {
        f"{d['project_id']}:{d['id']}" for d in _jsonl(HANDMADE, "deployments.jsonl")
    }
    assert _keys(db, "file") == _matched_files(HANDMADE)
    assert _keys(db, "project") == {str(p["id"]) for p in _projects(HANDMADE)}
    assert table(db, "SELECT count(*) FROM raw.quarantine")[0][0] == 0

    # What the chain makes of it.
    paths = {p["id"]: p["path_with_namespace"] for p in _projects(HANDMADE)}
    assert {r[0] for r in table(db, "SELECT mr_key FROM chain.merge_requests")} == {
        f"{paths[m['project_id']]}!{m['iid']}" for m in mrs
    }
    assert table(db, "SELECT count(*) FROM chain.mr_notes")[0][0] == 392
    assert table(db, "SELECT count(*) FROM chain.commits WHERE additions IS NULL")[0][0] == 0
    # A file under tests/contract/.../pacts/ is a contract test once, not twice.
    assert table(
        db,
        "SELECT kind FROM chain.repository_files WHERE path = "
        "'tests/contract/bank_gateway/pacts/payments-api-bank-gateway.json'",
    ) == [("contract_test",)]
    # The spec at the default branch and the tagged (approved) one, told apart.
    assert table(
        db,
        "SELECT ref, at_default_branch, kind FROM chain.repository_files "
        "WHERE project_id = 201 AND path = 'api/openapi.yaml' ORDER BY ref",
    ) == [("main", True, "spec"), ("v1.4.0", False, "spec")]
    # Line counts come from the diff itself.
    journal = table(
        db,
        "SELECT added_lines, removed_lines FROM chain.mr_changes "
        "WHERE mr_key = 'acme/payments/ledger-service!1' AND new_path = 'src/ledger/journal.py'",
    )
    diff = next(
        c["diff"]
        for r in _jsonl(HANDMADE, "mr_changes.jsonl")
        if (r["project_id"], r["iid"]) == (202, 1)
        for c in r["changes"]
        if c["new_path"] == "src/ledger/journal.py"
    )
    assert journal == [(diff.count("\n+"), diff.count("\n-"))]


def test_review_rounds_and_mentions_follow_the_documented_rules(
    handmade_ingest: tuple[Path, dict],
) -> None:
    db, _ = handmade_ingest
    rounds = dict(table(db, "SELECT mr_key, review_rounds FROM chain.mr_review_rounds"))
    # Recompute the rule from the dataset: pushes after the first outside comment or approval.
    paths = {p["id"]: p["path_with_namespace"] for p in _projects(HANDMADE)}
    authors = {
        (m["project_id"], m["iid"]): m["author"]["username"]
        for m in _jsonl(HANDMADE, "merge_requests.jsonl")
    }
    approved = {
        (r["project_id"], r["iid"]): min(
            (a["approved_at"] for a in r["approvals"].get("approved_by") or []), default=None
        )
        for r in _jsonl(HANDMADE, "mr_approvals.jsonl")
    }
    expected = {}
    for record in _jsonl(HANDMADE, "mr_notes.jsonl"):
        mr = (record["project_id"], record["iid"])
        notes = sorted(record["notes"], key=lambda n: n["created_at"])
        reviews = [
            n["created_at"]
            for n in notes
            if (not n["system"] and n["author"]["username"] != authors[mr])
            or (n["system"] and n["body"].startswith("approved this merge request"))
        ]
        if approved.get(mr):
            reviews.append(approved[mr])
        start = min(reviews, key=lambda t: t.replace("Z", "+00:00")) if reviews else None
        pushes = [n for n in notes if n["system"] and n["body"].startswith("added ")]
        expected[f"{paths[mr[0]]}!{mr[1]}"] = sum(
            1 for n in pushes if start and n["created_at"] > start
        )
    assert {k: v for k, v in rounds.items() if k in expected} == expected
    assert max(rounds.values()) >= 3  # the dataset holds MRs that needed many rounds

    # Mentions: the keys a plain word-boundary search finds in title, branch, description.
    expected_mentions = {
        (f"{paths[m['project_id']]}!{m['iid']}", key, place)
        for m in _jsonl(HANDMADE, "merge_requests.jsonl")
        for place in ("title", "source_branch", "description")
        for key in re.findall(r"\b([A-Z][A-Z0-9_]*-[0-9]+)\b", m[place] or "")
    }
    mentions = table(db, "SELECT mr_key, issue_key, found_in FROM chain.mr_mentions")
    assert set(mentions) == expected_mentions
    assert len(mentions) == len(expected_mentions)


def test_a_second_run_with_nothing_changed_costs_six_requests(
    handmade_ingest: tuple[Path, dict], tmp_path: Path, serve, monkeypatch
) -> None:
    source_db, _ = handmade_ingest
    db = _copy_db(source_db, tmp_path)
    monkeypatch.delenv("DRIFTGATE_POLICY", raising=False)
    before = table(db, "SELECT count(*), max(raw_id) FROM raw.objects")
    marks_sql = "SELECT * EXCLUDE (updated_at) FROM raw.watermarks ORDER BY ALL"
    marks = table(staged(db, "gitlab"), marks_sql)  # the unit's own store holds them
    chain = _chain(db)

    calls = _run(serve(HANDMADE).url, db)

    # The reachability check, the projects, one MR listing page, one deployments page per
    # project; no commit, tree or file request: no project's last_activity_at moved.
    assert calls == {
        "/user": 1,
        "/projects": 1,
        "/merge_requests": 1,
        "/projects/{id}/deployments": 3,
    }
    assert table(db, "SELECT count(*), max(raw_id) FROM raw.objects") == before
    assert table(staged(db, "gitlab"), marks_sql) == marks
    assert _chain(db) == chain


def _edit(root: Path) -> dict[str, Any]:
    """One MR updated later with a new note; one new commit on the ledger's main."""
    mrs = _jsonl(root, "merge_requests.jsonl")
    mr = next(m for m in mrs if (m["project_id"], m["iid"]) == (201, 2))
    mr["updated_at"] = "2026-04-02T10:00:00.000Z"
    mr["description"] += "\n\nFollow-up: PAY-211."
    _write_jsonl(root, "merge_requests.jsonl", mrs)
    notes = _jsonl(root, "mr_notes.jsonl")
    record = next(r for r in notes if (r["project_id"], r["iid"]) == (201, 2))
    note = dict(record["notes"][-1])
    note.update(
        id=1879999,
        body="PAY-7 follow-up: the refund webhook needs a retry test.",
        system=False,
        created_at="2026-04-02T09:59:00.000Z",
        updated_at="2026-04-02T09:59:00.000Z",
    )
    record["notes"].append(note)
    _write_jsonl(root, "mr_notes.jsonl", notes)

    commits = _jsonl(root, "commits.jsonl")
    head = max((c for c in commits if c["project_id"] == 202), key=lambda c: c["committed_date"])
    new = dict(head)
    new.update(
        id="f" * 40,
        short_id="ffffffff",
        parent_ids=[head["id"]],
        title="PAY-5 Tighten journal balance check",
        message="PAY-5 Tighten journal balance check\n",
        created_at="2026-04-02T11:00:00.000+00:00",
        authored_date="2026-04-02T11:00:00.000+00:00",
        committed_date="2026-04-02T11:00:00.000+00:00",
        stats={"additions": 3, "deletions": 1, "total": 4},
    )
    _write_jsonl(root, "commits.jsonl", [*commits, new])
    # GitLab moves a project's last_activity_at on a push.
    projects = _projects(root)
    next(p for p in projects if p["id"] == 202)["last_activity_at"] = "2026-04-02T11:00:00.000Z"
    (root / "gitlab" / "projects.json").write_text(json.dumps(projects))
    return {"mr": "201!2", "note": "201!2!1879999", "commit": "202:" + "f" * 40}


def test_an_incremental_run_fetches_only_what_changed(
    handmade_ingest: tuple[Path, dict], tmp_path: Path, serve, monkeypatch
) -> None:
    source_db, _ = handmade_ingest
    monkeypatch.delenv("DRIFTGATE_POLICY", raising=False)
    edited = copy_dataset(HANDMADE, tmp_path / "edited")
    changed = _edit(edited)
    db = _copy_db(source_db, tmp_path)
    url = serve(edited).url

    calls = _run(url, db)

    assert calls == {
        "/user": 1,  # the reachability check
        "/projects": 1,
        "/merge_requests": 1,
        "POST /api/graphql": 1,  # its notes, approvers and diff refs: no /changes
        "/projects/{id}/deployments": 3,
        "/projects/{id}/repository/commits": 1,  # the ledger only: its activity moved
        "/projects/{id}/repository/tree": 1,  # blobs unchanged: no file read
        "/projects/{id}/repository/tags": 1,  # no new tag: no tree read at a tag
    }
    written = table(
        db,
        "SELECT object_type, object_key FROM raw.objects WHERE run_id = "
        "(SELECT run_id FROM raw.objects ORDER BY raw_id DESC LIMIT 1) ORDER BY ALL",
    )
    assert written == sorted(
        [
            ("commit", changed["commit"]),
            ("merge_request", changed["mr"]),  # its stored changes stay: diff unmoved
            ("mr_note", changed["note"]),
            ("project", "202"),
        ]
    )

    mentioned = table(
        db,
        "SELECT issue_key, found_in FROM chain.mr_mentions "
        "WHERE mr_key = 'acme/payments/payments-api!2' ORDER BY ALL",
    )
    assert ("PAY-211", "description") in mentioned
    assert ("PAY-21", "description") not in mentioned

    fresh = tmp_path / "fresh.duckdb"
    _run(url, fresh)
    assert _chain(db) == _chain(fresh)


def _push(root: Path) -> dict[str, Any]:
    """A commit pushed to an open MR's branch: its head, its diff refs and its changes
    move (a file added), and its updated_at."""
    sha = "e" * 40
    mrs = _jsonl(root, "merge_requests.jsonl")
    mr = next(m for m in mrs if (m["project_id"], m["iid"]) == (201, 4))
    mr.update(sha=sha, updated_at="2026-04-02T12:00:00.000Z")
    mr["diff_refs"] = {**mr["diff_refs"], "head_sha": sha}
    _write_jsonl(root, "merge_requests.jsonl", mrs)
    changes = _jsonl(root, "mr_changes.jsonl")
    record = next(r for r in changes if (r["project_id"], r["iid"]) == (201, 4))
    path = "src/payouts/retry_policy.py"
    record["changes"].append(
        {
            "old_path": path,
            "new_path": path,
            "a_mode": "0",
            "b_mode": "100644",
            "diff": "@@ -0,0 +1,2 @@\n+MAX_ATTEMPTS = 5\n+BACKOFF_S = 30\n",
            "new_file": True,
            "renamed_file": False,
            "deleted_file": False,
        }
    )
    _write_jsonl(root, "mr_changes.jsonl", changes)
    return {"mr": "201!4", "mr_key": "acme/payments/payments-api!4", "path": path}


@pytest.mark.parametrize("refs", ["kept", "from the payload", "rest"])
def test_only_a_merge_request_whose_diff_moved_is_asked_for_its_changes(
    handmade_ingest: tuple[Path, dict], tmp_path: Path, serve, monkeypatch, refs: str
) -> None:
    """A note moves an MR's updated_at but not its diff refs: its stored /changes stay.
    A push moves them: that MR's /changes is read again. Stored changes without kept
    refs (a database from before) are compared from their payload; over REST there are
    no refs to compare, and every changed MR's /changes is read."""
    source_db, _ = handmade_ingest
    monkeypatch.delenv("DRIFTGATE_POLICY", raising=False)
    data = copy_dataset(HANDMADE, tmp_path / "data")
    noted, pushed = _edit(data), _push(data)
    db = _copy_db(source_db, tmp_path)
    store = staged(db, "gitlab")
    if refs == "from the payload":
        with duckdb.connect(str(store)) as con:
            kept = con.execute(
                "DELETE FROM raw.parts WHERE raw_id IN (SELECT raw_id FROM raw.current "
                "WHERE object_type = 'mr_change')"
            ).fetchall()[0][0]
        assert kept == len(_jsonl(HANDMADE, "merge_requests.jsonl"))
    if refs == "rest":
        _policy(tmp_path, monkeypatch, gitlab_graphql=False)
    url = serve(data).url

    calls = _run(url, db)

    asked = calls.get("/projects/{id}/merge_requests/{iid}/changes", 0)
    assert asked == (2 if refs == "rest" else 1)
    written = table(
        db,
        "SELECT object_key FROM raw.objects WHERE object_type = 'mr_change' AND run_id = "
        "(SELECT run_id FROM raw.objects ORDER BY raw_id DESC LIMIT 1) ORDER BY ALL",
    )
    assert written == ([(noted["mr"],), (pushed["mr"],)] if refs == "rest" else [(pushed["mr"],)])
    files = table(db, "SELECT new_path FROM chain.mr_changes WHERE mr_key = ?", [pushed["mr_key"]])
    assert (pushed["path"],) in files
    fresh, kept = tmp_path / "fresh.duckdb", _chain(db)
    _run(url, fresh)
    for name, rows in _chain(fresh).items():
        # REST notes keep the milliseconds the GraphQL ones read before had not
        if refs != "rest" or name not in (
            "mr_note_kinds",
            "mr_notes",
            "mr_approvals",
            "mr_review_rounds",
        ):
            assert kept[name] == rows, name
    # the refs kept beside the new /changes are the pushed head's
    head = table(
        store,
        "SELECT p.parts->>'$.diff_refs.head_sha' FROM raw.current c JOIN raw.parts p "
        "USING (raw_id) WHERE c.object_type = 'mr_change' AND c.object_key = ?",
        [pushed["mr"]],
    )
    assert head == [("e" * 40,)]


def _tag_as_main(root: Path, tag: str, path: str = "api/openapi.yaml") -> str:
    """Project 201 tags its default branch's spec as ``tag`` (the same bytes); the
    tag's file key."""
    base = root / "gitlab" / "files" / "201"
    (base / tag / path).parent.mkdir(parents=True)
    shutil.copyfile(base / "main" / path, base / tag / path)
    return f"201:{tag}:{path}"


def _file_payloads(db: Path) -> dict[str, dict[str, Any]]:
    rows = table(
        db,
        "SELECT object_key, payload FROM raw.latest WHERE source = 'gitlab' "
        "AND object_type = 'file' AND NOT deleted",
    )
    return {key: json.loads(payload) for key, payload in rows}


def _expected_file(root: Path, key: str) -> dict[str, Any]:
    """What reading a file key's bytes from the dataset gives (text files only)."""
    project, ref, path = key.split(":", 2)
    data = (root / "gitlab" / "files" / project / ref / path).read_bytes()
    return {
        "project_id": int(project),
        "ref": ref,
        "path": path,
        "blob_id": git_blob_id(data),
        "size": len(data),
        "content": data.decode("utf-8"),
    }


def test_a_blob_read_at_one_ref_is_not_read_again_at_a_tag(
    tmp_path: Path, serve, monkeypatch
) -> None:
    """A tag whose spec is the default branch's (the same git blob id) is stored from the
    bytes read there: one read per distinct blob of a project, and every file stored as a
    read of its own ref would store it."""
    monkeypatch.delenv("DRIFTGATE_POLICY", raising=False)
    data = copy_dataset(HANDMADE, tmp_path / "data")
    tagged = _tag_as_main(data, "v1.5.0")
    db = tmp_path / "driftgate.duckdb"

    calls = _run(serve(data).url, db, [RAW])

    matched = _matched_files(data)
    assert tagged in matched
    blobs = {(k.split(":")[0], _expected_file(data, k)["blob_id"]) for k in matched}
    assert len(blobs) == len(matched) - 1  # the tag's spec is the only repeated blob
    assert calls["/projects/{id}/repository/files/{file_path}/raw"] == len(blobs)
    stored = _file_payloads(db)
    assert stored == {k: _expected_file(data, k) for k in matched}
    assert stored[tagged]["ref"] == "v1.5.0"


def test_past_the_bytes_held_for_other_refs_a_repeated_blob_is_read_again(
    tmp_path: Path, serve, monkeypatch
) -> None:
    """What a project sync keeps of the bytes it read is bounded: with no room, the
    tag's spec is read again, and stored the same."""
    monkeypatch.delenv("DRIFTGATE_POLICY", raising=False)
    monkeypatch.setattr(ProjectFiles, "HELD_BYTES", 0)
    data = copy_dataset(HANDMADE, tmp_path / "data")
    _tag_as_main(data, "v1.5.0")
    db = tmp_path / "driftgate.duckdb"

    calls = _run(serve(data).url, db, [RAW])

    matched = _matched_files(data)
    assert calls["/projects/{id}/repository/files/{file_path}/raw"] == len(matched)
    assert _file_payloads(db) == {k: _expected_file(data, k) for k in matched}


def test_a_new_tag_of_a_stored_blob_costs_its_tree_and_no_read(
    handmade_ingest: tuple[Path, dict], tmp_path: Path, serve, monkeypatch
) -> None:
    """A tag made the next day of a spec stored the night before: its tree is listed,
    its bytes come from the store."""
    source_db, _ = handmade_ingest
    monkeypatch.delenv("DRIFTGATE_POLICY", raising=False)
    data = copy_dataset(HANDMADE, tmp_path / "data")
    tagged = _tag_as_main(data, "v1.5.0")
    projects = _projects(data)
    next(p for p in projects if p["id"] == 201)["last_activity_at"] = "2026-04-02T09:00:00.000Z"
    (data / "gitlab" / "projects.json").write_text(json.dumps(projects, indent=1))
    db = _copy_db(source_db, tmp_path)

    calls = _run(serve(data).url, db, [RAW])

    assert calls["/projects/{id}/repository/tree"] == 2  # the default branch and the tag
    assert "/projects/{id}/repository/files/{file_path}/raw" not in calls
    assert _file_payloads(db) == {k: _expected_file(data, k) for k in _matched_files(data)}
    written = table(
        db,
        "SELECT object_type, object_key FROM raw.objects WHERE object_type = 'file' "
        "AND run_id = (SELECT run_id FROM raw.objects ORDER BY raw_id DESC LIMIT 1)",
    )
    assert written == [("file", tagged)]


def test_a_file_gone_from_the_default_branch_is_tombstoned(
    handmade_ingest: tuple[Path, dict], tmp_path: Path, serve, monkeypatch
) -> None:
    """The next sync of a project tombstones the file its tree no longer holds, and only
    that one: what a ref held is read once, before its tree is listed."""
    source_db, _ = handmade_ingest
    monkeypatch.delenv("DRIFTGATE_POLICY", raising=False)
    data = copy_dataset(HANDMADE, tmp_path / "data")
    (data / "gitlab" / "files" / "201" / "main" / "observability/alerts/payouts.yaml").unlink()
    projects = _projects(data)
    next(p for p in projects if p["id"] == 201)["last_activity_at"] = "2026-04-02T09:00:00.000Z"
    (data / "gitlab" / "projects.json").write_text(json.dumps(projects, indent=1))
    db = _copy_db(source_db, tmp_path)
    before = _keys(db, "file")

    _run(serve(data).url, db, [RAW])

    gone = "201:main:observability/alerts/payouts.yaml"
    assert gone in before
    assert _keys(db, "file") == before - {gone} == _matched_files(data)
    tombstones = table(
        db,
        "SELECT object_key FROM raw.objects WHERE object_type = 'file' AND deleted",
    )
    assert tombstones == [(gone,)]


def test_a_malformed_merge_request_is_quarantined_and_the_run_goes_on(
    tmp_path: Path, serve, monkeypatch
) -> None:
    monkeypatch.delenv("DRIFTGATE_POLICY", raising=False)
    broken = copy_dataset(HANDMADE, tmp_path / "broken")
    mrs = _jsonl(broken, "merge_requests.jsonl")
    bad = next(m for m in mrs if (m["project_id"], m["iid"]) == (202, 3))
    bad["source_branch"] = None
    bad["updated_at"] = "2026-04-01T08:00:00.000Z"  # the newest: in every overlap window
    _write_jsonl(broken, "merge_requests.jsonl", mrs)
    db = tmp_path / "driftgate.duckdb"
    url = serve(broken).url

    _run(url, db, [RAW, 'key:"chain/merge_requests"'])

    quarantined = table(db, "SELECT object_type, object_key, reason FROM raw.quarantine")
    assert len(quarantined) == 1
    kind, key, reason = quarantined[0]
    assert (kind, key) == ("merge_request", "202!3")
    assert "source_branch" in reason
    assert "202!3" not in _keys(db, "merge_request")
    assert len(_keys(db, "merge_request")) == 45
    assert not any(k.startswith("202!3!") for k in _keys(db, "mr_note"))
    assert table(db, "SELECT count(*) FROM chain.merge_requests")[0][0] == 45

    # Re-delivered unchanged by the next run's overlap window: not quarantined again.
    calls = _run(url, db, [RAW])
    assert calls == {
        "/user": 1,  # the reachability check
        "/projects": 1,
        "/merge_requests": 1,
        "/projects/{id}/deployments": 3,
    }
    assert table(db, "SELECT count(*) FROM raw.quarantine")[0][0] == 1


def test_faults_end_in_the_same_tables(
    handmade_ingest: tuple[Path, dict], tmp_path: Path, serve, monkeypatch
) -> None:
    source_db, _ = handmade_ingest
    monkeypatch.delenv("DRIFTGATE_POLICY", raising=False)
    faults = "429=0.2,5xx=0.1,reset=0.05,truncate=0.05,seed=3,retry_after=0"
    running = serve(HANDMADE, faults=faults)
    db = tmp_path / "driftgate.duckdb"

    # About 40% of the answers fail, 5xx in bursts of three: 12 attempts per request
    # make giving up unlikely (0.4^12 per request).
    _run(running.url, db, max_retries=12, retry_base_s=0.001)

    injected = sandbox_stats(running.url)["faults"]
    assert set(injected) == {"429", "5xx", "reset", "truncate"}
    assert _chain(db) == _chain(source_db)
    for kind in ("merge_request", "mr_note", "commit", "file", "deployment"):
        assert _keys(db, kind) == _keys(source_db, kind)
    payloads = "SELECT object_key, content_hash FROM raw.latest WHERE source = 'gitlab' ORDER BY 1"
    assert table(db, payloads) == table(source_db, payloads)


def test_requests_stay_within_five_percent_of_the_minimum(
    tmp_path: Path, serve, monkeypatch
) -> None:
    """With a small page size every list spans pages; the run still asks for each page once."""
    page = 7
    _policy(tmp_path, monkeypatch, page_size=page)
    db = tmp_path / "driftgate.duckdb"

    calls = _run(serve(HANDMADE).url, db, [RAW])

    def pages(n: int) -> int:
        return max(1, math.ceil(n / page))

    projects = _projects(HANDMADE)
    notes = _jsonl(HANDMADE, "mr_notes.jsonl")
    commits = Counter(c["project_id"] for c in _jsonl(HANDMADE, "commits.jsonl"))
    deployments = Counter(d["project_id"] for d in _jsonl(HANDMADE, "deployments.jsonl"))
    refs = [(p["id"], ref) for p in projects for ref in [p["default_branch"], *_tags(HANDMADE, p)]]
    tree_entries = {
        (pid, ref): sum(1 for _ in (GITLAB / "files" / str(pid) / ref).rglob("*"))
        for pid, ref in refs
    }
    mrs = _jsonl(HANDMADE, "merge_requests.jsonl")
    listed = sorted(mrs, key=lambda m: (m["updated_at"], m["id"]))  # updated_at ascending
    # Notes and approvers: one GraphQL query per three projects of a listing page, then
    # a follow-up per further page of notes, for the MRs that have one.
    graphql = sum(
        math.ceil(len({m["project_id"] for m in listed[i : i + page]}) / PROJECTS_PER_QUERY)
        for i in range(0, len(listed), page)
    ) + sum(pages(len(r["notes"])) - 1 for r in notes)
    minimum = (
        pages(len(projects))
        + pages(len(mrs))
        + len(mrs)  # /changes
        + graphql
        + sum(pages(commits[p["id"]]) + pages(deployments[p["id"]]) for p in projects)
        + len(projects)  # tag listings
        + sum(pages(n) for n in tree_entries.values())
        + len(_matched_files(HANDMADE))
    )
    total = sum(calls.values())
    assert minimum <= total <= minimum * 1.05, (total, minimum, calls)
    assert calls["POST /api/graphql"] == graphql
    assert not {
        f"/projects/{{id}}/merge_requests/{{iid}}/{e}" for e in ("notes", "approvals")
    } & set(calls)
    # Small pages lose nothing.
    assert len(_keys(db, "mr_note")) == 392
    assert len(_keys(db, "commit")) == sum(commits.values())
    assert _keys(db, "file") == _matched_files(HANDMADE)


def test_reconciliation_tombstones_a_deleted_merge_request(
    handmade_ingest: tuple[Path, dict], tmp_path: Path, serve, monkeypatch
) -> None:
    source_db, _ = handmade_ingest
    monkeypatch.delenv("DRIFTGATE_POLICY", raising=False)
    gone = (203, 2)
    edited = copy_dataset(HANDMADE, tmp_path / "edited")
    for name in (
        "merge_requests.jsonl",
        "mr_changes.jsonl",
        "mr_notes.jsonl",
        "mr_approvals.jsonl",
    ):
        rows = _jsonl(edited, name)
        _write_jsonl(edited, name, [r for r in rows if (r["project_id"], r["iid"]) != gone])
    db = _copy_db(source_db, tmp_path)
    with duckdb.connect(str(staged(db, "gitlab"))) as con:  # last reconciliation: 8 days ago
        con.execute(
            "UPDATE raw.watermarks SET watermark = watermark - INTERVAL 8 DAY "
            "WHERE source = 'gitlab' AND object_type = 'reconcile'"
        )
    notes_before = {k for k in _keys(db, "mr_note") if k.startswith("203!2!")}
    assert notes_before

    calls = _run(serve(edited).url, db, [RAW, 'key:"chain/merge_requests"'])

    assert "203!2" not in _keys(db, "merge_request")
    for kind in ("mr_change", "mr_approval"):
        assert "203!2" not in _keys(db, kind)
    assert not notes_before & _keys(db, "mr_note")
    assert len(_keys(db, "merge_request")) == 45
    assert table(db, "SELECT count(*) FROM chain.merge_requests WHERE object_key = '203!2'") == [
        (0,)
    ]
    # Incremental listing, keys-only listing, one iids[] lookup confirming the MR is gone.
    assert calls["/merge_requests"] == 2
    assert calls["/projects/{id}/merge_requests"] == 1
    assert calls["/projects/{id}/repository/commits"] == 3  # full listings, once a period
    assert "/projects/{id}/repository/files/{file_path}/raw" not in calls  # blobs unchanged


# -- notes and approvers: GraphQL in bulk, REST where it is not used ------------------------
REST_NOTES = "/projects/{id}/merge_requests/{iid}/notes"
REST_APPROVALS = "/projects/{id}/merge_requests/{iid}/approvals"


def _notes_to_the_second(db: Path) -> list[tuple]:
    """chain.mr_notes as both APIs tell it: GraphQL's Time scalar stops at the second."""
    return table(
        db,
        "SELECT mr_key, note_id, date_trunc('second', created_at), author, system, body, kind, "
        "commits_added, note_type FROM chain.mr_notes ORDER BY ALL",
    )


def _rounds_to_the_second(db: Path) -> list[tuple]:
    return table(
        db,
        "SELECT mr_key, review_rounds, pushes, date_trunc('second', first_review_at) "
        "FROM chain.mr_review_rounds ORDER BY ALL",
    )


def test_a_first_run_reads_every_note_and_approver_in_one_graphql_query(
    handmade_ingest: tuple[Path, dict],
) -> None:
    db, calls = handmade_ingest
    mrs = _jsonl(HANDMADE, "merge_requests.jsonl")
    # 46 MRs of three projects on one listing page: one query, no REST note or approval.
    assert calls["POST /api/graphql"] == 1
    assert calls["/projects/{id}/merge_requests/{iid}/changes"] == len(mrs)
    assert REST_NOTES not in calls and REST_APPROVALS not in calls
    payload = table(
        db,
        "SELECT payload FROM raw.latest WHERE source = 'gitlab' AND object_type = 'mr_note' "
        "AND object_key = '201!2!1870008'",
    )
    assert json.loads(payload[0][0])["id"] == "gid://gitlab/DiffNote/1870008"  # as received
    assert table(db, "SELECT note_type FROM chain.mr_notes WHERE note_id = 1870008") == [
        ("DiffNote",)
    ]
    # Each MR's notes were listed in full: what GraphQL counted is what was stored.
    assert table(
        db,
        "SELECT count(*), count(*) FILTER (WHERE listed = reported) FROM raw.listings "
        "WHERE source = 'gitlab' AND object_type = 'mr_note'",
    ) == [(len(mrs), len(mrs))]


@pytest.mark.parametrize("why", ["instance without GraphQL", "policy"])
def test_rest_reads_the_same_notes_where_graphql_is_not_used(
    handmade_ingest: tuple[Path, dict], tmp_path: Path, serve, monkeypatch, why: str
) -> None:
    graphql_db, _ = handmade_ingest
    if why == "policy":
        _policy(tmp_path, monkeypatch, gitlab_graphql=False)
        url = serve(HANDMADE).url
    else:
        monkeypatch.delenv("DRIFTGATE_POLICY", raising=False)
        url = serve(HANDMADE, gitlab_graphql=False).url
    db = tmp_path / "rest.duckdb"

    calls = _run(url, db)

    mrs = len(_jsonl(HANDMADE, "merge_requests.jsonl"))
    assert calls[REST_NOTES] == calls[REST_APPROVALS] == mrs
    assert calls.get("POST /api/graphql", 0) == (0 if why == "policy" else 1)  # the 404
    for kind in ("mr_note", "mr_approval", "merge_request", "mr_change"):
        assert _keys(db, kind) == _keys(graphql_db, kind), kind
    # The same notes and rounds; REST keeps the milliseconds GraphQL drops.
    assert _notes_to_the_second(db) == _notes_to_the_second(graphql_db)
    assert _rounds_to_the_second(db) == _rounds_to_the_second(graphql_db)
    rest, graphql = _chain(db), _chain(graphql_db)
    for name in set(CHAIN) - {"mr_note_kinds", "mr_notes", "mr_approvals", "mr_review_rounds"}:
        assert rest[name] == graphql[name], name


def test_a_database_read_over_rest_goes_on_over_graphql_with_the_same_keys(
    tmp_path: Path, serve, monkeypatch
) -> None:
    """A note keeps its key across the two APIs: turning GraphQL on re-reads the MRs
    that changed, with no duplicate and no tombstone."""
    _policy(tmp_path, monkeypatch, gitlab_graphql=False)
    data = copy_dataset(HANDMADE, tmp_path / "data")
    db = tmp_path / "driftgate.duckdb"
    first = serve(data)
    _run(first.url, db)
    first.stop()
    before = _keys(db, "mr_note")
    changed = _edit(data)
    monkeypatch.delenv("DRIFTGATE_POLICY")

    calls = _run(serve(data).url, db)

    assert calls["POST /api/graphql"] == 1 and REST_NOTES not in calls
    assert _keys(db, "mr_note") == before | {changed["note"]}
    assert table(db, "SELECT count(*) FROM raw.objects WHERE deleted") == [(0,)]
    reshaped = table(
        db,
        "SELECT count(*) FROM raw.latest WHERE object_type = 'mr_note' AND parent_key = ? "
        "AND payload->>'$.id' LIKE 'gid://%'",
        [changed["mr"]],
    )[0][0]
    assert reshaped == len([k for k in _keys(db, "mr_note") if k.startswith(changed["mr"] + "!")])
    assert table(db, "SELECT count(*) FROM chain.mr_notes") == [(393,)]


def test_a_deleted_note_is_tombstoned(
    handmade_ingest: tuple[Path, dict], tmp_path: Path, serve, monkeypatch
) -> None:
    source_db, _ = handmade_ingest
    monkeypatch.delenv("DRIFTGATE_POLICY", raising=False)
    edited = copy_dataset(HANDMADE, tmp_path / "edited")
    mrs = _jsonl(edited, "merge_requests.jsonl")
    next(m for m in mrs if (m["project_id"], m["iid"]) == (201, 2))["updated_at"] = (
        "2026-04-02T10:00:00.000Z"
    )
    _write_jsonl(edited, "merge_requests.jsonl", mrs)
    records = _jsonl(edited, "mr_notes.jsonl")
    record = next(r for r in records if (r["project_id"], r["iid"]) == (201, 2))
    removed = next(n for n in record["notes"] if not n["system"])
    record["notes"].remove(removed)
    _write_jsonl(edited, "mr_notes.jsonl", records)
    db = _copy_db(source_db, tmp_path)

    calls = _run(serve(edited).url, db)

    assert calls["POST /api/graphql"] == 1
    gone = f"201!2!{removed['id']}"
    assert gone not in _keys(db, "mr_note")
    assert table(
        db,
        "SELECT deleted FROM raw.latest WHERE object_type = 'mr_note' AND object_key = ?",
        [gone],
    ) == [(True,)]
    assert table(
        db,
        "SELECT listed, reported FROM raw.listings WHERE object_type = 'mr_note' "
        "AND scope = '201!2' ORDER BY listed_at DESC LIMIT 1",
    ) == [(len(record["notes"]), len(record["notes"]))]
    assert table(db, "SELECT count(*) FROM chain.mr_notes") == [(391,)]


def test_a_killed_run_resumes_without_loss_or_duplicates(
    tmp_path: Path, serve, monkeypatch
) -> None:
    _policy(tmp_path, monkeypatch, page_size=5)  # ten listing pages, each one transaction
    emulator = serve(HANDMADE, latency_ms=40)
    db = tmp_path / "killed.duckdb"
    kill_midway(
        emulator.url,
        db,
        [RAW],
        ready=lambda stats: stats["by_endpoint"].get("POST /api/graphql", 0) >= 12,
    )
    staged_mrs = "SELECT count(*) FROM raw.current WHERE object_type = 'merge_request'"
    assert 0 < table(staged(db, "gitlab"), staged_mrs)[0][0] < 46  # it died mid-way

    _run(emulator.url, db)
    reference = tmp_path / "reference.duckdb"
    _run(emulator.url, reference)

    assert _chain(db) == _chain(reference)
    for kind in ("merge_request", "mr_note", "mr_approval", "mr_change"):
        assert _keys(db, kind) == _keys(reference, kind), kind
    duplicates = table(
        db,
        "SELECT object_key, content_hash, count(*) FROM raw.objects "
        "GROUP BY ALL HAVING count(*) > 1",
    )
    assert duplicates == []


def test_a_next_page_link_to_another_host_is_refused(tmp_path: Path) -> None:
    """requests would send PRIVATE-TOKEN to whatever host a Link names."""
    seen: list[str] = []

    def elsewhere(environ: dict, start_response: Any) -> Any:
        seen.append(Request(environ).headers.get("PRIVATE-TOKEN", ""))
        return Response("[]", content_type="application/json")(environ, start_response)

    def origin(environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        page = int(request.args.get("page", "1"))
        body = json.dumps([{"id": page, "path_with_namespace": f"g/p{page}"}])
        if page == 1:
            link = f'<http://localhost:{other.server_port}/api/v4/projects?page=2>; rel="next"'
        else:
            link = ""
        return Response(body, content_type="application/json", headers={"Link": link})(
            environ, start_response
        )

    other = make_server("127.0.0.1", 0, elsewhere, threaded=True)
    main = make_server("127.0.0.1", 0, origin, threaded=True)
    threads = [
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        for s in (other, main)
    ]
    for thread in threads:
        thread.start()
    try:
        secret = "glpat-very-secret-token"
        conn = Connection(url=f"http://127.0.0.1:{main.server_port}", user="", token=secret)
        source = GitlabSource(conn, Policy())
        with pytest.raises(LinkHostError) as raised:
            source.project_listing()
        assert f"localhost:{other.server_port}" in str(raised.value)
        assert secret not in str(raised.value)
        assert seen == []  # the token never left for the other host
        assert source.requests == 1
    finally:
        for srv in (main, other):
            srv.shutdown()
            srv.server_close()


@pytest.mark.realdata
def test_real_payloads_ingest_completely(
    real_fixtures: Path, tmp_path: Path, serve, monkeypatch
) -> None:
    real = build_gitlab_dataset(real_fixtures / "gitlab", tmp_path / "real")
    # The captured file is a README: name it in the policy so it is ingested.
    _policy(tmp_path, monkeypatch, spec_globs=[*Ingest().spec_globs, "README.md"])
    db = tmp_path / "driftgate.duckdb"

    chain = ["merge_requests", "mr_change_files", "mr_changes", "mr_note_kinds", "mr_notes"]
    _run(serve(real.root).url, db, [RAW, *(f'key:"chain/{t}"' for t in chain)])

    assert table(db, "SELECT count(*) FROM raw.quarantine")[0][0] == 0
    for kind, keys in real.expected.items():
        assert _keys(db, kind) == keys, kind
    assert real.expected["mr_note"] and real.expected["deployment"]
    assert len(real.unservable) == 1 and real.unservable[0].startswith("commit 6104942")
    assert len(real.expected["merge_request"] - real.scaffolding["merge_request"]) == 28
    with duckdb.connect(str(db), read_only=True) as con:
        for (kind, key), payload in real.verbatim.items():
            stored = json.loads(
                con.execute(
                    "SELECT payload FROM raw.latest WHERE source = 'gitlab' AND object_type = ? "
                    "AND object_key = ?",
                    [kind, key],
                ).fetchone()[0]
            )
            if kind == "mr_change":
                assert stored["changes"] == payload, key
            elif kind == "mr_approval":  # the captured state as GitLab's GraphQL answers it
                approvers = [render_user(a["user"]) for a in payload["approved_by"]]
                assert stored == {
                    "iid": str(payload["iid"]),
                    "approvedBy": {
                        "pageInfo": {"hasNextPage": False},
                        "nodes": [{"id": u["id"], "username": u["username"]} for u in approvers],
                    },
                }, key
            elif kind == "file":
                assert stored["blob_id"] == payload["blob_id"], key  # content as captured
            else:
                assert stored == payload, key
    mr_keys = {r[0] for r in table(db, "SELECT mr_key FROM chain.merge_requests")}
    assert "gitlab-data/snowflake_spend!1" in mr_keys
    assert "gitlab-org/gitlab-ee!14656" in mr_keys
    assert table(
        db, "SELECT new_path, added_lines, removed_lines FROM chain.mr_changes ORDER BY 1"
    ) == [("README", 0, 0), ("VERSION", 0, 0)]  # no line follows these hunk headers
    assert table(db, "SELECT count(*) FROM chain.mr_notes")[0][0] == len(real.expected["mr_note"])


def _refs(head: str) -> dict[str, str]:
    return {"base_sha": "b0", "head_sha": head, "start_sha": "b0"}


def test_changes_compare_with_what_this_run_handed_over_before_it_is_committed(tmp_path):
    """Whether an MR's ``/changes`` must be asked again is decided on the committed store
    overlaid with the changes this run handed over: an MR listed twice in one run
    (updated while it was read) is compared with its first delivery even while that
    still waits for the writer, and the comparison does not wait for it."""
    con = duckdb.connect(str(tmp_path / "store.duckdb"))
    RawStore(con, "gitlab", "run-0").commit(
        Batch(
            objects=[
                RawObject("merge_request", "1!5", {"iid": 5}, parts={UPDATED_AT: "t1"}),
                RawObject(
                    "mr_change", "1!5", {"changes": []}, parent_key="1!5",
                    parts={DIFF_REFS: _refs("h1")},
                ),
            ]
        )
    )  # fmt: skip
    held = HeldWriter(con, source="gitlab")
    source = GitlabSource(Connection(url="http://127.0.0.1:9", user="", token="t"), Policy())
    ingest = GitlabIngest(source, held.store, datetime.now(UTC))
    ingest.look_up_updated(["1!5"])  # as a listing page holding it does first

    def moved(head: str) -> list[str]:
        return ingest._diff_moved({"1!5": DiffRefs.of(_refs(head), *REST_REFS)})

    assert moved("h1") == [] and moved("h2") == ["1!5"]
    batch = Batch()
    ingest._add_changes("1!5", {"changes": [], "diff_refs": _refs("h2")}, batch)
    held.store.commit(batch)  # held by the writer: the committed store still says h1
    assert held.store.committed().kept_parts("mr_change", ["1!5"], DIFF_REFS) == {
        "1!5": _refs("h1")
    }
    assert moved("h2") == [] and moved("h1") == ["1!5"]
    assert not held.commits  # compared without waiting for the writer
    held.release.set()
    held.store.close()
    con.close()


class ReadsRecorded(RawStore):
    """The store, recording what it was asked of stored merge requests."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    def kept_or_stored_parts(self, object_type: str, keys: Any, *args: Any) -> dict[str, Any]:
        keys = list(keys)
        if object_type == "merge_request":
            self.asked.append(("listed", tuple(keys)))
        return super().kept_or_stored_parts(object_type, keys, *args)


def test_a_night_reads_what_is_stored_only_of_the_merge_requests_it_lists(
    handmade_ingest: tuple[Path, dict], tmp_path: Path, serve, monkeypatch
) -> None:
    """The stored ``updated_at`` of an MR is read only to compare a listed MR with it:
    the overlap window's re-listed MRs cost one look-up of theirs, a night that lists
    nothing reads nothing, and a reconciliation looks up what its listing holds."""
    monkeypatch.delenv("DRIFTGATE_POLICY", raising=False)
    db = _copy_db(handmade_ingest[0], tmp_path)
    url = serve(HANDMADE).url
    stored = _keys(db, "merge_request")
    with duckdb.connect(str(staged(db, "gitlab"))) as con:
        source = GitlabSource(Connection(url=url, user="", token="t"), Policy())
        store = ReadsRecorded(con, "gitlab", "overlap")
        result = GitlabIngest(source, store, datetime.now(UTC)).run()
        assert result.mrs_listed > 0 and result.mrs_fetched == 0 and not result.reconciled
        assert [kind for kind, _ in store.asked] == ["listed"]
        assert len(store.asked[0][1]) == result.mrs_listed and set(store.asked[0][1]) <= stored

        con.execute(
            "UPDATE raw.watermarks SET watermark = now() WHERE object_type = 'merge_request'"
        )
        store = ReadsRecorded(con, "gitlab", "quiet")
        result = GitlabIngest(source, store, datetime.now(UTC)).run()
        assert result.mr_pages == 1 and result.mrs_listed == 0
        assert store.asked == []

        con.execute("DELETE FROM raw.watermarks WHERE object_type = 'reconcile'")
        store = ReadsRecorded(con, "gitlab", "reconcile")
        result = GitlabIngest(source, store, datetime.now(UTC)).run()
        assert result.reconciled and result.mrs_fetched == 0
        assert {key for _, keys in store.asked for key in keys} == stored
