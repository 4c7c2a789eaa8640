"""An independent reading of a dataset under the default policy, for checking truth.json.

It looks only at raw payloads (never at the simulator's internals) and reports every
situation it can see as ``(kind, subject_key)``. Tests compare that set with truth in
both directions: an injected situation must be visible, and a visible one must be in
truth.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

from dagster_project.sandbox.dataset import Dataset
from dagster_project.sandbox.simulator.clock import parse_ts

SPEC_GLOBS = ("openapi*.yaml", "openapi*.yml", "asyncapi*.yaml", "asyncapi*.yml", "*.openapi.json")


def adf_to_wiki(node: Any) -> str:
    """Enough of ADF -> wiki to find headings, lists and tables."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    out = []
    for b in node.get("content", []):
        t = b["type"]
        if t == "paragraph":
            out.append("".join(c.get("text", "") for c in b.get("content", [])))
        elif t == "heading":
            out.append(
                f"h{b['attrs']['level']}. " + "".join(c.get("text", "") for c in b["content"])
            )
        elif t == "bulletList":
            out.append(
                "\n".join("* " + adf_to_wiki({"content": li["content"]}) for li in b["content"])
            )
        elif t == "table":
            rows = []
            for row in b["content"]:
                cells = [adf_to_wiki({"content": c["content"]}) for c in row["content"]]
                sep = "||" if row["content"][0]["type"] == "tableHeader" else "|"
                rows.append(sep + sep.join(cells) + sep)
            out.append("\n".join(rows))
    return "\n\n".join(out)


