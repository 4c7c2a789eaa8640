"""Drift rules on hand-written payloads: material vs typo-level requirement edits,
structural vs cosmetic spec changes, scope changes after work started, and status
drift across Jira and GitLab with custom status names (Backlog / Building / Shipped)."""

import json

from dagster_project.lib.policy import Drift, DriftRule, Policy, Waiver, Waivers
from tests.analysis.handmade import Org, at, rows

AC = "* Given a card, when it expires, then the customer is told"
START = [(at(days=3), "status", "Backlog", "Building")]
SHIP = [*START, (at(days=6), "status", "Building", "Shipped")]


def findings(con, rule: str) -> dict[str, dict]:
    found = rows(con, "SELECT subject_key, severity, summary, evidence, waived FROM "
                      "analysis.findings WHERE rule_id = ?", [rule])  # fmt: skip
    return {k: {"severity": s, "summary": m, "evidence": json.loads(e), "waived": w}
            for k, s, m, e, w in found}  # fmt: skip


PRD_V1 = ("<p>Status: Draft</p><h2>Goals</h2><p>Refunds within a day.</p>"
          "<h2>Requirements</h2><table><tr><td>R1</td><td>Refund a card payment</td></tr></table>"
          "<p>PAY-1</p>")  # fmt: skip
PRD_APPROVED = PRD_V1.replace("Status: Draft", "Status: Approved")


def prd_org(tmp_path, late_body: str) -> Org:
    org = Org(tmp_path / "db.duckdb")
    org.issue("PAY-1", "Epic")
    org.issue("PAY-2", "Story", ac=AC, epic="PAY-1", created=at(days=2))
    org.issue("PAY-3", "Story", ac=AC, epic="PAY-1", created=at(days=9))  # after the edit
    org.page("700", "prd", [(at(days=0), PRD_V1), (at(days=1), PRD_APPROVED),
                            (at(days=5), late_body)])  # fmt: skip
    return org


def test_a_material_prd_edit_after_stories_is_drift_with_its_sections(tmp_path):
    late = PRD_APPROVED.replace(
        "</table>", "<tr><td>R2</td><td>Refund a bank transfer in bulk</td></tr></table>"
    )
    con = prd_org(tmp_path, late).build(as_of=at(days=10))
    found = findings(con, "prd_edited_after_stories")
    assert list(found) == ["700"]
    evidence = found["700"]["evidence"]
    assert evidence["compared"]["from_version"] == 2 and evidence["compared"]["to_version"] == 3
    assert evidence["sections"] == [
        {"heading": "Requirements", "before": None, "after": "R2 | Refund a bank transfer in bulk"}
    ]
    assert [s["key"] for s in evidence["affected_stories"]] == ["PAY-2"]  # PAY-3 came later
    assert found["700"]["severity"] == "high"


def test_typo_whitespace_and_approval_edits_are_not_drift(tmp_path):
    late = (
        PRD_APPROVED.replace("within a day", "within  a  day ")
        .replace("Status: Approved", "Status: Approved again")
        .replace("Refund a card payment", "Refund a crad payment")
    )
    con = prd_org(tmp_path, late).build(as_of=at(days=10))
    assert findings(con, "prd_edited_after_stories") == {}


def test_a_prd_edit_after_as_of_does_not_count(tmp_path):
    late = PRD_APPROVED.replace(
        "</table>", "<tr><td>R2</td><td>Bulk refunds by file</td></tr></table>"
    )
    con = prd_org(tmp_path, late).build(as_of=at(days=4))
    assert findings(con, "prd_edited_after_stories") == {}


