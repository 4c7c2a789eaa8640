"""Feature timelines: what happened to one epic, its stories, bugs, merge requests and pages.

A feature is planned as a sequence of dated events and every object keeps only the
events at or before ``as_of`` (its state is the state at that instant). Planning works
on plain Python objects; keys, ids and payload shapes come later (``jira_payloads``,
``gitlab_payloads``, ``confluence_payloads``), and truth is judged from the same objects
(``situations.judge``), so the three can never disagree.

Features that started long enough before ``as_of`` to have finished ("settled") may
carry injected situations; recent ones are clean and simply cut off mid-flight.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from dagster_project.sandbox.simulator import text as tx
from dagster_project.sandbox.simulator.clock import DAY, HOUR, later
from dagster_project.sandbox.simulator.model import (
    MR,
    Commit,
    Ctx,
    Feature,
    FileChange,
    Issue,
    Page,
    Spec,
    sprint_for,
)
from dagster_project.sandbox.simulator.org import Person, Repo
from dagster_project.sandbox.simulator.situations import Shape, StoryShape

SETTLE_DAYS = 130  # a feature this old has run its whole course before as_of
LAST_START_DAYS = 12  # no feature starts closer to as_of (all its issues exist by then)
SECTIONS = ("Product", "Engineering", "Operations")


def plan_sections(ctx: Ctx, start: datetime) -> list[Page]:
    """Each space's home page and the three section pages everything else hangs under."""
    pages = []
    for team in ctx.org.teams:
        rng = random.Random(f"{ctx.seed}:space:{team.key}")
        owner = team.people[0]
        home = Page("home", team, f"{team.name} Home", [], None)
        home.add_version(start - timedelta(days=rng.randint(200, 400)), owner, ctx.as_of)
        pages.append(home)
        for name in SECTIONS:
            p = Page("section", team, name, [], home)
            p.add_version(
                home.created + timedelta(days=rng.randint(1, 30), hours=rng.randint(0, 9)),
                rng.choice(team.people),
                ctx.as_of,
            )
            ctx.sections[(team.key, name)] = p
            pages.append(p)
    for p in pages:
        p.id = str(ctx.next_page_id)
        ctx.next_page_id += 1 + (int(p.id) % 5)
    return pages


