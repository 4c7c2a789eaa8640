"""The planned objects: issues, merge requests, pages and the feature that ties them.

Each object keeps only the events at or before ``as_of``, so its attributes are its state
at that instant; the planner (``plan.py``) drives them and the payload modules render
them. ``Ctx`` allocates keys, ids and iids in creation order once a feature is planned.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster_project.sandbox.simulator import text as tx
from dagster_project.sandbox.simulator.org import STATUS_BY_NAME, Org, Person, Repo, Team
from dagster_project.sandbox.simulator.situations import Assigner, Shape

SPRINT_ANCHOR = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)  # a Monday


@dataclass(frozen=True)
class Sprint:
    id: int
    name: str
    start: datetime
    end: datetime
    board: int


def sprint_for(team_index: int, team_key: str, at: datetime) -> Sprint:
    anchor = SPRINT_ANCHOR + timedelta(days=2 * team_index)
    n = max(1, int((at - anchor) // timedelta(days=14)) + 1)
    start = anchor + timedelta(days=14 * (n - 1))
    return Sprint(
        id=team_index * 1000 + n,
        name=f"{team_key} Sprint {n}",
        start=start,
        end=start + timedelta(days=14),
        board=11 + team_index,
    )


@dataclass
class Hist:
    at: datetime
    author: Person
    items: list[tuple]


class Issue:
    """One Jira issue's state at as_of, with the changelog that led there."""

    def __init__(
        self,
        feature: Feature,
        kind: str,
        stype: str | None,
        created: datetime,
        creator: Person,
        summary: str,
        topic: str,
    ):
        self.feature = feature
        self.team: Team = feature.team
        self.as_of = feature.as_of
        self.kind = kind
        self.stype = stype
        self.created = created
        self.creator = creator
        self.reporter = creator
        self.assignee: Person | None = None
        self.summary = summary
        self.topic = topic
        self.labels: list[str] = []
        self.components: list[str] = []
        self.priority = "Medium"
        self.epic: Issue | None = None
        self.intro: list[tx.Block] = []
        self.ac: list[str] | None = None
        self.ac_at: datetime | None = None
        self.edge_rows: list[list[str]] | None = None
        self.edge_heading_only = False
        self.edge_at: datetime | None = None
        self.points: float | None = None
        self.sprints: list[Sprint] = []
        wf = self.team.workflow
        self.status = wf.backlog
        self.resolution: str | None = None
        self.resolved_at: datetime | None = None
        self.category_changed_at = created
        self.start_at: datetime | None = None
        self.done_at: datetime | None = None
        self.hist: list[Hist] = []
        self.links: list[tuple[str, str, Issue, int]] = []  # (type, "inward"|"outward", other, id)
        self.remote_links: list[tuple[int, Page, datetime]] = []
        self.mrs: list[MR] = []
        self.scenario: str | None = None
        # planning notes: what a scenario adds after work started, and how
        self.template = ""
        self.pending_ac: list[str] | None = None
        self.pending_edge: str | None = None  # "page" | "description"
        self.pending_rows: list[list[str]] = []
        self.edge_via_page = False
        self.padded = False
        self.key = ""
        self.id = ""
        self.updated = created

    # -- state ----------------------------------------------------------------------------

    @property
    def category(self) -> str:
        return STATUS_BY_NAME[self.status].category

    def description_blocks(self) -> list[tx.Block]:
        blocks = list(self.intro)
        if self.team.ac_in_description and self.ac:
            blocks += [("h", 3, "Acceptance Criteria"), ("ul", list(self.ac))]
        if self.edge_rows:
            blocks += [
                ("h", 3, "Edge cases"),
                ("table", ["Case", "Expected behaviour"], self.edge_rows),
            ]
        elif self.edge_heading_only:
            blocks += [("h", 3, "Edge cases"), ("ul", ["To be agreed with design"])]
        return blocks

    def ac_field_wiki(self) -> str | None:
        if self.team.ac_in_description or not self.ac:
            return None
        return tx.to_wiki([("ul", self.ac)])

    def record(self, at: datetime, who: Person, items: list[tuple]) -> bool:
        if at > self.as_of or at < self.created:
            return False
        self.hist.append(Hist(at, who, items))
        if at > self.updated:
            self.updated = at
        return True

    # -- events (each is dropped when it falls after as_of) -------------------------------

    def transition(self, at: datetime, who: Person, to: str) -> bool:
        if at > self.as_of:
            return False
        old = STATUS_BY_NAME[self.status]
        new = STATUS_BY_NAME[to]
        items: list[tuple] = []
        if new.category == "done" and old.category != "done":
            items.append(("resolution", None, "Done"))
        elif old.category == "done" and new.category != "done":
            items.append(("resolution", self.resolution, None))
        items.append(("status", old.name, new.name, None, old.category, new.category))
        self.record(at, who, items)
        self.status = to
        if new.category != old.category:
            self.category_changed_at = at
        if new.category == "done":
            self.resolution, self.resolved_at = "Done", at
            if self.done_at is None:
                self.done_at = at
        else:
            self.resolution, self.resolved_at = None, None
        if new.category == "indeterminate" and self.start_at is None:
            self.start_at = at
        return True

    def set_ac(self, at: datetime, who: Person, lines: list[str]) -> bool:
        """Acceptance criteria land in the field, or in the description section."""
        if at > self.as_of:
            return False
        if self.team.ac_in_description:
            return self.edit_description(
                at, who, lambda: setattr(self, "ac", lines), ac_changed=True
            )
        old = self.ac_field_wiki()
        self.ac = lines
        self.record(at, who, [("ac", old, self.ac_field_wiki())])
        if self.ac_at is None:
            self.ac_at = at
        return True

    def edit_description(self, at: datetime, who: Person, mutate, ac_changed: bool = False) -> bool:
        if at > self.as_of:
            return False
        old = tx.to_wiki(self.description_blocks())
        had_edge = bool(self.edge_rows)
        mutate()
        self.record(
            at, who, [("description", old, tx.to_wiki(self.description_blocks()), ac_changed)]
        )
        if ac_changed and self.ac and self.ac_at is None:
            self.ac_at = at
        if self.edge_rows and not had_edge and self.edge_at is None:
            self.edge_at = at
        return True

    def set_points(self, at: datetime, who: Person, value: float) -> bool:
        if at > self.as_of:
            return False
        self.record(at, who, [("points", self.points, value)])
        self.points = value
        return True

    def rename(self, at: datetime, who: Person, summary: str) -> bool:
        if at > self.as_of:
            return False
        self.record(at, who, [("summary", self.summary, summary)])
        self.summary = summary
        return True

    def add_sprint(self, at: datetime, who: Person, sprint: Sprint) -> bool:
        if at > self.as_of or any(s.id == sprint.id for s in self.sprints):
            return False
        old = list(self.sprints)
        self.sprints.append(sprint)
        return self.record(at, who, [("sprint", old, list(self.sprints))])

    def add_link(
        self,
        at: datetime,
        who: Person,
        link_type: str,
        direction: str,
        other: Issue,
        phrase: str,
        link_id: int,
    ) -> bool:
        if at > self.as_of:
            return False
        self.links.append((link_type, direction, other, link_id))
        self.record(at, who, [("link", other, phrase)])
        return True

    def add_remote_link(self, at: datetime, who: Person, link_id: int, page: Page) -> bool:
        if at > self.as_of:
            return False
        self.remote_links.append((link_id, page, at))
        self.record(at, who, [("remotelink", link_id, page)])
        return True


