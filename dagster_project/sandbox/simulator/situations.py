"""Injected situations: kinds, rates, where they may go, and the truth they produce.

Two halves. ``Assigner`` decides which situation a feature's epic, stories and merge
requests carry (seeded rates, plus a coverage queue that places every enabled kind at
least once, so even the demo shows them all). ``judge`` then derives truth from what the
plan actually contains at ``as_of`` - gaps, drift, gate evaluations and rework - with
the same rules the default policy states. Truth is therefore computed, not asserted:
a clean chain yields only ``*_gate_compliant`` entries, and an injected situation yields
every entry it implies (a UI story started without edge cases is both a gap and a
violated gate).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dagster_project.sandbox.simulator.clock import utc_ts

if TYPE_CHECKING:
    from dagster_project.sandbox.simulator.model import MR, Feature, Issue

GAPS = (
    "epic_without_prd",
    "story_without_acceptance_criteria",
    "ui_story_without_edge_cases",
    "api_epic_without_spec",
    "integration_without_contract_tests",
    "integration_without_auth_model",
    "integration_without_observability",
    "service_without_runbook",
)
DRIFT = (
    "prd_edited_after_stories",
    "spec_drift_from_approved",
    "scope_changed_after_start",
    "jira_done_mr_open",
)
GATES = (
    "ui_gate_late",
    "ui_gate_violated",
    "ui_gate_compliant",
    "integration_gate_late",
    "integration_gate_violated",
    "integration_gate_compliant",
)
REWORK = ("reopened", "bug_traced_to_story", "churn", "many_review_rounds")
ALL_KINDS = GAPS + DRIFT + GATES + REWORK

# Slots a feature offers; each holds at most one injected kind.
EPIC_PRD = ("epic_without_prd", "prd_edited_after_stories")
EPIC_API = ("api_epic_without_spec", "spec_drift_from_approved")
EPIC_INTEGRATION = (
    "integration_without_observability",
    "integration_without_auth_model",
    "integration_gate_late",
)
EPIC_SERVICE = ("service_without_runbook",)
MR_KINDS = ("integration_without_contract_tests",)
STORY_KINDS = {
    "story_without_acceptance_criteria": ("backend", "integration"),
    "ui_story_without_edge_cases": ("ui",),
    "ui_gate_violated": ("ui",),
    "ui_gate_late": ("ui",),
    "scope_changed_after_start": ("backend", "integration"),
    "jira_done_mr_open": ("backend", "ui"),
    "reopened": ("backend", "ui"),
    "bug_traced_to_story": ("backend", "ui", "integration"),
    "churn": ("backend",),
    "many_review_rounds": ("backend", "ui"),
}
INJECTABLE = EPIC_PRD + EPIC_API + EPIC_INTEGRATION + EPIC_SERVICE + MR_KINDS + tuple(STORY_KINDS)

# Probability per eligible slot (an epic, an API epic, an integration epic, a story...).
DEFAULT_RATES: dict[str, float] = {
    "epic_without_prd": 0.05,
    "prd_edited_after_stories": 0.06,
    "api_epic_without_spec": 0.08,
    "spec_drift_from_approved": 0.10,
    "integration_without_observability": 0.08,
    "integration_without_auth_model": 0.08,
    "integration_gate_late": 0.10,
    "service_without_runbook": 0.05,
    "integration_without_contract_tests": 0.10,
    "story_without_acceptance_criteria": 0.04,
    "ui_story_without_edge_cases": 0.05,
    "ui_gate_violated": 0.06,
    "ui_gate_late": 0.08,
    "scope_changed_after_start": 0.05,
    "jira_done_mr_open": 0.03,
    "reopened": 0.05,
    "bug_traced_to_story": 0.05,
    "churn": 0.04,
    "many_review_rounds": 0.05,
}

BUG_WINDOW = timedelta(days=30)
CHURN_WINDOW = timedelta(days=21)
SCOPE_FIELDS = ("summary", "ac", "points")


def effective_rates(rates: dict[str, float] | None) -> dict[str, float]:
    """Default rates overridden by ``rates``; unknown kinds are an error naming the valid ones."""
    merged = dict(DEFAULT_RATES)
    for kind, value in (rates or {}).items():
        if kind not in DEFAULT_RATES:
            raise ValueError(
                f"unknown situation kind {kind!r} in rates; injectable kinds: {', '.join(INJECTABLE)}"
            )
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"rate for {kind!r} must be between 0 and 1, not {value}")
        merged[kind] = value
    return merged


@dataclass
class StoryShape:
    stype: str  # ui | backend | integration
    scenario: str | None = None
    churn_base: int | None = None  # index of the earlier story whose lines this one rewrites
    padded: bool = False


@dataclass
class Shape:
    """What a feature is made of and which situations it carries."""

    is_api: bool
    stories: list[StoryShape]
    epic_prd: str | None = None
    epic_api: str | None = None
    epic_ops: str | None = None  # EPIC_INTEGRATION or EPIC_SERVICE kind
    contract_gap_story: int | None = None  # integration story whose MR lacks contract tests
    padded_epic: bool = False
    variants: dict[str, str] = field(default_factory=dict)

    @property
    def is_integration(self) -> bool:
        return any(s.stype == "integration" for s in self.stories)

    def free(self, stype: tuple[str, ...]) -> list[int]:
        return [i for i, s in enumerate(self.stories) if s.scenario is None and s.stype in stype]


# Stories a churn base may carry: their merge request merges normally.
_CHURN_BASE_OK = (
    None,
    "scope_changed_after_start",
    "bug_traced_to_story",
    "many_review_rounds",
    "story_without_acceptance_criteria",
)


class Assigner:
    """Places situations into feature shapes: coverage queue first, then seeded rates."""

    MAX_FORCED = 4

    def __init__(self, rates: dict[str, float]):
        self.rates = rates
        self.pending = [k for k in INJECTABLE if rates.get(k, 0.0) > 0.0]
        self.need_padded_epic = True
        self.need_padded_story = True

    def assign(self, shape: Shape, rng: random.Random) -> None:
        forced = 0
        for kind in list(self.pending):
            if forced >= self.MAX_FORCED:
                break
            if self._place(kind, shape, rng, force=True):
                self.pending.remove(kind)
                forced += 1
        self._by_rates(shape, rng)
        if self.need_padded_epic:
            shape.padded_epic = True
            self.need_padded_epic = False
        elif rng.random() < 0.015:
            shape.padded_epic = True
        for s in shape.stories:
            if s.scenario in ("ui_gate_late", "scope_changed_after_start") and (
                self.need_padded_story or rng.random() < 0.05
            ):
                s.padded = True
                self.need_padded_story = False

    # -- placement --------------------------------------------------------------------

    def _place(self, kind: str, shape: Shape, rng: random.Random, force: bool) -> bool:
        if kind in EPIC_PRD:
            if shape.epic_prd is None:
                shape.epic_prd = kind
                return True
            return False
        if kind in EPIC_API:
            if shape.epic_api is not None or (not shape.is_api and not force):
                return False
            shape.is_api = True
            shape.epic_api = kind
            return True
        if kind in EPIC_INTEGRATION or kind in MR_KINDS:
            if shape.epic_ops is not None or shape.contract_gap_story is not None:
                return False
            if not shape.is_integration:
                if not force:
                    return False
                free = shape.free(("backend",))
                if len(free) < 2:
                    return False
                shape.stories[free[-1]].stype = "integration"
            if kind in MR_KINDS:
                candidates = shape.free(("integration",)) or [
                    i for i, s in enumerate(shape.stories) if s.stype == "integration"
                ]
                shape.contract_gap_story = candidates[0]
            else:
                shape.epic_ops = kind
            return True
        if kind in EPIC_SERVICE:
            if shape.epic_ops is not None or shape.is_integration:
                return False
            shape.epic_ops = kind
            return True
        return self._place_story(kind, shape, rng, force)

    def _place_story(self, kind: str, shape: Shape, rng: random.Random, force: bool) -> bool:
        eligible = STORY_KINDS[kind]
        clean = [i for i, s in enumerate(shape.stories) if s.scenario is None]
        if len(clean) <= 1:  # keep at least one clean story per feature
            return False
        if kind == "churn":
            return self._place_churn(shape, force)
        free = shape.free(eligible)
        if not free and force:
            convertible = shape.free(("backend",))
            if len(convertible) >= 2 and eligible != ("backend", "integration"):
                shape.stories[convertible[-1]].stype = eligible[0]
                free = [convertible[-1]]
        if not free:
            return False
        shape.stories[free[0] if force else rng.choice(free)].scenario = kind
        return True

    def _place_churn(self, shape: Shape, force: bool) -> bool:
        backend = [i for i, s in enumerate(shape.stories) if s.stype == "backend"]
        for j in backend:
            if shape.stories[j].scenario is not None:
                continue
            for i in backend:
                if i < j and shape.stories[i].scenario in _CHURN_BASE_OK:
                    shape.stories[j].scenario = "churn"
                    shape.stories[j].churn_base = i
                    return True
        if force:
            free = shape.free(("backend", "ui"))
            if len(free) >= 3:
                i, j = free[0], free[1]
                shape.stories[i].stype = shape.stories[j].stype = "backend"
                shape.stories[j].scenario = "churn"
                shape.stories[j].churn_base = i
                return True
        return False

    def _by_rates(self, shape: Shape, rng: random.Random) -> None:
        r = self.rates
        if shape.epic_prd is None:
            shape.epic_prd = _draw(rng, EPIC_PRD, r)
        if shape.is_api and shape.epic_api is None:
            shape.epic_api = _draw(rng, EPIC_API, r)
        if shape.epic_ops is None and shape.contract_gap_story is None:
            if shape.is_integration:
                kind = _draw(rng, EPIC_INTEGRATION + MR_KINDS, r)
                if kind in MR_KINDS:
                    shape.contract_gap_story = next(
                        i for i, s in enumerate(shape.stories) if s.stype == "integration"
                    )
                else:
                    shape.epic_ops = kind
            else:
                shape.epic_ops = _draw(rng, EPIC_SERVICE, r)
        for idx, story in enumerate(shape.stories):
            if story.scenario is not None:
                continue
            if sum(1 for s in shape.stories if s.scenario is None) <= 1:
                break
            kinds = tuple(k for k, types in STORY_KINDS.items() if story.stype in types)
            kind = _draw(rng, kinds, r)
            if kind == "churn":
                bases = [
                    i
                    for i in range(idx)
                    if shape.stories[i].stype == "backend"
                    and shape.stories[i].scenario in _CHURN_BASE_OK
                ]
                if not bases:
                    continue
                story.churn_base = bases[-1]
            story.scenario = kind


def _draw(rng: random.Random, kinds: tuple[str, ...], rates: dict[str, float]) -> str | None:
    u = rng.random()
    acc = 0.0
    for k in kinds:
        acc += rates.get(k, 0.0)
        if u < acc:
            return k
    return None


# --- judging ------------------------------------------------------------------------------


def entry(kind: str, subject_type: str, subject_key: str, **details: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "subject_type": subject_type,
        "subject_key": subject_key,
        "details": details,
    }


def _iso(dt: datetime | None) -> str | None:
    return utc_ts(dt) if dt else None


def ui_gate(story: Issue) -> dict[str, Any] | None:
    """The UI gate of a started UI story, judged at its first In-Progress transition."""
    if story.start_at is None:
        return None
    t = story.start_at
    have = {"acceptance_criteria": story.ac_at, "edge_cases": story.edge_at}
    missing_then = [k for k, at in have.items() if at is None or at > t]
    missing_now = [k for k, at in have.items() if at is None]
    status = "compliant" if not missing_then else ("late" if not missing_now else "violated")
    return entry(
        f"ui_gate_{status}",
        "issue",
        story.key,
        triggered_at=_iso(t),
        missing_at_trigger=missing_then,
        missing=missing_now,
        satisfied_at={k: _iso(v) for k, v in have.items()},
    )


def integration_requirements(mr: MR, feature: Feature) -> dict[str, datetime | None]:
    """When each integration requirement became true for this MR (None: still unmet)."""
    contract = mr.created if mr.contract else None
    auth = feature.auth_approved_at()
    obs = mr.created if mr.observability else feature.runbook_sections_at()
    return {"contract_tests": contract, "auth_model": auth, "observability": obs}


def integration_gate(mr: MR, feature: Feature) -> dict[str, Any] | None:
    if mr.state != "merged" or mr.merged_at is None:
        return None
    t = mr.merged_at
    have = integration_requirements(mr, feature)
    missing_then = [k for k, at in have.items() if at is None or at > t]
    missing_now = [k for k, at in have.items() if at is None]
    status = "compliant" if not missing_then else ("late" if not missing_now else "violated")
    return entry(
        f"integration_gate_{status}",
        "merge_request",
        mr.ref,
        triggered_at=_iso(t),
        missing_at_trigger=missing_then,
        missing=missing_now,
        satisfied_at={k: _iso(v) for k, v in have.items()},
        issue=mr.issue.key if mr.issue else None,
        epic=feature.epic.key,
    )


def judge(feature: Feature) -> list[dict[str, Any]]:
    """Every situation visible in this feature's objects at ``as_of``."""
    out: list[dict[str, Any]] = []
    epic = feature.epic
    stories = [s for s in feature.stories if s.key]
    first_story = min((s.created for s in stories), default=None)

    if feature.prd is None:
        out.append(entry("epic_without_prd", "issue", epic.key, team=feature.team.key))
    elif first_story is not None:
        late_versions = [v for v in feature.prd.versions if v[0] > first_story]
        if late_versions:
            out.append(
                entry(
                    "prd_edited_after_stories",
                    "page",
                    feature.prd.id,
                    epic=epic.key,
                    stories_cut_at=_iso(first_story),
                    edited_at=_iso(late_versions[0][0]),
                    versions=[feature.prd.versions.index(v) + 1 for v in late_versions],
                )
            )
    if feature.is_api:
        if feature.spec is None:
            repos = sorted({m.repo.path for m in feature.mrs})
            out.append(entry("api_epic_without_spec", "issue", epic.key, linked_repositories=repos))
        elif feature.spec.drift_at is not None:
            s = feature.spec
            out.append(
                entry(
                    "spec_drift_from_approved",
                    "issue",
                    epic.key,
                    project=s.repo.path,
                    path=s.path,
                    approved_ref=s.tag,
                    ref=s.repo.default_branch,
                    approved_page=feature.api_page.id if feature.api_page else None,
                    drifted_at=_iso(s.drift_at),
                )
            )
    if feature.runbook is None:
        out.append(
            entry(
                "service_without_runbook",
                "issue",
                epic.key,
                repositories=sorted({m.repo.path for m in feature.mrs}),
            )
        )

    for s in stories:
        out.extend(_story_entries(s))
    for bug in feature.bugs:
        if not bug.key:
            continue
        for link_type, _direction, other, _id in bug.links:
            if other.kind != "story" or other.done_at is None:
                continue
            if (
                link_type in ("Problem/Incident", "Relates")
                and timedelta(0) <= bug.created - other.done_at <= BUG_WINDOW
            ):
                out.append(
                    entry(
                        "bug_traced_to_story",
                        "issue",
                        bug.key,
                        story=other.key,
                        link=("is caused by" if link_type == "Problem/Incident" else "relates to"),
                        story_done_at=_iso(other.done_at),
                        bug_created_at=_iso(bug.created),
                        days_after_done=round(
                            (bug.created - other.done_at).total_seconds() / 86400, 1
                        ),
                    )
                )
    for mr in feature.mrs:
        if not mr.iid:
            continue
        out.extend(_mr_entries(mr, feature))
    return out


