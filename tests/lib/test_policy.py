"""The policy file: defaults load, bad keys are named, bad files are refused clearly."""

import pytest

from dagster_project.lib.policy import DEFAULT_POLICY, PolicyError, load_policy


def test_shipped_policy_matches_the_documented_defaults():
    policy = load_policy(DEFAULT_POLICY)
    assert policy.jira.acceptance_criteria_field == "Acceptance Criteria"
    assert policy.confluence.labels.prd == "prd"
    assert policy.rework.max_review_rounds == 2
    assert "**/pacts/**" in policy.ingest.contract_test_globs


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("ingest:\n  pag_size: 50\n")
    with pytest.raises(PolicyError, match=r"ingest\.pag_size: Extra inputs"):
        load_policy(path)


def test_out_of_range_value_is_named(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("ingest:\n  page_size: 500\n")
    with pytest.raises(PolicyError, match=r"ingest\.page_size"):
        load_policy(path)


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("scope: [unclosed\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="cannot read policy"):
        load_policy(tmp_path / "absent.yaml")


def test_environment_variable_chooses_the_file(tmp_path, monkeypatch):
    path = tmp_path / "policy.yaml"
    path.write_text("scope:\n  jira_projects: [PAY]\n")
    monkeypatch.setenv("DRIFTGATE_POLICY", str(path))
    assert load_policy().scope.jira_projects == ["PAY"]
