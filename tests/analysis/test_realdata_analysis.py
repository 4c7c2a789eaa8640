"""The analysis on real Jira payloads (Cloud and Server, captured from public instances):
the whole graph runs on them, and its tables agree with what the payloads say."""

from __future__ import annotations

import pytest

from dagster_project.lib.policy import DRIFT_RULE_IDS, Policy
from tests.analysis.conftest import judge
from tests.ingest.harness import table
from tests.realdata_jira import CLOUD, SERVER, build, histories

pytestmark = pytest.mark.realdata
AS_OF = "2030-01-01T00:00:00+00:00"  # after every captured event


@pytest.fixture(scope="module", params=[CLOUD, SERVER])
def judged(request, real_fixtures, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"real-{request.param}")
    dataset = build(real_fixtures, root / "dataset", request.param)
    db = root / "driftgate.duckdb"
    judge(dataset.root, db, as_of=AS_OF)
    return dataset, db


def test_every_real_issue_is_a_subject_with_its_status_category(judged):
    dataset, db = judged
    categories = {s["id"]: s["statusCategory"]["key"] for s in dataset.statuses}
    subjects = dict(table(db, "SELECT subject_key, status_category FROM analysis.subjects "
                              "WHERE subject_type = 'issue'"))  # fmt: skip
    assert set(subjects) == set(dataset.issues)
    for key, issue in dataset.issues.items():
        assert subjects[key] == categories.get(issue["fields"]["status"]["id"],
                                               issue["fields"]["status"]["statusCategory"]["key"])  # fmt: skip


def test_reopens_equal_the_done_to_other_transitions_in_the_changelogs(judged):
    dataset, db = judged
    categories = {s["id"]: s["statusCategory"]["key"] for s in dataset.statuses}
    expected = sorted(
        key
        for key, issue in dataset.issues.items()
        for h in histories(issue)
        for item in h["items"]
        if item["field"] == "status"
        and categories.get(item["from"]) == "done"
        and categories.get(item["to"]) not in ("done", None)
    )
    found = sorted(k for (k,) in table(db, "SELECT subject_key FROM analysis.rework_events "
                                           "WHERE kind = 'reopened'"))  # fmt: skip
    assert found == expected


def test_findings_and_gates_are_well_formed(judged):
    dataset, db = judged
    policy = Policy()
    rules = {r.id for r in policy.gap_rules} | set(DRIFT_RULE_IDS)
    found = table(db, "SELECT rule_id, subject_key, summary, evidence->>'$.subject.url' "
                      "FROM analysis.findings")  # fmt: skip
    types = {i["fields"]["issuetype"]["name"] for i in dataset.issues.values()}
    # stories and epics are judged by the default rules (the Server capture has only bugs)
    assert bool(found) == bool(types & {"Story", "Epic"})
    assert all(rule in rules and summary and url.endswith(key) for rule, key, summary, url in found
               if url and not key.isdigit())  # fmt: skip
    stories = {k for k, i in dataset.issues.items() if i["fields"]["issuetype"]["name"] == "Story"}
    no_ac = {k for (k,) in table(db, "SELECT subject_key FROM analysis.findings "
                                     "WHERE rule_id = 'story_without_acceptance_criteria'")}  # fmt: skip
    with_ac = {k for (k,) in table(db, "SELECT DISTINCT subject_key FROM analysis.requirement_spans "
                                       "WHERE requirement = 'acceptance_criteria' AND held_until IS NULL")}  # fmt: skip
    assert no_ac == stories - with_ac
    statuses = table(db, "SELECT DISTINCT status FROM analysis.gate_evaluations")
    assert {s for (s,) in statuses} <= {"compliant", "late", "violated", "not_applicable", "waived"}
    as_ofs = table(db, "SELECT DISTINCT as_of FROM analysis.subjects")
    assert [a.isoformat()[:10] for (a,) in as_ofs] == ["2030-01-01"]
