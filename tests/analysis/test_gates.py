"""Gate statuses judged from history, on hand-written Jira v2/v3 payloads, Confluence
pages and merge requests: compliant, late, violated, not_applicable, waived, and the
boundaries (same minute, a requirement removed after the trigger, a waiver expiring)."""

import json
from datetime import date

import pytest

from dagster_project.lib.policy import Policy, Waiver, Waivers
from tests.analysis.handmade import Org, at, gate, rows

AC = "* Given a card, when it expires, then the customer is told"
EDGE_WIKI = "h3. Edge cases\n||Case||Expected||\n|Expired card|Inline error|\n"
EDGE_ADF = {
    "type": "doc",
    "version": 1,
    "content": [
        {"type": "heading", "attrs": {"level": 3},
         "content": [{"type": "text", "text": "Edge cases"}]},
        {"type": "table", "content": [
            {"type": "tableRow", "content": [
                {"type": "tableHeader", "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "Case"}]}]},
                {"type": "tableHeader", "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "Expected"}]}]}]},
            {"type": "tableRow", "content": [
                {"type": "tableCell", "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "Expired"}]}]},
                {"type": "tableCell", "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "Error"}]}]}]},
        ]},
    ],
}  # fmt: skip
START = [(at(days=3), "status", "Backlog", "Building")]


def ui_story(org: Org, key: str, **kw) -> None:
    kw.setdefault("labels", ("ui",))
    kw.setdefault("history", START)
    kw.setdefault("status", "Building")
    org.issue(key, "Story", **kw)


def test_compliant_late_violated_and_not_applicable(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    ui_story(org, "WEB-1", ac=AC, description=EDGE_WIKI)  # both from creation
    ui_story(
        org,
        "WEB-2",
        ac=AC,
        description=EDGE_WIKI,  # edge cases a day late
        history=[*START, (at(days=4), "description", "As a user...", EDGE_WIKI)],
    )
    ui_story(org, "WEB-3", ac=AC, description="h3. Edge cases\n* expired card\n")  # a list
    ui_story(org, "WEB-4", ac=AC, description=EDGE_WIKI, status="Backlog", history=[])
    org.issue("WEB-5", "Story", ac=AC, history=START, status="Building")  # not a UI story
    con = org.build(as_of=at(days=10))

    assert gate(con, "WEB-1")["status"] == "compliant"
    late = gate(con, "WEB-2")
    assert late["status"] == "late"
    assert late["missing"] == '["edge_case_matrix"]'
    assert '"edge_case_matrix":"2026-03-06' in late["satisfied_at"].replace(" ", "T")
    violated = gate(con, "WEB-3")
    assert violated["status"] == "violated" and violated["missing"] == '["edge_case_matrix"]'
    assert gate(con, "WEB-4")["status"] == "not_applicable"
    assert rows(
        con, "SELECT count(*) FROM analysis.gate_evaluations WHERE subject_key = 'WEB-5'"
    ) == [(0,)]


def test_same_minute_counts_as_before(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    started = at(days=3, seconds=10)
    ui_story(org, "WEB-1", ac=AC, description=EDGE_WIKI,
             history=[(started, "status", "Backlog", "Building"),
                      (at(days=3, seconds=50), "description", "x", EDGE_WIKI)])  # fmt: skip
    ui_story(org, "WEB-2", ac=AC, description=EDGE_WIKI,
             history=[(started, "status", "Backlog", "Building"),
                      (at(days=3, minutes=1, seconds=1), "description", "x", EDGE_WIKI)])  # fmt: skip
    con = org.build(as_of=at(days=10))
    assert gate(con, "WEB-1")["status"] == "compliant"
    assert gate(con, "WEB-2")["status"] == "late"


def test_requirement_removed_after_the_trigger_keeps_the_verdict_at_the_trigger(tmp_path):
    """Judged at the moment work crossed the gate: criteria present then and deleted
    afterwards leave the gate compliant; the gap shows that they are gone now."""
    org = Org(tmp_path / "db.duckdb")
    ui_story(org, "WEB-1", ac=None, description=EDGE_WIKI,
             history=[*START, (at(days=5), "Acceptance Criteria", AC, None)])  # fmt: skip
    con = org.build(as_of=at(days=10))
    assert gate(con, "WEB-1")["status"] == "compliant"
    assert ("story_without_acceptance_criteria", "WEB-1") in set(
        rows(con, "SELECT rule_id, subject_key FROM analysis.findings")
    )
    summary = rows(con, "SELECT summary FROM analysis.findings WHERE subject_key = 'WEB-1' "
                        "AND rule_id = 'story_without_acceptance_criteria'")[0][0]  # fmt: skip
    assert "was there until 2026-03-07" in summary
    # the evidence names what held until then: the span that ended last
    last_evidence, span_evidence = rows(con, """
        SELECT f.evidence->'$.last_evidence',
               (SELECT arg_max(evidence, held_until) FROM analysis.requirement_spans
                WHERE subject_key = 'WEB-1' AND requirement = 'acceptance_criteria')
        FROM analysis.findings f
        WHERE f.subject_key = 'WEB-1' AND f.rule_id = 'story_without_acceptance_criteria'
    """)[0]  # fmt: skip
    assert last_evidence is not None and json.loads(last_evidence) == json.loads(span_evidence)


def test_placeholder_criteria_do_not_count_and_v3_adf_edge_table_does(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    ui_story(org, "WEB-1", ac="TBD", description=EDGE_ADF)
    ui_story(org, "WEB-2", ac=AC, description=EDGE_ADF,
             history=[*START, (at(days=6), "Acceptance Criteria", "-", AC)])  # fmt: skip
    con = org.build(as_of=at(days=10))
    first = gate(con, "WEB-1")
    assert first["status"] == "violated"
    assert first["missing"] == '["acceptance_criteria"]'
    assert gate(con, "WEB-2")["status"] == "late"


def test_criteria_in_a_description_section_count_when_the_field_is_empty(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    description = "h3. Acceptance Criteria\n# Given a card\n# Then an error\n" + EDGE_WIKI
    ui_story(org, "DATA-1", ac=None, description=description)
    ui_story(org, "DATA-2", ac=None, description="h3. Acceptance Criteria\nTBD\n" + EDGE_WIKI)
    con = org.build(as_of=at(days=10))
    assert gate(con, "DATA-1")["status"] == "compliant"
    assert gate(con, "DATA-2")["status"] == "violated"


def test_an_issue_created_in_progress_triggers_at_creation(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    ui_story(org, "WEB-1", ac=AC, description=EDGE_WIKI, history=[
        (at(days=2), "Acceptance Criteria", None, AC)])  # fmt: skip
    con = org.build(as_of=at(days=10))
    evaluation = gate(con, "WEB-1")
    assert evaluation["status"] == "late"
    assert evaluation["triggered_at"] == at()


def test_edge_case_page_linked_before_start_satisfies_the_gate(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    ui_story(org, "WEB-1", ac=AC, description="no table")
    ui_story(org, "WEB-2", ac=AC, description="no table")
    table = "<table><tr><th>Case</th></tr><tr><td>Expired</td></tr></table>"
    org.page("501", "edge-case-matrix", [(at(days=1), f"<p>Edge cases for WEB-1</p>{table}")])
    org.page("502", "edge-case-matrix", [(at(days=1), table)])
    org.remote_link("WEB-2", "502")
    org.page("503", "edge-case-matrix", [(at(days=1), "<p>WEB-10 only</p>")])  # not WEB-1
    con = org.build(as_of=at(days=10))
    assert gate(con, "WEB-1")["status"] == "compliant"
    assert gate(con, "WEB-2")["status"] == "compliant"
    assert '"key":"501"' in gate(con, "WEB-1")["evidence"]


def integration_org(tmp_path, *, auth_approved_day: float | None, contract: bool = True):
    org = Org(tmp_path / "db.duckdb")
    org.issue("PAY-1", "Epic", labels=("integration",))
    org.issue("PAY-2", "Story", ac=AC, epic="PAY-1", labels=("integration",))
    auth = [(at(days=1), "<p>Auth model for PAY-1</p><p>Status: Draft</p>")]
    if auth_approved_day is not None:
        auth.append(
            (at(days=auth_approved_day), "<p>Auth model for PAY-1</p><p>Status: Approved</p>")
        )
    org.page("601", "auth-model", auth)
    org.page(
        "602", "runbook", [(at(days=1), "<p>PAY-1</p><h2>Dashboards</h2><p>x</p><h2>Alerts</h2>")]
    )
    paths = ("src/pay.py", "tests/contract/pay_test.py") if contract else ("src/pay.py",)
    key = org.merge_request(1, "PAY-2 settle payments", created=at(days=4), merged=at(days=6),
                            paths=paths)  # fmt: skip
    return org, key


@pytest.mark.parametrize(
    ("approved_day", "contract", "status", "missing"),
    [
        (2, True, "compliant", "[]"),
        (8, True, "late", '["auth_model_approved"]'),
        (None, True, "violated", '["auth_model_approved"]'),
        (2, False, "violated", '["contract_tests"]'),
    ],
)
def test_integration_gate_at_merge(tmp_path, approved_day, contract, status, missing):
    org, key = integration_org(tmp_path, auth_approved_day=approved_day, contract=contract)
    con = org.build(as_of=at(days=10))
    evaluation = gate(con, key, "integration_gate")
    assert (evaluation["status"], evaluation["missing"]) == (status, missing)
    assert evaluation["triggered_at"] == at(days=6)


def test_waiver_covers_until_it_expires(tmp_path):
    def policy(expires: date) -> Policy:
        return Policy(waivers=Waivers(entries=[Waiver(
            subject="shop/api!1", gate="integration_gate", owner="cto", reason="pilot",
            expires=expires)]))  # fmt: skip

    org, key = integration_org(tmp_path, auth_approved_day=None)
    con = org.build(as_of=at(days=10), policy=policy(date(2026, 3, 12)))
    waived = gate(con, key, "integration_gate")
    assert (waived["status"], waived["judged_status"]) == ("waived", "violated")
    assert '"owner":"cto"' in waived["waiver"] and not waived["waiver_expired"]
    con.close()
    org.path.unlink()
    org, key = integration_org(tmp_path, auth_approved_day=None)
    con = org.build(as_of=at(days=10), policy=policy(date(2026, 3, 11)))  # the day before
    expired = gate(con, key, "integration_gate")
    assert (expired["status"], expired["waiver_expired"]) == ("violated", True)


def test_jira_label_waives_with_its_author_as_owner(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    ui_story(org, "WEB-1", ac=None, description=EDGE_WIKI, labels=("ui", "waive-ui_gate"),
             history=[*START, (at(days=4), "labels", "ui", "ui waive-ui_gate")])  # fmt: skip
    con = org.build(as_of=at(days=10))
    evaluation = gate(con, "WEB-1")
    assert evaluation["status"] == "waived"
    assert (
        '"owner":"JIRAUSER10100"' in evaluation["waiver"] or '"owner":"ana"' in evaluation["waiver"]
    )


def test_events_after_as_of_do_not_count(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    ui_story(org, "WEB-1", ac=AC, description=EDGE_WIKI,
             history=[*START, (at(days=6), "description", "x", EDGE_WIKI)])  # fmt: skip
    ui_story(org, "WEB-2", ac=AC, description=EDGE_WIKI, status="Building",
             history=[(at(days=8), "status", "Backlog", "Building")])  # fmt: skip
    con = org.build(as_of=at(days=5))
    assert gate(con, "WEB-1")["status"] == "violated"  # the table came after as_of
    assert gate(con, "WEB-2")["status"] == "not_applicable"  # started after as_of
    assert rows(con, "SELECT DISTINCT as_of FROM analysis.gate_evaluations") == [(at(days=5),)]


def test_a_merge_request_gate_on_opening_scoped_by_target_branch(tmp_path):
    """A policy gate of another shape: merge requests into main must carry contract tests
    when they are opened; a merge request into another branch is out of scope."""
    from dagster_project.lib.policy import AppliesTo, Gate, Trigger

    gate_def = Gate(
        id="contract_on_open", title="Contract tests from the first push",
        subject="merge_request", applies_to=AppliesTo(target_branches=["main"]),
        trigger=Trigger(event="mr_opened"), requires=["contract_tests"],
    )  # fmt: skip
    org = Org(tmp_path / "db.duckdb")
    with_tests = org.merge_request(1, "PAY-1 a", created=at(days=1),
                                   paths=("src/a.py", "pacts/pay.json"))  # fmt: skip
    without = org.merge_request(2, "PAY-1 b", created=at(days=2))
    later = org.merge_request(3, "PAY-1 c", created=at(days=20))  # opened after as_of
    hotfix = org.merge_request(4, "PAY-1 d", created=at(days=2), target_branch="release/1.x")
    policy = Policy(gates=[gate_def])
    con = org.build(as_of=at(days=10), policy=policy)
    assert gate(con, with_tests, "contract_on_open")["status"] == "compliant"
    assert gate(con, without, "contract_on_open")["status"] == "violated"
    in_scope = {k for (k,) in rows(con, "SELECT subject_key FROM analysis.gate_evaluations")}
    assert later not in in_scope and hotfix not in in_scope
    assert rows(con, "SELECT DISTINCT gate_id FROM analysis.gate_evaluations") == [
        ("contract_on_open",)
    ]