class Planner:
    """Plans one feature; see the module docstring for the rules that keep truth exact."""

    def __init__(self, ctx: Ctx, index: int, t0: datetime, budget: int):
        self.ctx = ctx
        self.org = ctx.org
        self.as_of = ctx.as_of
        self.rng = random.Random(f"{ctx.seed}:feature:{index}")
        self.index = index
        self.t0 = t0
        self.budget = budget  # issues this feature may still create (to hit the count exactly)
        self.settled = t0 <= ctx.as_of - timedelta(days=SETTLE_DAYS)

    # small helpers
    def later(self, dt: datetime, lo: float, hi: float, who: Person) -> datetime:
        return later(dt, self.rng, lo, hi, who.utc_offset)

    def plan(self) -> Feature:
        rng = self.rng
        teams = self.org.teams
        team = rng.choices(teams, weights=[t.weight for t in teams])[0]
        theme = rng.choice(team.themes)
        aspect = rng.choice(tx.ASPECTS)
        base = f"{theme[0].upper()}{theme[1:]} {aspect}"
        n = self.ctx.slug_counts.get(base, 0) + 1
        self.ctx.slug_counts[base] = n
        name = base if n == 1 else f"{base} (phase {n})"
        slug = tx.slugify(base) + ("" if n == 1 else f"-{n}")
        f = Feature(self.index, team, self.t0, self.settled, self.as_of, name, slug, theme)
        self.f = f
        self.people = list(team.people)
        rng.shuffle(self.people)
        self.pm, self.lead, self.qa = self.people[0], self.people[1], self.people[2]
        self.devs = self.people[3:] or self.people[1:]
        shape = self._shape()
        f.shape = shape
        f.is_api = shape.is_api
        self._prework()
        self._stories()
        self._epic_progress()
        self._bugs()
        self._late_pages()
        self._padding()
        self.ctx.assign_ids(f)
        return f

    # -- shape ----------------------------------------------------------------------------

    def _shape(self) -> Shape:
        rng = self.rng
        n_stories = max(0, min(rng.randint(3, 7), self.budget - 1))
        is_api = rng.random() < 0.35
        integration = rng.random() < 0.3 and n_stories >= 3
        stories = []
        for i in range(n_stories):
            if integration and i in (1, 3) and i < n_stories:
                stype = "integration"
            elif rng.random() < 0.35:
                stype = "ui"
            else:
                stype = "backend"
            stories.append(StoryShape(stype))
        shape = Shape(is_api=is_api, stories=stories)
        if self.settled and n_stories >= 3:
            self.ctx.assigner.assign(shape, rng)
        return shape

    # -- pages and spec written before the stories are cut -----------------------------------

    def _page(
        self, kind: str, title: str, labels: list[str], section: str, story: Issue | None = None
    ) -> Page:
        p = Page(
            kind,
            self.f.team,
            title,
            labels,
            self.ctx.section(self.f.team, section),
            feature=self.f,
            story=story,
            macro=self.rng.random() < 0.6,
        )
        self.f.pages.append(p)
        return p

    def _prework(self) -> None:
        f, rng, pm, lead = self.f, self.rng, self.pm, self.lead
        shape = f.shape
        assert shape is not None
        t = self.t0
        f.brief = self._page("brief", f"{f.name} - product brief", ["product-brief"], "Product")
        f.brief.add_version(t, pm, self.as_of, status="Draft", epic=False)
        epic_at = self.later(t, 18, 30, pm)
        epic = Issue(f, "epic", None, epic_at, pm, f.name, f.topic)
        epic.assignee = lead
        epic.priority = rng.choice(("Medium", "High", "Medium"))
        epic.labels = (["api"] if shape.is_api else []) + (
            ["roadmap-2026"] if rng.random() < 0.3 else []
        )
        epic.intro = [
            ("p", f"Deliver {f.name.lower()} for the {f.team.name} domain."),
            ("p", "Scope, goals and non-goals are in the PRD."),
        ]
        f.epic = epic
        f.brief.add_version(
            self.later(epic_at, 1, 8, pm), pm, self.as_of, status="Approved", epic=True
        )
        t = epic_at
        if shape.epic_prd != "epic_without_prd":
            f.prd = self._page(
                "prd",
                f"{f.name} - PRD",
                ["prd"] + (["requirements"] if rng.random() < 0.3 else []),
                "Product",
            )
            t = self.later(epic_at, 4, 20, pm)
            f.prd.add_version(t, pm, self.as_of, status="Draft", rev=1)
            t = self.later(t, 8, 40, pm)
            f.prd.add_version(t, pm, self.as_of, status="In review", rev=2)
            t = self.later(t, 8, 40, pm)
            f.prd.add_version(t, pm, self.as_of, status="Approved", rev=2)
            epic.add_remote_link(self.later(t, 0.2, 3, pm), pm, self._remote_id(), f.prd)
        if shape.epic_ops == "integration_gate_late":
            shape.variants["late"] = rng.choice(("auth", "runbook"))
        if shape.is_integration:
            ops = shape.epic_ops
            variant = (
                rng.choice(("none", "draft")) if ops == "integration_without_auth_model" else ""
            )
            shape.variants["auth"] = variant
            if variant != "none":
                f.auth = self._page(
                    "auth-model",
                    f"{f.name} - auth model",
                    ["auth-model", "security"],
                    "Engineering",
                )
                at = self.later(epic_at, 30, 60, lead)
                f.auth.add_version(at, lead, self.as_of, status="Draft")
                late_auth = ops == "integration_gate_late" and shape.variants["late"] == "auth"
                if ops != "integration_without_auth_model" and not late_auth:
                    f.auth.add_version(
                        self.later(at, 6, 36, lead), lead, self.as_of, status="Approved"
                    )
        if shape.is_api and shape.epic_api != "api_epic_without_spec":
            self._spec(epic_at)
        if shape.epic_ops != "service_without_runbook":
            f.runbook = self._page(
                "runbook", f"{f.name} - runbook", ["runbook", "ops"], "Operations"
            )
            at = self.later(epic_at, 60, 110, lead)
            if shape.epic_ops == "integration_without_observability":
                missing = rng.choice(("both", "alerts"))
                shape.variants["runbook"] = missing
                f.runbook.add_version(
                    at, lead, self.as_of, dashboards=missing != "both", alerts=False
                )
            elif shape.variants.get("late") == "runbook":
                f.runbook.add_version(at, lead, self.as_of, dashboards=False, alerts=False)
            else:
                f.runbook.add_version(at, lead, self.as_of, dashboards=True, alerts=True)
        f.test_plan = self._page(
            "test-plan", f"{f.name} - test plan", ["test-plan", "qa"], "Engineering"
        )
        f.test_plan.add_version(
            self.later(epic_at, 80, 130, self.qa), self.qa, self.as_of, stories=False
        )
        last = max(p.versions[-1][0] for p in f.pages if p.versions)
        if f.spec and f.spec.mr and f.spec.mr.merged_at:
            last = max(last, f.spec.mr.merged_at)
        self.stories_at = self.later(max(last, epic_at), 4, 30, pm)

    def _spec(self, epic_at: datetime) -> None:
        f, rng, lead = self.f, self.rng, self.lead
        repo = rng.choice(f.team.repos_with("api"))
        path = f"api/{f.slug}/openapi.yaml"
        tag = f"api-{f.slug}-v1.0.0"
        approved = tx.openapi_spec(f"{f.name} API", f.slug, "1.0.0")
        drifted = tx.openapi_spec(f"{f.name} API", f.slug, "1.1.0", drift=True)
        f.spec = Spec(repo, path, tag, approved, drifted)
        f.api_page = self._page(
            "api-spec", f"{f.name} - API specification", ["api-spec", "openapi"], "Engineering"
        )
        at = self.later(epic_at, 40, 70, lead)
        f.api_page.add_version(at, lead, self.as_of, status="Draft", spec=True)
        at = self.later(at, 6, 30, lead)
        f.api_page.add_version(at, lead, self.as_of, status="Approved", spec=True)
        dev = rng.choice(self.devs)
        mr = MR(
            f,
            repo,
            f.epic,
            dev,
            self.later(at, 1, 6, dev),
            f"Add {f.name} API contract",
            f"{f.slug}-contract",
            ["api"],
        )
        mr.spec = True
        lines = approved.splitlines()
        mr.files = [FileChange(path, True, [(0, 0, 1, len(lines), [], lines)])]
        f.mrs.append(mr)
        self._review(mr, rounds=0, approve_by=lead)
        f.spec.mr = mr
        if mr.merged_at:
            f.spec.tagged_at = mr.merged_at + timedelta(minutes=rng.randint(5, 90))
            f.spec.tag_sha = mr.merge_commit.sha if mr.merge_commit else mr.head_sha
            if f.shape and f.shape.epic_api == "spec_drift_from_approved":
                at = self.later(mr.merged_at, 24 * 25, 24 * 45, dev)
                if at <= self.as_of:
                    f.spec.drift_at = at
                    f.spec.drift_commit = Commit(
                        self.ctx.sha(rng),
                        at,
                        dev,
                        "Add currency and cancel operation to the API",
                        11,
                        1,
                        [f.spec.tag_sha],
                    )

    # -- stories ------------------------------------------------------------------------------

    def _stories(self) -> None:
        f, rng = self.f, self.rng
        shape = f.shape
        assert shape is not None
        if not shape.stories:
            return
        t = self.stories_at
        used: dict[str, set[str]] = {"ui": set(), "backend": set(), "integration": set()}
        partner = rng.choice(tx.PARTNERS)
        for i, ss in enumerate(shape.stories):
            who = rng.choice((self.pm, self.lead))
            t = self.later(t, 0.3, 6, who)
            pool = {
                "ui": tx.UI_STORIES,
                "backend": tx.BACKEND_STORIES,
                "integration": tx.INTEGRATION_STORIES,
            }[ss.stype]
            template = rng.choice([p for p in pool if p not in used[ss.stype]] or list(pool))
            used[ss.stype].add(template)
            summary = template.format(t=f.topic, s=rng.choice(tx.SCREENS), p=partner)
            s = Issue(f, "story", ss.stype, t, who, summary[0].upper() + summary[1:], f.topic)
            s.template = template
            s.scenario = ss.scenario
            s.epic = f.epic
            s.assignee = rng.choice(self.devs)
            s.priority = rng.choice(("Medium", "Medium", "High", "Low"))
            s.intro = [
                (
                    "p",
                    f"As a {rng.choice(tx.PERSONAS)}, I want {summary[0].lower() + summary[1:]} "
                    f"so that {f.topic} work without manual steps.",
                )
            ]
            self._labels(s, ss, i)
            f.stories.append(s)
        for i, s in enumerate(f.stories):
            self._story_content(s, shape.stories[i])
        start_base = self.later(f.stories[-1].created, 12, 60, self.lead)
        self.churn_bases = [
            f.stories[x.churn_base] for x in shape.stories if x.churn_base is not None
        ]
        for i, s in enumerate(f.stories):
            self._story_life(
                s, shape.stories[i], start_base + timedelta(hours=self._backlog_hours())
            )
        if f.test_plan is not None:
            f.test_plan.add_version(
                self.later(f.stories[-1].created, 6, 40, self.qa), self.qa, self.as_of, stories=True
            )

    def _backlog_hours(self) -> int:
        """How long a story waits before work starts: mostly days, sometimes weeks."""
        roll = self.rng.random()
        if roll < 0.55:
            return self.rng.randint(0, 24 * 9)
        if roll < 0.85:
            return self.rng.randint(24 * 10, 24 * 30)
        return self.rng.randint(24 * 30, 24 * 60)

    def _labels(self, s: Issue, ss: StoryShape, i: int) -> None:
        rng = self.rng
        if ss.stype == "ui":
            style = rng.random()
            if style < 0.55:
                s.labels = ["ui"]
            elif style < 0.8:
                s.labels = ["frontend"]
            else:
                s.components = ["Frontend"]
            if rng.random() < 0.3 and not s.components:
                s.components = ["Frontend"]
        elif ss.stype == "integration":
            # Mostly labelled on the story; sometimes only the MR carries the label.
            s.labels = [] if rng.random() < 0.15 else ["integration"]
            s.components = ["Backend"] if rng.random() < 0.4 else []
        else:
            s.labels = ["backend"] if rng.random() < 0.3 else []
            s.components = (
                ["Backend"]
                if rng.random() < 0.3
                else (["API"] if self.f.is_api and rng.random() < 0.3 else [])
            )
        if rng.random() < 0.15:
            s.labels = s.labels + ["tech-debt" if ss.stype == "backend" else "customer-request"]

    def _story_content(self, s: Issue, ss: StoryShape) -> None:
        """AC and edge cases at creation; scenarios decide what is missing."""
        rng = self.rng
        sc = ss.scenario
        ac = tx.acceptance_criteria(rng, s.topic)
        ac_late = sc == "ui_gate_late" and not s.team.ac_in_description and rng.random() < 0.5
        missing_ac = sc == "story_without_acceptance_criteria" or (
            sc == "ui_gate_violated" and rng.random() < 0.4
        )
        if not missing_ac and not ac_late:
            s.ac = ac
            s.ac_at = s.created
        s.pending_ac = ac if ac_late else None
        if s.stype != "ui":
            return
        rows = tx.edge_case_rows(rng)
        if sc in ("ui_story_without_edge_cases", "ui_gate_violated") and (
            sc != "ui_gate_violated" or s.ac
        ):
            s.edge_heading_only = rng.random() < 0.3
            return
        if sc == "ui_gate_late" and not ac_late:
            s.pending_edge = (
                "page" if (s.team.ac_in_description or rng.random() < 0.5) else "description"
            )
            s.pending_rows = rows
            return
        if rng.random() < 0.25:
            s.edge_via_page = True
            s.pending_rows = rows
        else:
            s.edge_rows = rows
            s.edge_at = s.created

    def _ecm_page(self, s: Issue, at: datetime, who: Person, rows: list[list[str]]) -> None:
        p = self._page(
            "edge-case-matrix",
            f"{self.f.name} - edge cases: {s.summary}",
            ["edge-case-matrix", "ux"],
            "Engineering",
            story=s,
        )
        p.rows = rows
        if p.add_version(at, who, self.as_of):
            s.edge_at = at if s.edge_at is None else s.edge_at
            s.add_remote_link(self.later(at, 0.05, 1, who), who, self._remote_id(), p)

    def _story_life(self, s: Issue, ss: StoryShape, planned_start: datetime) -> None:
        rng, wf = self.rng, s.team.workflow
        sc = ss.scenario
        dev = s.assignee or self.devs[0]
        t = s.created
        if rng.random() < 0.25:  # moved into the epic after creation
            t = self.later(t, 0.3, 4, s.creator)
            s.record(t, s.creator, [("epic", s.epic)])
        if s.points is None:
            if rng.random() < 0.3:
                s.points = float(rng.choice((1, 2, 3, 5, 8)))
            else:
                t = self.later(t, 2, 30, self.lead)
                s.set_points(t, self.lead, float(rng.choice((1, 2, 3, 5, 8))))
        if s.edge_via_page:
            t = self.later(t, 1, 20, self.qa)
            self._ecm_page(s, t, self.qa, s.pending_rows)
        parked = (
            sc is None
            and ss.stype != "integration"  # integration situations need their MRs
            and s not in self.churn_bases
            and rng.random() < 0.08
        )
        if sc == "ui_story_without_edge_cases" or parked:
            return  # stays in the backlog (refined, but not picked up)
        if ss.churn_base is not None:
            base_mrs = self.f.stories[ss.churn_base].mrs
            if base_mrs and base_mrs[-1].merged_at:
                planned_start = self.later(base_mrs[-1].merged_at, 4, 30, dev)
        start = max(planned_start, self.later(t, 6, 30, dev))
        sprint = sprint_for(self.ctx.team_index[s.team.key], s.team.key, start)
        plan_at = max(t + HOUR, min(start - HOUR, max(sprint.start, start - 2 * DAY)))
        if wf.planned:
            s.transition(plan_at, self.lead, wf.planned)
        s.add_sprint(plan_at + timedelta(minutes=rng.randint(1, 40)), self.lead, sprint)
        start = max(start, plan_at + timedelta(hours=1, minutes=rng.randint(0, 59)))
        if not s.transition(start, dev, wf.working[0]):
            return
        t = start
        # after-start edits decided by the scenario
        if sc == "ui_gate_late":
            t = self.later(t, 8, 60, self.pm)
            if s.pending_ac:
                s.set_ac(t, self.pm, s.pending_ac)
            elif s.pending_edge == "description":
                rows = s.pending_rows
                s.edit_description(t, self.qa, lambda: setattr(s, "edge_rows", rows))
            else:
                self._ecm_page(s, t, self.qa, s.pending_rows)
        elif sc == "scope_changed_after_start":
            t = self.later(t, 6, 50, self.pm)
            what = rng.choice(("summary", "points", "ac"))
            if what == "summary":
                s.rename(t, self.pm, s.summary + rng.choice(tx.RENAMED_SUFFIX))
            elif what == "points":
                s.set_points(
                    t, self.lead, float({1: 3, 2: 5, 3: 8, 5: 13, 8: 13}.get(int(s.points or 3), 5))
                )
            elif s.ac:
                extra = s.ac + [
                    "Given a bulk request, when it is submitted, then up to 500 items are accepted"
                ]
                s.set_ac(t, self.pm, extra)
            else:
                s.rename(t, self.pm, s.summary + rng.choice(tx.RENAMED_SUFFIX))
        # merge request
        repo = self._repo_for(s, ss)
        if ss.churn_base is not None:
            base = self.f.stories[ss.churn_base]
            if base.mrs and base.mrs[-1].merged_at:
                repo = base.mrs[-1].repo
                t = max(t, base.mrs[-1].merged_at)
        if ss.stype == "backend" and sc is None and rng.random() < 0.07:
            self._abandoned_mr(s, repo, t, dev)
        open_at = self.later(t, 3, 30, dev)
        mr = self._story_mr(s, ss, repo, open_at, dev)
        if mr is None:
            return
        s.transition(self.later(open_at, 0.02, 0.5, dev), dev, wf.working[1])
        rounds = (
            rng.randint(3, 4) if sc == "many_review_rounds" else (0 if rng.random() < 0.55 else 1)
        )
        if sc == "jira_done_mr_open":
            self._review(mr, rounds=min(rounds, 1), merge=False)
            done_at = self.later(open_at, 24, 96, self.lead)
            self._finish(s, done_at, self.lead)
            return
        base_mrs = self.f.stories[ss.churn_base].mrs if ss.churn_base is not None else []
        if base_mrs:
            base_mr = base_mrs[-1]
            if base_mr.merged_at:
                self._review(
                    mr,
                    rounds=0,
                    merge_before=base_mr.merged_at + timedelta(days=rng.randint(4, 13)),
                )
            else:
                self._review(mr, rounds=0)
        else:
            self._review(mr, rounds=rounds)
        if mr.merged_at is None:
            return
        done_at = self._finish(s, self.later(mr.merged_at, 1, 10, self.qa), self.qa)
        if sc == "reopened" and done_at is not None:
            t = self.later(done_at, 48, 240, self.qa)
            if s.transition(t, self.qa, wf.working[0]):
                follow = self._story_mr(s, ss, repo, self.later(t, 2, 24, dev), dev, follow_up=True)
                if follow is not None:
                    self._review(follow, rounds=0)
                    if follow.merged_at:
                        self._finish(s, self.later(follow.merged_at, 2, 20, self.qa), self.qa)

    def _finish(self, s: Issue, at: datetime, who: Person) -> datetime | None:
        wf = s.team.workflow
        if len(wf.working) > 2:
            if not s.transition(at, who, wf.working[2]):
                return None
            at = self.later(at, 3, 30, who)
        if s.transition(at, who, wf.done):
            sprint = s.sprints[-1] if s.sprints else None
            if sprint and at > sprint.end + HOUR and len(s.sprints) < 3:
                nxt = sprint_for(self.ctx.team_index[s.team.key], s.team.key, sprint.end + HOUR)
                s.add_sprint(sprint.end + HOUR, self.lead, nxt)
            return at
        return None

    def _repo_for(self, s: Issue, ss: StoryShape) -> Repo:
        team, rng = s.team, self.rng
        if ss.stype == "ui":
            return team.repos_with("ui")[0]
        if self.f.shape and self.f.shape.epic_api == "api_epic_without_spec":
            return team.repos_with("backend")[0]
        if self.f.spec is not None and rng.random() < 0.8:
            return self.f.spec.repo
        return rng.choice(team.repos_with("api") + team.repos_with("backend"))

    def _files(self, s: Issue, ss: StoryShape, repo: Repo, suffix: str = "") -> list[FileChange]:
        rng = self.rng
        words = tx.snake(s.template.format(t="", s="", p="")) or "change"
        words = "_".join(w for w in words.split("_") if w)[:40]
        module = tx.snake(self.f.slug)
        files = []
        if ss.stype == "ui":
            comp = tx.camel(self.f.slug) + tx.camel(words)[:24] + suffix.title().replace("_", "")
            n = rng.randint(8, 18)
            files.append(
                FileChange(
                    f"src/components/{tx.camel(self.f.slug)}/{comp}.tsx",
                    True,
                    [(0, 0, 1, n, [], tx.code_lines(rng, s.topic, n, ui=True))],
                )
            )
            m = rng.randint(5, 10)
            files.append(
                FileChange(
                    f"src/components/{tx.camel(self.f.slug)}/{comp}.test.tsx",
                    True,
                    [(0, 0, 1, m, [], tx.code_lines(rng, s.topic, m, ui=True))],
                )
            )
            return files
        base = f"src/{module}/{words}{suffix}.py"
        if ss.stype == "integration":
            base = f"src/integrations/{module}/{words}{suffix}.py"
        n = rng.randint(12, 30)
        files.append(
            FileChange(base, True, [(0, 0, 1, n, [], tx.code_lines(rng, s.topic, n, ui=False))])
        )
        m = rng.randint(6, 14)
        files.append(
            FileChange(
                f"tests/unit/{module}/test_{words}{suffix}.py",
                True,
                [(0, 0, 1, m, [], tx.code_lines(rng, s.topic, m, ui=False))],
            )
        )
        return files

    def _story_mr(
        self,
        s: Issue,
        ss: StoryShape,
        repo: Repo,
        at: datetime,
        dev: Person,
        follow_up: bool = False,
    ) -> MR | None:
        if at > self.as_of:
            return None
        rng = self.rng
        f = self.f
        suffix = "_followup" if follow_up else ""
        kind = "fix" if follow_up else "feature"
        mr = MR(
            f,
            repo,
            s,
            dev,
            at,
            ("Follow-up: " if follow_up else "") + s.summary,
            f"{kind}/{{key}}-{tx.slugify(s.summary)[:40]}{'-followup' if follow_up else ''}",
            [],
        )
        mr.files = self._files(s, ss, repo, suffix)
        labels = {"ui": ["frontend"], "backend": ["backend"], "integration": ["backend"]}[ss.stype]
        if ss.stype == "integration" and not follow_up:
            if "integration" not in s.labels or rng.random() < 0.7:
                labels = labels + ["integration"]
            module = tx.snake(f.slug)
            if f.shape and f.shape.contract_gap_story == f.stories.index(s):
                pass
            else:
                mr.contract = True
                if rng.random() < 0.5:
                    path = f"tests/contract/{module}/test_{tx.snake(s.summary)[:30]}_contract.py"
                else:
                    path = f"pacts/{module}-{tx.slugify(s.summary)[:30]}.json"
                n = rng.randint(10, 20)
                mr.files.append(
                    FileChange(
                        path, True, [(0, 0, 1, n, [], tx.code_lines(rng, s.topic, n, ui=False))]
                    )
                )
            ops = f.shape.epic_ops if f.shape else None
            if (
                ops not in ("integration_without_observability", "integration_gate_late")
                and rng.random() < 0.4
            ):
                mr.observability = True
                n = rng.randint(6, 14)
                mr.files.append(
                    FileChange(
                        f"observability/dashboards/{f.slug}-{tx.slugify(s.summary)[:24]}.json",
                        True,
                        [(0, 0, 1, n, [], [f'  "panel_{k}": "{f.slug}"' for k in range(n)])],
                    )
                )
        elif follow_up:
            labels = labels + ["bug"] if rng.random() < 0.5 else labels
        mr.labels = labels
        if ss.churn_base is not None and not follow_up:
            base_mr = f.stories[ss.churn_base].mrs[-1] if f.stories[ss.churn_base].mrs else None
            if base_mr is not None and base_mr.merged_at is not None:
                target = base_mr.files[0]
                length = target.hunks[0][3]
                a = rng.randint(2, max(2, length - 6))
                k = rng.randint(3, min(6, length - a + 1))
                removed = target.hunks[0][5][a - 1 : a - 1 + k]
                added = [
                    line.replace("record", "entry").replace("payload", "body") + "  # reworked"
                    for line in removed
                ]
                added.append("    # handle partial failures")
                mr.files.append(
                    FileChange(target.path, False, [(a, k, a, len(added), removed, added)])
                )
                mr.rewrites = (base_mr, target.path, (a, a + k - 1))
        f.mrs.append(mr)
        s.mrs.append(mr)
        return mr

    def _abandoned_mr(self, s: Issue, repo: Repo, t: datetime, dev: Person) -> None:
        at = self.later(t, 1, 10, dev)
        if at > self.as_of:
            return
        mr = MR(self.f, repo, s, dev, at, "Draft: " + s.summary, "{key}-spike", ["backend"])
        n = self.rng.randint(6, 12)
        mr.files = [
            FileChange(
                f"src/{tx.snake(self.f.slug)}/spike_{self.rng.randint(100, 999)}.py",
                True,
                [(0, 0, 1, n, [], tx.code_lines(self.rng, s.topic, n, ui=False))],
            )
        ]
        self._commits(mr, at - timedelta(minutes=self.rng.randint(10, 200)), 1)
        close = self.later(at, 4, 48, dev)
        if mr.event(close, "close", dev):
            mr.state = "closed"
            mr.closed_at = close
        self.f.mrs.append(mr)
        s.mrs.append(mr)

    # -- review ----------------------------------------------------------------------------

    def _commits(self, mr: MR, at: datetime, n: int) -> None:
        rng = self.rng
        total_add = sum(fc.added for fc in mr.files)
        total_del = sum(fc.removed for fc in mr.files)
        for i in range(n):
            add = (
                max(1, total_add // (n + 1))
                if i
                else max(1, total_add - (n - 1) * (total_add // (n + 1)))
            )
            title = rng.choice(
                (
                    "Implement {x}",
                    "Add tests for {x}",
                    "Handle errors in {x}",
                    "Refactor {x}",
                    "Address review comments",
                    "Fix lint",
                )
            )
            parents = [mr.commits[-1].sha] if mr.commits else [self.ctx.sha(rng)]
            mr.commits.append(
                Commit(
                    self.ctx.sha(rng),
                    at + timedelta(minutes=7 * i),
                    mr.author,
                    title.format(x=self.f.topic),
                    add,
                    total_del if i == 0 else rng.randint(0, 3),
                    parents,
                )
            )

    def _review(
        self,
        mr: MR,
        rounds: int,
        merge: bool = True,
        approve_by: Person | None = None,
        merge_before: datetime | None = None,
    ) -> None:
        rng = self.rng
        author = mr.author
        reviewers = [p for p in self.people if p is not author]
        reviewer = approve_by or rng.choice(reviewers)
        mr.reviewers = [reviewer]
        t = mr.created
        if t > self.as_of:
            return
        self._commits(mr, t - timedelta(minutes=rng.randint(20, 300)), rng.randint(1, 3))
        mr.event(t, "open", author)
        t = self.later(t, 0.02, 1, author)
        mr.event(t, "assigned", author, author)
        mr.event(t + timedelta(seconds=rng.randint(2, 50)), "review_requested", author, reviewer)
        if rng.random() < 0.3:
            t = self.later(t, 1, 6, author)
            self._push(mr, t, 1)
        if merge_before is not None:
            t = max(t, merge_before - timedelta(hours=rng.randint(30, 60)))
        t = self.later(t, 2, 26, reviewer)
        if rounds == 0:
            mr.event(t, "approve", reviewer)
        else:
            mr.event(t, "comment", reviewer, rng.randint(0, 9))
            mr.event(t + timedelta(seconds=rng.randint(20, 300)), "changes", reviewer)
        for r in range(rounds):
            t = self.later(t, 2, 30, author)
            self._push(mr, t, rng.randint(1, 3))
            t = self.later(t, 1, 20, reviewer)
            if r < rounds - 1:
                mr.event(t, "comment", reviewer, rng.randint(0, 9))
                mr.event(t + timedelta(seconds=rng.randint(20, 300)), "changes", reviewer)
            else:
                mr.event(t, "approve", reviewer)
        if rng.random() < 0.25:
            second = rng.choice([p for p in reviewers if p is not reviewer] or reviewers)
            t = self.later(t, 0.5, 8, second)
            mr.event(t, "approve", second)
            mr.reviewers.append(second)
        if not merge:
            return
        merger = rng.choice((reviewer, author, self.lead))
        last = t
        t = self.later(t, 0.3, 20, merger)
        if merge_before is not None and t > merge_before > last:
            t = merge_before
        if mr.event(t, "merge", merger):
            mr.state = "merged"
            mr.merged_at = t
            mr.merged_by = merger
            mr.merge_commit = Commit(
                self.ctx.sha(rng),
                t,
                merger,
                f"Merge branch into '{mr.repo.default_branch}'",
                0,
                0,
                [self.ctx.sha(rng), mr.head_sha],
            )

    def _push(self, mr: MR, at: datetime, n: int) -> None:
        if at > self.as_of:
            return
        before = len(mr.commits)
        self._commits(mr, at - timedelta(minutes=5 * n + 3), n)
        new = mr.commits[before:]
        for c in new:
            c.title = self.rng.choice(
                (
                    "Address review comments",
                    "Apply suggestions from review",
                    "Cover the error path",
                    "Rename per review",
                )
            )
        mr.event(at, "push", mr.author, new)

    # -- epic, bugs, late pages, long changelogs ---------------------------------------------

    def _epic_progress(self) -> None:
        f, epic, wf = self.f, self.f.epic, self.f.team.workflow
        starts = [s.start_at for s in f.stories if s.start_at]
        if not starts:
            return
        t = min(starts) + timedelta(minutes=self.rng.randint(5, 180))
        epic.transition(t, self.lead, wf.working[0])
        blocking = any(
            s.scenario in ("jira_done_mr_open", "ui_story_without_edge_cases") for s in f.stories
        )
        if all(s.category == "done" for s in f.stories) and not blocking:
            last = max(s.done_at or s.created for s in f.stories)
            last = max([last] + [h.at for s in f.stories for h in s.hist])
            epic.transition(self.later(last, 24, 72, self.pm), self.pm, wf.done)

    def _bugs(self) -> None:
        f, rng = self.f, self.rng
        budget = self.budget - 1 - len(f.stories)
        templates = list(tx.BUG_SUMMARIES)
        rng.shuffle(templates)
        for s in list(f.stories):
            if budget <= 0:
                return
            if s.scenario == "bug_traced_to_story" and s.done_at:
                at = self.later(s.done_at, 24 * 2, 24 * 24, self.qa)
                if at > self.as_of:
                    continue
                self._bug(
                    s, at, templates.pop(), "Problem/Incident" if rng.random() < 0.6 else "Relates"
                )
                budget -= 1
        if budget > 0 and rng.random() < 0.35 and templates:
            done = [s for s in f.stories if s.done_at and s.scenario is None]
            if done and rng.random() < 0.35:
                s = rng.choice(done)
                at = self.later(s.done_at, 24 * 46, 24 * 75, self.qa)  # type: ignore[arg-type]
                if at <= self.as_of:
                    self._bug(s, at, templates.pop(), "Relates")
                    return
            at = self.later(self.stories_at, 24 * 10, 24 * 60, self.qa)
            if at <= self.as_of:
                self._bug(None, at, templates.pop(), None)

    def _bug(self, story: Issue | None, at: datetime, template: str, link: str | None) -> None:
        f, rng, wf = self.f, self.rng, self.f.team.workflow
        reporter = rng.choice((self.qa, self.pm))
        summary = template.format(t=f.topic, T=f.topic[0].upper() + f.topic[1:])
        bug = Issue(f, "bug", None, at, reporter, summary, f.topic)
        bug.priority = rng.choice(("High", "Highest", "Medium"))
        bug.labels = (
            ["customer-reported"] if rng.random() < 0.4 else (["regression"] if story else [])
        )
        bug.intro = [
            ("p", "Steps to reproduce:"),
            ("ul", ["Open the page", f"Trigger {f.topic}", "Observe the error"]),
            ("p", "Expected: no error. Actual: see screenshot."),
        ]
        bug.assignee = rng.choice(self.devs)
        f.bugs.append(bug)
        t = at
        if story is not None and link is not None:
            t = self.later(at, 0.05, 2, reporter)
            self.ctx.next_link_id += 1 + self.rng.randint(0, 5)
            lid = self.ctx.next_link_id
            if link == "Problem/Incident":
                bug.add_link(t, reporter, link, "inward", story, "is caused by", lid)
                story.add_link(t, reporter, link, "outward", bug, "causes", lid)
            else:
                bug.add_link(t, reporter, link, "outward", story, "relates to", lid)
                story.add_link(t, reporter, link, "inward", bug, "relates to", lid)
        dev = bug.assignee
        start = self.later(t, 2, 48, dev)
        if not bug.transition(start, dev, wf.working[0]):
            return
        ss = StoryShape("backend")
        bug.template = "fix " + tx.snake(template.format(t="", T=""))[:30]
        mr = self._story_mr(
            bug, ss, self._bug_repo(story), self.later(start, 1, 12, dev), dev, follow_up=True
        )
        if mr is None:
            return
        mr.title_text = f"Fix: {summary}"
        bug.transition(self.later(mr.created, 0.02, 0.5, dev), dev, wf.working[1])
        self._review(mr, rounds=0)
        if mr.merged_at:
            self._finish(bug, self.later(mr.merged_at, 1, 12, self.qa), self.qa)

    def _bug_repo(self, story: Issue | None) -> Repo:
        if story is not None and story.mrs:
            return story.mrs[0].repo
        return self.rng.choice(self.f.team.repos)

    def _late_pages(self) -> None:
        """Pages whose timing depends on merges: late approvals and late runbook sections."""
        f = self.f
        shape = f.shape
        if shape is None:
            return
        if shape.epic_prd == "prd_edited_after_stories" and f.prd is not None and f.stories:
            first = min(s.created for s in f.stories)
            f.prd.add_version(
                self.later(first, 24 * 3, 24 * 20, self.pm),
                self.pm,
                self.as_of,
                status="Approved",
                rev=3,
            )
        if shape.epic_ops != "integration_gate_late":
            return
        merges = [m.merged_at for m in f.mrs if m.is_integration and m.merged_at]
        if not merges:
            return
        at = self.later(max(merges), 48, 150, self.lead)
        if shape.variants.get("late") == "runbook" and f.runbook is not None:
            f.runbook.add_version(at, self.lead, self.as_of, dashboards=True, alerts=True)
        elif f.auth is not None:
            f.auth.add_version(at, self.lead, self.as_of, status="Approved")

    def _padding(self) -> None:
        """Long changelogs (over 100 histories) so Cloud's embedded-changelog cap matters."""
        f, rng = self.f, self.rng
        shape = f.shape
        if shape is None:
            return
        targets = []
        if shape.padded_epic:
            targets.append(f.epic)
        targets += [s for s, ss in zip(f.stories, shape.stories, strict=True) if ss.padded]
        for issue in targets:
            if not issue.hist:
                continue
            start = max(h.at for h in issue.hist) + HOUR
            end = min(self.as_of - HOUR, start + timedelta(days=40))
            if end <= start:
                continue
            n = rng.randint(104, 135)
            span = (end - start).total_seconds()
            times = sorted(start + timedelta(seconds=rng.uniform(0, span)) for _ in range(n))
            flagged = False
            for at in times:
                who = rng.choice(self.people)
                roll = rng.random()
                if roll < 0.6:
                    issue.record(at, who, [("rank", rng.choice(("Ranked higher", "Ranked lower")))])
                elif roll < 0.75:
                    issue.record(at, who, [("flagged", flagged, not flagged)])
                    flagged = not flagged
                elif roll < 0.9 and issue.assignee is not None:
                    new = rng.choice(self.people)
                    issue.record(at, who, [("assignee", issue.assignee, new)])
                    issue.assignee = new
                else:
                    new_p = rng.choice(("Low", "Medium", "High"))
                    issue.record(at, who, [("priority", issue.priority, new_p)])
                    issue.priority = new_p
            if flagged:
                issue.record(end, self.lead, [("flagged", True, False)])
            issue.padded = True

    def _remote_id(self) -> int:
        self.ctx.next_remote_link_id += 1
        return self.ctx.next_remote_link_id
