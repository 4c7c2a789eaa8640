"""The policy file: scope, conventions and thresholds, validated by pydantic.

A bad policy fails fast with every problem of the file at once, each naming the key and
where it is written (``policy.yaml:14:3: ingest.page_size: ...``); unknown keys are
errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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
    # MR notes and approvers through GitLab's GraphQL API in bulk; off: REST per MR.
    gitlab_graphql: bool = True
    spec_globs: list[str] = ["**/openapi*.y*ml", "**/asyncapi*.y*ml", "**/*.openapi.json"]
    contract_test_globs: list[str] = ["**/contract*/**", "**/*contract*test*", "**/pacts/**"]
    observability_globs: list[str] = ["**/observability/**"]
    # Connect and read timeout of one request, and the outer deadline of one source's
    # whole ingest: past it, retries stop and the source fails with one line.
    request_timeout_seconds: float = Field(30, gt=0, le=600)
    source_deadline_minutes: float = Field(120, gt=0)


SOURCES = ("jira", "gitlab", "confluence")


class ParallelRequests(_Strict):
    """At most this many requests in flight to one source instance at a time: the fetch
    steps' own concurrency (``requests_per_step``) times the steps a Dagster concurrency
    pool per source lets run at once."""

    jira: int = Field(2, ge=1, le=64)
    gitlab: int = Field(2, ge=1, le=64)
    confluence: int = Field(2, ge=1, le=64)


class Operations(_Strict):
    """When the nightly job runs and how stale its outputs may get before checks fail.

    ``DRIFTGATE_NIGHTLY_CRON`` and ``DRIFTGATE_TIMEZONE`` override the first two."""

    nightly_cron: str = "0 2 * * *"
    timezone: str = "UTC"
    freshness_hours: float = Field(26, gt=0)
    parallel_requests: ParallelRequests = ParallelRequests()
    # Per-object requests (an MR's changes, a page's versions, an issue's remote links, a
    # repository file) one fetch step keeps in flight; never more than the source allows.
    requests_per_step: int = Field(2, ge=1, le=64)

    def step_requests(self, source: str) -> int:
        """Requests one fetch step of ``source`` may have in flight at once."""
        return min(self.requests_per_step, getattr(self.parallel_requests, source))

    def step_slots(self, source: str) -> int:
        """Fetch steps of ``source`` that may run at once (its pool's limit), so that
        steps x requests per step stays within ``parallel_requests``."""
        return max(1, getattr(self.parallel_requests, source) // self.step_requests(source))

    @field_validator("nightly_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        check_cron(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        check_timezone(value)
        return value


def check_schedule(cron: str, timezone: str) -> None:
    """Raise ValueError naming what is wrong with a cron string or a time zone."""
    check_cron(cron)
    check_timezone(timezone)


def check_cron(cron: str) -> None:
    from dagster._utils.schedules import is_valid_cron_string

    if not is_valid_cron_string(cron):
        raise ValueError(f"{cron!r} is not a cron expression (e.g. '0 2 * * *')")


def check_timezone(timezone: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{timezone!r} is not an IANA time zone (e.g. 'Europe/Berlin')") from None


class JiraConventions(_Strict):
    acceptance_criteria_field: str = "Acceptance Criteria"
    acceptance_criteria_heading: str = "Acceptance Criteria"
    edge_cases_heading: str = "Edge cases"
    epic_link_field: str = "Epic Link"
    story_points_field: str = "Story Points"
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
    # A bug counts as rework of the issues of these types it is linked to (by
    # jira.bug_link_types, read from the bug's side).
    bug_types: list[str] = ["Bug"]
    traced_to_types: list[str] = ["Story"]
    # Deployment rework rate (DORA): a deployment to one of these environments that
    # ships a merge request linked to an issue of fix_issue_types created at most
    # deployment_window_days before it was unplanned work to fix a user-facing problem.
    production_environments: list[str] = ["production", "prod"]
    fix_issue_types: list[str] = ["Bug", "Incident"]
    deployment_window_days: int = Field(14, ge=1)
    # Aggregates over fewer items than this are flagged as small samples.
    small_sample: int = Field(5, ge=1)


# -- requirements, gates, gap rules and waivers ---------------------------------------------

# The requirements a gate or a gap rule can name. Each has one recogniser in
# sql/analysis/requirement_spans/<name>.sql; its settings live in this file.
Requirement = Literal[
    "acceptance_criteria",
    "edge_case_matrix",
    "product_brief",
    "prd",
    "test_plan",
    "runbook",
    "api_spec",
    "contract_tests",
    "auth_model_approved",
    "observability_hooks",
]
# Which subjects a requirement can be judged for.
REQUIREMENT_SUBJECTS: dict[str, frozenset[str]] = {
    "acceptance_criteria": frozenset({"issue"}),
    "edge_case_matrix": frozenset({"issue"}),
    "contract_tests": frozenset({"merge_request"}),
}
SubjectType = Literal["issue", "merge_request"]
TriggerEvent = Literal["status_category_entered", "mr_opened", "mr_merged"]
StatusCategory = Literal["new", "indeterminate", "done"]
MrState = Literal["opened", "merged", "closed"]
Severity = Literal["low", "medium", "high", "critical"]

DEFAULT_PLACEHOLDERS = (
    "tbd",
    "tbc",
    "todo",
    "to do",
    "-",
    "--",
    "n/a",
    "na",
    "none",
    "...",
    "…",
    "?",
    "xxx",
    "placeholder",
    "to be defined",
    "to be done",
    "to be confirmed",
)


class Requirements(_Strict):
    """How requirements are recognised beyond the jira/confluence/ingest conventions."""

    placeholders: list[str] = list(DEFAULT_PLACEHOLDERS)
    # api_spec holds when any of these is present: a spec file (ingest.spec_globs) at
    # the default branch of a repository linked to the epic, or an approved page
    # labelled confluence.labels.api_spec linked to the epic.
    api_spec_sources: list[Literal["repository_file", "approved_page"]] = Field(
        default=["repository_file", "approved_page"], min_length=1
    )
    # observability_hooks holds with a runbook carrying confluence.runbook_sections, or
    # with merge request changes under ingest.observability_globs.
    observability_sources: list[Literal["runbook_sections", "changed_paths"]] = Field(
        default=["runbook_sections", "changed_paths"], min_length=1
    )


class MarksAnyOf(_Strict):
    """At least one of these marks (an empty group adds no condition)."""

    labels: list[str] = []  # the subject's own labels (issue or MR labels)
    components: list[str] = []  # issue components
    linked_issue_labels: list[str] = []  # merge requests: labels of the issues they name


class AppliesTo(_Strict):
    """Which subjects a gate or gap rule applies to; every non-empty condition must hold."""

    issue_types: list[str] = []  # issues: one of these types (empty: any)
    projects: list[str] = []  # Jira project keys or GitLab project paths
    target_branches: list[str] = []  # merge requests: one of these target branches
    states: list[MrState] = []  # merge requests: state at as_of (empty: any)
    any_of: MarksAnyOf = MarksAnyOf()


class Trigger(_Strict):
    event: TriggerEvent
    category: StatusCategory | None = None  # status_category_entered only

    @model_validator(mode="after")
    def _category_only_for_status(self) -> Trigger:
        if self.event == "status_category_entered" and self.category is None:
            raise ValueError("status_category_entered needs a category (new, indeterminate, done)")
        if self.event != "status_category_entered" and self.category is not None:
            raise ValueError(f"category does not apply to {self.event}")
        return self


_ID = r"^[a-z][a-z0-9_]*$"


class Gate(_Strict):
    id: str = Field(pattern=_ID)
    title: str
    subject: SubjectType
    applies_to: AppliesTo = AppliesTo()
    trigger: Trigger
    requires: list[Requirement] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Gate:
        _check_subject(self.subject, self.requires, self.applies_to)
        if self.subject == "issue" and self.trigger.event != "status_category_entered":
            raise ValueError(
                f"an issue gate is triggered by status_category_entered, not {self.trigger.event}"
            )
        if self.subject == "merge_request" and self.trigger.event == "status_category_entered":
            raise ValueError("a merge request gate is triggered by mr_opened or mr_merged")
        return self


class GapRule(_Strict):
    id: str = Field(pattern=_ID)
    title: str
    severity: Severity
    subject: SubjectType
    applies_to: AppliesTo = AppliesTo()
    requires: Requirement

    @model_validator(mode="after")
    def _consistent(self) -> GapRule:
        _check_subject(self.subject, [self.requires], self.applies_to)
        return self


def _check_subject(subject: str, requires: list[str], applies_to: AppliesTo) -> None:
    for req in requires:
        allowed = REQUIREMENT_SUBJECTS.get(req)
        if allowed is not None and subject not in allowed:
            raise ValueError(f"requirement {req} cannot be judged for a {subject}")
    if subject == "issue" and (
        applies_to.states or applies_to.target_branches or applies_to.any_of.linked_issue_labels
    ):
        raise ValueError("states, target_branches and linked_issue_labels apply to merge requests")
    if subject == "merge_request" and (applies_to.issue_types or applies_to.any_of.components):
        raise ValueError("issue_types and components apply to issues")


class Waiver(_Strict):
    """An accepted exception: the subject reports ``waived`` until ``expires``."""

    subject: str  # issue key, <project_path>!<iid>
    gate: str | None = None  # a gate id ...
    rule: str | None = None  # ... or a gap or drift rule id
    owner: str
    reason: str
    expires: date

    @model_validator(mode="after")
    def _one_target(self) -> Waiver:
        if (self.gate is None) == (self.rule is None):
            raise ValueError("a waiver names exactly one of gate or rule")
        return self


class Waivers(_Strict):
    entries: list[Waiver] = []
    # A Jira label <prefix><gate or rule id> on an issue waives that gate or rule for it;
    # the owner is who added the label, and it does not expire. null: labels waive nothing.
    jira_label_prefix: str | None = "waive-"


UI_GATE = Gate(
    id="ui_gate",
    title="No UI implementation starts before acceptance criteria and an edge-case matrix",
    subject="issue",
    applies_to=AppliesTo(
        issue_types=["Story"], any_of=MarksAnyOf(labels=["ui", "frontend"], components=["Frontend"])
    ),
    trigger=Trigger(event="status_category_entered", category="indeterminate"),
    requires=["acceptance_criteria", "edge_case_matrix"],
)
INTEGRATION_GATE = Gate(
    id="integration_gate",
    title="No integration merges before contract tests, an approved auth model and "
    "observability hooks",
    subject="merge_request",
    applies_to=AppliesTo(
        any_of=MarksAnyOf(labels=["integration"], linked_issue_labels=["integration"])
    ),
    trigger=Trigger(event="mr_merged"),
    requires=["contract_tests", "auth_model_approved", "observability_hooks"],
)


def _gap(id: str, title: str, severity: str, subject: str, requires: str, **applies) -> GapRule:
    return GapRule(
        id=id,
        title=title,
        severity=severity,
        subject=subject,
        requires=requires,
        applies_to=AppliesTo(**applies),
    )


_EPIC = {"issue_types": ["Epic"]}
_INTEGRATION_MR = {
    "states": ["opened", "merged"],
    "any_of": MarksAnyOf(labels=["integration"], linked_issue_labels=["integration"]),
}
DEFAULT_GAP_RULES = [
    _gap("epic_without_prd", "Epic without a PRD", "high", "issue", "prd", **_EPIC),
    _gap(
        "story_without_acceptance_criteria",
        "Story without acceptance criteria",
        "high",
        "issue",
        "acceptance_criteria",
        issue_types=["Story"],
    ),
    _gap(
        "ui_story_without_edge_cases",
        "UI story without an edge-case matrix",
        "medium",
        "issue",
        "edge_case_matrix",
        issue_types=["Story"],
        any_of=MarksAnyOf(labels=["ui", "frontend"], components=["Frontend"]),
    ),
    _gap(
        "api_epic_without_spec",
        "API epic without an API spec",
        "high",
        "issue",
        "api_spec",
        issue_types=["Epic"],
        any_of=MarksAnyOf(labels=["api"]),
    ),
    _gap(
        "integration_without_contract_tests",
        "Integration without contract tests",
        "high",
        "merge_request",
        "contract_tests",
        **_INTEGRATION_MR,
    ),
    _gap(
        "integration_without_auth_model",
        "Integration without an approved auth model",
        "critical",
        "merge_request",
        "auth_model_approved",
        **_INTEGRATION_MR,
    ),
    _gap(
        "integration_without_observability",
        "Integration without observability hooks",
        "medium",
        "merge_request",
        "observability_hooks",
        **_INTEGRATION_MR,
    ),
    _gap(
        "service_without_runbook",
        "Service (epic) without a runbook",
        "medium",
        "issue",
        "runbook",
        **_EPIC,
    ),
]


PageArtifact = Literal[
    "product_brief", "prd", "test_plan", "runbook", "auth_model", "edge_case_matrix", "api_spec"
]


class DriftRule(_Strict):
    """One drift rule: sql/analysis/findings/<id>.sql, switched and rated here."""

    enabled: bool = True
    severity: Severity


class PrdDrift(DriftRule):
    # A PRD (or brief) edit is material when at least this many words changed between
    # the version the stories were cut from and the latest one (approval-marker lines
    # aside): typo and whitespace edits are not drift.
    min_changed_words: int = Field(5, ge=1)
    # which artifacts (confluence.labels keys) the stories are derived from
    artifacts: list[PageArtifact] = ["prd"]  # add product_brief to watch briefs too


class SpecDrift(DriftRule):
    # Tags whose spec counts as approved (fnmatch globs); the newest such tag holding the
    # file is compared with the default branch. Breaking changes rate breaking_severity.
    approved_tags: list[str] = ["*"]
    breaking_severity: Severity = "critical"


class ScopeDrift(DriftRule):
    # What counts as scope: summary, the acceptance criteria (field or description
    # section) and story points, changed after the first move into work_started.
    fields: list[Literal["summary", "acceptance_criteria", "story_points"]] = [
        "summary",
        "acceptance_criteria",
        "story_points",
    ]


class DoneWithoutMr(DriftRule):
    issue_types: list[str] = ["Story", "Bug"]  # the types that carry code


class StaleDocs(DriftRule):
    # A test plan or runbook is stale when the PRD or spec it covers changed materially
    # (prd_edited_after_stories.min_changed_words) after its own last version.
    artifacts: list[PageArtifact] = ["test_plan", "runbook"]


class Drift(_Strict):
    """Drift rules; rule ids are these keys. docs/policy.md explains each."""

    prd_edited_after_stories: PrdDrift = PrdDrift(severity="high")
    spec_drift_from_approved: SpecDrift = SpecDrift(severity="high")
    scope_changed_after_start: ScopeDrift = ScopeDrift(severity="medium")
    stories_added_after_epic_started: DriftRule = DriftRule(severity="low")
    jira_done_mr_open: DriftRule = DriftRule(severity="high")
    jira_done_mr_closed_unmerged: DriftRule = DriftRule(severity="medium")
    mr_merged_issue_not_started: DriftRule = DriftRule(severity="medium")
    done_without_mr: DoneWithoutMr = DoneWithoutMr(severity="low")
    epic_done_children_open: DriftRule = DriftRule(severity="medium")
    docs_stale_after_change: StaleDocs = StaleDocs(severity="low")
    # The status category in which work counts as started (scope drift, MR checks).
    work_started_category: StatusCategory = "indeterminate"


DRIFT_RULE_IDS = tuple(
    name for name, f in Drift.model_fields.items() if isinstance(f.default, DriftRule)
)


class Policy(_Strict):
    version: Literal[1] = 1
    scope: Scope = Scope()
    ingest: Ingest = Ingest()
    jira: JiraConventions = JiraConventions()
    confluence: ConfluenceConventions = ConfluenceConventions()
    rework: Rework = Rework()
    requirements: Requirements = Requirements()
    gates: list[Gate] = [UI_GATE, INTEGRATION_GATE]
    gap_rules: list[GapRule] = DEFAULT_GAP_RULES
    waivers: Waivers = Waivers()
    # A warning check fires when the share of triggered gates judged compliant drops
    # below this (waived and not_applicable excluded).
    gate_compliance_threshold: float = Field(0.8, ge=0, le=1)
    drift: Drift = Drift()
    operations: Operations = Operations()

    @model_validator(mode="after")
    def _unique_and_known(self) -> Policy:
        for kind, ids in (
            ("gates", [g.id for g in self.gates]),
            ("gap_rules", [r.id for r in self.gap_rules]),
        ):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{kind}: duplicate id {', '.join(dupes)}")
        gates = {g.id for g in self.gates}
        rules = {r.id for r in self.gap_rules} | set(DRIFT_RULE_IDS)
        for w in self.waivers.entries:
            if w.gate is not None and w.gate not in gates:
                raise ValueError(f"waivers.entries: unknown gate {w.gate!r} for {w.subject}")
            if w.rule is not None and w.rule not in rules:
                raise ValueError(f"waivers.entries: unknown rule {w.rule!r} for {w.subject}")
        return self


# -- loading: every problem of a file at once, with where it is -------------------------------


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong with a policy file.

    ``key`` is the path in the file's own names: ``ingest.page_size``, list items by
    their ``id`` when they have a unique one (``gates[ui_gate].trigger.event``) and by
    position otherwise (``waivers.entries[0].gate``); "" for the file as a whole.
    ``line`` and ``column`` count from 1 and point at the key (at the enclosing mapping
    for a missing key); None when the position is unknown.
    """

    key: str
    message: str
    line: int | None = None
    column: int | None = None

    def format(self, source: str | os.PathLike[str]) -> str:
        """``file:line:col: key: message`` (position and key left out when unknown)."""
        where = f"{source}:{self.line}:{self.column}" if self.line is not None else f"{source}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class PolicyError(ValueError):
    """A policy file that cannot be used. ``errors`` lists every problem found in it;
    the message is one line per problem, each prefixed by the file."""

    def __init__(self, source: str | os.PathLike[str], errors: list[PolicyProblem]) -> None:
        self.source = str(source)
        self.errors = list(errors)
        super().__init__("\n".join(e.format(self.source) for e in self.errors))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.source, self.errors))


