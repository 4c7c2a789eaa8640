"""One simulated day of ``advance``: which objects move, and how.

Actions are chosen only where their consequences are known (see ``advance``); each
object gets at most one action a day so every event of the day stays inside it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dagster_project.sandbox.simulator import text as tx
from dagster_project.sandbox.simulator.advance_state import IssueState, MRState, PageState, World
from dagster_project.sandbox.simulator.clock import utc_ts
from dagster_project.sandbox.simulator.jira_payloads import points_text
from dagster_project.sandbox.simulator.model import MR, Commit, Feature, FileChange, Issue, Page
from dagster_project.sandbox.simulator.org import Repo, Team
from dagster_project.sandbox.simulator.situations import entry


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
        repo = self._repo_for(st)
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

    def _repo_for(self, st: IssueState) -> Repo:
        """A repository the epic already works in, or a spec-less one of the team.

        Either way the set of repositories linked to the epic (and so whether an API
        epic has a spec) does not change.
        """
        w = self.w
        role = ("ui",) if st.ui else ("api", "backend")
        linked: list[Repo] = []
        if st.epic and st.epic in w.issues:
            epic = w.issues[st.epic]
            for key in [epic.key, *epic.children]:
                for ref in w.issues[key].mrs if key in w.issues else []:
                    repo = w.mrs[ref].repo
                    if repo.role in role and repo not in linked:
                        linked.append(repo)
        if linked:
            return self.rng.choice(linked)
        return st.team.repos_with("ui" if st.ui else "backend")[0]

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