def sections(wiki: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    current = None
    for line in (wiki or "").splitlines():
        m = re.match(r"h[1-6]\.\s+(.*)", line)
        if m:
            current = m.group(1).strip()
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


def has_ac_section(wiki: str | None) -> bool:
    return bool(sections(wiki).get("Acceptance Criteria", "").strip())


def has_edge_table(wiki: str | None) -> bool:
    return any(line.startswith("|") for line in sections(wiki).get("Edge cases", "").splitlines())


def page_text(body: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", body))


def headings(body: str) -> set[str]:
    return {unescape(h).strip() for h in re.findall(r"<h[1-6]>(.*?)</h[1-6]>", body)}


class Reference:
    def __init__(self, root: Path):
        ds = Dataset(root)
        self.flavor = ds.manifest.jira_flavor
        self.cats = {s["id"]: s["statusCategory"]["key"] for s in ds.json("jira/statuses.json")}
        fields = ds.json("jira/fields.json")
        self.ac_ids = [f["id"] for f in fields if f["name"] == "Acceptance Criteria"]
        self.epic_link_ids = [f["id"] for f in fields if f["name"] == "Epic Link"]
        self.issues = {i["key"]: i for i in ds.jsonl("jira/issues.jsonl")}
        self.remote = {r["issue_key"]: r["links"] for r in ds.jsonl("jira/remotelinks.jsonl")}
        self.projects = {p["id"]: p for p in ds.json("gitlab/projects.json")}
        self.mrs = {}
        for m in ds.jsonl("gitlab/merge_requests.jsonl"):
            ref = f"{self.projects[m['project_id']]['path_with_namespace']}!{m['iid']}"
            self.mrs[ref] = m
        self.changes = {self._ref(c): c["changes"] for c in ds.jsonl("gitlab/mr_changes.jsonl")}
        self.notes = {self._ref(n): n["notes"] for n in ds.jsonl("gitlab/mr_notes.jsonl")}
        self.pages = {p["id"]: p for p in ds.jsonl("confluence/pages.jsonl")}
        self.versions: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for v in ds.jsonl("confluence/page_versions.jsonl"):
            self.versions[v["page_id"]].append(v)
        for vs in self.versions.values():
            vs.sort(key=lambda v: v["number"])
        self.root = Path(root)
        self.keys = set(self.issues)
        self._key_pattern = re.compile(r"\b[A-Z][A-Z0-9]+-\d+\b")
        self._spec_cache: dict[int, bool] = {}
        self.labels = {
            pid: {lab["name"] for lab in p["metadata"]["labels"]["results"]}
            for pid, p in self.pages.items()
        }
        self.by_mention: dict[tuple[str, str], list[str]] = defaultdict(
            list
        )  # (label, key) -> pages
        self.mentions: dict[str, set[str]] = {}
        for pid, p in self.pages.items():
            self.mentions[pid] = set(
                self._key_pattern.findall(page_text(p["body"]["storage"]["value"]))
            )
            for key in self.mentions[pid]:
                for label in self.labels[pid]:
                    self.by_mention[(label, key)].append(pid)
        self.mr_keys = {ref: self._mentions(m) for ref, m in self.mrs.items()}
        self.issue_mrs: dict[str, list[str]] = defaultdict(list)
        for ref, keys in self.mr_keys.items():
            for k in keys:
                self.issue_mrs[k].append(ref)
        self.children: dict[str, list[str]] = defaultdict(list)
        for k, i in self.issues.items():
            e = self.epic_of(i)
            if e:
                self.children[e].append(k)

    # -- basics ---------------------------------------------------------------------------------

    def _ref(self, obj: dict[str, Any]) -> str:
        return f"{self.projects[obj['project_id']]['path_with_namespace']}!{obj['iid']}"

    def _mentions(self, m: dict[str, Any]) -> set[str]:
        text = " ".join([m["title"], m["source_branch"], m["description"] or ""])
        return {k for k in self._key_pattern.findall(text) if k in self.keys}

    def epic_of(self, issue: dict[str, Any]) -> str | None:
        f = issue["fields"]
        if f.get("parent"):
            return f["parent"]["key"]
        for fid in self.epic_link_ids:
            if f.get(fid):
                return f[fid]
        return None

    def histories(self, issue: dict[str, Any]) -> list[tuple[datetime, dict[str, Any]]]:
        out = [
            (parse_ts(h["created"]), it)
            for h in issue["changelog"]["histories"]
            for it in h["items"]
        ]
        return sorted(out, key=lambda x: x[0])

    def start(self, issue: dict[str, Any]) -> datetime | None:
        for at, it in self.histories(issue):
            if it["field"] == "status" and self.cats[it["to"]] == "indeterminate":
                return at
        return None

    def first_done(self, issue: dict[str, Any]) -> datetime | None:
        for at, it in self.histories(issue):
            if it["field"] == "status" and self.cats[it["to"]] == "done":
                return at
        return None

    def category(self, issue: dict[str, Any]) -> str:
        return issue["fields"]["status"]["statusCategory"]["key"]

    def is_ui(self, issue: dict[str, Any]) -> bool:
        f = issue["fields"]
        return f["issuetype"]["name"] == "Story" and (
            bool({"ui", "frontend"} & set(f["labels"]))
            or any(c["name"] == "Frontend" for c in f["components"])
        )

    def description_wiki(self, issue: dict[str, Any]) -> str:
        d = issue["fields"]["description"]
        return adf_to_wiki(d) if isinstance(d, dict) else (d or "")

    def ac_field_now(self, issue: dict[str, Any]) -> str | None:
        for fid in self.ac_ids:
            v = issue["fields"].get(fid)
            if v:
                return adf_to_wiki(v) if isinstance(v, dict) else v
        return None

    def timeline(
        self, issue: dict[str, Any], field: str, current: str | None
    ) -> list[tuple[datetime, str | None]]:
        """Values of a text field over time: (since, value), from the changelog."""
        items = [(at, it) for at, it in self.histories(issue) if it["field"] == field]
        created = parse_ts(issue["fields"]["created"])
        if not items:
            return [(created, current)]
        out = [(created, items[0][1]["fromString"])]
        out += [(at, it["toString"]) for at, it in items]
        return out

    def first_time(self, issue: dict[str, Any], present) -> datetime | None:
        ac = self.timeline(issue, "Acceptance Criteria", self.ac_field_now(issue))
        desc = self.timeline(issue, "description", self.description_wiki(issue))
        events = sorted({t for t, _ in ac} | {t for t, _ in desc})
        for t in events:
            a = [v for at, v in ac if at <= t][-1]
            d = [v for at, v in desc if at <= t][-1]
            if present(a, d):
                return t
        return None

    def ac_at(self, issue: dict[str, Any]) -> datetime | None:
        return self.first_time(issue, lambda a, d: bool(a and a.strip()) or has_ac_section(d))

    def mentions_of(self, page_id: str) -> set[str]:
        return self.mentions[page_id]

    def pages_for(self, key: str, label: str) -> list[str]:
        """Pages with ``label`` that mention ``key`` (current body) or that the issue links to."""
        linked = {lk["globalId"].split("pageId=")[1] for lk in self.remote.get(key, [])}
        found = set(self.by_mention.get((label, key), []))
        found |= {pid for pid in linked if pid in self.pages and label in self.labels[pid]}
        return sorted(found)

    def edge_at(self, issue: dict[str, Any]) -> datetime | None:
        times = []
        t = self.first_time(issue, lambda a, d: has_edge_table(d))
        if t:
            times.append(t)
        for pid in self.pages_for(issue["key"], "edge-case-matrix"):
            times.append(parse_ts(self.versions[pid][0]["when"]))
        return min(times) if times else None

    def first_version(self, pid: str, test) -> datetime | None:
        for v in self.versions[pid]:
            if test(v["body"]):
                return parse_ts(v["when"])
        return None

    # -- situations -----------------------------------------------------------------------------

    def situations(self) -> dict[tuple[str, str], dict[str, Any]]:
        out: dict[tuple[str, str], dict[str, Any]] = {}

        def add(kind: str, subject: str, **details: Any) -> None:
            out[(kind, subject)] = details

        for key, issue in self.issues.items():
            itype = issue["fields"]["issuetype"]["name"]
            if itype == "Epic":
                self._epic(key, issue, add)
            if itype == "Story":
                self._story(key, issue, add)
            if itype == "Bug":
                self._bug(key, issue, add)
            self._drift_rework(key, issue, add)
        for ref in self.mrs:
            self._mr(ref, add)
        return out

    def _epic(self, key: str, issue: dict[str, Any], add) -> None:
        prds = self.pages_for(key, "prd")
        if not prds:
            add("epic_without_prd", key)
        stories = [
            self.issues[k]
            for k in self.children[key]
            if self.issues[k]["fields"]["issuetype"]["name"] == "Story"
        ]
        if stories:
            cut = min(parse_ts(s["fields"]["created"]) for s in stories)
            for pid in prds:
                if any(parse_ts(v["when"]) > cut for v in self.versions[pid]):
                    add("prd_edited_after_stories", pid)
        if not self.pages_for(key, "runbook"):
            add("service_without_runbook", key)
        if "api" in issue["fields"]["labels"]:
            linked = {k2 for k2 in [key, *self.children[key]]}
            repos = {self.mrs[r]["project_id"] for k2 in linked for r in self.issue_mrs.get(k2, [])}
            if not any(self._has_spec(pid) for pid in repos):
                add("api_epic_without_spec", key)
            for pid in self.pages_for(key, "api-spec"):
                m = re.search(
                    r"Contract: ([^,<]+), file ([^,<]+), tag ([^,<]+)</p>",
                    self.pages[pid]["body"]["storage"]["value"],
                )
                if m:
                    proj = next(
                        p for p in self.projects.values() if p["path_with_namespace"] == m.group(1)
                    )
                    base = self.root / "gitlab" / "files" / str(proj["id"])
                    approved = (base / m.group(3) / m.group(2)).read_bytes()
                    current = (base / proj["default_branch"] / m.group(2)).read_bytes()
                    if approved != current:
                        add("spec_drift_from_approved", key)

    def _has_spec(self, project_id: int) -> bool:
        if project_id not in self._spec_cache:
            self._spec_cache[project_id] = self._find_spec(project_id)
        return self._spec_cache[project_id]

    def _find_spec(self, project_id: int) -> bool:
        proj = self.projects[project_id]
        base = self.root / "gitlab" / "files" / str(project_id) / proj["default_branch"]
        if not base.is_dir():
            return False
        return any(
            any(fnmatch.fnmatch(p.name, g) for g in SPEC_GLOBS)
            for p in base.rglob("*")
            if p.is_file()
        )

    def _story(self, key: str, issue: dict[str, Any], add) -> None:
        ac_at = self.ac_at(issue)
        if ac_at is None:
            add("story_without_acceptance_criteria", key)
        if not self.is_ui(issue):
            return
        edge_at = self.edge_at(issue)
        if edge_at is None:
            add("ui_story_without_edge_cases", key)
        start = self.start(issue)
        if start is None:
            return
        missing_then = [
            n for n, at in (("ac", ac_at), ("edge", edge_at)) if at is None or at > start
        ]
        missing_now = [n for n, at in (("ac", ac_at), ("edge", edge_at)) if at is None]
        status = "compliant" if not missing_then else ("late" if not missing_now else "violated")
        add(f"ui_gate_{status}", key)

    def _bug(self, key: str, issue: dict[str, Any], add) -> None:
        created = parse_ts(issue["fields"]["created"])
        for link in issue["fields"]["issuelinks"]:
            other = link.get("inwardIssue") or link.get("outwardIssue")
            caused = link["type"]["name"] == "Problem/Incident" and "inwardIssue" in link
            if not (caused or link["type"]["name"] == "Relates"):
                continue
            story = self.issues.get(other["key"])
            if story is None or story["fields"]["issuetype"]["name"] != "Story":
                continue
            done = self.first_done(story)
            if done is not None and timedelta(0) <= created - done <= timedelta(days=30):
                add("bug_traced_to_story", key, story=other["key"])

    def _drift_rework(self, key: str, issue: dict[str, Any], add) -> None:
        hist = self.histories(issue)
        start = self.start(issue)
        if start is not None:
            for at, it in hist:
                if at <= start:
                    continue
                if it["field"] in ("summary", "Acceptance Criteria", "Story Points"):
                    add("scope_changed_after_start", key)
                elif it["field"] == "description":
                    before = sections(it["fromString"]).get("Acceptance Criteria")
                    after = sections(it["toString"]).get("Acceptance Criteria")
                    if before != after:
                        add("scope_changed_after_start", key)
        for _at, it in hist:
            if (
                it["field"] == "status"
                and self.cats[it["from"]] == "done"
                and self.cats[it["to"]] != "done"
            ):
                add("reopened", key)
        if self.category(issue) == "done":
            if any(self.mrs[r]["state"] == "opened" for r in self.issue_mrs.get(key, [])):
                add("jira_done_mr_open", key)

    def _mr(self, ref: str, add) -> None:
        m = self.mrs[ref]
        keys = self.mr_keys[ref]
        notes = sorted(self.notes.get(ref, []), key=lambda n: (n["created_at"], n["id"]))
        reviewed = False
        pushes = 0
        for n in notes:
            body = n["body"]
            if not n["system"] or body in ("approved this merge request", "requested changes"):
                reviewed = True
            elif re.match(r"added \d+ commits?\b", body) and reviewed:
                pushes += 1
        if pushes > 1:
            add("many_review_rounds", ref)
        if m["state"] == "merged":
            self._churn(ref, m, add)
        integration = "integration" in m["labels"] or any(
            "integration" in self.issues[k]["fields"]["labels"] for k in keys
        )
        if not integration or m["state"] == "closed":
            return
        paths = [c["new_path"] for c in self.changes.get(ref, [])]
        contract = any(
            re.search(r"(^|/)contract[^/]*/", p)
            or fnmatch.fnmatch(p.rsplit("/", 1)[-1], "*contract*test*")
            or re.search(r"(^|/)pacts/", p)
            for p in paths
        )
        obs_in_mr = any(re.search(r"(^|/)observability/", p) for p in paths)
        epics = {
            self.epic_of(self.issues[k])
            or (k if self.issues[k]["fields"]["issuetype"]["name"] == "Epic" else None)
            for k in keys
        } - {None}
        auth_at = None
        obs_at = parse_ts(m["created_at"]) if obs_in_mr else None
        for e in epics:
            for pid in self.pages_for(e, "auth-model"):
                t = self.first_version(pid, lambda b: "Status: Approved" in page_text(b))
                if t and (auth_at is None or t < auth_at):
                    auth_at = t
            if not obs_in_mr:
                for pid in self.pages_for(e, "runbook"):
                    t = self.first_version(pid, lambda b: {"Dashboards", "Alerts"} <= headings(b))
                    if t and (obs_at is None or t < obs_at):
                        obs_at = t
        if not contract:
            add("integration_without_contract_tests", ref)
        if auth_at is None:
            add("integration_without_auth_model", ref)
        if obs_at is None:
            add("integration_without_observability", ref)
        if m["state"] == "merged":
            t = parse_ts(m["merged_at"])
            have = [parse_ts(m["created_at"]) if contract else None, auth_at, obs_at]
            missing_then = [h for h in have if h is None or h > t]
            missing_now = [h for h in have if h is None]
            status = (
                "compliant" if not missing_then else ("late" if not missing_now else "violated")
            )
            add(f"integration_gate_{status}", ref)

    def _churn(self, ref: str, m: dict[str, Any], add) -> None:
        merged = parse_ts(m["merged_at"])
        for c in self.changes.get(ref, []):
            if c["new_file"]:
                continue
            for hm in re.finditer(r"@@ -(\d+),(\d+) \+\d+,\d+ @@", c["diff"]):
                a, n = int(hm.group(1)), int(hm.group(2))
                for ref2, m2 in self.mrs.items():
                    if (
                        ref2 == ref
                        or m2["project_id"] != m["project_id"]
                        or m2["state"] != "merged"
                    ):
                        continue
                    dt = merged - parse_ts(m2["merged_at"])
                    if not timedelta(0) < dt < timedelta(days=21):
                        continue
                    for c2 in self.changes.get(ref2, []):
                        if c2["new_path"] != c["old_path"]:
                            continue
                        for h2 in re.finditer(r"@@ -\d+,\d+ \+(\d+),(\d+) @@", c2["diff"]):
                            b, k = int(h2.group(1)), int(h2.group(2))
                            if a <= b + k - 1 and b <= a + n - 1:
                                add("churn", ref, rewrites=ref2)
