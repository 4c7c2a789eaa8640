"""Jira payloads as the REST API returns them: /field, /status, search issues, remote links.

Cloud and Server differ where real instances differ: Cloud users carry only
``accountId``, descriptions are ADF (the v3 representation) and changelog items have a
``fieldId``; Server users carry ``name``/``key``, rich text is wiki markup, epics are
linked through the "Epic Link" field and old-style sprint strings appear.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from dagster_project.sandbox.simulator import text as tx
from dagster_project.sandbox.simulator.clock import jira_date, jira_ts, utc_ts
from dagster_project.sandbox.simulator.model import Hist, Issue, Sprint
from dagster_project.sandbox.simulator.org import (
    CATEGORIES,
    STATUS_BY_NAME,
    STATUSES,
    Org,
    Person,
    Team,
)

ISSUE_TYPES = {
    # name: (cloud id, server id, description, icon, hierarchy level)
    "Epic": ("10000", "10000", "A big user story that needs to be broken down.", "epic.svg", 1),
    "Story": (
        "10001",
        "10001",
        "Functionality or a feature expressed as a user goal.",
        "story.svg",
        0,
    ),
    "Bug": (
        "10004",
        "1",
        "A problem which impairs or prevents the functions of the product.",
        "bug.svg",
        0,
    ),
}
KIND_TYPE = {"epic": "Epic", "story": "Story", "bug": "Bug"}
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
LINK_TYPES = {
    "Blocks": ("10000", "is blocked by", "blocks"),
    "Relates": ("10003", "relates to", "relates to"),
    "Problem/Incident": ("10004", "is caused by", "causes"),
}


def points_text(v: float | None) -> str | None:
    """Story points as Jira writes them in a changelog: "3", "0.5"."""
    if v is None:
        return None
    return str(int(v)) if float(v).is_integer() else str(v)


CLOUD_ID = "b3c4f1de-7a52-4e0b-9c1f-5d2e8a6b7c90"
CONFLUENCE_APP_ID = "3b7f2c9a-1e4d-3a6b-8c5f-0d9e2f7a4b61"


class JiraRenderer:
    """Builds Jira JSON for one organisation; caches the objects every issue repeats."""

    def __init__(self, org: Org, as_of: datetime):
        self.org = org
        self.as_of = as_of
        self.cloud = org.flavor == "cloud"
        self.base = org.jira_base
        self.api = f"{self.base}/rest/api/{'3' if self.cloud else '2'}"
        self.zone = org.zone
        self._users: dict[int, dict[str, Any]] = {}
        self._status: dict[str, dict[str, Any]] = {}
        self._projects: dict[str, dict[str, Any]] = {}

    def ts(self, dt: datetime) -> str:
        return jira_ts(dt, self.zone)

    # -- shared objects ------------------------------------------------------------------------

    def user(self, p: Person) -> dict[str, Any]:
        u = self._users.get(p.index)
        if u is not None:
            return u
        initials = "".join(w[0] for w in p.name.split())[:2].upper()
        if self.cloud:
            av = f"https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/initials/{initials}-{p.index % 6}.png"
            u = {
                "self": f"{self.api}/user?accountId={p.account_id}",
                "accountId": p.account_id,
                "avatarUrls": {"48x48": av, "24x24": av, "16x16": av, "32x32": av},
                "displayName": p.name,
                "active": True,
                "timeZone": p.time_zone,
                "accountType": "atlassian",
            }
        else:
            av = f"{self.base}/secure/useravatar?ownerId={p.username}&avatarId={10500 + p.index}"
            u = {
                "self": f"{self.api}/user?username={p.username}",
                "name": p.username,
                "key": p.server_key,
                "emailAddress": p.email,
                "avatarUrls": {
                    "48x48": av,
                    "24x24": av + "&size=small",
                    "16x16": av + "&size=xsmall",
                    "32x32": av + "&size=medium",
                },
                "displayName": p.name,
                "active": True,
                "timeZone": p.time_zone,
            }
        self._users[p.index] = u
        return u

    def category(self, key: str) -> dict[str, Any]:
        cid, name, colour = CATEGORIES[key]
        return {
            "self": f"{self.api}/statuscategory/{cid}",
            "id": cid,
            "key": key,
            "colorName": colour,
            "name": name,
        }

    def status(self, name: str) -> dict[str, Any]:
        s = self._status.get(name)
        if s is None:
            st = STATUS_BY_NAME[name]
            s = {
                "self": f"{self.api}/status/{st.id}",
                "description": st.description,
                "iconUrl": f"{self.base}/images/icons/statuses/{st.icon}",
                "name": st.name,
                "id": st.id,
                "statusCategory": self.category(st.category),
            }
            self._status[name] = s
        return s

    def project(self, team: Team) -> dict[str, Any]:
        p = self._projects.get(team.key)
        if p is None:
            av = f"{self.api}/universal_avatar/view/type/project/avatar/{10400 + int(team.project_id) % 100}"
            p = {
                "self": f"{self.api}/project/{team.project_id}",
                "id": team.project_id,
                "key": team.key,
                "name": team.project_name,
                "projectTypeKey": "software",
                "avatarUrls": {
                    "48x48": av,
                    "24x24": av + "?size=small",
                    "16x16": av + "?size=xsmall",
                    "32x32": av + "?size=medium",
                },
            }
            if self.cloud:
                p["simplified"] = team.fields.team_managed
            self._projects[team.key] = p
        return p

    def issuetype(self, name: str) -> dict[str, Any]:
        cid, sid, desc, icon, level = ISSUE_TYPES[name]
        tid = cid if self.cloud else sid
        out = {
            "self": f"{self.api}/issuetype/{tid}",
            "id": tid,
            "description": desc,
            "iconUrl": f"{self.base}/images/icons/issuetypes/{icon}",
            "name": name,
            "subtask": False,
        }
        if self.cloud:
            out["hierarchyLevel"] = level
        return out

    def priority(self, name: str) -> dict[str, Any]:
        pid = PRIORITIES[name]
        return {
            "self": f"{self.api}/priority/{pid}",
            "iconUrl": f"{self.base}/images/icons/priorities/{name.lower()}.svg",
            "name": name,
            "id": pid,
        }

    def sprint_value(self, sprints: list[Sprint]) -> list[Any] | None:
        if not sprints:
            return None
        out: list[Any] = []
        for s in sprints:
            state = (
                "closed"
                if s.end <= self.as_of
                else ("active" if s.start <= self.as_of else "future")
            )
            if self.cloud:
                obj: dict[str, Any] = {
                    "id": s.id,
                    "name": s.name,
                    "state": state,
                    "boardId": s.board,
                    "goal": "",
                    "startDate": utc_ts(s.start),
                    "endDate": utc_ts(s.end),
                }
                if state == "closed":
                    obj["completeDate"] = utc_ts(s.end)
                out.append(obj)
            else:
                complete = utc_ts(s.end) if state == "closed" else "<null>"
                h = hashlib.sha1(f"sprint{s.id}".encode()).hexdigest()[:6]
                out.append(
                    f"com.atlassian.greenhopper.service.sprint.Sprint@{h}[id={s.id},rapidViewId={s.board},"
                    f"state={state.upper()},name={s.name},startDate={utc_ts(s.start)},endDate={utc_ts(s.end)},"
                    f"completeDate={complete},activatedDate={utc_ts(s.start)},sequence={s.id},goal=,"
                    f"autoStartStop=false,synced=false]"
                )
        return out

    def rich(self, blocks: list[tx.Block] | None) -> Any:
        if not blocks:
            return None
        return tx.to_adf(blocks) if self.cloud else tx.to_wiki(blocks)

    # -- /field and /status ------------------------------------------------------------------------

    def statuses_json(self) -> list[dict[str, Any]]:
        out = []
        for st in STATUSES:
            s = dict(self.status(st.name))
            if self.cloud:
                s = {k: s[k] for k in ("self", "description", "iconUrl", "name")} | {
                    "untranslatedName": st.name,
                    "id": st.id,
                    "statusCategory": s["statusCategory"],
                }
            out.append(s)
        return out

    def fields_json(self) -> list[dict[str, Any]]:
        def system(
            fid: str,
            name: str,
            schema: dict[str, Any] | None,
            orderable: bool = True,
            searchable: bool = True,
            clauses: list[str] | None = None,
        ) -> dict[str, Any]:
            f: dict[str, Any] = {"id": fid}
            if self.cloud:
                f["key"] = fid
            f |= {
                "name": name,
                "custom": False,
                "orderable": orderable,
                "navigable": True,
                "searchable": searchable,
                "clauseNames": clauses if clauses is not None else [fid],
            }
            if schema is not None:
                f["schema"] = schema
            return f

        def custom(
            fid: str,
            name: str,
            ftype: str,
            plugin: str,
            items: str | None = None,
            scope: str | None = None,
            extra_clauses: tuple[str, ...] = (),
        ) -> dict[str, Any]:
            num = fid.split("_")[1]
            f: dict[str, Any] = {"id": fid}
            if self.cloud:
                f |= {"key": fid, "name": name, "untranslatedName": name}
            else:
                f["name"] = name
            f |= {
                "custom": True,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": [f"cf[{num}]", name, *extra_clauses],
            }
            schema: dict[str, Any] = {"type": ftype}
            if items:
                schema["items"] = items
            schema |= {"custom": plugin, "customId": int(num)}
            f["schema"] = schema
            if scope is not None:
                f["scope"] = {"type": "PROJECT", "project": {"id": scope}}
            return f

        out = [
            system(
                "statuscategorychangedate",
                "Status Category Changed",
                {"type": "datetime", "system": "statuscategorychangedate"},
                False,
                True,
                ["statusCategoryChangedDate"],
            )
            if self.cloud
            else None,
            system(
                "issuetype",
                "Issue Type",
                {"type": "issuetype", "system": "issuetype"},
                clauses=["issuetype", "type"],
            ),
            system("parent", "Parent", None, False, False) if self.cloud else None,
            system("timespent", "Time Spent", {"type": "number", "system": "timespent"}, False),
            system("project", "Project", {"type": "project", "system": "project"}, False),
            system(
                "fixVersions",
                "Fix versions",
                {"type": "array", "items": "version", "system": "fixVersions"},
                clauses=["fixVersion"],
            ),
            system("resolution", "Resolution", {"type": "resolution", "system": "resolution"}),
            system(
                "resolutiondate",
                "Resolved",
                {"type": "datetime", "system": "resolutiondate"},
                False,
                True,
                ["resolutiondate", "resolved"],
            ),
            system("workratio", "Work Ratio", {"type": "number", "system": "workratio"}, False),
            system(
                "lastViewed",
                "Last Viewed",
                {"type": "datetime", "system": "lastViewed"},
                False,
                False,
                ["lastViewed"],
            ),
            system(
                "watches",
                "Watchers",
                {"type": "watches", "system": "watches"},
                False,
                False,
                ["watchers"],
            ),
            system(
                "created",
                "Created",
                {"type": "datetime", "system": "created"},
                False,
                True,
                ["created", "createdDate"],
            ),
            system("priority", "Priority", {"type": "priority", "system": "priority"}),
            system("labels", "Labels", {"type": "array", "items": "string", "system": "labels"}),
            system(
                "versions",
                "Affects versions",
                {"type": "array", "items": "version", "system": "versions"},
                clauses=["affectedVersion"],
            ),
            system(
                "issuelinks",
                "Linked Issues",
                {"type": "array", "items": "issuelinks", "system": "issuelinks"},
                clauses=[],
            ),
            system("assignee", "Assignee", {"type": "user", "system": "assignee"}),
            system(
                "updated",
                "Updated",
                {"type": "datetime", "system": "updated"},
                False,
                True,
                ["updated", "updatedDate"],
            ),
            system("status", "Status", {"type": "status", "system": "status"}, False),
            system(
                "components",
                "Components",
                {"type": "array", "items": "component", "system": "components"},
                clauses=["component"],
            ),
            system("description", "Description", {"type": "string", "system": "description"}),
            system(
                "timetracking",
                "Time tracking",
                {"type": "timetracking", "system": "timetracking"},
                True,
                False,
                [],
            ),
            system(
                "security",
                "Security Level",
                {"type": "securitylevel", "system": "security"},
                clauses=["level"],
            ),
            system(
                "attachment",
                "Attachment",
                {"type": "array", "items": "attachment", "system": "attachment"},
                clauses=["attachments"],
            ),
            system("summary", "Summary", {"type": "string", "system": "summary"}),
            system("creator", "Creator", {"type": "user", "system": "creator"}, False),
            system(
                "subtasks",
                "Sub-tasks",
                {"type": "array", "items": "issuelinks", "system": "subtasks"},
                False,
                True,
                ["subtasks"],
            ),
            system("reporter", "Reporter", {"type": "user", "system": "reporter"}),
            system("environment", "Environment", {"type": "string", "system": "environment"}),
            system(
                "duedate",
                "Due date",
                {"type": "date", "system": "duedate"},
                clauses=["due", "duedate"],
            ),
            system(
                "comment",
                "Comment",
                {"type": "comments-page", "system": "comment"},
                True,
                True,
                ["comment"],
            ),
            system("votes", "Votes", {"type": "votes", "system": "votes"}, False, False, ["votes"]),
            system(
                "worklog",
                "Log Work",
                {"type": "array", "items": "worklog", "system": "worklog"},
                True,
                False,
                [],
            ),
        ]
        out = [f for f in out if f is not None]
        shared = self.org.teams[0].fields
        out += [
            custom(
                shared.sprint,
                "Sprint",
                "array",
                "com.pyxis.greenhopper.jira:gh-sprint",
                "json" if self.cloud else "string",
            ),
            custom(shared.rank, "Rank", "any", "com.pyxis.greenhopper.jira:gh-lexo-rank"),
            custom(
                shared.flagged,
                "Flagged",
                "array",
                "com.atlassian.jira.plugin.system.customfieldtypes:multicheckboxes",
                "option",
            ),
            custom(
                shared.start_date,
                "Start date",
                "date",
                "com.atlassian.jira.plugin.system.customfieldtypes:datepicker",
            ),
            custom(
                shared.story_points,
                "Story Points",
                "number",
                "com.atlassian.jira.plugin.system.customfieldtypes:float",
                extra_clauses=("Story Points[Number]",) if self.cloud else (),
            ),
            custom(
                self.org.fields_cloud_shared["acceptance_criteria"],
                "Acceptance Criteria",
                "string",
                "com.atlassian.jira.plugin.system.customfieldtypes:textarea",
            ),
        ]
        if not self.cloud:
            out += [
                custom(
                    shared.epic_link or "",
                    "Epic Link",
                    "any",
                    "com.pyxis.greenhopper.jira:gh-epic-link",
                ),
                custom(
                    shared.epic_name or "",
                    "Epic Name",
                    "string",
                    "com.pyxis.greenhopper.jira:gh-epic-label",
                ),
                custom(
                    "customfield_10502",
                    "Epic Status",
                    "option",
                    "com.pyxis.greenhopper.jira:gh-epic-status",
                ),
            ]
        else:
            out.append(
                custom(
                    "customfield_10100",
                    "Development",
                    "any",
                    "com.atlassian.jira.plugins.jira-development-integration-plugin:devsummarycf",
                )
            )
        for team in self.org.teams:
            fid = team.fields
            if fid.story_points == shared.story_points:
                continue
            scope = team.project_id if fid.team_managed else None
            sp_plugin = (
                "com.pyxis.greenhopper.jira:jsw-story-points"
                if fid.team_managed
                else "com.atlassian.jira.plugin.system.customfieldtypes:float"
            )
            out.append(custom(fid.story_points, "Story Points", "number", sp_plugin, scope=scope))
            if fid.acceptance_criteria:
                out.append(
                    custom(
                        fid.acceptance_criteria,
                        "Acceptance Criteria",
                        "string",
                        "com.atlassian.jira.plugin.system.customfieldtypes:textarea",
                        scope=scope,
                    )
                )
        return out

    # -- issues ------------------------------------------------------------------------------------

    def linked(self, other: Issue) -> dict[str, Any]:
        return {
            "id": other.id,
            "key": other.key,
            "self": f"{self.api}/issue/{other.id}",
            "fields": {
                "summary": other.summary,
                "status": self.status(other.status),
                "priority": self.priority(other.priority),
                "issuetype": self.issuetype(KIND_TYPE[other.kind]),
            },
        }

    def issue(self, issue: Issue, next_history_id: int) -> tuple[dict[str, Any], int]:
        """The search-result object for ``issue`` (expand=changelog), and the next history id."""
        cloud, api, ts = self.cloud, self.api, self.ts
        team = issue.team
        fid = team.fields
        flagged = False
        for h in issue.hist:
            for item in h.items:
                if item[0] == "flagged":
                    flagged = item[2]
        f: dict[str, Any] = {}
        if cloud:
            f["statuscategorychangedate"] = ts(issue.category_changed_at)
        f["issuetype"] = self.issuetype(KIND_TYPE[issue.kind])
        f["timespent"] = None
        f["project"] = self.project(team)
        f["fixVersions"] = []
        f["aggregatetimespent"] = None
        f["resolution"] = (
            {
                "self": f"{api}/resolution/10000",
                "id": "10000",
                "description": "Work has been completed on this issue.",
                "name": issue.resolution,
            }
            if issue.resolution
            else None
        )
        f[fid.sprint] = self.sprint_value(issue.sprints)
        f["resolutiondate"] = ts(issue.resolved_at) if issue.resolved_at else None
        f["workratio"] = -1
        f["lastViewed"] = None
        f["watches"] = {
            "self": f"{api}/issue/{issue.key}/watchers",
            "watchCount": 1 + int(issue.id) % 3,
            "isWatching": False,
        }
        if cloud:
            f["issuerestriction"] = {"issuerestrictions": {}, "shouldDisplay": False}
        f["created"] = ts(issue.created)
        f[fid.rank] = f"0|i{int(issue.id) * 37 % 1679616:04x}:"
        f["priority"] = self.priority(issue.priority)
        f["labels"] = sorted(issue.labels)
        f[fid.story_points] = issue.points if issue.kind == "story" else None
        f["aggregatetimeoriginalestimate"] = None
        f["timeestimate"] = None
        f["versions"] = []
        links = []
        for link_type, direction, other, link_id in issue.links:
            if not other.key:
                continue
            lid, inward, outward = LINK_TYPES[link_type]
            links.append(
                {
                    "id": str(link_id),
                    "self": f"{api}/issueLink/{link_id}",
                    "type": {
                        "id": lid,
                        "name": link_type,
                        "inward": inward,
                        "outward": outward,
                        "self": f"{api}/issueLinkType/{lid}",
                    },
                    ("inwardIssue" if direction == "inward" else "outwardIssue"): self.linked(
                        other
                    ),
                }
            )
        f["issuelinks"] = links
        f["assignee"] = self.user(issue.assignee) if issue.assignee else None
        f["updated"] = ts(issue.updated)
        f["status"] = self.status(issue.status)
        f["components"] = [
            {"self": f"{api}/component/{team.components[c]}", "id": team.components[c], "name": c}
            for c in issue.components
        ]
        f["timeoriginalestimate"] = None
        f["description"] = self.rich(issue.description_blocks())
        if fid.acceptance_criteria:
            ac = None if team.ac_in_description or not issue.ac else [("ul", issue.ac)]
            f[fid.acceptance_criteria] = self.rich(ac) if issue.kind == "story" else None
        f[fid.flagged] = (
            [{"self": f"{api}/customFieldOption/10019", "value": "Impediment", "id": "10019"}]
            if flagged
            else None
        )
        f[fid.start_date] = (
            jira_date(issue.start_at, self.zone)
            if issue.start_at and issue.kind == "epic"
            else None
        )
        f["timetracking"] = {}
        f["security"] = None
        f["attachment"] = []
        f["aggregatetimeestimate"] = None
        f["summary"] = issue.summary
        f["creator"] = self.user(issue.creator)
        f["subtasks"] = []
        f["reporter"] = self.user(issue.reporter)
        f["aggregateprogress"] = {"progress": 0, "total": 0}
        if not cloud:
            f[fid.epic_link or ""] = issue.epic.key if issue.epic is not None else None
            f[fid.epic_name or ""] = issue.summary if issue.kind == "epic" else None
        f["environment"] = None
        f["duedate"] = None
        f["progress"] = {"progress": 0, "total": 0}
        f["comment"] = {
            "comments": [],
            "self": f"{api}/issue/{issue.id}/comment",
            "maxResults": 0,
            "total": 0,
            "startAt": 0,
        }
        f["votes"] = {"self": f"{api}/issue/{issue.key}/votes", "votes": 0, "hasVoted": False}
        f["worklog"] = {"startAt": 0, "maxResults": 20, "total": 0, "worklogs": []}
        if cloud and issue.epic is not None:
            f["parent"] = self.linked(issue.epic)
        histories = []
        desc_version = 1
        for h in sorted(issue.hist, key=lambda h: h.at):
            items, desc_version = self._items(issue, h, desc_version)
            histories.append(
                {
                    "id": str(next_history_id),
                    "author": self.user(h.author),
                    "created": ts(h.at),
                    "items": items,
                }
            )
            next_history_id += 1 + (next_history_id % 3 == 0)
        n = len(histories)
        obj = {
            "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
            "id": issue.id,
            "self": f"{api}/issue/{issue.id}",
            "key": issue.key,
            "fields": f,
            "changelog": {"startAt": 0, "maxResults": n, "total": n, "histories": histories},
        }
        return obj, next_history_id

    def _item(
        self,
        field: str,
        fieldtype: str,
        field_id: str | None,
        frm: Any,
        frm_s: Any,
        to: Any,
        to_s: Any,
    ) -> dict[str, Any]:
        item: dict[str, Any] = {"field": field, "fieldtype": fieldtype}
        if self.cloud and field_id:
            item["fieldId"] = field_id
        item |= {"from": frm, "fromString": frm_s, "to": to, "toString": to_s}
        return item

    def _items(self, issue: Issue, h: Hist, desc_version: int) -> tuple[list[dict[str, Any]], int]:
        fid = issue.team.fields
        out = []
        for it in h.items:
            kind = it[0]
            if kind == "status":
                a, b = STATUS_BY_NAME[it[1]], STATUS_BY_NAME[it[2]]
                out.append(self._item("status", "jira", "status", a.id, a.name, b.id, b.name))
            elif kind == "resolution":
                out.append(
                    self._item(
                        "resolution",
                        "jira",
                        "resolution",
                        "10000" if it[1] else None,
                        it[1],
                        "10000" if it[2] else None,
                        it[2],
                    )
                )
            elif kind == "summary":
                out.append(self._item("summary", "jira", "summary", None, it[1], None, it[2]))
            elif kind == "description":
                if self.cloud:
                    ari = f"ari:cloud:jira:{CLOUD_ID}:issuefieldvalue/{issue.id}/description"
                    frm = f'{{"id":"{ari}","version":"{desc_version}"}}'
                    desc_version += 1
                    to = f'{{"id":"{ari}","version":"{desc_version}"}}'
                else:
                    frm = to = None
                out.append(self._item("description", "jira", "description", frm, it[1], to, it[2]))
            elif kind == "ac":
                out.append(
                    self._item(
                        "Acceptance Criteria",
                        "custom",
                        fid.acceptance_criteria,
                        None,
                        it[1],
                        None,
                        it[2],
                    )
                )
            elif kind == "points":
                out.append(
                    self._item(
                        "Story Points",
                        "custom",
                        fid.story_points,
                        None,
                        points_text(it[1]),
                        None,
                        points_text(it[2]),
                    )
                )
            elif kind == "sprint":
                out.append(
                    self._item(
                        "Sprint",
                        "custom",
                        fid.sprint,
                        ", ".join(str(s.id) for s in it[1]),
                        ", ".join(s.name for s in it[1]),
                        ", ".join(str(s.id) for s in it[2]),
                        ", ".join(s.name for s in it[2]),
                    )
                )
            elif kind == "rank":
                out.append(self._item("Rank", "custom", fid.rank, "", "", "", it[1]))
            elif kind == "flagged":
                out.append(
                    self._item(
                        "Flagged",
                        "custom",
                        fid.flagged,
                        "10019" if it[1] else None,
                        "Impediment" if it[1] else None,
                        "10019" if it[2] else None,
                        "Impediment" if it[2] else None,
                    )
                )
            elif kind == "assignee":
                a, b = it[1], it[2]
                if self.cloud:
                    item = self._item(
                        "assignee",
                        "jira",
                        "assignee",
                        a.account_id if a else None,
                        a.name if a else None,
                        b.account_id,
                        b.name,
                    )
                    item["tmpFromAccountId"] = a.account_id if a else None
                    item["tmpToAccountId"] = b.account_id
                else:
                    item = self._item(
                        "assignee",
                        "jira",
                        None,
                        a.username if a else None,
                        a.name if a else None,
                        b.username,
                        b.name,
                    )
                out.append(item)
            elif kind == "priority":
                out.append(
                    self._item(
                        "priority",
                        "jira",
                        "priority",
                        PRIORITIES[it[1]],
                        it[1],
                        PRIORITIES[it[2]],
                        it[2],
                    )
                )
            elif kind == "labels":
                out.append(
                    self._item(
                        "labels", "jira", "labels", None, " ".join(it[1]), None, " ".join(it[2])
                    )
                )
            elif kind == "link":
                other = it[1]
                out.append(
                    self._item(
                        "Link",
                        "jira",
                        None,
                        None,
                        None,
                        other.key,
                        f"This issue {it[2]} {other.key}",
                    )
                )
            elif kind == "remotelink":
                out.append(
                    self._item(
                        "RemoteIssueLink",
                        "jira",
                        None,
                        None,
                        None,
                        str(it[1]),
                        'This issue links to "Wiki Page (Web Link)"',
                    )
                )
            elif kind == "epic":
                epic = it[1]
                if self.cloud:
                    out.append(
                        self._item(
                            "IssueParentAssociation", "jira", None, None, None, epic.id, epic.key
                        )
                    )
                else:
                    out.append(
                        self._item(
                            "Epic Link", "custom", fid.epic_link, None, None, epic.id, epic.key
                        )
                    )
        return out, desc_version

    def remote_links(self, issue: Issue) -> dict[str, Any] | None:
        if not issue.remote_links:
            return None
        links = []
        for link_id, page, _at in issue.remote_links:
            if not page.id:
                continue
            links.append(
                {
                    "id": link_id,
                    "self": f"{self.api}/issue/{issue.key}/remotelink/{link_id}",
                    "globalId": f"appId={CONFLUENCE_APP_ID}&pageId={page.id}",
                    "application": {
                        "type": "com.atlassian.confluence",
                        "name": "System Confluence",
                    },
                    "relationship": "Wiki Page",
                    "object": {
                        "url": f"{self.org.confluence_base}/pages/viewpage.action?pageId={page.id}",
                        "title": "Wiki Page",
                        "icon": {
                            "url16x16": f"{self.org.confluence_base}/images/icons/favicon.png",
                            "title": "Confluence",
                        },
                        "status": {"icon": {}},
                    },
                }
            )
        return {"issue_key": issue.key, "links": links} if links else None
