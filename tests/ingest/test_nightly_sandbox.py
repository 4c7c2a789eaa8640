"""The whole nightly job on a generated organisation: complete, cheap when nothing changed,
incremental after `sandbox advance`, and unharmed by a SIGKILL or by faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from dagster_project.lib.staging import staging_dir
from dagster_project.sandbox.emulator import server
from dagster_project.sandbox.simulator import advance, generate
from tests.conftest import sandbox_stats
from tests.ingest.harness import copy_dataset, kill_midway, materialize, table

DATASET_FILES = {
    ("jira", "issue"): "jira/issues.jsonl",
    ("gitlab", "merge_request"): "gitlab/merge_requests.jsonl",
    ("gitlab", "commit"): "gitlab/commits.jsonl",
    ("gitlab", "deployment"): "gitlab/deployments.jsonl",
    ("confluence", "page"): "confluence/pages.jsonl",
    ("confluence", "page_version"): "confluence/page_versions.jsonl",
}
CHAIN_TABLES = (
    "work_items",
    "status_transitions",
    "field_changes",
    "merge_requests",
    "mr_notes",
    "commits",
    "pages",
    "page_versions",
    "links",
)


@pytest.fixture(scope="module")
def organisation(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("org") / "demo"
    generate(root, seed=11, issues=60, flavor="cloud")
    return root


@pytest.fixture(scope="module")
def served(organisation):
    """One emulator for the module, so payload self links stay identical between runs."""
    running = server.start(str(organisation))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def reference(served, tmp_path_factory) -> Path:
    """An uninterrupted, fault-free full nightly: what every other run must equal."""
    db = tmp_path_factory.mktemp("reference") / "dg.duckdb"
    materialize(served.url, db, "*")
    return db


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def chain_state(db: Path) -> dict[str, list[tuple]]:
    return {
        # raw_id numbers rows per database; web_url carries the server's address
        name: table(
            db,
            f"SELECT COLUMNS(lambda c: c NOT IN ('raw_id', 'web_url')) FROM chain.{name} "  # noqa: S608
            "ORDER BY ALL",
        )
        if name != "links"
        else table(db, "SELECT * FROM chain.links ORDER BY ALL")
        for name in CHAIN_TABLES
    }


def completeness(db: Path) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    rows = table(
        db,
        "SELECT source, object_type, expected, stored, quarantined, missing "
        "FROM analysis.ingest_completeness",
    )
    return {(s, t): (e, st, q, m) for s, t, e, st, q, m in rows}


def test_full_nightly_stores_the_whole_organisation(organisation, reference):
    found = completeness(reference)
    for (source, kind), rel in DATASET_FILES.items():
        expected = len(lines(organisation / rel))
        assert found[(source, kind)] == (expected, expected, 0, 0), (source, kind)
    assert all(m == 0 and q == 0 for (_, _, q, m) in found.values())
    report = (reference.parent / "reports" / "latest.html").read_text()
    assert "Complete:" in report


def test_server_flavour_stores_every_issue(serve, tmp_path, organisation):
    emulator = serve(organisation, jira_flavor="server")
    db = tmp_path / "dg.duckdb"
    materialize(emulator.url, db, ['key:"raw/jira"', 'key:"chain/work_items"'])
    keys = {json.loads(line)["key"] for line in lines(organisation / "jira/issues.jsonl")}
    assert {k for (k,) in table(db, "SELECT issue_key FROM chain.work_items")} == keys
    assert table(db, "SELECT count(*) FROM raw.quarantine") == [(0,)]


def remote_link_items(line: str) -> tuple[str, list]:
    issue = json.loads(line)
    return issue["key"], [
        (h["id"], item)
        for h in issue["changelog"]["histories"]
        for item in h["items"]
        if item["field"] == "RemoteIssueLink"
    ]


def relinked(before: set[str], issues: Path) -> int:
    """Issues whose changed line holds other RemoteIssueLink items than before."""
    old = dict(map(remote_link_items, before))
    changed = (remote_link_items(line) for line in set(lines(issues)) - before)
    return sum(1 for key, items in changed if items != old.get(key, []))


def test_nightly_incremental_after_advance_equals_a_fresh_ingest(
    serve, tmp_path, organisation, monkeypatch
):
    data = copy_dataset(organisation, tmp_path / "data")
    db = tmp_path / "dg.duckdb"
    # the first night and its re-run judged at one moment (else each run's start)
    as_of = json.loads((data / "manifest.json").read_text())["as_of"]
    monkeypatch.setenv("DRIFTGATE_AS_OF", as_of)
    first = serve(data)
    materialize(first.url, db, "*")
    first.stop()
    rows_before = table(db, "SELECT count(*) FROM raw.objects")[0][0]

    # Nothing changed: a handful of requests, no new raw row. The same port keeps the
    # self links inside payloads identical, as a real server's address would be.
    same = serve(data, port=first.port)
    result = materialize(same.url, db, "*")
    quiet = sandbox_stats(same.url)["requests"]
    same.stop()
    assert sum(quiet.values()) <= 33, quiet  # three of them check each source answers
    assert table(db, "SELECT count(*) FROM raw.objects")[0][0] == rows_before
    # nothing the analysis judges changed, judged at the same moment: every table is
    # kept but the one reading the sources' listings, which each night records anew
    kept = {}
    for event in result.get_asset_materialization_events():
        done = event.event_specific_data.materialization
        if done.asset_key.path[0] == "analysis":
            kept[done.asset_key.path[1]] = done.metadata["kept_as_it_was"].value
    assert {table for table, was_kept in kept.items() if not was_kept} == {"ingest_completeness"}
    monkeypatch.delenv("DRIFTGATE_AS_OF")

    before = {rel: set(lines(data / rel)) for rel in DATASET_FILES.values()}
    advance(data, days=1, seed=3)
    changed = {rel: len(set(lines(data / rel)) - before[rel]) for rel in before}
    assert sum(changed.values()) > 0

    moved = serve(data, port=first.port)
    materialize(moved.url, db, "*")
    stats = sandbox_stats(moved.url)
    new_rows = dict(
        table(
            db,
            "SELECT source || '/' || object_type, count(*) FROM raw.objects WHERE run_id = "
            "(SELECT run_id FROM raw.objects ORDER BY raw_id DESC LIMIT 1) GROUP BY 1",
        )
    )
    for (source, kind), rel in DATASET_FILES.items():
        assert new_rows.get(f"{source}/{kind}", 0) == changed[rel], (source, kind)
    # Remote links are asked for only where the changelog shows a remote-link change.
    remote_link_calls = sum(n for e, n in stats["by_endpoint"].items() if "remotelink" in e)
    assert remote_link_calls == relinked(before["jira/issues.jsonl"], data / "jira/issues.jsonl")

    fresh = tmp_path / "fresh.duckdb"
    materialize(moved.url, fresh, "*")
    assert chain_state(db) == chain_state(fresh)


def test_killed_nightly_resumes_to_the_same_state(served, reference, tmp_path):
    db = tmp_path / "killed.duckdb"
    requests.delete(f"{served.url}/_sandbox/stats", timeout=5)
    kill_midway(served.url, db, "*", ready=lambda stats: sum(stats["requests"].values()) >= 120)
    assert staging_dir(db).is_dir()  # it died with part of the work committed

    materialize(served.url, db, "*")
    assert completeness(db) == completeness(reference)
    assert chain_state(db) == chain_state(reference)
    twice = table(
        db,
        "SELECT object_key FROM raw.objects GROUP BY source, object_type, "
        "object_key, content_hash HAVING count(*) > 1",
    )
    assert twice == []


def test_faults_leave_the_nightly_result_unchanged(serve, tmp_path, organisation, reference):
    faulty = serve(
        organisation,
        faults="429=0.05,5xx=0.04,burst=2,reset=0.02,truncate=0.03,retry_after=0,seed=9",
    )
    faulty_db = tmp_path / "faulty.duckdb"
    materialize(faulty.url, faulty_db, "*", max_retries=10)
    injected = sandbox_stats(faulty.url)["faults"]
    assert {"429", "5xx", "reset", "truncate"} <= set(injected), injected
    assert completeness(faulty_db) == completeness(reference)
    assert chain_state(faulty_db) == chain_state(reference)


def test_truth_is_not_served(serve, organisation):
    """truth.json sits beside the dataset for scoring; no API exposes it."""
    emulator = serve(organisation)
    assert json.loads((organisation / "truth.json").read_text())
    assert requests.get(f"{emulator.url}/truth.json", timeout=5).status_code == 404


def test_fields_sharing_a_name_are_all_read(organisation, reference):
    """Projects with their own "Acceptance Criteria" field (another id, the same name)."""
    fields = json.loads((organisation / "jira" / "fields.json").read_text())
    ac_ids = {f["id"] for f in fields if f["name"] == "Acceptance Criteria"}
    assert len(ac_ids) > 1  # the organisation really has several
    with_ac = {
        issue["key"]
        for issue in map(json.loads, lines(organisation / "jira/issues.jsonl"))
        if any(issue["fields"].get(i) for i in ac_ids)
    }
    stored = {
        k
        for (k,) in table(
            reference,
            "SELECT issue_key FROM chain.work_items WHERE acceptance_criteria IS NOT NULL",
        )
    }
    assert with_ac and stored == with_ac
