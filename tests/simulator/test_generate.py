"""generate(): determinism, counts, payload shapes per flavor, per-project differences."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path

import pytest

from dagster_project.sandbox.dataset import JSONL_FILES, Dataset
from dagster_project.sandbox.simulator import generate
from dagster_project.sandbox.simulator.clock import parse_ts
from tests.simulator.conftest import all_files, read_jsonl, truth

JIRA_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$")
UTC_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_same_seed_gives_byte_identical_datasets(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    generate(a, seed=11, flavor="server")
    generate(b, seed=11, flavor="server")
    files_a, files_b = all_files(a), all_files(b)
    assert files_a.keys() == files_b.keys()
    assert [k for k in files_a if files_a[k] != files_b[k]] == []


def test_another_seed_gives_another_organisation(tmp_path: Path, demo_cloud: Path) -> None:
    generate(tmp_path, seed=8)
    assert (tmp_path / "jira/issues.jsonl").read_bytes() != (
        demo_cloud / "jira/issues.jsonl"
    ).read_bytes()


def test_manifest_and_every_format_file(demo_cloud: Path) -> None:
    ds = Dataset(demo_cloud)
    assert ds.manifest.format == 1
    assert ds.manifest.jira_flavor == "cloud"
    assert ds.manifest.as_of == "2026-03-31T18:00:00+00:00"
    for rel in JSONL_FILES:
        assert (demo_cloud / rel).exists(), rel
        assert sum(1 for _ in ds.jsonl(rel)) > 0, rel
    assert not list(demo_cloud.glob(".truth*")), "scratch files are removed"


@pytest.mark.parametrize("n", [10, 237])
def test_issue_count_is_exact(tmp_path: Path, n: int) -> None:
    summary = generate(tmp_path, issues=n)
    assert summary.counts["issues"] == n
    assert sum(1 for _ in read_jsonl(tmp_path / "jira/issues.jsonl")) == n


def test_bad_arguments_fail_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        generate(tmp_path, scale="huge")
    with pytest.raises(ValueError, match="flavor"):
        generate(tmp_path, flavor="datacenter")
    with pytest.raises(ValueError, match="unknown situation kind 'nope'"):
        generate(tmp_path, rates={"nope": 0.1})


def test_rates_switch_a_kind_off(tmp_path: Path) -> None:
    generate(tmp_path, rates={"reopened": 0.0, "churn": 0.0})
    kinds = {e["kind"] for e in truth(tmp_path)["situations"]}
    assert "reopened" not in kinds and "churn" not in kinds
    assert "many_review_rounds" in kinds


def test_cloud_payloads(demo_cloud: Path) -> None:
    issues = list(read_jsonl(demo_cloud / "jira/issues.jsonl"))
    for issue in issues:
        f = issue["fields"]
        assert JIRA_TS.match(f["created"]) and JIRA_TS.match(f["updated"])
        assert f["description"] is None or f["description"]["type"] == "doc"
        for user in (f["creator"], f["reporter"], f["assignee"]):
            if user:
                assert "accountId" in user and "name" not in user and "key" not in user
        for h in issue["changelog"]["histories"]:
            assert "accountId" in h["author"]
    stories = [i for i in issues if i["fields"]["issuetype"]["name"] == "Story"]
    assert all(i["fields"]["parent"]["fields"]["issuetype"]["name"] == "Epic" for i in stories)
    items = [it for i in issues for h in i["changelog"]["histories"] for it in h["items"]]
    assert all("fieldId" in it for it in items if it["field"] == "status")


def test_server_payloads(demo_server: Path) -> None:
    issues = list(read_jsonl(demo_server / "jira/issues.jsonl"))
    fields = Dataset(demo_server).json("jira/fields.json")
    epic_link = next(f["id"] for f in fields if f["name"] == "Epic Link")
    for issue in issues:
        f = issue["fields"]
        assert f["description"] is None or isinstance(f["description"], str)
        assert "accountId" not in f["creator"] and {"name", "key"} <= set(f["creator"])
        assert "parent" not in f
    stories = [i for i in issues if i["fields"]["issuetype"]["name"] == "Story"]
    assert all(re.fullmatch(r"[A-Z]+-\d+", s["fields"][epic_link]) for s in stories)
    sprints = [v for i in stories for v in (i["fields"]["customfield_10400"] or [])]
    assert sprints and all(
        v.startswith("com.atlassian.greenhopper.service.sprint.Sprint@") for v in sprints
    )
    assert any("h3. " in (i["fields"]["description"] or "") for i in issues)


def test_gitlab_and_confluence_timestamps(demo_cloud: Path) -> None:
    for mr in read_jsonl(demo_cloud / "gitlab/merge_requests.jsonl"):
        assert UTC_TS.match(mr["created_at"]) and UTC_TS.match(mr["updated_at"])
    for page in read_jsonl(demo_cloud / "confluence/pages.jsonl"):
        assert UTC_TS.match(page["version"]["when"])
        assert page["body"]["storage"]["representation"] == "storage"


def test_fields_carry_clause_names_and_differ_between_projects(demo_cloud: Path) -> None:
    fields = Dataset(demo_cloud).json("jira/fields.json")
    assert all("clauseNames" in f for f in fields)
    ac_ids = {f["id"] for f in fields if f["name"] == "Acceptance Criteria"}
    assert len(ac_ids) >= 2 and all(f.startswith("customfield_") for f in ac_ids)
    assert all(f["schema"]["custom"].endswith(":textarea") for f in fields if f["id"] in ac_ids)
    used: dict[str, set[str]] = defaultdict(set)
    for issue in read_jsonl(demo_cloud / "jira/issues.jsonl"):
        project = issue["fields"]["project"]["key"]
        used[project] |= {fid for fid in ac_ids if fid in issue["fields"]}
    assert used["PAY"] != used["WEB"]
    assert not (
        {"customfield_10016", "customfield_10020"} & {f["id"] for f in fields}
    )  # not the defaults


def test_status_names_differ_between_projects(demo_cloud: Path) -> None:
    categories = {
        s["id"]: s["statusCategory"]["key"] for s in Dataset(demo_cloud).json("jira/statuses.json")
    }
    names: dict[str, set[str]] = defaultdict(set)
    for issue in read_jsonl(demo_cloud / "jira/issues.jsonl"):
        status = issue["fields"]["status"]
        assert categories[status["id"]] == status["statusCategory"]["key"]
        names[issue["fields"]["project"]["key"]].add(status["name"])
    assert "Released" in names["PAY"] and "Released" not in names["WEB"]
    assert names["PAY"] != names["WEB"]


def test_long_changelogs_exist_and_carry_situations(demo_cloud: Path) -> None:
    subjects = {
        e["subject_key"]
        for e in truth(demo_cloud)["situations"]
        if not e["kind"].endswith("compliant")
    }
    long = [
        i["key"]
        for i in read_jsonl(demo_cloud / "jira/issues.jsonl")
        if len(i["changelog"]["histories"]) > 100
    ]
    assert long
    assert set(long) & subjects


def test_changelogs_are_complete_and_ordered(demo_cloud: Path) -> None:
    for issue in read_jsonl(demo_cloud / "jira/issues.jsonl"):
        log = issue["changelog"]
        assert log["total"] == len(log["histories"]) == log["maxResults"]
        times = [parse_ts(h["created"]) for h in log["histories"]]
        assert times == sorted(times)
        assert all(t >= parse_ts(issue["fields"]["created"]) for t in times)
        ids = [int(h["id"]) for h in log["histories"]]
        assert ids == sorted(set(ids))


def test_openapi_files_at_tag_and_default_branch(demo_cloud: Path) -> None:
    specs = sorted((demo_cloud / "gitlab/files").rglob("openapi.yaml"))
    assert specs
    assert all(p.read_text().startswith("openapi: 3.0.3") for p in specs)
    refs = {p.relative_to(demo_cloud / "gitlab/files").parts[1] for p in specs}
    assert {"main"} <= refs and any(r.startswith("api-") for r in refs)


def test_five_thousand_issues_in_reasonable_time(tmp_path: Path) -> None:
    started = time.perf_counter()
    summary = generate(tmp_path, issues=5000, flavor="server", seed=3)
    elapsed = time.perf_counter() - started
    assert summary.counts["issues"] == 5000
    assert elapsed < 30, f"5,000 issues took {elapsed:.1f} s"
