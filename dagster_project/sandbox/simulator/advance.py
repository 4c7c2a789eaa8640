"""``advance``: move a simulated dataset forward by N days.

It reads the dataset once into a compact index (a few fields per object), plans the
days' activity against that index, then rewrites every JSON Lines file line by line:
untouched lines are copied byte for byte, touched ones get their new changelog entries,
notes or versions and a bumped ``updated`` / ``updated_at`` / ``version.when``, and new
objects are appended. Each file is written to a temporary file and atomically replaced.

Truth stays exact because advance only takes actions whose consequences it knows:
objects that truth.json names in a non-compliant situation are left alone, starting a
clean UI story or merging a clean integration merge request appends the compliant gate
evaluation it causes, and the situations it injects on purpose (reopen, scope change,
PRD edit, Done with an open merge request) are appended as they happen.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dagster_project.sandbox.dataset import Dataset
from dagster_project.sandbox.simulator import text as tx
from dagster_project.sandbox.simulator.clock import parse_ts, utc_ts
from dagster_project.sandbox.simulator.confluence_payloads import ConfluenceRenderer
from dagster_project.sandbox.simulator.generate import TRUTH_FILE, write_truth
from dagster_project.sandbox.simulator.gitlab_payloads import GitLabRenderer
from dagster_project.sandbox.simulator.jira_payloads import JiraRenderer, points_text
from dagster_project.sandbox.simulator.org import STATUS_BY_NAME, Org, Person, Repo, Team, build_org
from dagster_project.sandbox.simulator.plan import MR, Commit, Feature, FileChange, Issue, Page
from dagster_project.sandbox.simulator.situations import entry

KEY_RE = re.compile(r"\b([A-Z][A-Z0-9]+)-(\d+)\b")
INJECTED = (
    "reopened",
    "scope_changed_after_start",
    "prd_edited_after_stories",
    "jira_done_mr_open",
)


@dataclass
class AdvanceSummary:
    """What ``advance`` changed: touched and new objects per type, new situations, seconds."""

    path: Path
    days: int
    from_as_of: str
    to_as_of: str
    touched: dict[str, int]
    created: dict[str, int]
    situations: dict[str, int]
    elapsed_seconds: float

    def lines(self) -> list[str]:
        out = [
            f"advanced {self.path} by {self.days} day(s): {self.from_as_of} -> {self.to_as_of} "
            f"in {self.elapsed_seconds:.1f} s"
        ]
        for k in sorted(set(self.touched) | set(self.created)):
            out.append(
                f"  {k:<16} touched {self.touched.get(k, 0):>7,}  new {self.created.get(k, 0):>7,}"
            )
        out.append(f"  new situations  {sum(self.situations.values()):>7,}")
        return out


@dataclass(slots=True)
class IssueState:
    key: str
    id: str
    team: Team
    itype: str
    status: str
    labels: list[str]
    ui: bool
    epic: str | None
    created: datetime
    updated: datetime
    summary: str
    points: float | None
    priority: str
    protected: bool
    mrs: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)

    @property
    def category(self) -> str:
        return STATUS_BY_NAME[self.status].category


@dataclass(slots=True)
class MRState:
    ref: str
    repo: Repo
    iid: int
    id: int
    state: str
    labels: list[str]
    keys: list[str]
    author: Person
    created: datetime
    updated: datetime
    reviewed: bool
    head: str
    protected: bool
    integration: bool
    title: str
    branch: str


@dataclass(slots=True)
class PageState:
    id: str
    team: Team
    labels: list[str]
    number: int
    updated: datetime
    protected: bool


class World:
    """The dataset as advance sees it: compact state, pending edits and new objects."""

    def __init__(self, root: Path, org: Org, truth: dict[str, Any], seed: int, days: int):
        self.root = root
        self.org = org
        self.ds = Dataset(root)
        self.old_as_of = parse_ts(self.ds.manifest.as_of)
        self.new_as_of = self.old_as_of + timedelta(days=days)
        self.home_ids: dict[str, str] = {}
        self.section_ids: dict[tuple[str, str], str] = {}
        self.rng = random.Random(f"{seed}:advance:{self.ds.manifest.as_of}")
        self.jira = JiraRenderer(org, self.old_as_of)
        self.gitlab = GitLabRenderer(org, self.old_as_of)
        self.confluence = ConfluenceRenderer(org)
        self.protected = self._protected(truth)
        self.people_by_id = {
            (p.account_id if org.flavor == "cloud" else p.username): p for p in org.people
        }
        self.people_by_gitlab = {p.gitlab_id: p for p in org.people}
        self.issues: dict[str, IssueState] = {}
        self.mrs: dict[str, MRState] = {}
        self.pages: dict[str, PageState] = {}
        self.page_mentions: dict[str, set[str]] = {}
        self.page_text: dict[str, str] = {}
        self.issue_ops: dict[str, list[tuple]] = defaultdict(list)
        self.mr_ops: dict[str, list[tuple]] = defaultdict(list)
        self.page_ops: dict[str, list[tuple]] = defaultdict(list)
        self.new: dict[str, list[Any]] = defaultdict(list)
        self.new_truth: list[dict[str, Any]] = []
        self.touched: dict[str, set[str]] = defaultdict(set)
        self.created: Counter[str] = Counter()
        self.last_at: dict[str, datetime] = {}
        self.repo_activity: dict[int, datetime] = {}
        self._scan()

    # -- reading -----------------------------------------------------------------------------

    @staticmethod
    def _protected(truth: dict[str, Any]) -> set[str]:
        """Every object a non-compliant truth entry names (subject or detail)."""
        out: set[str] = set()

        def walk(v: Any) -> None:
            if isinstance(v, str):
                out.add(v)
            elif isinstance(v, list):
                for x in v:
                    walk(x)
            elif isinstance(v, dict):
                for x in v.values():
                    walk(x)

        for e in truth.get("situations", []):
            if e["kind"].endswith("_compliant"):
                continue
            out.add(e["subject_key"])
            walk(e.get("details", {}))
        return out

    def _scan(self) -> None:
        org, ds = self.org, self.ds
        teams = {t.key: t for t in org.teams}
        epic_link = org.teams[0].fields.epic_link
        self.max_issue_id = 0
        self.max_key: Counter[str] = Counter()
        self.max_hist_id = 0
        for obj in ds.jsonl("jira/issues.jsonl"):
            f = obj["fields"]
            key = obj["key"]
            team = teams[f["project"]["key"]]
            labels = list(f["labels"])
            ui = f["issuetype"]["name"] == "Story" and (
                bool({"ui", "frontend"} & set(labels))
                or any(c["name"] == "Frontend" for c in f["components"])
            )
            epic = (f.get("parent") or {}).get("key") or (f.get(epic_link) if epic_link else None)
            points = f.get(team.fields.story_points)
            self.issues[key] = IssueState(
                key,
                obj["id"],
                team,
                f["issuetype"]["name"],
                f["status"]["name"],
                labels,
                ui,
                epic,
                parse_ts(f["created"]),
                parse_ts(f["updated"]),
                f["summary"],
                points,
                f["priority"]["name"],
                key in self.protected,
            )
            self.max_issue_id = max(self.max_issue_id, int(obj["id"]))
            self.max_key[team.key] = max(self.max_key[team.key], int(key.split("-")[1]))
            for h in obj["changelog"]["histories"]:
                self.max_hist_id = max(self.max_hist_id, int(h["id"]))
        for key, st in self.issues.items():
            if st.epic and st.epic in self.issues:
                self.issues[st.epic].children.append(key)
        repos = {r.id: r for r in org.repos()}
        self.max_mr_id = 0
        self.max_iid: Counter[int] = Counter()
        for m in ds.jsonl("gitlab/merge_requests.jsonl"):
            repo = repos[m["project_id"]]
            ref = f"{repo.path}!{m['iid']}"
            text = " ".join((m["title"], m["source_branch"], m["description"] or ""))
            keys = sorted({k.group(0) for k in KEY_RE.finditer(text) if k.group(0) in self.issues})
            integration = "integration" in m["labels"] or any(
                "integration" in self.issues[k].labels for k in keys
            )
            author = self.people_by_gitlab.get(m["author"]["id"], org.people[0])
            self.mrs[ref] = MRState(
                ref,
                repo,
                m["iid"],
                m["id"],
                m["state"],
                list(m["labels"]),
                keys,
                author,
                parse_ts(m["created_at"]),
                parse_ts(m["updated_at"]),
                False,
                m["sha"],
                ref in self.protected or any(k in self.protected for k in keys),
                integration,
                m["title"],
                m["source_branch"],
            )
            for k in keys:
                self.issues[k].mrs.append(ref)
            self.max_mr_id = max(self.max_mr_id, m["id"])
            self.max_iid[repo.id] = max(self.max_iid[repo.id], m["iid"])
        self.max_note_id = 0
        for n in ds.jsonl("gitlab/mr_notes.jsonl"):
            ref = f"{repos[n['project_id']].path}!{n['iid']}"
            for note in n["notes"]:
                self.max_note_id = max(self.max_note_id, note["id"])
                if not note["system"] or note["body"] in (
                    "approved this merge request",
                    "requested changes",
                ):
                    self.mrs[ref].reviewed = True
        self.gitlab.next_note_id = self.max_note_id
        self.max_page_id = 0
        for p in ds.jsonl("confluence/pages.jsonl"):
            team = teams[p["space"]["key"]]
            labels = [lab["name"] for lab in p["metadata"]["labels"]["results"]]
            if not labels and not p["ancestors"]:
                self.home_ids[team.key] = p["id"]
            elif not labels and len(p["ancestors"]) == 1:
                self.section_ids[(team.key, p["title"])] = p["id"]
            body = p["body"]["storage"]["value"]
            mentions = {k.group(0) for k in KEY_RE.finditer(body)}
            self.pages[p["id"]] = PageState(
                p["id"],
                team,
                labels,
                p["version"]["number"],
                parse_ts(p["version"]["when"]),
                p["id"] in self.protected or bool(mentions & self.protected),
            )
            self.page_mentions[p["id"]] = mentions
            self.max_page_id = max(self.max_page_id, int(p["id"]))
        self.max_remote_id = 0
        for r in ds.jsonl("jira/remotelinks.jsonl"):
            for link in r["links"]:
                self.max_remote_id = max(self.max_remote_id, int(link["id"]))
        self.deploy = {"id": 0, "job": 0}
        self.deploy_iid: Counter[int] = Counter()
        for d in ds.jsonl("gitlab/deployments.jsonl"):
            self.deploy["id"] = max(self.deploy["id"], d["id"])
            self.deploy["job"] = max(self.deploy["job"], d["deployable"]["id"])
            self.deploy_iid[d["project_id"]] = max(self.deploy_iid[d["project_id"]], d["iid"])
        self.prd_of: dict[str, str] = {}
        for pid, st in self.pages.items():
            if "prd" in st.labels:
                for k in self.page_mentions[pid]:
                    self.prd_of.setdefault(k, pid)

    # -- helpers -------------------------------------------------------------------------------

    def person(self, team: Team) -> Person:
        return self.rng.choice(team.people)

    def section(self, team: Team, name: str) -> Page:
        home = Page("home", team, f"{team.name} Home", [], None, id=self.home_ids[team.key])
        return Page("section", team, name, [], home, id=self.section_ids[(team.key, name)])

    def when(self, obj_key: str, day_start: datetime) -> datetime:
        """A time on this day after the object's last event (events of a day end by 23:00)."""
        at = day_start + timedelta(
            seconds=self.rng.randint(3600, 20 * 3600), milliseconds=self.rng.randint(0, 999)
        )
        last = self.last_at.get(obj_key)
        if last is not None and at <= last:
            at = last + timedelta(minutes=self.rng.randint(2, 20))
        self.last_at[obj_key] = at
        return at

    def next_hist_id(self) -> int:
        self.max_hist_id += 1 + self.rng.randint(0, 2)
        return self.max_hist_id

    def history(
        self,
        key: str,
        at: datetime,
        who: Person,
        items: list[dict[str, Any]],
        fields: dict[str, Any] | None = None,
    ) -> None:
        h = {
            "id": str(self.next_hist_id()),
            "author": self.jira.user(who),
            "created": self.jira.ts(at),
            "items": items,
        }
        self.issue_ops[key].append(("hist", h, fields or {}, at))
        self.touched["issues"].add(key)

    def transition(self, st: IssueState, at: datetime, who: Person, to: str) -> None:
        old, new = STATUS_BY_NAME[st.status], STATUS_BY_NAME[to]
        items = []
        fields: dict[str, Any] = {"status": self.jira.status(to)}
        if new.category == "done" and old.category != "done":
            items.append(
                self.jira._item("resolution", "jira", "resolution", None, None, "10000", "Done")
            )
            fields["resolution"] = {
                "self": f"{self.jira.api}/resolution/10000",
                "id": "10000",
                "description": "Work has been completed on this issue.",
                "name": "Done",
            }
            fields["resolutiondate"] = self.jira.ts(at)
        elif old.category == "done" and new.category != "done":
            items.append(
                self.jira._item("resolution", "jira", "resolution", "10000", "Done", None, None)
            )
            fields["resolution"] = None
            fields["resolutiondate"] = None
        items.append(
            self.jira._item("status", "jira", "status", old.id, old.name, new.id, new.name)
        )
        if self.org.flavor == "cloud" and old.category != new.category:
            fields["statuscategorychangedate"] = self.jira.ts(at)
        self.history(st.key, at, who, items, fields)
        st.status = to

    def mr_note(
        self, ms: MRState, at: datetime, who: Person, body: str, system: bool = True
    ) -> None:
        self.gitlab.next_note_id += 1 + (self.gitlab.next_note_id % 5)
        note = {
            "id": self.gitlab.next_note_id,
            "type": None if system else "DiscussionNote",
            "body": body,
            "attachment": None,
            "author": self.gitlab.user(who),
            "created_at": utc_ts(at),
            "updated_at": utc_ts(at),
            "system": system,
            "noteable_id": ms.id,
            "noteable_type": "MergeRequest",
            "project_id": ms.repo.id,
            "resolvable": not system,
            "confidential": False,
            "internal": False,
            "imported": False,
            "imported_from": "none",
            "noteable_iid": ms.iid,
            "commands_changes": {},
        }
        self.mr_ops[ms.ref].append(("note", note, at))
        self.touched["merge_requests"].add(ms.ref)
        self.repo_activity[ms.repo.id] = max(at, self.repo_activity.get(ms.repo.id, at))

    def sha(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"


class Day:
    """The activity of one simulated day."""

    def __init__(self, w: World, start: datetime, budget: int):
        self.w = w
        self.start = start
        self.budget = budget
        self.rng = w.rng

    def spent(self) -> int:
        return sum(len(v) for v in self.w.touched.values())

    def run(self, inject: str | None) -> None:
        w, rng = self.w, self.rng
        target = self.spent() + self.budget
        if inject:
            self.inject(inject)
        stories = [s for s in w.issues.values() if not s.protected and s.itype in ("Story", "Bug")]
        open_mrs = [m for m in w.mrs.values() if m.state == "opened" and not m.protected]
        pages = [
            p
            for p in w.pages.values()
            if not p.protected
            and p.number > 0
            and {"test-plan", "runbook", "product-brief", "edge-case-matrix"} & set(p.labels)
        ]
        epics = [
            e
            for e in w.issues.values()
            if e.itype == "Epic" and not e.protected and e.category == "indeterminate"
        ]
        moving = [s for s in stories if s.category != "done"]
        actions = ["progress"] * 5 + ["edit"] * 2 + ["mr"] * 2 + ["page"] * 1
        acted: set[str] = set()  # one action per object and day keeps each day's events in the day
        tries = 0
        while self.spent() < target and tries < self.budget * 20:
            tries += 1
            act = rng.choice(actions)
            pool: list[Any] = {"progress": moving, "edit": stories, "mr": open_mrs, "page": pages}[
                act
            ]
            if not pool:
                continue
            obj = rng.choice(pool)
            key = getattr(obj, "key", None) or getattr(obj, "ref", None) or obj.id
            related = [key, *getattr(obj, "mrs", [])]
            if any(k in acted for k in related):
                continue
            acted.update(related)
            if act == "progress":
                self.progress(obj)
            elif act == "edit":
                self.edit(obj)
            elif act == "mr":
                self.mr_activity(obj)
            else:
                self.page_edit(obj)
        for _ in range(max(1, self.budget // 40)):
            if epics and rng.random() < 0.8:
                self.new_story(rng.choice(epics))
            else:
                self.new_bug(rng.choice(w.org.teams))
        if rng.random() < 0.25:
            self.new_epic(rng.choice(w.org.teams))

    # -- issue actions ---------------------------------------------------------------------------

    def progress(self, st: IssueState) -> None:
        w = self.w
        wf = st.team.workflow
        cat = st.category
        who = w.person(st.team)
        if cat == "new":
            at = w.when(st.key, self.start)
            w.transition(st, at, who, wf.working[0])
            if st.ui:
                w.new_truth.append(
                    entry(
                        "ui_gate_compliant",
                        "issue",
                        st.key,
                        triggered_at=utc_ts(at),
                        missing_at_trigger=[],
                        missing=[],
                        advanced=True,
                    )
                )
            return
        if cat != "indeterminate":
            return
        mrs = [w.mrs[r] for r in st.mrs]
        open_mrs = [m for m in mrs if m.state == "opened"]
        if any(m.protected for m in open_mrs):
            return
        if not mrs:
            if "integration" in st.labels and (st.epic is None or st.epic in w.protected):
                return
            self.open_mr(st)
            return
        at = w.when(st.key, self.start)
        for m in open_mrs:
            merged = self.merge(m, w.when(m.ref, self.start))
            at = max(at, merged + timedelta(minutes=self.rng.randint(5, 30)))
        if len(wf.working) > 2 and st.status != wf.working[2]:
            w.transition(st, at, who, wf.working[2])
            at = at + timedelta(minutes=self.rng.randint(5, 40))
        w.last_at[st.key] = at
        w.transition(st, at, who, wf.done)

    def edit(self, st: IssueState) -> None:
        w, rng = self.w, self.rng
        at = w.when(st.key, self.start)
        who = w.person(st.team)
        fid = st.team.fields
        if st.category == "new" and st.itype == "Story" and rng.random() < 0.5:
            new = float(rng.choice((1, 2, 3, 5, 8)))
            old = points_text(st.points)
            item = w.jira._item(
                "Story Points", "custom", fid.story_points, None, old, None, str(int(new))
            )
            w.history(st.key, at, who, [item], {fid.story_points: new})
            st.points = new
            return
        order = ("Lowest", "Low", "Medium", "High", "Highest")
        new_p = rng.choice([p for p in order if p != st.priority])
        item = w.jira._item(
            "priority",
            "jira",
            "priority",
            w.jira.priority(st.priority)["id"],
            st.priority,
            w.jira.priority(new_p)["id"],
            new_p,
        )
        w.history(st.key, at, who, [item], {"priority": w.jira.priority(new_p)})
        st.priority = new_p

    # -- merge requests ------------------------------------------------------------------------

    def open_mr(self, st: IssueState) -> None:
        w, rng = self.w, self.rng
        team = st.team
        repo = (
            team.repos_with("ui")[0]
            if st.ui
            else rng.choice(team.repos_with("api") + team.repos_with("backend"))
        )
        author = w.person(team)
        at = w.when(st.key, self.start)
        feature = Feature(
            0, team, at, False, w.new_as_of, st.summary, tx.slugify(st.summary), st.summary
        )
        holder = Issue(
            feature, "story", "ui" if st.ui else "backend", at, author, st.summary, st.summary
        )
        holder.key = st.key
        mr = MR(
            feature,
            repo,
            holder,
            author,
            at,
            st.summary,
            f"feature/{{key}}-{tx.slugify(st.summary)[:40]}",
            ["frontend" if st.ui else "backend"],
        )
        w.max_mr_id += 1 + rng.randint(0, 2)
        w.max_iid[repo.id] += 1
        mr.id, mr.iid = w.max_mr_id, w.max_iid[repo.id]
        n = rng.randint(8, 24)
        stem = f"{tx.snake(st.summary)[:32]}_{st.key.lower().replace('-', '_')}"
        path = f"src/components/{stem}.tsx" if st.ui else f"src/{team.key.lower()}/{stem}.py"
        mr.files = [
            FileChange(path, True, [(0, 0, 1, n, [], tx.code_lines(rng, st.summary, n, ui=st.ui))])
        ]
        integration = "integration" in st.labels
        if integration:  # a clean integration MR carries its contract tests from the start
            mr.labels.append("integration")
            mr.contract = True
            m = rng.randint(8, 14)
            mr.files.append(
                FileChange(
                    f"tests/contract/{team.key.lower()}/test_{stem}_contract.py",
                    True,
                    [(0, 0, 1, m, [], tx.code_lines(rng, st.summary, m, ui=False))],
                )
            )
        sha = w.sha()
        mr.commits = [
            Commit(
                sha,
                at - timedelta(minutes=rng.randint(10, 90)),
                author,
                f"Implement {st.summary.lower()}",
                n,
                0,
                [w.sha()],
            )
        ]
        mr.updated = at
        mr.events = [(at, "open", author, None)]
        title, branch, _desc = w.gitlab.texts(mr)
        w.new["merge_requests"].append(w.gitlab.merge_request(mr))
        w.new["mr_changes"].append(w.gitlab.changes(mr))
        w.new["mr_notes"].append({"project_id": repo.id, "iid": mr.iid, "notes": []})
        w.new["mr_approvals"].append(w.gitlab.approvals(mr))
        w.new["commits"].extend(w.gitlab.commits(mr))
        ref = f"{repo.path}!{mr.iid}"
        ms = MRState(
            ref,
            repo,
            mr.iid,
            mr.id,
            "opened",
            list(mr.labels),
            [st.key],
            author,
            at,
            at,
            False,
            sha,
            False,
            integration,
            title,
            branch,
        )
        w.mrs[ref] = ms
        st.mrs.append(ref)
        w.created["merge_requests"] += 1
        w.created["commits"] += 1
        w.repo_activity[repo.id] = max(at, w.repo_activity.get(repo.id, at))
        reviewer = rng.choice([p for p in team.people if p is not author])
        w.mr_note(
            ms,
            at + timedelta(seconds=rng.randint(5, 90)),
            author,
            f"requested review from @{w.gitlab.user(reviewer)['username']}",
        )
        w.last_at[ref] = at + timedelta(minutes=2)
        wf = team.workflow
        w.transition(st, w.when(st.key, self.start), author, wf.working[1])

    def mr_activity(self, ms: MRState) -> None:
        w, rng = self.w, self.rng
        if ms.state != "opened" or ms.protected:
            return
        team = w.org.team_of_repo(ms.repo)
        at = w.when(ms.ref, self.start)
        if not ms.reviewed and rng.random() < 0.4:
            # A push before anyone reviewed is not a review round.
            sha = w.sha()
            c = Commit(
                sha,
                at - timedelta(minutes=3),
                ms.author,
                "Polish error handling",
                rng.randint(2, 9),
                rng.randint(0, 3),
                [ms.head],
            )
            w.new["commits"].append(w.gitlab.commit(ms.repo, c))
            w.created["commits"] += 1
            w.mr_note(
                ms,
                at,
                ms.author,
                f"added 1 commit\n\n<ul><li>{sha[:8]} - {c.title}</li></ul>\n\n"
                f"[Compare with previous version](/{ms.repo.path}/-/merge_requests/{ms.iid}/diffs)",
            )
            w.mr_ops[ms.ref].append(("fields", {"sha": sha}))
            ms.head = sha
            return
        reviewer = rng.choice([p for p in team.people if p is not ms.author])
        if rng.random() < 0.5:
            w.mr_note(
                ms,
                at,
                reviewer,
                rng.choice(
                    (
                        "Looks good overall.",
                        "Thanks, the naming is much clearer now.",
                        "Could you add a changelog entry?",
                    )
                ),
                system=False,
            )
        else:
            w.mr_note(ms, at, reviewer, "approved this merge request")
            w.mr_ops[ms.ref].append(("approve", reviewer))
        ms.reviewed = True

    def merge(self, ms: MRState, at: datetime) -> datetime:
        w, rng = self.w, self.rng
        team = w.org.team_of_repo(ms.repo)
        reviewer = rng.choice([p for p in team.people if p is not ms.author])
        w.mr_note(ms, at, reviewer, "approved this merge request")
        w.mr_ops[ms.ref].append(("approve", reviewer))
        merged = at + timedelta(minutes=rng.randint(10, 120))
        w.last_at[ms.ref] = merged
        sha = w.sha()
        w.mr_ops[ms.ref].append(
            (
                "fields",
                {
                    "state": "merged",
                    "merged_by": w.gitlab.user(reviewer),
                    "merge_user": w.gitlab.user(reviewer),
                    "merged_at": utc_ts(merged),
                    "updated_at": utc_ts(merged),
                    "merge_commit_sha": sha,
                    "detailed_merge_status": "not_open",
                },
            )
        )
        head = f"Merge branch '{ms.branch}' into '{ms.repo.default_branch}'"
        c = Commit(sha, merged, reviewer, head, 0, 0, [w.sha(), ms.head])
        msg = f"{head}\n\n{ms.title}\n\nSee merge request {ms.ref}"
        w.new["commits"].append(w.gitlab.commit(ms.repo, c, head, msg))
        w.created["commits"] += 1
        ms.state = "merged"
        ms.reviewed = True
        w.repo_activity[ms.repo.id] = max(merged, w.repo_activity.get(ms.repo.id, merged))
        staging = merged + timedelta(minutes=rng.randint(12, 55))
        if staging <= w.new_as_of:
            w.deploy["id"] += rng.randint(1, 40)
            w.deploy["job"] += rng.randint(50, 4000)
            w.deploy_iid[ms.repo.id] += 1
            w.new["deployments"].append(
                w.gitlab.deployment(
                    ms.repo,
                    w.deploy["id"],
                    w.deploy_iid[ms.repo.id],
                    w.deploy["job"],
                    "staging",
                    "2023-03-01T10:00:00.000Z",
                    staging,
                    sha,
                    reviewer,
                    ms.iid,
                )
            )
            w.created["deployments"] += 1
        if ms.integration:
            w.new_truth.append(
                entry(
                    "integration_gate_compliant",
                    "merge_request",
                    ms.ref,
                    triggered_at=utc_ts(merged),
                    missing_at_trigger=[],
                    missing=[],
                    advanced=True,
                )
            )
        return merged

    # -- pages ------------------------------------------------------------------------------------

    def page_edit(self, ps: PageState) -> None:
        w = self.w
        at = w.when(ps.id, self.start)
        note = f"<p>Updated {at.strftime('%Y-%m-%d')}: clarified wording after review.</p>"
        w.page_ops[ps.id].append(("version", at, w.person(ps.team), note))
        ps.number += 1
        w.touched["pages"].add(ps.id)

    # -- new objects ----------------------------------------------------------------------------

    def _new_issue(
        self,
        team: Team,
        kind: str,
        stype: str | None,
        summary: str,
        epic: IssueState | None,
        at: datetime,
        intro: list,
    ) -> Issue:
        w = self.w
        feature = Feature(0, team, at, False, w.new_as_of, summary, tx.slugify(summary), summary)
        who = w.person(team)
        issue = Issue(feature, kind, stype, at, who, summary, summary)
        issue.assignee = w.person(team)
        w.max_key[team.key] += 1
        w.max_issue_id += 1
        issue.key = f"{team.key}-{w.max_key[team.key]}"
        issue.id = str(w.max_issue_id)
        issue.intro = intro
        if epic is not None:
            holder = Issue(feature, "epic", None, epic.created, who, epic.summary, epic.summary)
            holder.key, holder.id, holder.status, holder.priority = (
                epic.key,
                epic.id,
                epic.status,
                epic.priority,
            )
            issue.epic = holder
        return issue

    def _emit_issue(self, issue: Issue, ui: bool, epic: str | None) -> None:
        w = self.w
        obj, _ = w.jira.issue(issue, w.max_hist_id + 1)
        w.new["issues"].append(obj)
        w.created["issues"] += 1
        w.issues[issue.key] = IssueState(
            issue.key,
            issue.id,
            issue.team,
            {"epic": "Epic", "story": "Story", "bug": "Bug"}[issue.kind],
            issue.status,
            list(issue.labels),
            ui,
            epic,
            issue.created,
            issue.created,
            issue.summary,
            issue.points,
            issue.priority,
            False,
        )
        w.last_at[issue.key] = issue.created

    def new_story(self, epic: IssueState) -> None:
        rng = self.rng
        team = epic.team
        ui = rng.random() < 0.35
        at = self.start + timedelta(seconds=rng.randint(3600, 20 * 3600))
        pool = tx.UI_STORIES if ui else tx.BACKEND_STORIES
        topic = epic.summary.split(" (")[0].lower()
        summary = rng.choice(pool).format(t=topic, s=rng.choice(tx.SCREENS), p="")
        summary = summary[0].upper() + summary[1:]
        issue = self._new_issue(
            team,
            "story",
            "ui" if ui else "backend",
            summary,
            epic,
            at,
            [("p", f"As a {rng.choice(tx.PERSONAS)}, I want {summary.lower()}.")],
        )
        issue.ac = tx.acceptance_criteria(rng, topic)
        issue.ac_at = at
        issue.points = float(rng.choice((1, 2, 3, 5)))
        if ui:
            issue.labels = ["ui"]
            issue.edge_rows = tx.edge_case_rows(rng)
            issue.edge_at = at
        self._emit_issue(issue, ui, epic.key)
        epic.children.append(issue.key)

    def new_bug(self, team: Team) -> None:
        rng = self.rng
        at = self.start + timedelta(seconds=rng.randint(3600, 20 * 3600))
        topic = rng.choice(team.themes)
        summary = rng.choice(tx.BUG_SUMMARIES).format(t=topic, T=topic[0].upper() + topic[1:])
        issue = self._new_issue(
            team,
            "bug",
            None,
            summary,
            None,
            at,
            [("p", "Reported by support."), ("p", "Expected: no error.")],
        )
        issue.priority = rng.choice(("High", "Medium"))
        self._emit_issue(issue, False, None)

    def new_epic(self, team: Team) -> None:
        """A new epic arrives with its PRD and runbook, so no gap is created."""
        w, rng = self.w, self.rng
        at = self.start + timedelta(seconds=rng.randint(3600, 6 * 3600))
        name = f"{rng.choice(team.themes).capitalize()} {rng.choice(tx.ASPECTS)} (Q{1 + at.month // 4} {at.year})"
        epic = self._new_issue(
            team, "epic", None, name, None, at, [("p", f"Deliver {name.lower()}.")]
        )
        self._emit_issue(epic, False, None)
        feature = epic.feature
        feature.epic = epic
        lead = w.person(team)
        for kind, labels, dt in (("prd", ["prd"], 2), ("runbook", ["runbook", "ops"], 3)):
            section = w.section(team, "Product" if kind == "prd" else "Operations")
            page = Page(
                kind,
                team,
                f"{name} ({epic.key}) - {kind.upper() if kind == 'prd' else kind}",
                labels,
                section,
                feature=feature,
                macro=True,
            )
            page.add_version(
                at + timedelta(hours=dt),
                lead,
                w.new_as_of,
                **(
                    {"status": "Draft", "rev": 1}
                    if kind == "prd"
                    else {"dashboards": True, "alerts": True}
                ),
            )
            w.max_page_id += 1 + rng.randint(0, 4)
            page.id = str(w.max_page_id)
            w.new["pages"].append(w.confluence.page(page, w.home_ids[team.key]))
            w.new["page_versions"].extend(w.confluence.versions(page))
            w.created["pages"] += 1
            w.pages[page.id] = PageState(page.id, team, labels, 1, page.versions[-1][0], True)

    # -- injected situations ------------------------------------------------------------------

    def inject(self, kind: str) -> None:
        w, rng = self.w, self.rng
        if kind == "reopened":
            cands = [
                s
                for s in w.issues.values()
                if not s.protected
                and s.itype == "Story"
                and s.category == "done"
                and all(w.mrs[r].state != "opened" for r in s.mrs)
            ]
            if cands:
                st = rng.choice(cands)
                at = w.when(st.key, self.start)
                w.transition(st, at, w.person(st.team), st.team.workflow.working[0])
                w.new_truth.append(
                    entry("reopened", "issue", st.key, reopened_at=[utc_ts(at)], advanced=True)
                )
                st.protected = True
        elif kind == "scope_changed_after_start":
            cands = [
                s
                for s in w.issues.values()
                if not s.protected
                and s.itype == "Story"
                and not s.ui
                and s.category == "indeterminate"
            ]
            if cands:
                st = rng.choice(cands)
                at = w.when(st.key, self.start)
                new = st.summary + rng.choice(tx.RENAMED_SUFFIX)
                item = w.jira._item("summary", "jira", "summary", None, st.summary, None, new)
                w.history(st.key, at, w.person(st.team), [item], {"summary": new})
                st.summary = new
                w.new_truth.append(
                    entry(
                        "scope_changed_after_start",
                        "issue",
                        st.key,
                        changes=[{"field": "summary", "at": utc_ts(at)}],
                        advanced=True,
                    )
                )
                st.protected = True
        elif kind == "prd_edited_after_stories":
            cands = [
                (e, w.prd_of[e.key])
                for e in w.issues.values()
                if e.itype == "Epic"
                and not e.protected
                and any(w.issues[c].itype == "Story" for c in e.children)
                and e.key in w.prd_of
                and not w.pages[w.prd_of[e.key]].protected
            ]
            if cands:
                epic, pid = rng.choice(cands)
                ps = w.pages[pid]
                at = w.when(pid, self.start)
                note = "<h2>Change log</h2><p>Scope extended after the stories were planned.</p>"
                w.page_ops[pid].append(("version", at, w.person(ps.team), note))
                ps.number += 1
                ps.protected = True
                w.touched["pages"].add(pid)
                w.new_truth.append(
                    entry(
                        "prd_edited_after_stories",
                        "page",
                        pid,
                        epic=epic.key,
                        edited_at=utc_ts(at),
                        advanced=True,
                    )
                )
        elif kind == "jira_done_mr_open":
            cands = [
                s
                for s in w.issues.values()
                if not s.protected
                and s.itype == "Story"
                and s.category == "indeterminate"
                and s.mrs
                and any(w.mrs[r].state == "opened" and not w.mrs[r].protected for r in s.mrs)
            ]
            if cands:
                st = rng.choice(cands)
                at = w.when(st.key, self.start)
                w.transition(st, at, w.person(st.team), st.team.workflow.done)
                open_refs = [r for r in st.mrs if w.mrs[r].state == "opened"]
                for r in open_refs:
                    w.mrs[r].protected = True
                w.new_truth.append(
                    entry(
                        "jira_done_mr_open",
                        "issue",
                        st.key,
                        merge_requests=open_refs,
                        done_at=utc_ts(at),
                        advanced=True,
                    )
                )
                st.protected = True


# --- writing ----------------------------------------------------------------------------------


def _rewrite(path: Path, transform, extra: list[Any]) -> None:
    """Stream ``path`` into a temp file through ``transform`` (None: copy the line), append, replace."""
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as out:
        if path.exists():
            with path.open("rb") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    new = transform(line) if transform else None
                    out.write(line if new is None else new)
        for obj in extra:
            out.write(_dump(obj))
    os.replace(tmp, path)


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


_ID_RE = re.compile(rb'"key":"([A-Z][A-Z0-9]*-\d+)"')


def _write(w: World) -> None:
    root = w.root
    jira = w.jira

    def apply_issue(obj: dict[str, Any]) -> dict[str, Any]:
        for op in w.issue_ops.get(obj["key"], []):
            _, hist, fields, at = op
            obj["changelog"]["histories"].append(hist)
            obj["fields"].update(fields)
            obj["fields"]["updated"] = jira.ts(at)
        n = len(obj["changelog"]["histories"])
        obj["changelog"]["total"] = obj["changelog"]["maxResults"] = n
        return obj

    def issue_line(line: bytes) -> bytes | None:
        m = _ID_RE.search(line)
        if m is None or m.group(1).decode() not in w.issue_ops:
            return None
        return _dump(apply_issue(json.loads(line)))

    _rewrite(root / "jira/issues.jsonl", issue_line, [apply_issue(o) for o in w.new["issues"]])

    def mr_ref(obj: dict[str, Any]) -> str:
        return f"{w.org.repo_by_id(obj['project_id']).path}!{obj['iid']}"

    def apply_mr(obj: dict[str, Any]) -> dict[str, Any]:
        for op in w.mr_ops.get(mr_ref(obj), []):
            if op[0] == "fields":
                obj.update(op[1])
            elif op[0] == "note":
                obj["updated_at"] = max(obj["updated_at"], utc_ts(op[2]))
        return obj

    def apply_notes(obj: dict[str, Any]) -> dict[str, Any]:
        for op in w.mr_ops.get(mr_ref(obj), []):
            if op[0] == "note":
                obj["notes"].append(op[1])
        return obj

    def apply_approvals(obj: dict[str, Any]) -> dict[str, Any]:
        ops = w.mr_ops.get(mr_ref(obj), [])
        a = obj["approvals"]
        for op in ops:
            if op[0] == "approve":
                user = {"user": w.gitlab.user(op[1])}
                if user not in a["approved_by"]:
                    a["approved_by"].append(user)
                a["approved"], a["approvals_left"] = True, 0
            elif op[0] == "fields":
                a["state"] = op[1].get("state", a["state"])
                if "updated_at" in op[1]:
                    a["updated_at"] = op[1]["updated_at"]
            elif op[0] == "note":
                a["updated_at"] = max(a["updated_at"], utc_ts(op[2]))
        return obj

    refs_touched = set(w.mr_ops)

    def by_ref(fn):
        pid_re = re.compile(rb'"project_id":(\d+)')
        iid_re = re.compile(rb'"iid":(\d+)')

        def t(line: bytes) -> bytes | None:
            pid = int(pid_re.search(line).group(1))  # type: ignore[union-attr]
            iid = int(iid_re.search(line).group(1))  # type: ignore[union-attr]
            if f"{w.org.repo_by_id(pid).path}!{iid}" not in refs_touched:
                return None
            return _dump(fn(json.loads(line)))

        return t

    _rewrite(
        root / "gitlab/merge_requests.jsonl",
        by_ref(apply_mr),
        [apply_mr(o) for o in w.new["merge_requests"]],
    )
    _rewrite(
        root / "gitlab/mr_notes.jsonl",
        by_ref(apply_notes),
        [apply_notes(o) for o in w.new["mr_notes"]],
    )
    _rewrite(
        root / "gitlab/mr_approvals.jsonl",
        by_ref(apply_approvals),
        [apply_approvals(o) for o in w.new["mr_approvals"]],
    )
    _rewrite(root / "gitlab/mr_changes.jsonl", None, w.new["mr_changes"])
    _rewrite(root / "gitlab/commits.jsonl", None, w.new["commits"])
    _rewrite(root / "gitlab/deployments.jsonl", None, w.new["deployments"])
    _rewrite(root / "jira/remotelinks.jsonl", None, w.new["remotelinks"])

    new_versions: list[dict[str, Any]] = []
    conf = w.confluence
    page_id_re = re.compile(rb'^\{"id":"(\d+)"')

    def page_line(line: bytes) -> bytes | None:
        m = page_id_re.match(line)
        if m is None or m.group(1).decode() not in w.page_ops:
            return None
        obj = json.loads(line)
        body = obj["body"]["storage"]["value"]
        number = obj["version"]["number"]
        for _, at, who, suffix in w.page_ops[obj["id"]]:
            body += suffix
            number += 1
            new_versions.append(
                {
                    "page_id": obj["id"],
                    "number": number,
                    "when": utc_ts(at),
                    "by": conf.user(who),
                    "body": body,
                }
            )
            obj["version"] = {
                "by": conf.user(who),
                "when": utc_ts(at),
                "friendlyWhen": at.strftime("%b %d, %Y"),
                "message": "",
                "number": number,
                "minorEdit": False,
                "_expandable": {"collaborators": "", "content": f"/rest/api/content/{obj['id']}"},
                "_links": {"self": f"{conf.base}/rest/api/content/{obj['id']}/version/{number}"},
            }
        obj["body"]["storage"]["value"] = body
        return _dump(obj)

    _rewrite(root / "confluence/pages.jsonl", page_line, w.new["pages"])
    _rewrite(root / "confluence/page_versions.jsonl", None, new_versions + w.new["page_versions"])

    projects = w.ds.json("gitlab/projects.json")
    for p in projects:
        at = w.repo_activity.get(p["id"])
        if at is not None:
            p["last_activity_at"] = utc_ts(at)
    (root / "gitlab/projects.json").write_text(
        json.dumps(projects, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )


def advance(dataset: Path, *, days: int, seed: int = 7) -> AdvanceSummary:
    """Move the organisation in ``dataset`` forward by ``days`` days (see the module docstring)."""
    started = time.perf_counter()
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    root = Path(dataset)
    truth_path = root / TRUTH_FILE
    if not truth_path.exists():
        raise ValueError(
            f"{root}: no {TRUTH_FILE}; only datasets written by the simulator can be advanced"
        )
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    gen = truth["generator"]
    org = build_org(gen["seed"], gen["flavor"], gen["people_per_team"])
    w = World(root, org, truth, seed, days)
    objects = len(w.issues) + len(w.mrs) + len(w.pages)
    for d in range(days):
        start = w.old_as_of + timedelta(days=d)
        budget = max(1, round(objects * w.rng.uniform(0.01, 0.03)))
        inject = INJECTED[(d + len(truth.get("advanced", []))) % len(INJECTED)]
        Day(w, start, budget).run(inject)
    late = [k for k, at in w.last_at.items() if at > w.new_as_of]
    if late:  # an internal error, not bad input: every event must fall inside the window
        raise RuntimeError(f"advance planned events after the new as_of for {late[:5]}")
    _write(w)
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    manifest["as_of"] = w.new_as_of.isoformat()
    (root / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    new_counts = Counter(e["kind"] for e in w.new_truth)
    counts = Counter(truth.get("counts", {})) + new_counts
    header = {k: v for k, v in truth.items() if k not in ("counts", "situations")}
    header["as_of"] = w.new_as_of.isoformat()
    header["advanced"] = list(truth.get("advanced", [])) + [
        {"days": days, "seed": seed, "from": w.old_as_of.isoformat(), "to": w.new_as_of.isoformat()}
    ]
    lines = [
        json.dumps(e, ensure_ascii=False, separators=(",", ":"))
        for e in truth["situations"] + w.new_truth
    ]
    write_truth(truth_path, header, counts, lines)
    touched = {k: len(v) for k, v in sorted(w.touched.items())}
    return AdvanceSummary(
        root,
        days,
        w.old_as_of.isoformat(),
        w.new_as_of.isoformat(),
        touched,
        dict(sorted(w.created.items())),
        dict(sorted(new_counts.items())),
        round(time.perf_counter() - started, 3),
    )
