"""Hand-written organisations for analysis unit tests.

Payloads are written as the real APIs return them (Jira v2 wiki markup or v3 ADF,
Confluence storage XHTML, GitLab v4), stored through the product's raw store, and the
chain and analysis tables are rebuilt by the product's own SQL, in the order the Dagster
asset graph gives. Times are written in the viewer's zone, as Jira does.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.defs.reports.snapshots import build_order
from dagster_project.lib.chainsql import build_table
from dagster_project.lib.policy import Policy
from dagster_project.lib.rawstore import Batch, RawObject, RawStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
STATUSES = {
    "Backlog": ("1", "new"),
    "Building": ("3", "indeterminate"),  # custom names: categories decide
    "Shipped": ("10001", "done"),
    "Released": ("10002", "done"),  # a second done status: moving to it is no reopen
}
AC_FIELD = "customfield_10777"  # not Jira's default id: resolved by name
EPIC_LINK = "customfield_10014"
JIRA = "https://jira.example.com"
CONFLUENCE = "https://wiki.example.com/wiki"


def at(days: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(days=days, minutes=minutes, seconds=seconds)


def jira_ts(moment: datetime, offset_hours: int = -7) -> str:
    """Jira's format, in the viewer's zone (Los Angeles in March: UTC-7 or -8)."""
    local = moment.astimezone(UTC) + timedelta(hours=offset_hours)
    sign = "+" if offset_hours >= 0 else "-"
    return local.strftime("%Y-%m-%dT%H:%M:%S.000") + f"{sign}{abs(offset_hours):02d}00"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Org:
    """A small organisation; add objects, then :meth:`build` the tables."""

    path: Path
    jira: list[RawObject] = field(default_factory=list)
    gitlab: list[RawObject] = field(default_factory=list)
    confluence: list[RawObject] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1000))

    def __post_init__(self) -> None:
        self.jira += [
            RawObject("status", sid, {"id": sid, "name": name, "statusCategory": {"key": cat}})
            for name, (sid, cat) in STATUSES.items()
        ]
        self.jira += [
            RawObject("field", AC_FIELD, {"id": AC_FIELD, "name": "Acceptance Criteria",
                                          "custom": True, "clauseNames": ["cf[10777]"]}),
            RawObject("field", EPIC_LINK, {"id": EPIC_LINK, "name": "Epic Link",
                                           "custom": True, "clauseNames": ["cf[10014]"]}),
        ]  # fmt: skip
        self.gitlab.append(
            RawObject("project", "7", {"id": 7, "path_with_namespace": "shop/api",
                                       "default_branch": "main",
                                       "web_url": "https://gitlab.example.com/shop/api"})
        )  # fmt: skip

    # -- Jira ---------------------------------------------------------------------------
    def issue(
        self,
        key: str,
        issue_type: str = "Story",
        *,
        created: datetime = T0,
        status: str = "Backlog",
        labels: tuple[str, ...] = (),
        components: tuple[str, ...] = (),
        description: Any = None,
        ac: Any = None,
        epic: str | None = None,
        history: list[tuple[datetime, str, Any, Any]] = (),
    ) -> dict[str, Any]:
        """``history``: (when, field, from, to); a status change names statuses, other
        fields give the strings Jira puts in fromString/toString."""
        sid, cat = STATUSES[status]
        histories = []
        for n, (when, fname, old, new) in enumerate(history):
            item: dict[str, Any] = {"field": fname, "fieldtype": "jira", "fromString": old,
                                    "toString": new}  # fmt: skip
            if fname == "status":
                item.update({"from": STATUSES[old][0], "to": STATUSES[new][0]})
            elif fname == "Acceptance Criteria":
                item.update({"fieldtype": "custom", "fieldId": AC_FIELD})
            histories.append({"id": f"{key}-{n}", "created": jira_ts(when),
                              "author": {"name": "ana", "key": "JIRAUSER10100"},
                              "items": [item]})  # fmt: skip
        payload = {
            "id": str(next(self._ids)),
            "key": key,
            "self": f"{JIRA}/rest/api/2/issue/{key}",
            "fields": {
                "project": {"key": key.split("-")[0]},
                "issuetype": {"name": issue_type},
                "summary": f"{issue_type} {key}",
                "status": {"id": sid, "name": status, "statusCategory": {"key": cat}},
                "labels": list(labels),
                "components": [{"name": c} for c in components],
                "created": jira_ts(created),
                "updated": jira_ts(max([created, *(h[0] for h in history)])),
                "description": description,
                AC_FIELD: ac,
                EPIC_LINK: epic,
                "issuelinks": [],
            },
            "changelog": {"startAt": 0, "maxResults": len(histories),
                          "total": len(histories), "histories": histories},
        }  # fmt: skip
        self.jira.append(RawObject("issue", key, payload))
        return payload

    def remote_link(self, key: str, page_id: str) -> None:
        link = {"id": next(self._ids), "globalId": f"appId=x&pageId={page_id}",
                "object": {"url": f"{CONFLUENCE}/pages/viewpage.action?pageId={page_id}",
                           "title": "page"}}  # fmt: skip
        self.jira.append(RawObject("remotelink", key, {"issue_key": key, "links": [link]},
                                   parent_key=key))  # fmt: skip

    # -- Confluence ---------------------------------------------------------------------
    def page(self, page_id: str, label: str, versions: list[tuple[datetime, str]]) -> None:
        """``versions``: (when, storage body) oldest first; the last one is current."""
        when, body = versions[-1]
        self.confluence.append(
            RawObject("page", page_id, {
                "id": page_id, "type": "page", "title": f"{label} {page_id}",
                "space": {"key": "ENG"},
                "version": {"number": len(versions), "when": iso(when), "by": {"displayName": "Ana"}},
                "metadata": {"labels": {"results": [{"prefix": "global", "name": label}]}},
                "body": {"storage": {"value": body, "representation": "storage"}},
                "_links": {"self": f"{CONFLUENCE}/rest/api/content/{page_id}",
                           "webui": f"/spaces/ENG/pages/{page_id}"},
            })
        )  # fmt: skip
        for n, (vwhen, vbody) in enumerate(versions, start=1):
            self.confluence.append(
                RawObject("page_version", f"{page_id}:{n}", {
                    "page_id": page_id, "number": n, "when": iso(vwhen), "by": "Ana",
                    "content": {"body": {"storage": {"value": vbody}}},
                }, parent_key=page_id)
            )  # fmt: skip

    # -- GitLab -------------------------------------------------------------------------
    def merge_request(
        self,
        iid: int,
        title: str,
        *,
        created: datetime,
        merged: datetime | None = None,
        closed: datetime | None = None,
        labels: tuple[str, ...] = (),
        paths: tuple[str, ...] = ("src/app.py",),
        diffs: dict[str, str] | None = None,
        new_file: bool = True,
        target_branch: str = "main",
    ) -> str:
        key = f"7!{iid}"
        payload = {"id": 5000 + iid, "iid": iid, "project_id": 7, "title": title,
                   "description": "", "source_branch": f"feature/{iid}", "target_branch": target_branch,
                   "state": "merged" if merged else "closed" if closed else "opened",
                   "labels": list(labels),
                   "author": {"username": "dev"}, "created_at": iso(created),
                   "updated_at": iso(merged or created),
                   "merged_at": iso(merged) if merged else None,
                   "closed_at": iso(closed) if closed else None,
                   "web_url": f"https://gitlab.example.com/shop/api/-/merge_requests/{iid}"}  # fmt: skip
        changes = [{"old_path": p, "new_path": p, "new_file": new_file, "renamed_file": False,
                    "deleted_file": False,
                    "diff": (diffs or {}).get(p, "@@ -0,0 +1,1 @@\n+x\n")} for p in paths]  # fmt: skip
        self.gitlab.append(RawObject("merge_request", key, payload))
        self.gitlab.append(RawObject("mr_change", key, {**payload, "changes": changes},
                                     parent_key=key))  # fmt: skip
        return f"shop/api!{iid}"

    def notes(self, iid: int, notes: list[tuple[datetime, str, bool, str]]) -> None:
        """Notes of merge request ``iid``: (when, author, system, body)."""
        key = f"7!{iid}"
        for n, (when, author, system, body) in enumerate(notes):
            self.gitlab.append(RawObject("mr_note", f"{key}!{n + 1}", {
                "id": iid * 1000 + n + 1, "body": body, "system": system,
                "author": {"username": author}, "created_at": iso(when),
            }, parent_key=key))  # fmt: skip

    def file(self, ref: str, path: str, content: str) -> None:
        """A repository file of project 7 at ``ref`` (``main`` is the default branch)."""
        blob = hashlib.sha1(content.encode()).hexdigest()
        self.gitlab.append(RawObject("file", f"7:{ref}:{path}", {
            "project_id": 7, "ref": ref, "path": path, "blob_id": blob,
            "size": len(content), "content": content,
        }, parent_key="7"))  # fmt: skip

    # -- tables -------------------------------------------------------------------------
    def build(self, as_of: datetime, policy: Policy | None = None) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(self.path))
        for source, objects in (("jira", self.jira), ("gitlab", self.gitlab),
                                ("confluence", self.confluence)):  # fmt: skip
            if objects:
                RawStore(con, source, "run-1").commit(Batch(objects=list(objects)))
        self.jira, self.gitlab, self.confluence = [], [], []
        for layer, table in build_order():
            build_table(con, layer, table, policy or Policy(), as_of)
        return con


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def gate(con: duckdb.DuckDBPyConnection, key: str, gate_id: str = "ui_gate") -> dict[str, Any]:
    cur = con.execute(
        "SELECT * FROM analysis.gate_evaluations WHERE subject_key = ? AND gate_id = ?",
        [key, gate_id],
    )
    names = [d[0] for d in cur.description]
    found = cur.fetchall()
    assert len(found) == 1, f"{gate_id} on {key}: {len(found)} rows"
    return dict(zip(names, found[0], strict=True))


def gaps(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    return set(rows(con, "SELECT rule_id, subject_key FROM analysis.findings WHERE kind = 'gap'"))