SPEC = """openapi: 3.0.3
info: {title: Payments, version: 1.0.0}
paths:
  /payments/{id}:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Payment'}
    delete:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses: {"204": {description: gone}}
components:
  schemas:
    Payment:
      type: object
      required: [id, amount]
      properties: {id: {type: string}, amount: {type: integer}}
"""
REFORMATTED = json.dumps(
    {
        "components": {"schemas": {"Payment": {"properties": {"amount": {"type": "integer"},
                                                              "id": {"type": "string"}},
                                               "required": ["amount", "id"], "type": "object"}}},
        "paths": {"/payments/{paymentId}": {
            "delete": {"responses": {"204": {"description": "deleted"}},
                       "parameters": [{"name": "paymentId", "in": "path", "required": True,
                                       "schema": {"type": "string"}}]},
            "get": {"responses": {"200": {"description": "the payment", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Payment"}}}}},
                    "parameters": [{"name": "paymentId", "in": "path", "required": True,
                                    "schema": {"type": "string"}}]}}},
        "info": {"version": "1.0.0", "title": "Payments (renamed)"},
        "openapi": "3.0.3",
    },
    indent=1,
)  # fmt: skip
PATH = "api/payments/openapi.yaml"


def spec_org(tmp_path, current: str) -> Org:
    org = Org(tmp_path / "db.duckdb")
    org.issue("PAY-1", "Epic", labels=("api",))
    org.merge_request(1, "PAY-1: payments API contract", created=at(days=1), merged=at(days=2),
                      paths=(PATH,))  # fmt: skip
    org.file("api-payments-v1.0.0", PATH, SPEC)
    org.file("main", PATH, current)
    return org


def test_a_reformatted_and_reordered_spec_is_not_drift(tmp_path):
    con = spec_org(tmp_path, REFORMATTED).build(as_of=at(days=10))
    assert findings(con, "spec_drift_from_approved") == {}


def test_a_removed_operation_is_breaking_spec_drift_on_the_epic(tmp_path):
    current = SPEC.replace(
        "    delete:\n      parameters: [{name: id, in: path, required: true, schema: {type: string}}]\n"
        '      responses: {"204": {description: gone}}\n',
        "",
    )
    con = spec_org(tmp_path, current).build(as_of=at(days=10))
    found = findings(con, "spec_drift_from_approved")
    assert list(found) == ["PAY-1"]
    assert found["PAY-1"]["severity"] == "critical"
    spec = found["PAY-1"]["evidence"]["specs"][0]
    assert (spec["approved_ref"], spec["ref"], spec["path"]) == (
        "api-payments-v1.0.0",
        "main",
        PATH,
    )
    assert [(c["category"], c["breaking"], c["location"]) for c in spec["changes"]] == [
        ("operation_removed", True, "DELETE /payments/{id}")
    ]
    assert spec["merge_requests"][0]["key"] == "shop/api!1"


def test_an_unreadable_spec_is_a_finding_with_its_reason(tmp_path):
    con = spec_org(tmp_path, "openapi: [3.0\n  paths: {").build(as_of=at(days=10))
    found = findings(con, "spec_drift_from_approved")
    assert "could not be read" in found["PAY-1"]["summary"]
    assert found["PAY-1"]["evidence"]["specs"][0]["error"].startswith("current spec")


def test_scope_changes_after_work_started_with_before_and_after(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    desc_before = "h3. Acceptance Criteria\n* Given a card\nh3. Notes\nold"
    org.issue("PAY-5", "Story", ac=AC, status="Building", history=[
        (at(days=1), "summary", "Refunds", "Refunds v1"),  # before the start: not drift
        *START,
        (at(days=4), "Story Points", "3", "8"),
        (at(days=5), "description", desc_before, desc_before.replace("old", "new notes")),
    ])  # fmt: skip
    org.issue("PAY-6", "Story", ac=AC, status="Building", history=[
        *START, (at(days=4), "description", desc_before,
                 desc_before.replace("* Given a card", "* Given a card or a wallet"))])  # fmt: skip
    org.issue("PAY-7", "Story", ac=AC, status="Backlog", history=[
        (at(days=4), "summary", "a", "b")])  # never started  # fmt: skip
    con = org.build(as_of=at(days=10))
    found = findings(con, "scope_changed_after_start")
    assert sorted(found) == ["PAY-5", "PAY-6"]
    changes = found["PAY-5"]["evidence"]["changes"]
    assert [(c["field"], c["before"], c["after"]) for c in changes] == [("story_points", "3", "8")]
    assert [c["field"] for c in found["PAY-6"]["evidence"]["changes"]] == ["acceptance_criteria"]


def test_status_drift_across_jira_and_gitlab(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    org.issue("WEB-1", "Epic", status="Shipped", history=SHIP)
    org.issue("WEB-2", "Story", ac=AC, epic="WEB-1", status="Shipped", history=SHIP)
    org.issue("WEB-3", "Story", ac=AC, epic="WEB-1", status="Building", history=START)
    org.issue("WEB-4", "Story", ac=AC, epic="WEB-1", status="Shipped", history=SHIP)
    org.issue("WEB-5", "Story", ac=AC, epic="WEB-1")  # Backlog, never started
    org.issue("WEB-6", "Bug", status="Shipped", history=SHIP)  # no merge request at all
    org.merge_request(1, "WEB-2 checkout", created=at(days=3))  # still open
    org.merge_request(2, "WEB-4 wallet", created=at(days=3), closed=at(days=5))
    org.merge_request(3, "WEB-5 early work", created=at(days=1), merged=at(days=2))
    org.merge_request(4, "WEB-3 in flight", created=at(days=4))
    con = org.build(as_of=at(days=10))
    assert list(findings(con, "jira_done_mr_open")) == ["WEB-2"]
    assert list(findings(con, "jira_done_mr_closed_unmerged")) == ["WEB-4"]
    assert list(findings(con, "mr_merged_issue_not_started")) == ["shop/api!3"]
    assert list(findings(con, "done_without_mr")) == ["WEB-6"]
    epic = findings(con, "epic_done_children_open")
    assert list(epic) == ["WEB-1"]
    assert [c["key"] for c in epic["WEB-1"]["evidence"]["open_children"]] == ["WEB-3", "WEB-5"]


def test_rules_switch_off_and_waive_by_policy(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    org.issue("WEB-6", "Bug", status="Shipped", history=SHIP)
    org.issue("WEB-7", "Bug", status="Shipped", history=SHIP)
    off = Policy(drift=Drift(done_without_mr={"severity": "low", "enabled": False}))
    waiver = Waiver(subject="WEB-6", rule="done_without_mr", owner="lead", reason="ops fix",
                    expires="2026-12-31")  # fmt: skip
    con = org.build(as_of=at(days=10), policy=Policy(waivers=Waivers(entries=[waiver])))
    found = findings(con, "done_without_mr")
    assert (found["WEB-6"]["waived"], found["WEB-7"]["waived"]) == (True, False)
    con.close()
    again = Org(tmp_path / "off.duckdb")
    again.issue("WEB-6", "Bug", status="Shipped", history=SHIP)
    con = again.build(as_of=at(days=10), policy=off)
    assert findings(con, "done_without_mr") == {}
    con.close()
    on = again.build(as_of=at(days=10))  # the same data under the default policy
    assert list(findings(on, "done_without_mr")) == ["WEB-6"]
    assert isinstance(off.drift.jira_done_mr_open, DriftRule)
