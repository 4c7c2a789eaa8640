"""`driftgate policy check FILE`: every error on its own line, or the policy explained."""

from __future__ import annotations

from datetime import date, timedelta

from dagster_project.lib.policy import DEFAULT_POLICY
from tests.product.test_cli import driftgate


def test_every_error_is_one_line_with_its_position(tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text(
        "version: 2\n"
        "ingest:\n"
        "  pag_size: 50\n"
        "gates:\n"
        "  - id: api_gate\n"
        "    title: API\n"
        "    subject: issue\n"
        "    trigger: {event: status_category_entered, category: indeterminate}\n"
        "    requires: [api_specs]\n"
        "waivers:\n"
        "  entries:\n"
        "    - {subject: PAY-1, gate: ui_gate, owner: a, reason: b, expires: 2027-01-01}\n"
    )
    checked = driftgate("policy", "check", "policy.yaml", cwd=tmp_path)
    assert checked.returncode == 1
    assert checked.stdout == ""
    assert checked.stderr.splitlines() == [
        "policy.yaml:1:1: version: unsupported policy version 2; the supported version is 1",
        "policy.yaml:3:3: ingest.pag_size: unknown key; did you mean page_size?",
        "policy.yaml:9:16: gates[api_gate].requires[0]: unknown requirement 'api_specs'; "
        "did you mean api_spec? (one of: acceptance_criteria, edge_case_matrix, product_brief, "
        "prd, test_plan, runbook, api_spec, contract_tests, auth_model_approved, "
        "observability_hooks)",
        "policy.yaml:12:24: waivers.entries[0].gate: unknown gate 'ui_gate'; "
        "did you mean api_gate?",
    ]


def test_yaml_syntax_error_is_placed(tmp_path):
    (tmp_path / "policy.yaml").write_text("scope:\n  jira_projects: [PAY\nrework: {}\n")
    checked = driftgate("policy", "check", "policy.yaml", cwd=tmp_path)
    assert checked.returncode == 1
    [line] = checked.stderr.splitlines()
    assert line.startswith("policy.yaml:3:7: not valid YAML: ")


def test_missing_file_is_an_error(tmp_path):
    checked = driftgate("policy", "check", "absent.yaml", cwd=tmp_path)
    assert checked.returncode == 1
    assert checked.stderr.startswith("absent.yaml: cannot read policy")


def test_a_valid_file_is_explained(tmp_path):
    today = date.today()
    soon, past = today + timedelta(days=30), today - timedelta(days=1)
    good = tmp_path / "policy.yaml"
    good.write_text(
        "scope: {jira_projects: [PAY], confluence_spaces: [DOC]}\n"
        "gates:\n"
        "  - id: api_gate\n"
        "    title: No API work before its spec\n"
        "    subject: issue\n"
        "    applies_to: {issue_types: [Epic], projects: [PAY], any_of: {labels: [api]}}\n"
        "    trigger: {event: status_category_entered, category: indeterminate}\n"
        "    requires: [api_spec, prd]\n"
        "  - id: mr_gate\n"
        "    title: Release merges need contract tests\n"
        "    subject: merge_request\n"
        "    applies_to:\n"
        "      target_branches: [main]\n"
        "      any_of: {labels: [release], linked_issue_labels: [integration]}\n"
        "    trigger: {event: mr_opened}\n"
        "    requires: [contract_tests]\n"
        "gap_rules:\n"
        "  - {id: epic_without_brief, title: Epic without a brief, severity: low,\n"
        "     subject: issue, applies_to: {issue_types: [Epic]}, requires: product_brief}\n"
        "waivers:\n"
        "  entries:\n"
        f"    - {{subject: PAY-7, gate: api_gate, owner: jane, reason: spike, expires: {soon}}}\n"
        f"    - {{subject: web/app!3, rule: epic_without_brief, owner: joe, reason: old,\n"
        f"       expires: {past}}}\n"
        "  jira_label_prefix: null\n"
        "gate_compliance_threshold: 0.9\n"
    )
    checked = driftgate("policy", "check", str(good), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    out = checked.stdout.splitlines()
    assert out[0] == f"{good}: valid policy (version 1)"
    expected = [
        "  Jira projects:      PAY",
        "  Confluence spaces:  DOC",
        "  api_gate: No API work before its spec",
        "    applies to: issues of type Epic, in project PAY, labelled api",
        "    trigger:    first transition into a status of category indeterminate (In Progress)",
        "    requires:   api_spec, prd",
        "  mr_gate: Release merges need contract tests",
        "    applies to: merge requests targeting main, either labelled release, "
        "or naming an issue labelled integration",
        "    trigger:    the merge request is opened",
        "    requires:   contract_tests",
        "gap rules (1)",
        "  epic_without_brief [low]: product_brief required for issues of type Epic",
        f"waivers (1 active, 1 expired on {today})",
        f"  active: PAY-7 gate api_gate until {soon} (owner jane: spike)",
        f"  expired: web/app!3 rule epic_without_brief expired after {past} (owner joe: old)",
        "  Jira labels: off (waivers come only from the entries above)",
        "gate compliance threshold: 90% of triggered gates compliant "
        "(waived and not applicable excluded), else a warning",
    ]
    assert [line for line in expected if line not in out] == []
    assert out.index("gates (2)") < out.index("gap rules (1)")


def test_the_shipped_default_is_explained(tmp_path):
    checked = driftgate("policy", "check", str(DEFAULT_POLICY), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "gates (2)" in checked.stdout and "gap rules (8)" in checked.stdout
    assert "  ui_gate: No UI implementation starts" in checked.stdout
    assert "Jira labels: 'waive-<gate or rule id>' on an issue waives it" in checked.stdout