SUPPORTED_VERSION = 1


def load_policy(path: str | os.PathLike[str] | None = None) -> Policy:
    """Load ``path``, else ``$DRIFTGATE_POLICY``, else the shipped default.

    Raises PolicyError listing every problem of the file: YAML syntax (with its position),
    duplicate keys, an unsupported ``version``, unknown keys, bad values, duplicate gate or
    rule ids and waivers naming a gate or rule the policy does not have.
    """
    chosen = Path(path or os.environ.get("DRIFTGATE_POLICY") or DEFAULT_POLICY)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(
            chosen, [PolicyProblem("", f"cannot read policy ({exc.strerror or exc})")]
        ) from exc
    except UnicodeDecodeError as exc:
        problem = PolicyProblem("", f"cannot read policy (not UTF-8: {exc.reason})")
        raise PolicyError(chosen, [problem]) from exc
    return _parsed(text, chosen)


@lru_cache(maxsize=8)
def _parsed(text: str, source: Path) -> Policy:
    """A policy text validated once per process: every asset of a nightly loads the
    policy (about 10 ms of YAML and validation each). The file is still read each time,
    so an edited policy is the one used; a Policy is frozen, so sharing it is safe."""
    return parse_policy(text, source)


def parse_policy(text: str, source: str | os.PathLike[str] = "<policy>") -> Policy:
    """Validate policy YAML ``text``; ``source`` names it in errors."""
    try:
        root, data, duplicates = _compose(text)
    except yaml.YAMLError as exc:
        raise PolicyError(source, [_yaml_problem(exc)]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        message = "the policy must be a mapping of keys (version, scope, ...)"
        raise PolicyError(source, [PolicyProblem("", message, *_position(root.start_mark))])
    references = _reference_problems(data)
    problems = duplicates + _version_problems(data) + references
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems += _validation_problems(exc, skip_root=bool(references))
    if problems:
        raise PolicyError(source, _placed(problems, root, data))
    return policy


class _Loader(yaml.SafeLoader):
    """SafeLoader whose impossible dates (2027-02-30) are YAML errors with a position."""

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:  # type: ignore[override]
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid date {node.value!r} ({exc})", node.start_mark
            ) from exc


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _compose(text: str) -> tuple[Any, Any, list[tuple[tuple[str | int, ...], str]]]:
    """The node tree (for positions), its duplicate keys and the data built from it."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        # Before construction, which flattens merge keys (<<) into their mappings.
        duplicates = _duplicate_keys(root)
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return root, data, duplicates


def _position(mark: Any) -> tuple[int | None, int | None]:
    if mark is None:
        return None, None
    return mark.line + 1, mark.column + 1


def _yaml_problem(exc: yaml.YAMLError) -> PolicyProblem:
    """``while parsing a flow sequence at line 1, column 8, expected ',' or ']' ...``"""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None)
    if problem is None:
        return PolicyProblem("", f"not valid YAML ({exc})", *_position(mark))
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    detail = problem
    if context:
        at = ""
        if context_mark is not None and context_mark is not mark:
            at = f" at line {context_mark.line + 1}, column {context_mark.column + 1}"
        detail = f"{context}{at}, {problem}"
    return PolicyProblem("", f"not valid YAML: {detail}", *_position(mark))


def _duplicate_keys(root: yaml.Node | None) -> list[tuple[tuple[str | int, ...], str]]:
    """YAML keeps the last of two equal keys silently; a policy must not."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    seen_nodes: set[int] = set()

    def walk(node: yaml.Node, loc: tuple[str | int, ...]) -> None:
        if id(node) in seen_nodes:  # aliases share nodes
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, Any] = {}
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
                    continue
                if key.value in first:
                    line = first[key.value].line + 1
                    found.append(
                        (
                            loc + (key.value,),
                            f"duplicate key (the one at line {line} is overridden)",
                        )
                    )
                else:
                    first[key.value] = key.start_mark
                walk(value, loc + (key.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, loc + (i,))

    if root is not None:
        walk(root, ())
    return found


def _version_problems(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    if "version" not in data:
        return []
    version = data["version"]
    if type(version) is int and version == SUPPORTED_VERSION:
        return []
    return [
        (
            ("version",),
            f"unsupported policy version {version!r}; the supported version is {SUPPORTED_VERSION}",
        )
    ]


def _reference_problems(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Duplicate gate / rule ids and waivers naming an unknown one, read from the raw data
    so they are reported even when other parts of the file are invalid."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    ids: dict[str, list[str] | None] = {}
    for kind in ("gates", "gap_rules"):
        if kind not in data:
            ids[kind] = [item.id for item in Policy.model_fields[kind].default]
            continue
        items = data[kind]
        if not isinstance(items, list):
            ids[kind] = None  # reported as a type error; references cannot be checked
            continue
        first: dict[str, int] = {}
        for i, item in enumerate(items):
            ident = item.get("id") if isinstance(item, dict) else None
            if not isinstance(ident, str):
                continue
            if ident in first:
                found.append(
                    ((kind, i, "id"), f"duplicate id {ident!r} (also {kind}[{first[ident]}])")
                )
            else:
                first[ident] = i
        ids[kind] = list(first)
    if ids["gap_rules"] is not None:  # drift rules are waived by their ids too
        ids["gap_rules"] = [*ids["gap_rules"], *DRIFT_RULE_IDS]
    waivers = data.get("waivers")
    entries = waivers.get("entries") if isinstance(waivers, dict) else None
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict):
            continue
        for field, kind, noun in (("gate", "gates", "gate"), ("rule", "gap_rules", "gap rule")):
            target, known = entry.get(field), ids[kind]
            if not isinstance(target, str) or known is None or target in known:
                continue
            message = f"unknown {noun} {target!r}" + _suggest(target, known, f"known {noun}s:")
            found.append((("waivers", "entries", i, field), message))
    return found


def _suggest(value: str, choices: list[str], listing: str) -> str:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]}?"
    return f"; {listing} {', '.join(choices)}" if choices else f"; {listing} none"