@dataclass
class Commit:
    sha: str
    at: datetime
    author: Person
    title: str
    additions: int
    deletions: int
    parents: list[str]
    message: str = ""


@dataclass
class FileChange:
    path: str
    new_file: bool
    hunks: list[
        tuple[int, int, int, int, list[str], list[str]]
    ]  # old_start, old_len, new_start, new_len, removed, added

    @property
    def added(self) -> int:
        return sum(len(h[5]) for h in self.hunks)

    @property
    def removed(self) -> int:
        return sum(len(h[4]) for h in self.hunks)


class MR:
    """One merge request: its review conversation, commits and diff, cut at as_of."""

    def __init__(
        self,
        feature: Feature,
        repo: Repo,
        issue: Issue | None,
        author: Person,
        created: datetime,
        title_text: str,
        branch_text: str,
        labels: list[str],
    ):
        self.feature = feature
        self.as_of = feature.as_of
        self.repo = repo
        self.issue = issue
        self.author = author
        self.created = created
        self.title_text = title_text
        self.branch_text = branch_text
        self.labels = labels
        self.reviewers: list[Person] = []
        self.events: list[tuple[datetime, str, Person, Any]] = []
        self.state = "opened"
        self.merged_at: datetime | None = None
        self.closed_at: datetime | None = None
        self.merged_by: Person | None = None
        self.files: list[FileChange] = []
        self.commits: list[Commit] = []
        self.merge_commit: Commit | None = None
        self.rewrites: tuple[MR, str, tuple[int, int]] | None = None
        self.contract = False
        self.observability = False
        self.spec = False
        self.description_extra = ""
        self.iid = 0
        self.id = 0
        self.updated = created

    @property
    def ref(self) -> str:
        return f"{self.repo.path}!{self.iid}"

    @property
    def is_integration(self) -> bool:
        if "integration" in self.labels:
            return True
        return self.issue is not None and "integration" in self.issue.labels

    @property
    def head_sha(self) -> str:
        return self.commits[-1].sha if self.commits else "0" * 40

    def event(self, at: datetime, kind: str, who: Person, data: Any = None) -> bool:
        if at > self.as_of:
            return False
        self.events.append((at, kind, who, data))
        if at > self.updated:
            self.updated = at
        return True

    def pushes_after_first_review(self) -> int:
        reviewed = False
        pushes = 0
        for _at, kind, _who, _data in self.events:
            if kind in ("approve", "changes", "comment"):
                reviewed = True
            elif kind == "push" and reviewed:
                pushes += 1
        return pushes


