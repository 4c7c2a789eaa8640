"""Gap and drift findings, gate statuses and rework events against the simulator's
truth.json, at demo and medium scale, in both Jira flavours: precision and recall 1.0
for every kind. The product
never reads truth.json; only this test does. On failure the confusion counts per kind
are printed with examples."""

from __future__ import annotations

import duckdb
import pytest

from dagster_project.sandbox.simulator.situations import DRIFT, GAPS, REWORK

GATE_IDS = {"ui_gate", "integration_gate"}


def expected(truth: dict) -> set[tuple[str, str]]:
    def judged_here(kind: str) -> bool:
        return kind in (*GAPS, *DRIFT, *REWORK) or kind.rsplit("_", 1)[0] in GATE_IDS

    return {(s["kind"], s["subject_key"]) for s in truth["situations"] if judged_here(s["kind"])}


def found(db) -> set[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        gaps = con.execute(
            "SELECT rule_id, subject_key FROM analysis.findings "
            "WHERE kind = 'gap' OR rule_id IN (SELECT unnest(?))",
            [list(DRIFT)],
        ).fetchall()
        gates = con.execute(
            "SELECT gate_id || '_' || status, subject_key FROM analysis.gate_evaluations "
            "WHERE status <> 'not_applicable'"
        ).fetchall()
        rework = con.execute(
            "SELECT DISTINCT kind, subject_key FROM analysis.rework_events "
            "WHERE kind IN (SELECT unnest(?))",
            [list(REWORK)],
        ).fetchall()
    return set(gaps) | set(gates) | set(rework)


def confusion(exp: set, got: set) -> tuple[str, bool]:
    lines, exact = [], True
    for kind in sorted({k for k, _ in exp | got}):
        e = {s for k, s in exp if k == kind}
        g = {s for k, s in got if k == kind}
        fp, fn = sorted(g - e), sorted(e - g)
        exact &= not fp and not fn
        lines.append(f"{kind:38s} tp={len(e & g):4d} fp={len(fp):3d} fn={len(fn):3d}"
                     f"  fp: {fp[:5]}  fn: {fn[:5]}")  # fmt: skip
    return "\n".join(lines), exact


@pytest.mark.parametrize(
    ("scale", "flavor"),
    [("demo", "cloud"), ("demo", "server"), ("medium", "cloud"), ("medium", "server")],
)
def test_gaps_and_gates_equal_truth(judged_org, scale, flavor):
    org = judged_org(scale, flavor)
    exp, got = expected(org.truth), found(org.db)
    table, exact = confusion(exp, got)
    print(table)
    assert exact, f"{scale}/{flavor} differs from truth.json:\n{table}"
    kinds = {k for k, _ in exp}
    assert {"ui_gate_compliant", "ui_gate_late", "ui_gate_violated",
            "integration_gate_late", "integration_gate_violated"} <= kinds  # fmt: skip
    assert {*GAPS, *DRIFT, *REWORK} <= kinds  # every gap, drift and rework kind exercised


def test_a_clean_story_yields_no_gap_and_a_compliant_gate(judged_org):
    org = judged_org("demo", "cloud")
    compliant = {k for kind, k in expected(org.truth) if kind == "ui_gate_compliant"}
    named = {s["subject_key"] for s in org.truth["situations"]
             if s["kind"] != "ui_gate_compliant"}  # fmt: skip
    clean = sorted(compliant - named)
    assert clean
    with duckdb.connect(str(org.db), read_only=True) as con:
        findings = con.execute(
            "SELECT count(*) FROM analysis.findings WHERE subject_key IN (SELECT unnest(?))",
            [clean],
        ).fetchone()[0]
        statuses = con.execute(
            "SELECT DISTINCT status FROM analysis.gate_evaluations "
            "WHERE subject_key IN (SELECT unnest(?))",
            [clean],
        ).fetchall()
    assert findings == 0
    assert statuses == [("compliant",)]


def test_every_finding_and_evaluation_carries_clickable_evidence(judged_org):
    org = judged_org("demo", "server")
    with duckdb.connect(str(org.db), read_only=True) as con:
        missing_url = con.execute(
            "SELECT count(*) FROM analysis.findings WHERE evidence->>'$.subject.url' IS NULL "
            "OR evidence->>'$.subject.raw_id' IS NULL OR summary IS NULL"
        ).fetchone()[0]
        urls = con.execute(
            "SELECT subject_type, evidence->>'$.subject.url' FROM analysis.findings ORDER BY ALL"
        ).fetchall()
        satisfied = con.execute(
            "SELECT count(*) FROM analysis.gate_evaluations, "
            "json_each(evidence, '$.requirements') r "
            "WHERE (r.value->>'$.satisfied_at') IS NOT NULL AND (r.value->>'$.evidence') IS NULL"
        ).fetchone()[0]
    assert missing_url == 0
    where = {"issue": "/browse/", "merge_request": "/merge_requests/", "page": "/wiki/"}
    assert urls and all(u.startswith("http") and where[t] in u for t, u in urls)
    assert satisfied == 0  # every met requirement names what met it