# Pydantic error types worded as what was expected ("expected an integer or a string").
_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping of keys",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "a date (YYYY-MM-DD)",
}


def _validation_problems(
    exc: ValidationError, skip_root: bool
) -> list[tuple[tuple[str | int, ...], str]]:
    expected: dict[tuple[str | int, ...], list[str]] = {}
    inputs: dict[tuple[str | int, ...], Any] = {}
    messages: dict[tuple[str | int, ...], list[str]] = {}
    for err in exc.errors():
        loc = _clean_loc(err["loc"])
        if loc == ("version",):
            continue  # _version_problems words it
        if loc == () and err["type"] == "value_error" and skip_root:
            continue  # the Policy's own id checks, already placed by _reference_problems
        if err["type"] in _EXPECTED:
            expected.setdefault(loc, [])
            if _EXPECTED[err["type"]] not in expected[loc]:
                expected[loc].append(_EXPECTED[err["type"]])
            inputs[loc] = err.get("input")
            continue
        message = _message(err, loc)
        if message not in messages.setdefault(loc, []):
            messages[loc].append(message)
    for loc, wanted in expected.items():
        messages.setdefault(loc, []).insert(
            0, f"expected {' or '.join(wanted)}, got {_describe_input(inputs[loc])}"
        )
    return [(loc, message) for loc, found in messages.items() for message in found]


