"""The policy file: defaults load, every problem is reported with where it is written,
bad files are refused clearly, and the documentation keeps up with the shipped file."""

import pickle
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from dagster_project.lib.policy import (
    DEFAULT_POLICY,
    Policy,
    PolicyError,
    Requirement,
    load_policy,
    parse_policy,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def problems(path):
    """(key, line, column, message) of every error load_policy reports for ``path``."""
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    return [(e.key, e.line, e.column, e.message) for e in caught.value.errors]


def write(tmp_path, text):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_shipped_policy_equals_the_model_defaults():
    policy = load_policy(DEFAULT_POLICY)
    assert policy == Policy()
    assert policy.jira.acceptance_criteria_field == "Acceptance Criteria"
    assert [g.id for g in policy.gates] == ["ui_gate", "integration_gate"]
    assert "**/pacts/**" in policy.ingest.contract_test_globs


def test_empty_file_is_the_default(tmp_path):
    assert load_policy(write(tmp_path, "")) == Policy()


def test_a_policy_file_edited_between_loads_is_read_again(tmp_path):
    """Loads validate a text once per process; an edit is a new text, and a bad edit is
    still named."""
    path = write(tmp_path, "ingest:\n  page_size: 50\n")
    first = load_policy(path)
    assert first.ingest.page_size == 50 and load_policy(path) is first
    path.write_text("ingest:\n  page_size: 70\n")
    assert load_policy(path).ingest.page_size == 70
    path.write_text("ingest:\n  pag_size: 70\n")
    assert problems(path)[0][0] == "ingest.pag_size"


def test_unknown_key_is_named_with_its_position(tmp_path):
    path = write(tmp_path, "ingest:\n  pag_size: 50\n")
    assert problems(path) == [
        ("ingest.pag_size", 2, 3, "unknown key; did you mean page_size?"),
    ]
    with pytest.raises(PolicyError, match=r"policy\.yaml:2:3: ingest\.pag_size: unknown key"):
        load_policy(path)


def test_unknown_key_without_a_close_match_lists_the_keys(tmp_path):
    [(key, _, _, message)] = problems(write(tmp_path, "rework:\n  zzz: 1\n"))
    assert key == "rework.zzz"
    assert "bug_window_days, churn_window_days, max_review_rounds" in message


def test_out_of_range_value_is_named(tmp_path):
    [(key, line, column, message)] = problems(write(tmp_path, "ingest:\n  page_size: 500\n"))
    assert (key, line, column) == ("ingest.page_size", 2, 3)
    assert "500" in message


def test_every_error_is_reported_at_once_with_its_line(tmp_path):
    path = write(
        tmp_path,
        "ingest:\n"  # 1
        "  pag_size: 50\n"  # 2
        "  overlap_minutes: -1\n"  # 3
        "scope:\n"  # 4
        "  jira_projects: [PAY]\n"  # 5
        "  jira_projects: [WEB]\n"  # 6
        "gates:\n"  # 7
        "  - id: ui_gate\n"  # 8
        "    title: UI\n"  # 9
        "    subject: issue\n"  # 10
        "    trigger: {event: status_category_entered}\n"  # 11
        "    requires: [acceptance_criteria]\n"  # 12
        "gate_compliance_threshold: 1.5\n",  # 13
    )
    found = problems(path)
    assert [(key, line, column) for key, line, column, _ in found] == [
        ("ingest.pag_size", 2, 3),
        ("ingest.overlap_minutes", 3, 3),
        ("scope.jira_projects", 6, 3),
        ("gates[ui_gate].trigger", 11, 5),
        ("gate_compliance_threshold", 13, 1),
    ]
    messages = {key: message for key, _, _, message in found}
    assert "duplicate key" in messages["scope.jira_projects"]
    assert "needs a category" in messages["gates[ui_gate].trigger"]
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 5
    assert all(line.startswith(f"{path}:") for line in lines)
    assert lines[0] == f"{path}:2:3: ingest.pag_size: unknown key; did you mean page_size?"


def test_yaml_syntax_error_gives_line_and_column(tmp_path):
    path = write(tmp_path, "version: 1\nscope:\n  jira_projects: [PAY\n  gitlab_groups: x: y\n")
    [(key, line, column, message)] = problems(path)
    assert key == ""
    assert (line, column) == (4, 16)
    assert message.startswith("not valid YAML: ")
    assert "while parsing a flow sequence at line 3, column 18" in message


def test_yaml_tab_indentation_and_impossible_date_are_placed(tmp_path):
    [(_, line, column, message)] = problems(write(tmp_path, "scope:\n\tjira_projects: []\n"))
    assert (line, column) == (2, 1) and "not valid YAML" in message
    bad_date = (
        "waivers:\n  entries:\n    - {subject: PAY-1, gate: ui_gate, owner: a, reason: b,\n"
        "       expires: 2027-02-30}\n"
    )
    [(_, line, column, message)] = problems(write(tmp_path, bad_date))
    assert (line, column) == (4, 17)
    assert "invalid date '2027-02-30'" in message


@pytest.mark.parametrize("version", ["2", "0", '"1"', "true", "1.0", "null"])
def test_unknown_version_is_rejected(tmp_path, version):
    [(key, line, column, message)] = problems(write(tmp_path, f"version: {version}\n"))
    assert (key, line, column) == ("version", 1, 1)
    assert "unsupported policy version" in message
    assert message.endswith("the supported version is 1")


def test_version_one_is_accepted(tmp_path):
    assert load_policy(write(tmp_path, "version: 1\n")).version == 1


def test_gate_with_an_unknown_requirement(tmp_path):
    path = write(
        tmp_path,
        "gates:\n"
        "  - id: api_gate\n"
        "    title: API\n"
        "    subject: issue\n"
        "    trigger: {event: status_category_entered, category: indeterminate}\n"
        "    requires: [api_spec, edge_cases]\n",
    )
    [(key, line, column, message)] = problems(path)
    assert (key, line, column) == ("gates[api_gate].requires[1]", 6, 26)
    assert message.startswith("unknown requirement 'edge_cases'; did you mean edge_case_matrix?")
    assert "acceptance_criteria" in message


def test_requirement_a_subject_cannot_have(tmp_path):
    path = write(
        tmp_path,
        "gap_rules:\n"
        "  - {id: r, title: R, severity: high, subject: issue, requires: contract_tests}\n",
    )
    [(key, line, _, message)] = problems(path)
    assert (key, line) == ("gap_rules[r]", 2)
    assert message == "requirement contract_tests cannot be judged for a issue"


def test_waiver_naming_an_unknown_gate_or_rule(tmp_path):
    path = write(
        tmp_path,
        "ingest:\n"
        "  page_size: 0\n"  # another error elsewhere: the reference is still checked
        "waivers:\n"
        "  entries:\n"
        "    - {subject: PAY-1, gate: ui_gat, owner: a, reason: b, expires: 2027-01-01}\n"
        "    - {subject: PAY-2, rule: nope, owner: a, reason: b, expires: 2027-01-01}\n",
    )
    found = {key: (line, column, message) for key, line, column, message in problems(path)}
    assert set(found) == {
        "ingest.page_size",
        "waivers.entries[0].gate",
        "waivers.entries[1].rule",
    }
    assert found["waivers.entries[0].gate"] == (
        5,
        24,
        "unknown gate 'ui_gat'; did you mean ui_gate?",
    )
    line, column, message = found["waivers.entries[1].rule"]
    assert (line, column) == (6, 24)
    assert message.startswith("unknown gap rule 'nope'; known gap rules: epic_without_prd")


def test_waiver_for_a_gate_the_file_defines(tmp_path):
    path = write(
        tmp_path,
        "gates:\n"
        "  - {id: api_gate, title: API, subject: issue, requires: [api_spec],\n"
        "     trigger: {event: status_category_entered, category: indeterminate}}\n"
        "waivers:\n"
        "  entries:\n"
        "    - {subject: PAY-1, gate: api_gate, owner: a, reason: b, expires: 2027-01-01}\n"
        "    - {subject: PAY-2, gate: ui_gate, owner: a, reason: b, expires: 2027-01-01}\n",
    )
    [(key, _, _, message)] = problems(path)  # ui_gate is gone: the list replaced the default
    assert key == "waivers.entries[1].gate"
    assert message == "unknown gate 'ui_gate'; did you mean api_gate?"


def test_duplicate_ids_are_named_by_position(tmp_path):
    path = write(
        tmp_path,
        "gap_rules:\n"
        "  - {id: r, title: A, severity: high, subject: issue, requires: prd}\n"
        "  - {id: r, title: B, severity: low, subject: issue, requires: runbook}\n",
    )
    assert problems(path) == [("gap_rules[1].id", 3, 6, "duplicate id 'r' (also gap_rules[0])")]


def test_merge_keys_are_not_duplicate_keys(tmp_path):
    path = write(
        tmp_path,
        "gap_rules:\n"
        "  - &r {id: a, title: A, severity: high, subject: issue, requires: prd}\n"
        "  - {<<: *r, id: b, severity: low}\n",
    )
    assert [(r.id, r.severity) for r in load_policy(path).gap_rules] == [
        ("a", "high"),
        ("b", "low"),
    ]


def test_missing_keys_point_at_their_mapping(tmp_path):
    path = write(tmp_path, "gates:\n  - id: g\n    subject: issue\n")
    found = [(key, line, column) for key, line, column, _ in problems(path)]
    assert found == [
        ("gates[g].requires", 2, 5),
        ("gates[g].title", 2, 5),
        ("gates[g].trigger", 2, 5),
    ]


def test_union_values_are_one_error(tmp_path):
    path = write(tmp_path, "scope:\n  gitlab_projects: [1, {a: 1}]\n")
    assert problems(path) == [
        ("scope.gitlab_projects[1]", 2, 24, "expected an integer or a string, got a mapping")
    ]


def test_a_policy_must_be_a_mapping(tmp_path):
    assert problems(write(tmp_path, "- a\n- b\n")) == [
        ("", 1, 1, "the policy must be a mapping of keys (version, scope, ...)")
    ]


def test_missing_file(tmp_path):
    with pytest.raises(PolicyError, match=r"absent\.yaml: cannot read policy"):
        load_policy(tmp_path / "absent.yaml")


def test_policy_error_survives_pickling(tmp_path):
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, "version: 3\nrework: {x: 1}\n"))
    copy = pickle.loads(pickle.dumps(caught.value))
    assert str(copy) == str(caught.value) and copy.errors == caught.value.errors


def test_environment_variable_chooses_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, "scope:\n  jira_projects: [PAY]\n")
    monkeypatch.setenv("DRIFTGATE_POLICY", str(path))
    assert load_policy().scope.jira_projects == ["PAY"]


# -- docs/policy.md ----------------------------------------------------------------------------


def test_the_docs_hold_the_shipped_default_verbatim():
    assert f"```yaml\n{DEFAULT_POLICY.read_text(encoding='utf-8')}```" in DOC.read_text(
        encoding="utf-8"
    )


def _keys(model: type[BaseModel]) -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(name)
        inner = [field.annotation, *getattr(field.annotation, "__args__", ())]
        for tp in inner:
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                keys |= _keys(tp)
    return keys


def test_the_docs_name_every_key_and_requirement():
    doc = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"`(?:[a-z_]+\.)*([a-z_]+)`", doc))
    assert _keys(Policy) - named == set()
    assert set(Requirement.__args__) - named == set()
    for status in ("compliant", "late", "violated", "not_applicable", "waived"):
        assert f"| `{status}` |" in doc


def test_the_docs_yaml_examples_are_valid_policies():
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    for block in blocks:
        parse_policy(re.sub(r"^  ", "", block, flags=re.M) if block.startswith("  ") else block)
