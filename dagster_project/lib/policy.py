"""The policy file: scope, conventions and thresholds, validated by pydantic.

A bad policy fails fast with a message naming the key (``ingest.page_size: ...``);
unknown keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "policy" / "default.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scope(_Strict):
    jira_projects: list[str] = []
    jira_jql: str | None = None
    gitlab_projects: list[int | str] = []
    gitlab_groups: list[int | str] = []
    confluence_spaces: list[str] = []


class Ingest(_Strict):
    overlap_minutes: int = Field(10, ge=0, le=24 * 60)
    reconcile_every_days: int = Field(7, ge=0)
    page_size: int = Field(100, ge=1, le=100)
    spec_globs: list[str] = ["**/openapi*.y*ml", "**/asyncapi*.y*ml", "**/*.openapi.json"]
    contract_test_globs: list[str] = ["**/contract*/**", "**/*contract*test*", "**/pacts/**"]
    observability_globs: list[str] = ["**/observability/**"]


class JiraConventions(_Strict):
    acceptance_criteria_field: str = "Acceptance Criteria"
    acceptance_criteria_heading: str = "Acceptance Criteria"
    edge_cases_heading: str = "Edge cases"
    epic_link_field: str = "Epic Link"
    story_points_field: str = "Story Points"
    ui_labels: list[str] = ["ui", "frontend"]
    ui_components: list[str] = ["Frontend"]
    integration_label: str = "integration"
    api_epic_label: str = "api"
    bug_link_types: list[str] = ["is caused by", "relates to"]


class ConfluenceLabels(_Strict):
    product_brief: str = "product-brief"
    prd: str = "prd"
    test_plan: str = "test-plan"
    runbook: str = "runbook"
    auth_model: str = "auth-model"
    edge_case_matrix: str = "edge-case-matrix"
    api_spec: str = "api-spec"


class ConfluenceConventions(_Strict):
    labels: ConfluenceLabels = ConfluenceLabels()
    approved_marker: str = "Status: Approved"
    runbook_sections: list[str] = ["Dashboards", "Alerts"]


class Rework(_Strict):
    bug_window_days: int = Field(30, ge=1)
    churn_window_days: int = Field(21, ge=1)
    max_review_rounds: int = Field(2, ge=0)


class Policy(_Strict):
    version: int = 1
    scope: Scope = Scope()
    ingest: Ingest = Ingest()
    jira: JiraConventions = JiraConventions()
    confluence: ConfluenceConventions = ConfluenceConventions()
    rework: Rework = Rework()


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the bad key."""


def load_policy(path: str | os.PathLike[str] | None = None) -> Policy:
    """Load ``path``, else ``$DRIFTGATE_POLICY``, else the shipped default."""
    chosen = Path(path or os.environ.get("DRIFTGATE_POLICY") or DEFAULT_POLICY)
    try:
        data = yaml.safe_load(chosen.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise PolicyError(f"{chosen}: cannot read policy ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{chosen}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{chosen}: the policy must be a mapping of keys")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise PolicyError(f"{chosen}: {key}: {first['msg']}{more}") from exc