@dataclass
class Page:
    kind: str  # home | section | brief | prd | test-plan | runbook | auth-model | api-spec | edge-case-matrix
    team: Team
    title: str
    labels: list[str]
    parent: Page | None
    feature: Feature | None = None
    story: Issue | None = None
    macro: bool = True  # mention issues with the Jira macro (else as plain text)
    versions: list[tuple[datetime, Person, dict[str, Any]]] = field(default_factory=list)
    id: str = ""
    rows: list[list[str]] = field(default_factory=list)  # an edge-case matrix's table

    def add_version(self, at: datetime, who: Person, as_of: datetime, **params: Any) -> bool:
        if at > as_of:
            return False
        self.versions.append((at, who, params))
        return True

    @property
    def created(self) -> datetime:
        return self.versions[0][0]

    def ancestors(self) -> list[Page]:
        chain = []
        p = self.parent
        while p is not None:
            chain.append(p)
            p = p.parent
        return list(reversed(chain))


@dataclass
class Spec:
    repo: Repo
    path: str
    tag: str
    approved_text: str
    drift_text: str
    mr: MR | None = None
    tagged_at: datetime | None = None
    tag_sha: str = ""
    drift_at: datetime | None = None
    drift_commit: Commit | None = None


class Feature:
    """An epic with everything around it: the unit the simulator plans and writes at once."""

    def __init__(
        self,
        index: int,
        team: Team,
        t0: datetime,
        settled: bool,
        as_of: datetime,
        name: str,
        slug: str,
        topic: str,
    ):
        self.index = index
        self.team = team
        self.t0 = t0
        self.settled = settled
        self.as_of = as_of
        self.name = name
        self.slug = slug
        self.topic = topic
        self.is_api = False
        self.epic: Issue = None  # type: ignore[assignment]
        self.stories: list[Issue] = []
        self.bugs: list[Issue] = []
        self.mrs: list[MR] = []
        self.pages: list[Page] = []
        self.brief: Page | None = None
        self.prd: Page | None = None
        self.runbook: Page | None = None
        self.auth: Page | None = None
        self.api_page: Page | None = None
        self.test_plan: Page | None = None
        self.spec: Spec | None = None
        self.shape: Shape | None = None

    def issues(self) -> list[Issue]:
        return [i for i in [self.epic, *self.stories, *self.bugs] if i.key]

    def auth_approved_at(self) -> datetime | None:
        if self.auth is None:
            return None
        for at, _who, params in self.auth.versions:
            if params.get("status") == "Approved":
                return at
        return None

    def runbook_sections_at(self) -> datetime | None:
        if self.runbook is None:
            return None
        for at, _who, params in self.runbook.versions:
            if params.get("dashboards") and params.get("alerts"):
                return at
        return None


