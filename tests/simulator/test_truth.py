"""truth.json: every entry points at real objects, every kind is visible in raw payloads,
and nothing visible is missing from truth (checked with an independent reading)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dagster_project.sandbox.simulator.clock import parse_ts
from dagster_project.sandbox.simulator.situations import ALL_KINDS
from tests.simulator.conftest import read_jsonl, truth
from tests.simulator.reference import Reference


@pytest.fixture(scope="module", params=["cloud", "server"])
def dataset(request: pytest.FixtureRequest, demo_cloud: Path, demo_server: Path) -> Path:
    return demo_cloud if request.param == "cloud" else demo_server


@pytest.fixture(scope="module")
def ref(dataset: Path) -> Reference:
    return Reference(dataset)


def test_every_kind_appears_at_demo_scale(dataset: Path) -> None:
    kinds = {e["kind"] for e in truth(dataset)["situations"]}
    assert set(ALL_KINDS) - kinds == set()


def test_truth_entries_point_at_existing_objects(dataset: Path, ref: Reference) -> None:
    t = truth(dataset)
    assert t["counts"] == {
        k: sum(1 for e in t["situations"] if e["kind"] == k) for k in t["counts"]
    }
    for e in t["situations"]:
        assert e["kind"] in ALL_KINDS
        where = {"issue": ref.issues, "merge_request": ref.mrs, "page": ref.pages}[
            e["subject_type"]
        ]
        assert e["subject_key"] in where, e


def test_truth_equals_what_the_payloads_show(dataset: Path, ref: Reference) -> None:
    expected = {(e["kind"], e["subject_key"]) for e in truth(dataset)["situations"]}
    seen = set(ref.situations())
    assert sorted(expected - seen) == [], "injected but not visible"
    assert sorted(seen - expected) == [], "visible but not in truth"


def test_clean_chains_are_the_majority(dataset: Path, ref: Reference) -> None:
    flagged = {
        e["subject_key"]
        for e in truth(dataset)["situations"]
        if not e["kind"].endswith("_compliant")
    }
    issues_flagged = [k for k in ref.issues if k in flagged]
    mrs_flagged = [r for r in ref.mrs if r in flagged]
    assert len(issues_flagged) < 0.4 * len(ref.issues)
    assert len(mrs_flagged) < 0.3 * len(ref.mrs)


def _entries(dataset: Path, kind: str) -> list[dict]:
    return [e for e in truth(dataset)["situations"] if e["kind"] == kind]


def test_ui_gate_late_shows_the_requirement_arriving_after_work_started(
    dataset: Path, ref: Reference
) -> None:
    for e in _entries(dataset, "ui_gate_late"):
        issue = ref.issues[e["subject_key"]]
        start = ref.start(issue)
        assert start is not None
        late = max(t for t in (ref.ac_at(issue), ref.edge_at(issue)) if t is not None)
        assert late > start
        if "acceptance_criteria" in e["details"]["missing_at_trigger"]:
            ac_changes = [
                at for at, it in ref.histories(issue) if it["field"] == "Acceptance Criteria"
            ]
            assert ac_changes and min(ac_changes) > start


def test_reopened_issues_go_from_done_back(dataset: Path, ref: Reference) -> None:
    for e in _entries(dataset, "reopened"):
        items = [
            it for _, it in ref.histories(ref.issues[e["subject_key"]]) if it["field"] == "status"
        ]
        assert any(ref.cats[it["from"]] == "done" and ref.cats[it["to"]] != "done" for it in items)


def test_done_in_jira_while_the_merge_request_is_open(dataset: Path, ref: Reference) -> None:
    for e in _entries(dataset, "jira_done_mr_open"):
        assert ref.category(ref.issues[e["subject_key"]]) == "done"
        assert any(ref.mrs[r]["state"] == "opened" for r in e["details"]["merge_requests"])
        assert all(e["subject_key"] in ref.mr_keys[r] for r in e["details"]["merge_requests"])


def test_epics_without_prd_have_no_prd_page(dataset: Path, ref: Reference) -> None:
    entries = _entries(dataset, "epic_without_prd")
    assert entries
    prd_pages = [
        p
        for p in read_jsonl(dataset / "confluence/pages.jsonl")
        if any(lab["name"] == "prd" for lab in p["metadata"]["labels"]["results"])
    ]
    for e in entries:
        assert not [p for p in prd_pages if e["subject_key"] in ref.mentions_of(p["id"])]
        assert ref.pages_for(e["subject_key"], "product-brief"), "the rest of the chain is there"


def test_bugs_traced_within_thirty_days(dataset: Path, ref: Reference) -> None:
    for e in _entries(dataset, "bug_traced_to_story"):
        bug, story = ref.issues[e["subject_key"]], ref.issues[e["details"]["story"]]
        gap = parse_ts(bug["fields"]["created"]) - ref.first_done(story)
        assert timedelta(0) <= gap <= timedelta(days=30)


def test_many_review_rounds_are_visible_in_system_notes(dataset: Path, ref: Reference) -> None:
    for e in _entries(dataset, "many_review_rounds"):
        bodies = [
            n["body"] for n in sorted(ref.notes[e["subject_key"]], key=lambda n: n["created_at"])
        ]
        first_review = next(
            i
            for i, b in enumerate(bodies)
            if b in ("requested changes", "approved this merge request")
        )
        assert sum(1 for b in bodies[first_review:] if b.startswith("added ")) > 2


def test_churn_rewrites_lines_merged_less_than_21_days_before(
    dataset: Path, ref: Reference
) -> None:
    for e in _entries(dataset, "churn"):
        later, earlier = ref.mrs[e["subject_key"]], ref.mrs[e["details"]["rewrites"]]
        assert parse_ts(later["merged_at"]) - parse_ts(earlier["merged_at"]) < timedelta(days=21)
        diffs = [
            c["diff"]
            for c in ref.changes[e["subject_key"]]
            if c["new_path"] == e["details"]["path"]
        ]
        a, b = e["details"]["lines"]
        assert diffs and diffs[0].startswith(f"@@ -{a},{b - a + 1} ")
