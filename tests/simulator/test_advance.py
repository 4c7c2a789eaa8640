"""advance(): a small, dated step forward that keeps truth exact and leaves the rest alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dagster_project.sandbox.dataset import Dataset
from dagster_project.sandbox.simulator import advance, generate
from dagster_project.sandbox.simulator.clock import parse_ts
from tests.simulator.conftest import all_files, truth
from tests.simulator.reference import Reference

KEYS = {
    "jira/issues.jsonl": (lambda o: o["key"], lambda o: o["fields"]["updated"]),
    "gitlab/merge_requests.jsonl": (
        lambda o: (o["project_id"], o["iid"]),
        lambda o: o["updated_at"],
    ),
    "confluence/pages.jsonl": (lambda o: o["id"], lambda o: o["version"]["when"]),
}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("advance_base")
    generate(out, issues=800, seed=5)
    return out


def _lines(root: Path, rel: str) -> dict:
    key, _ = KEYS[rel]
    out = {}
    with (root / rel).open("rb") as fh:
        for line in fh:
            out[key(json.loads(line))] = line
    return out


def test_one_day_touches_a_few_percent_and_only_those_change(base: Path, tmp_path: Path) -> None:
    ds = shutil.copytree(base, tmp_path / "ds")
    before = {rel: _lines(ds, rel) for rel in KEYS}
    old_as_of = parse_ts(Dataset(ds).manifest.as_of)
    n_truth = len(truth(ds)["situations"])

    summary = advance(ds, days=1, seed=2)

    new_as_of = parse_ts(Dataset(ds).manifest.as_of)
    assert new_as_of - old_as_of == parse_ts("2026-01-02T00:00:00Z") - parse_ts(
        "2026-01-01T00:00:00Z"
    )
    changed = total = 0
    for rel, (_key, updated) in KEYS.items():
        after = _lines(ds, rel)
        assert set(before[rel]) <= set(after), f"{rel}: objects disappeared"
        for k, line in before[rel].items():
            total += 1
            obj = json.loads(after[k])
            if after[k] == line:
                assert parse_ts(updated(obj)) <= old_as_of
            else:
                changed += 1
                assert old_as_of < parse_ts(updated(obj)) <= new_as_of, (rel, k)
        for k in set(after) - set(before[rel]):
            assert old_as_of < parse_ts(updated(json.loads(after[k]))) <= new_as_of
    assert 0.007 <= changed / total <= 0.04, f"{changed} of {total} objects touched"
    assert sum(summary.touched.values()) >= changed
    t = truth(ds)
    assert len(t["situations"]) > n_truth, "advance records the situations it creates"
    assert t["as_of"] == new_as_of.isoformat() and t["advanced"][-1]["days"] == 1


def test_truth_stays_exact_over_several_advances(base: Path, tmp_path: Path) -> None:
    ds = shutil.copytree(base, tmp_path / "ds")
    advance(ds, days=3, seed=1)
    advance(ds, days=2, seed=9)
    expected = {(e["kind"], e["subject_key"]) for e in truth(ds)["situations"]}
    seen = set(Reference(ds).situations())
    assert sorted(expected - seen) == [] and sorted(seen - expected) == []
    new = [e for e in truth(ds)["situations"] if e["details"].get("advanced")]
    assert {"reopened", "scope_changed_after_start", "prd_edited_after_stories"} <= {
        e["kind"] for e in new
    }


def test_a_merge_request_diff_follows_its_pushes(base: Path, tmp_path: Path) -> None:
    """GitLab's ``diff_refs`` end at the MR's head: a push moves both, a note neither
    (the ingestion asks for an MR's changes again only when the refs moved)."""
    ds = shutil.copytree(base, tmp_path / "ds")
    rel = "gitlab/merge_requests.jsonl"
    advance(ds, days=3, seed=3)  # MRs opened now see pushes and reviews later
    before = {k: json.loads(line) for k, line in _lines(ds, rel).items()}
    assert all(m["diff_refs"]["head_sha"] == m["sha"] for m in before.values())

    advance(ds, days=4, seed=4)

    after = {k: json.loads(line) for k, line in _lines(ds, rel).items()}
    assert all(m["diff_refs"]["head_sha"] == m["sha"] for m in after.values())
    updated = [k for k in before if after[k]["updated_at"] != before[k]["updated_at"]]
    pushed = [k for k in updated if after[k]["sha"] != before[k]["sha"]]
    assert 0 < len(pushed) < len(updated)  # most updates are notes, approvals, merges
    for k in updated:
        assert after[k]["diff_refs"]["base_sha"] == before[k]["diff_refs"]["base_sha"]


def test_same_seed_same_dataset_same_result(base: Path, tmp_path: Path) -> None:
    a = shutil.copytree(base, tmp_path / "a")
    b = shutil.copytree(base, tmp_path / "b")
    advance(a, days=2, seed=4)
    advance(b, days=2, seed=4)
    fa, fb = all_files(a), all_files(b)
    assert fa.keys() == fb.keys()
    assert [k for k in fa if fa[k] != fb[k]] == []


def test_refuses_datasets_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(
        '{"format": 1, "name": "x", "as_of": "2026-01-01T00:00:00+00:00"}'
    )
    with pytest.raises(ValueError, match="truth.json"):
        advance(tmp_path, days=1)
    with pytest.raises(ValueError, match="days"):
        advance(tmp_path, days=0)
