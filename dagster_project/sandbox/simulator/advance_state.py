"""What ``advance`` knows about a dataset: a compact index of it, and the edits it plans.

One pass over the files keeps a few fields per issue, merge request and page (enough to
choose actions), the highest ids in use, and which objects truth.json names in a
non-compliant situation: those are protected and never touched. Planned edits are kept
as small operations per object and applied while the files are rewritten.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dagster_project.sandbox.dataset import Dataset
from dagster_project.sandbox.simulator.clock import parse_ts, utc_ts
from dagster_project.sandbox.simulator.confluence_payloads import ConfluenceRenderer
from dagster_project.sandbox.simulator.gitlab_payloads import GitLabRenderer
from dagster_project.sandbox.simulator.jira_payloads import JiraRenderer
from dagster_project.sandbox.simulator.model import Page
from dagster_project.sandbox.simulator.org import STATUS_BY_NAME, Org, Person, Repo, Team

KEY_RE = re.compile(r"\b([A-Z][A-Z0-9]+)-(\d+)\b")
INJECTED = (
    "reopened",
    "scope_changed_after_start",
    "prd_edited_after_stories",
    "jira_done_mr_open",
)


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