def _story_entries(s: Issue) -> list[dict[str, Any]]:
    out = []
    if s.ac_at is None:
        out.append(
            entry(
                "story_without_acceptance_criteria",
                "issue",
                s.key,
                source="description" if s.team.ac_in_description else "field",
            )
        )
    if s.stype == "ui":
        if s.edge_at is None:
            out.append(
                entry(
                    "ui_story_without_edge_cases",
                    "issue",
                    s.key,
                    heading_without_table=s.edge_heading_only,
                )
            )
        gate = ui_gate(s)
        if gate:
            out.append(gate)
    if s.start_at is not None:
        changes = [
            (h.at, item[0])
            for h in s.hist
            if h.at > s.start_at
            for item in h.items
            if item[0] in SCOPE_FIELDS or (item[0] == "description" and item[3])
        ]
        if changes:
            out.append(
                entry(
                    "scope_changed_after_start",
                    "issue",
                    s.key,
                    started_at=_iso(s.start_at),
                    changes=[
                        {
                            "field": (
                                "acceptance_criteria"
                                if f in ("ac", "description")
                                else "story_points"
                                if f == "points"
                                else f
                            ),
                            "at": _iso(at),
                        }
                        for at, f in changes
                    ],
                )
            )
    if s.category == "done":
        open_mrs = [m.ref for m in s.mrs if m.iid and m.state == "opened"]
        if open_mrs:
            out.append(
                entry(
                    "jira_done_mr_open",
                    "issue",
                    s.key,
                    merge_requests=open_mrs,
                    done_at=_iso(s.category_changed_at),
                )
            )
    reopens = [
        h.at
        for h in s.hist
        for item in h.items
        if item[0] == "status" and item[4] == "done" and item[5] != "done"
    ]
    if reopens:
        out.append(entry("reopened", "issue", s.key, reopened_at=[_iso(t) for t in reopens]))
    return out


