"""GitLab v4 payloads: projects, merge requests, changes, notes, approvals, commits, deployments.

Review rounds are only visible the way GitLab shows them: system notes ("added 2
commits", "requested changes", "approved this merge request") in a merge request's
notes. Churn is only visible in diffs: ``mr_changes`` carry real hunk headers, so a
later merge request that rewrites lines an earlier one added shows it line by line.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster_project.sandbox.simulator.clock import git_ts, utc_ts
from dagster_project.sandbox.simulator.model import MR, Commit, FileChange
from dagster_project.sandbox.simulator.org import GITLAB_BASE, Org, Person, Repo

REVIEW_COMMENTS = (
    "Can we add a test for the timeout path?",
    "nit: this name does not say what it holds.",
    "This should go through the repository layer, not the client directly.",
    "Please log the correlation id here.",
    "What happens when the partner returns a 409?",
    "Could this be a single query instead of N+1?",
    "Let's keep the public contract unchanged in this MR.",
    "Missing error handling when the payload is empty.",
    "Is the retry idempotent?",
    "Please split the refactoring from the behaviour change.",
)


class GitLabRenderer:
    def __init__(self, org: Org, as_of: datetime):
        self.org = org
        self.as_of = as_of
        self._users: dict[int, dict[str, Any]] = {}
        self.next_note_id = 1_840_000_000

    def user(self, p: Person) -> dict[str, Any]:
        u = self._users.get(p.index)
        if u is None:
            u = {
                "id": p.gitlab_id,
                "username": p.username.replace(".", "_"),
                "name": p.name,
                "state": "active",
                "locked": False,
                "avatar_url": f"{GITLAB_BASE}/uploads/-/system/user/avatar/{p.gitlab_id}/avatar.png",
                "web_url": f"{GITLAB_BASE}/{p.username.replace('.', '_')}",
            }
            self._users[p.index] = u
        return u

    # -- projects --------------------------------------------------------------------------------

    def project(
        self, repo: Repo, last_activity: datetime | None, creator: Person
    ) -> dict[str, Any]:
        url = f"{GITLAB_BASE}/{repo.path}"
        team = self.org.team_of_repo(repo)
        return {
            "id": repo.id,
            "description": repo.description,
            "name": repo.name,
            "name_with_namespace": f"{team.name} / {repo.name}",
            "path": repo.name,
            "path_with_namespace": repo.path,
            "created_at": repo.created_at,
            "default_branch": repo.default_branch,
            "tag_list": [],
            "topics": [],
            "ssh_url_to_repo": f"git@gitlab.driftgate.example:{repo.path}.git",
            "http_url_to_repo": f"{url}.git",
            "web_url": url,
            "readme_url": f"{url}/-/blob/{repo.default_branch}/README.md",
            "forks_count": 0,
            "avatar_url": None,
            "star_count": repo.id % 7,
            "last_activity_at": utc_ts(last_activity) if last_activity else repo.created_at,
            "namespace": {
                "id": repo.group_id,
                "name": team.name,
                "path": repo.group,
                "kind": "group",
                "full_path": repo.group,
                "parent_id": None,
                "avatar_url": None,
                "web_url": f"{GITLAB_BASE}/groups/{repo.group}",
            },
            "container_registry_image_prefix": f"registry.driftgate.example/{repo.path}",
            "_links": {
                "self": f"{GITLAB_BASE}/api/v4/projects/{repo.id}",
                "issues": f"{GITLAB_BASE}/api/v4/projects/{repo.id}/issues",
                "merge_requests": f"{GITLAB_BASE}/api/v4/projects/{repo.id}/merge_requests",
                "repo_branches": f"{GITLAB_BASE}/api/v4/projects/{repo.id}/repository/branches",
                "labels": f"{GITLAB_BASE}/api/v4/projects/{repo.id}/labels",
                "events": f"{GITLAB_BASE}/api/v4/projects/{repo.id}/events",
                "members": f"{GITLAB_BASE}/api/v4/projects/{repo.id}/members",
                "cluster_agents": f"{GITLAB_BASE}/api/v4/projects/{repo.id}/cluster_agents",
            },
            "packages_enabled": True,
            "empty_repo": False,
            "archived": False,
            "visibility": "private",
            "resolve_outdated_diff_discussions": False,
            "issues_enabled": False,
            "merge_requests_enabled": True,
            "wiki_enabled": False,
            "jobs_enabled": True,
            "snippets_enabled": False,
            "container_registry_enabled": True,
            "creator_id": self.user(creator)["id"],
            "merge_method": "merge",
            "squash_option": "default_off",
            "only_allow_merge_if_pipeline_succeeds": True,
            "only_allow_merge_if_all_discussions_are_resolved": True,
            "remove_source_branch_after_merge": True,
            "printing_merge_request_link_enabled": True,
            "ci_default_git_depth": 20,
        }

    # -- merge requests ---------------------------------------------------------------------------

    @staticmethod
    def texts(mr: MR) -> tuple[str, str, str]:
        """Title, source branch and description, with the issue key where people put it."""
        key = mr.issue.key if mr.issue is not None else ""
        style = mr.id % 4
        draft = mr.title_text.startswith("Draft: ")
        text = mr.title_text.removeprefix("Draft: ")
        if style == 0:
            title = f"{key}: {text}"
        elif style == 1:
            title = f"[{key}] {text}"
        elif style == 2:
            title = text  # the key is only in the branch and the description
        else:
            title = f"{text} ({key})"
        if draft:
            title = "Draft: " + title
        branch = mr.branch_text.format(key=key)
        lines = [
            f"Closes {key}" if style != 3 else f"Implements {key}.",
            "",
            "## What",
            "",
            f"- {text}",
        ]
        if mr.contract:
            lines.append("- Contract tests for the partner interface")
        if mr.observability:
            lines.append("- Dashboard panels for the new flow")
        if mr.spec:
            lines.append("- OpenAPI contract as approved in Confluence")
        lines += [
            "",
            "## Checklist",
            "",
            "- [x] Tests",
            "- [x] Docs updated" if mr.id % 3 else "- [ ] Docs updated",
        ]
        return title, branch, "\n".join(lines)

    def merge_request(self, mr: MR) -> dict[str, Any]:
        repo = mr.repo
        title, branch, description = self.texts(mr)
        notes = sum(1 for e in mr.events if e[1] == "comment")
        merged = mr.state == "merged"
        closed = mr.state == "closed"
        approved = any(e[1] == "approve" for e in mr.events)
        checked = description.count("- [x]")
        return {
            "id": mr.id,
            "iid": mr.iid,
            "project_id": repo.id,
            "title": title,
            "description": description,
            "state": mr.state,
            "created_at": utc_ts(mr.created),
            "updated_at": utc_ts(mr.updated),
            "merged_by": self.user(mr.merged_by) if merged and mr.merged_by else None,
            "merge_user": self.user(mr.merged_by) if merged and mr.merged_by else None,
            "merged_at": utc_ts(mr.merged_at) if mr.merged_at else None,
            "closed_by": self.user(mr.author) if closed else None,
            "closed_at": utc_ts(mr.closed_at) if mr.closed_at else None,
            "target_branch": repo.default_branch,
            "source_branch": branch,
            "user_notes_count": notes,
            "upvotes": 0,
            "downvotes": 0,
            "author": self.user(mr.author),
            "assignees": [self.user(mr.author)],
            "assignee": self.user(mr.author),
            "reviewers": [self.user(p) for p in mr.reviewers],
            "source_project_id": repo.id,
            "target_project_id": repo.id,
            "labels": sorted(mr.labels),
            "draft": title.startswith("Draft:"),
            "work_in_progress": title.startswith("Draft:"),
            "milestone": None,
            "merge_when_pipeline_succeeds": False,
            "merge_status": "can_be_merged",
            "detailed_merge_status": "not_open"
            if merged or closed
            else ("mergeable" if approved else "not_approved"),
            "sha": mr.head_sha,
            "diff_refs": self.diff_refs(mr),
            "merge_commit_sha": mr.merge_commit.sha if merged and mr.merge_commit else None,
            "squash_commit_sha": None,
            "discussion_locked": None,
            "should_remove_source_branch": None,
            "force_remove_source_branch": True,
            "prepared_at": utc_ts(mr.created + timedelta(seconds=4)),
            "reference": f"!{mr.iid}",
            "references": {
                "short": f"!{mr.iid}",
                "relative": f"!{mr.iid}",
                "full": f"{repo.path}!{mr.iid}",
            },
            "web_url": f"{GITLAB_BASE}/{repo.path}/-/merge_requests/{mr.iid}",
            "time_stats": {
                "time_estimate": 0,
                "total_time_spent": 0,
                "human_time_estimate": None,
                "human_total_time_spent": None,
            },
            "squash": False,
            "squash_on_merge": False,
            "task_completion_status": {
                "count": description.count("- ["),
                "completed_count": checked,
            },
            "has_conflicts": False,
            "blocking_discussions_resolved": True,
            "approvals_before_merge": None,
        }

    @staticmethod
    def diff_refs(mr: MR) -> dict[str, str] | None:
        """The MR's diff: from the parent of its first commit (where its branch left the
        target) to its head. GitLab gives it on the single MR and on ``/changes``."""
        if not mr.commits or not mr.commits[0].parents:
            return None
        base = mr.commits[0].parents[0]
        return {"base_sha": base, "head_sha": mr.head_sha, "start_sha": base}

    @staticmethod
    def diff(fc: FileChange) -> str:
        out = []
        for old_start, old_len, new_start, new_len, removed, added in fc.hunks:
            out.append(f"@@ -{old_start},{old_len} +{new_start},{new_len} @@")
            out += [f"-{line}" for line in removed]
            out += [f"+{line}" for line in added]
        return "\n".join(out) + "\n"

    def changes(self, mr: MR) -> dict[str, Any]:
        return {
            "project_id": mr.repo.id,
            "iid": mr.iid,
            "changes": [
                {
                    "old_path": fc.path,
                    "new_path": fc.path,
                    "a_mode": "0" if fc.new_file else "100644",
                    "b_mode": "100644",
                    "diff": self.diff(fc),
                    "new_file": fc.new_file,
                    "renamed_file": False,
                    "deleted_file": False,
                }
                for fc in mr.files
            ],
        }

    def notes(self, mr: MR) -> dict[str, Any]:
        out = []
        repo = mr.repo
        diff_id = mr.id * 3 + 101
        prev_sha = mr.commits[0].parents[0] if mr.commits else "0" * 40
        for at, kind, who, data in mr.events:
            system = True
            body = None
            note_type = None
            if kind == "assigned":
                body = f"assigned to @{self.user(data)['username']}"
            elif kind == "review_requested":
                body = f"requested review from @{self.user(data)['username']}"
            elif kind == "push":
                commits: list[Commit] = data
                n = len(commits)
                items = "".join(f"<li>{c.sha[:8]} - {c.title}</li>" for c in commits)
                diff_id += 1
                body = (
                    f"added {n} commit{'s' if n != 1 else ''}\n\n<ul>{items}</ul>\n\n"
                    f"[Compare with previous version](/{repo.path}/-/merge_requests/{mr.iid}/diffs"
                    f"?diff_id={diff_id}&start_sha={prev_sha})"
                )
                prev_sha = commits[-1].sha
            elif kind == "approve":
                body = "approved this merge request"
            elif kind == "changes":
                body = "requested changes"
            elif kind == "comment":
                body = REVIEW_COMMENTS[int(data) % len(REVIEW_COMMENTS)]
                system = False
                note_type = "DiscussionNote"
            if body is None:
                continue
            self.next_note_id += 1 + (self.next_note_id % 5)
            note: dict[str, Any] = {
                "id": self.next_note_id,
                "type": note_type,
                "body": body,
                "attachment": None,
                "author": self.user(who),
                "created_at": utc_ts(at),
                "updated_at": utc_ts(at),
                "system": system,
                "noteable_id": mr.id,
                "noteable_type": "MergeRequest",
                "project_id": repo.id,
                "resolvable": not system,
                "confidential": False,
                "internal": False,
                "imported": False,
                "imported_from": "none",
                "noteable_iid": mr.iid,
                "commands_changes": {},
            }
            if not system:
                note["resolved"] = True
                note["resolved_by"] = self.user(mr.author)
                note["resolved_at"] = utc_ts(at + timedelta(hours=2))
            out.append(note)
        return {"project_id": repo.id, "iid": mr.iid, "notes": out}

    def approvals(self, mr: MR) -> dict[str, Any]:
        approvers: list[Person] = []
        for _at, kind, who, _data in mr.events:
            if kind == "push":
                approvers = []  # a push resets approvals
            elif kind == "approve" and who not in approvers:
                approvers.append(who)
        title, _branch, description = self.texts(mr)
        return {
            "project_id": mr.repo.id,
            "iid": mr.iid,
            "approvals": {
                "id": mr.id,
                "iid": mr.iid,
                "project_id": mr.repo.id,
                "title": title,
                "description": description,
                "state": mr.state,
                "created_at": utc_ts(mr.created),
                "updated_at": utc_ts(mr.updated),
                "merge_status": "can_be_merged",
                "approved": bool(approvers),
                "approvals_required": 1,
                "approvals_left": 0 if approvers else 1,
                "require_password_to_approve": False,
                "approved_by": [{"user": self.user(p)} for p in approvers],
                "suggested_approvers": [],
                "approvers": [],
                "approver_groups": [],
                "user_has_approved": False,
                "user_can_approve": False,
                "approval_rules_left": [],
                "has_approval_rules": True,
                "merge_request_approvers_available": True,
                "multiple_approval_rules_available": True,
                "invalid_approvers_rules": [],
            },
        }

    def commit(
        self, repo: Repo, c: Commit, title: str | None = None, message: str | None = None
    ) -> dict[str, Any]:
        when = git_ts(c.at, c.author.utc_offset)
        t = title or c.title
        return {
            "id": c.sha,
            "short_id": c.sha[:8],
            "created_at": when,
            "parent_ids": list(c.parents),
            "title": t,
            "message": (message or t) + "\n",
            "author_name": c.author.name,
            "author_email": c.author.email,
            "authored_date": when,
            "committer_name": c.author.name,
            "committer_email": c.author.email,
            "committed_date": when,
            "trailers": {},
            "extended_trailers": {},
            "web_url": f"{GITLAB_BASE}/{repo.path}/-/commit/{c.sha}",
            "stats": {
                "additions": c.additions,
                "deletions": c.deletions,
                "total": c.additions + c.deletions,
            },
            "project_id": repo.id,
        }

    def commits(self, mr: MR) -> list[dict[str, Any]]:
        title, branch, _ = self.texts(mr)
        key = mr.issue.key if mr.issue is not None else ""
        out = []
        for i, c in enumerate(mr.commits):
            t = f"{key} {c.title}" if i == 0 and key else c.title
            out.append(self.commit(mr.repo, c, t))
        if mr.state == "merged" and mr.merge_commit is not None:
            m = mr.merge_commit
            head = f"Merge branch '{branch}' into '{mr.repo.default_branch}'"
            msg = f"{head}\n\n{title}\n\nSee merge request {mr.repo.path}!{mr.iid}"
            out.append(self.commit(mr.repo, m, head, msg))
        return out

    # -- deployments ----------------------------------------------------------------------------

    def deployments(
        self, merges: dict[tuple[int, str], tuple[datetime, str, Person, int]], seed: int
    ) -> list[dict[str, Any]]:
        """A staging deployment per day with merges, production on the next working day."""
        out: list[dict[str, Any]] = []
        dep_id = 5_120_000
        job_id = 88_000_000
        for repo in self.org.repos():
            rng = random.Random(f"{seed}:deploy:{repo.id}")
            days = sorted((day, v) for (rid, day), v in merges.items() if rid == repo.id)
            iid = 0
            env_created = "2023-03-01T10:00:00.000Z"
            for day, (merged_at, sha, who, mr_iid) in days:
                staging = merged_at + timedelta(minutes=rng.randint(12, 55))
                prod_day = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(
                    days=1
                )
                while prod_day.weekday() >= 5:
                    prod_day += timedelta(days=1)
                prod = prod_day.replace(hour=9) + timedelta(minutes=rng.randint(0, 240))
                for env, at in (("staging", staging), ("production", prod)):
                    if at > self.as_of:
                        continue
                    iid += 1
                    dep_id += rng.randint(1, 40)
                    job_id += rng.randint(50, 4000)
                    out.append(
                        self.deployment(
                            repo, dep_id, iid, job_id, env, env_created, at, sha, who, mr_iid
                        )
                    )
        return out

    def deployment(
        self,
        repo: Repo,
        dep_id: int,
        iid: int,
        job_id: int,
        env: str,
        env_created: str,
        at: datetime,
        sha: str,
        who: Person,
        mr_iid: int,
    ) -> dict[str, Any]:
        done = at + timedelta(minutes=4, seconds=dep_id % 50)
        env_id = repo.id * 10 + (1 if env == "staging" else 2)
        pipeline_id = job_id // 3
        return {
            "id": dep_id,
            "iid": iid,
            "ref": repo.default_branch,
            "sha": sha,
            "created_at": utc_ts(at),
            "updated_at": utc_ts(done),
            "user": self.user(who),
            "environment": {
                "id": env_id,
                "name": env,
                "slug": env,
                "external_url": f"https://{env}.{repo.name}.driftgate.example",
                "created_at": env_created,
                "updated_at": env_created,
                "tier": env,
            },
            "deployable": {
                "id": job_id,
                "status": "success",
                "stage": "deploy",
                "name": f"deploy:{env}",
                "ref": repo.default_branch,
                "tag": False,
                "coverage": None,
                "allow_failure": False,
                "created_at": utc_ts(at),
                "started_at": utc_ts(at + timedelta(seconds=20)),
                "finished_at": utc_ts(done),
                "duration": float((done - at).total_seconds() - 20),
                "queued_duration": 1.2,
                "user": self.user(who),
                "commit": {
                    "id": sha,
                    "short_id": sha[:8],
                    "title": f"Merge branch into '{repo.default_branch}' (!{mr_iid})",
                },
                "pipeline": {
                    "id": pipeline_id,
                    "iid": pipeline_id % 10000,
                    "project_id": repo.id,
                    "sha": sha,
                    "ref": repo.default_branch,
                    "status": "success",
                    "source": "push",
                    "created_at": utc_ts(at - timedelta(minutes=9)),
                    "updated_at": utc_ts(done),
                    "web_url": f"{GITLAB_BASE}/{repo.path}/-/pipelines/{pipeline_id}",
                },
                "web_url": f"{GITLAB_BASE}/{repo.path}/-/jobs/{job_id}",
                "artifacts": [],
                "runner": None,
                "artifacts_expire_at": None,
                "tag_list": [],
            },
            "status": "success",
            "project_id": repo.id,
        }


def readme(repo: Repo) -> bytes:
    return (
        f"# {repo.name}\n\n{repo.description}\n\n"
        "## Development\n\n```\nmake setup\nmake test\n```\n\n"
        + (
            "API contracts live under `api/<resource>/openapi.yaml`; approved versions are tagged\n"
            "`api-<resource>-vX.Y.Z`.\n"
            if repo.role == "api"
            else ""
        )
    ).encode()