_BOUNDS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_BOUNDS |= {"string_pattern_mismatch", "string_too_short", "string_too_long"}


def _message(err: Any, loc: tuple[str | int, ...]) -> str:
    kind = err["type"]
    if kind == "missing":
        return "missing required key"
    if kind == "extra_forbidden":
        model = _type_at(loc[:-1])
        allowed = list(model.model_fields) if _is_model(model) else []
        return "unknown key" + _suggest(str(loc[-1]), allowed, "expected one of:")
    if kind == "literal_error":
        allowed = [str(a) for a in get_args(_type_at(loc))]
        noun = "requirement" if "requires" in loc else "value"
        value = err.get("input")
        close = difflib.get_close_matches(str(value), allowed, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"unknown {noun} {value!r}{hint} (one of: {', '.join(allowed) or err['msg']})"
    if kind in ("too_short", "too_long"):
        return str(err["msg"]).replace("List should have", "needs").replace(" after validation", "")
    if kind in _BOUNDS:
        return f"{err['msg']} (got {err.get('input')!r})"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return str(err["msg"])


def _describe_input(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return repr(value)


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> X; other unions stay as they are (leaves)."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _step(tp: Any, part: str | int) -> Any:
    if _is_model(tp) and isinstance(part, str) and part in tp.model_fields:
        return _unwrap(tp.model_fields[part].annotation)
    if get_origin(tp) is list and isinstance(part, int):
        return _unwrap(get_args(tp)[0])
    return None


def _type_at(loc: tuple[str | int, ...]) -> Any:
    tp: Any = Policy
    for part in loc:
        tp = _step(tp, part)
    return tp


def _clean_loc(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Pydantic's location without the union-member tags it appends (``...0.int``)."""
    tp: Any = Policy
    kept: list[str | int] = []
    for part in loc:
        if _is_model(tp) or (get_origin(tp) is list and isinstance(part, int)):
            kept.append(part)
            tp = _step(tp, part)
        else:
            break
    return tuple(kept)


def _placed(
    problems: list[tuple[tuple[str | int, ...], str]], root: yaml.Node | None, data: Any
) -> list[PolicyProblem]:
    placed = {
        PolicyProblem(_key_path(data, loc), message, *_position(_mark(root, loc)))
        for loc, message in problems
    }
    return sorted(
        placed, key=lambda p: (p.line is None, p.line or 0, p.column or 0, p.key, p.message)
    )


def _mark(root: yaml.Node | None, loc: tuple[str | int, ...]) -> Any:
    """Where ``loc`` is written: its key, a list item, or the mapping a missing key belongs in."""
    if root is None:
        return None
    node, mark = root, root.start_mark
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pairs = [
                (k, v)
                for k, v in node.value
                if isinstance(k, yaml.ScalarNode) and k.value == str(part)
            ]
            if not pairs:
                return node.start_mark
            key, node = pairs[-1]  # YAML keeps the last of duplicate keys
            mark = key.start_mark
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return mark
            node = node.value[part]
            mark = node.start_mark
        else:
            return mark
    return mark


_SHOWN_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


def _key_path(data: Any, loc: tuple[str | int, ...]) -> str:
    """``gates[ui_gate].trigger.event``: list items by a unique id, else by position."""
    text, node = "", data
    for part in loc:
        if isinstance(part, int):
            label = str(part)
            if isinstance(node, list) and 0 <= part < len(node):
                item = node[part]
                ident = item.get("id") if isinstance(item, dict) else None
                if (
                    isinstance(ident, str)
                    and _SHOWN_ID.match(ident)
                    and sum(isinstance(x, dict) and x.get("id") == ident for x in node) == 1
                ):
                    label = ident
                node = item
            else:
                node = None
            text += f"[{label}]"
        else:
            text += f".{part}" if text else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return text


# -- the policy in words (driftgate policy check) ---------------------------------------------


def _either(values: list[Any]) -> str:
    words = [str(v) for v in values]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def describe_applies_to(subject: str, applies_to: AppliesTo) -> str:
    """Which subjects a gate or rule selects, in words."""
    noun = "issues" if subject == "issue" else "merge requests"
    parts = []
    if applies_to.issue_types:
        parts.append(f"of type {_either(applies_to.issue_types)}")
    if applies_to.projects:
        parts.append(f"in project {_either(applies_to.projects)}")
    if applies_to.target_branches:
        parts.append(f"targeting {_either(applies_to.target_branches)}")
    if applies_to.states:
        parts.append(f"{_either(applies_to.states)} at as_of")
    marks = []
    if applies_to.any_of.labels:
        marks.append(f"labelled {_either(applies_to.any_of.labels)}")
    if applies_to.any_of.components:
        marks.append(f"with component {_either(applies_to.any_of.components)}")
    if applies_to.any_of.linked_issue_labels:
        marks.append(f"naming an issue labelled {_either(applies_to.any_of.linked_issue_labels)}")
    if marks:
        parts.append(("either " if len(marks) > 1 else "") + ", or ".join(marks))
    return f"{noun} {', '.join(parts)}" if parts else f"every {noun[:-1]}"


_CATEGORY_WORDS = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}


def describe_trigger(trigger: Trigger) -> str:
    """When a gate is judged, in words."""
    if trigger.event == "status_category_entered":
        category = trigger.category or ""
        words = _CATEGORY_WORDS.get(category, category)
        return f"first transition into a status of category {category} ({words})"
    if trigger.event == "mr_opened":
        return "the merge request is opened"
    return "the merge request is merged"