class Ctx:
    """Cross-feature state of one generation run; small whatever the dataset size."""

    def __init__(self, org: Org, as_of: datetime, seed: int, assigner: Assigner):
        self.org = org
        self.as_of = as_of
        self.seed = seed
        self.assigner = assigner
        self.next_issue_id = 10000
        self.key_numbers = {t.key: 0 for t in org.teams}
        self.next_mr_id = 210400
        self.iids = {r.id: 0 for r in org.repos()}
        self.next_page_id = 163841
        self.next_remote_link_id = 10100
        self.next_link_id = 10400
        self.next_history_id = 10500
        self.slug_counts: dict[str, int] = {}
        self.merges: dict[tuple[int, str], tuple[datetime, str, Person, int]] = {}
        self.activity: dict[int, datetime] = {}
        self.sections: dict[tuple[str, str], Page] = {}
        self.team_index = {t.key: i for i, t in enumerate(org.teams)}

    def sha(self, rng: random.Random) -> str:
        return f"{rng.getrandbits(160):040x}"

    def assign_ids(self, feature: Feature) -> None:
        """Keys, ids and iids for the objects that exist at as_of, in creation order."""
        for issue in sorted(
            [feature.epic, *feature.stories, *feature.bugs], key=lambda i: i.created
        ):
            if issue.created > self.as_of:
                continue
            self.key_numbers[issue.team.key] += 1
            issue.key = f"{issue.team.key}-{self.key_numbers[issue.team.key]}"
            issue.id = str(self.next_issue_id)
            self.next_issue_id += 1
        for mr in sorted(feature.mrs, key=lambda m: m.created):
            if mr.created > self.as_of:
                continue
            self.iids[mr.repo.id] += 1
            mr.iid = self.iids[mr.repo.id]
            mr.id = self.next_mr_id
            self.next_mr_id += 1 + (mr.iid % 3)
            last = max(mr.updated, self.activity.get(mr.repo.id, mr.updated))
            self.activity[mr.repo.id] = last
            if mr.merged_at is not None and mr.merge_commit is not None:
                day = mr.merged_at.strftime("%Y-%m-%d")
                prev = self.merges.get((mr.repo.id, day))
                if prev is None or prev[0] < mr.merged_at:
                    self.merges[(mr.repo.id, day)] = (
                        mr.merged_at,
                        mr.merge_commit.sha,
                        mr.merged_by or mr.author,
                        mr.iid,
                    )
        for page in sorted(feature.pages, key=lambda p: p.created if p.versions else self.as_of):
            if not page.versions:
                continue
            page.id = str(self.next_page_id)
            self.next_page_id += 1 + (int(page.id) % 7)
        if feature.spec and feature.spec.drift_commit:
            repo_id = feature.spec.repo.id
            at = feature.spec.drift_at
            assert at is not None
            self.activity[repo_id] = max(at, self.activity.get(repo_id, at))

    def section(self, team: Team, name: str) -> Page:
        return self.sections[(team.key, name)]