def _mr_entries(mr: MR, feature: Feature) -> list[dict[str, Any]]:
    out = []
    if mr.is_integration and mr.state != "closed":
        have = integration_requirements(mr, feature)
        names = {
            "contract_tests": "integration_without_contract_tests",
            "auth_model": "integration_without_auth_model",
            "observability": "integration_without_observability",
        }
        for req, kind in names.items():
            if have[req] is None:
                out.append(
                    entry(
                        kind,
                        "merge_request",
                        mr.ref,
                        epic=feature.epic.key,
                        issue=mr.issue.key if mr.issue else None,
                    )
                )
        gate = integration_gate(mr, feature)
        if gate:
            out.append(gate)
    if mr.rewrites is not None and mr.state == "merged":
        base, path, lines = mr.rewrites
        if base.merged_at and mr.merged_at and mr.merged_at - base.merged_at < CHURN_WINDOW:
            out.append(
                entry(
                    "churn",
                    "merge_request",
                    mr.ref,
                    rewrites=base.ref,
                    path=path,
                    lines=list(lines),
                    base_merged_at=_iso(base.merged_at),
                    merged_at=_iso(mr.merged_at),
                    days=round((mr.merged_at - base.merged_at).total_seconds() / 86400, 1),
                )
            )
    pushes = mr.pushes_after_first_review()
    if pushes >= 3:
        out.append(
            entry(
                "many_review_rounds",
                "merge_request",
                mr.ref,
                pushes_after_first_review=pushes,
                review_rounds=pushes + 1,
            )
        )
    return out
