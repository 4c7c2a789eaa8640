"""Fan-out units from the policy scope: one per Jira project, GitLab project or group,
Confluence space; one ``all`` unit where the scope lists nothing (or Jira uses JQL)."""

import re

from dagster_project.lib.policy import Policy, Scope
from dagster_project.lib.scopes import safe_name, source_scopes

MAPPING_KEY = re.compile(r"^[A-Za-z0-9_]+$")  # what Dagster accepts, and a safe file name


def policy(**scope) -> Policy:
    return Policy(scope=Scope(**scope))


def test_an_empty_scope_is_one_unit_per_source_with_the_whole_policy():
    p = policy()
    units = source_scopes(p)
    assert {s: [(u.name, u.label) for u in us] for s, us in units.items()} == {
        "jira": [("all", "*")],
        "gitlab": [("all", "*")],
        "confluence": [("all", "*")],
    }
    assert all(u.policy == p for us in units.values() for u in us)


def test_each_scope_entry_is_a_unit_whose_policy_lists_only_it():
    p = policy(
        jira_projects=["WEB", "PAY"],
        gitlab_projects=[4101, "payments/checkout-ui"],
        gitlab_groups=["web"],
        confluence_spaces=["OPS", "PAY"],
    )
    units = source_scopes(p)
    jira = {u.name: u.policy.scope.jira_projects for u in units["jira"]}
    assert jira == {"project_PAY": ["PAY"], "project_WEB": ["WEB"]}
    gitlab = {
        u.label: (u.policy.scope.gitlab_projects, u.policy.scope.gitlab_groups)
        for u in units["gitlab"]
    }
    assert gitlab == {
        "project:4101": ([4101], []),
        "project:payments/checkout-ui": (["payments/checkout-ui"], []),
        "group:web": ([], ["web"]),
    }
    spaces = {u.name: u.policy.scope.confluence_spaces for u in units["confluence"]}
    assert spaces == {"space_OPS": ["OPS"], "space_PAY": ["PAY"]}
    for us in units.values():
        assert [u.name for u in us] == sorted(u.name for u in us)  # a stable order
        for u in us:
            assert MAPPING_KEY.match(u.name), u.name
            # Everything but the scope is the policy as written.
            assert u.policy.model_copy(update={"scope": p.scope}) == p


def test_jql_keeps_jira_whole():
    p = policy(jira_projects=["PAY", "WEB"], jira_jql="labels = api")
    (unit,) = source_scopes(p)["jira"]
    assert (unit.name, unit.policy) == ("all", p)


def test_names_are_safe_and_never_shared():
    assert safe_name("project", "PAY") == "project_PAY"
    assert safe_name("project", 4101) == "project_4101"
    changed = [safe_name("project", i) for i in ("a-b/c", "a_b/c", "a_b_c", "a.b/c")]
    assert all(MAPPING_KEY.match(n) for n in changed)
    assert len(set(changed)) == len(changed)
    # A path and its id in another case are one GitLab project; listed twice, fetched once.
    p = policy(gitlab_projects=["Payments/API", "payments/api", 7, "7"], confluence_spaces=["~jo"])
    assert [u.label for u in source_scopes(p)["gitlab"]] == ["project:7", "project:Payments/API"]
    (space,) = source_scopes(p)["confluence"]
    assert MAPPING_KEY.match(space.name) and space.name.startswith("space__jo_")
