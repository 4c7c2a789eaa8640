"""Confluence REST v1 payloads: spaces, pages (storage body, version, labels, ancestors), versions.

Pages name issues either with the Jira macro or as plain text, and carry their approval
as a ``Status: ...`` line, so recognising artifacts requires the same parsing a real
space needs.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote_plus

from dagster_project.sandbox.simulator import text as tx
from dagster_project.sandbox.simulator.clock import utc_ts
from dagster_project.sandbox.simulator.model import Page
from dagster_project.sandbox.simulator.org import GRAFANA_BASE, Org, Person, Team

JIRA_SERVER_ID = "6f2d7c4e-2b1a-3c9d-8e7f-1a2b3c4d5e6f"


def label_id(name: str) -> str:
    return str(1_000_000 + int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 8_000_000)


def tiny(page_id: str) -> str:
    raw = int(page_id).to_bytes(8, "little").rstrip(b"\0")
    return "/x/" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


class ConfluenceRenderer:
    def __init__(self, org: Org):
        self.org = org
        self.cloud = org.flavor == "cloud"
        self.base = org.confluence_base
        self._users: dict[int, dict[str, Any]] = {}
        self._spaces: dict[str, dict[str, Any]] = {}

    def user(self, p: Person) -> dict[str, Any]:
        u = self._users.get(p.index)
        if u is not None:
            return u
        if self.cloud:
            u = {
                "type": "known",
                "accountId": p.account_id,
                "accountType": "atlassian",
                "email": "",
                "publicName": p.name,
                "profilePicture": {
                    "path": f"/wiki/aa-avatar/{p.account_id}",
                    "width": 48,
                    "height": 48,
                    "isDefault": False,
                },
                "displayName": p.name,
                "isExternalCollaborator": False,
                "isGuest": False,
                "locale": "en_US",
                "accountStatus": "active",
                "_expandable": {"operations": "", "personalSpace": ""},
                "_links": {"self": f"{self.base}/rest/api/user?accountId={p.account_id}"},
            }
        else:
            u = {
                "type": "known",
                "username": p.username,
                "userKey": p.confluence_key,
                "profilePicture": {
                    "path": "/images/icons/profilepics/default.svg",
                    "width": 48,
                    "height": 48,
                    "isDefault": True,
                },
                "displayName": p.name,
                "_links": {"self": f"{self.base}/rest/api/user?key={p.confluence_key}"},
                "_expandable": {"status": ""},
            }
        self._users[p.index] = u
        return u

    def space(self, team: Team, home_id: str) -> dict[str, Any]:
        s = self._spaces.get(team.key)
        if s is None:
            s = {"id": team.space_id, "key": team.key}
            if self.cloud:
                s["alias"] = team.key
            s |= {
                "name": team.name,
                "type": "global",
                "status": "current",
                "_expandable": {
                    "settings": f"/rest/api/space/{team.key}/settings",
                    "metadata": "",
                    "operations": "",
                    "lookAndFeel": f"/rest/api/settings/lookandfeel?spaceKey={team.key}",
                    "identifiers": "",
                    "permissions": "",
                    "icon": "",
                    "description": "",
                    "theme": f"/rest/api/space/{team.key}/theme",
                    "history": "",
                    "homepage": f"/rest/api/content/{home_id}",
                },
                "_links": {
                    "webui": f"/spaces/{team.key}" if self.cloud else f"/display/{team.key}",
                    "self": f"{self.base}/rest/api/space/{team.key}",
                },
            }
            self._spaces[team.key] = s
        return s

    def webui(self, page: Page) -> str:
        if self.cloud:
            return f"/spaces/{page.team.key}/pages/{page.id}/{quote_plus(page.title)}"
        return f"/display/{page.team.key}/{quote_plus(page.title)}"

    # -- bodies ----------------------------------------------------------------------------

    def mention(self, page: Page, key: str, prefix: str) -> str:
        if page.macro:
            mid = hashlib.md5(f"{page.id}:{key}".encode()).hexdigest()
            macro_id = f"{mid[:8]}-{mid[8:12]}-{mid[12:16]}-{mid[16:20]}-{mid[20:32]}"
            return (
                f'<p>{prefix}: <ac:structured-macro ac:name="jira" ac:schema-version="1" '
                f'ac:macro-id="{macro_id}"><ac:parameter ac:name="server">System JIRA</ac:parameter>'
                f'<ac:parameter ac:name="serverId">{JIRA_SERVER_ID}</ac:parameter>'
                f'<ac:parameter ac:name="key">{key}</ac:parameter></ac:structured-macro></p>'
            )
        return f"<p>{prefix}: {key}</p>"

    def body(self, page: Page, params: dict[str, Any]) -> str:
        f = page.feature
        kind = page.kind
        if kind == "home":
            return (
                f"<p>Welcome to the {escape(page.team.name)} space.</p>"
                "<h2>Where things live</h2><ul><li>Product: briefs and PRDs</li>"
                "<li>Engineering: specs, auth models, test plans, edge cases</li>"
                "<li>Operations: runbooks</li></ul>"
            )
        if kind == "section":
            return (
                f"<p>{escape(page.title)} documents of the {escape(page.team.name)} team.</p>"
                '<ac:structured-macro ac:name="children" ac:schema-version="2" />'
            )
        assert f is not None
        name = escape(f.name)
        status = f"<p>Status: {params['status']}</p>" if "status" in params else ""
        epic = f.epic.key
        if kind == "brief":
            parts = [status]
            if params.get("epic"):
                parts.append(self.mention(page, epic, "Epic"))
            parts.append(
                f"<h2>Problem</h2><p>Customers of the {escape(f.team.name)} domain ask for "
                f"{escape(f.topic)} they can run themselves.</p>"
                "<h2>Opportunity</h2><p>Fewer support tickets and faster onboarding.</p>"
                "<h2>Success metrics</h2><ul><li>Support tickets about "
                f"{escape(f.topic)} down 30%</li><li>Adoption by 40% of active accounts</li></ul>"
            )
            return "".join(parts)
        if kind == "prd":
            rows = [
                ["R1", f"List {f.topic} with filters", "Must"],
                ["R2", f"Create and update {f.topic}", "Must"],
                ["R3", "Audit every change", "Should"],
            ]
            if params.get("rev", 1) >= 2:
                rows.append(["R4", "Export as CSV", "Could"])
            if params.get("rev", 1) >= 3:
                rows.append(["R5", f"Bulk {f.topic} operations (up to 500 items)", "Must"])
            out = [
                status,
                self.mention(page, epic, "Epic"),
                f"<h2>Background</h2><p>See the product brief for {name}.</p>",
                tx.to_storage(
                    [
                        ("h", 2, "Goals"),
                        ("ul", [f"Self-service {f.topic}", "No manual steps for support"]),
                        ("h", 2, "Requirements"),
                        ("table", ["ID", "Requirement", "Priority"], rows),
                        ("h", 2, "Non-goals"),
                        ("ul", ["Mobile-specific layouts", "Historical migration"]),
                    ]
                ),
            ]
            if params.get("rev", 1) >= 3:
                out.append("<h2>Change log</h2><p>Added R5 after sprint review feedback.</p>")
            return "".join(out)
        if kind == "test-plan":
            out = [
                self.mention(page, epic, "Epic"),
                "<h2>Scope</h2>",
                f"<p>Functional and regression testing of {name}.</p>",
            ]
            if params.get("stories"):
                rows = "".join(
                    f"<tr><td>{s.key}</td><td>{escape(s.summary)}</td><td>Planned</td></tr>"
                    for s in f.stories
                    if s.key
                )
                out.append(
                    "<h2>Test cases</h2><table><tbody><tr><th>Story</th><th>Case</th><th>State</th></tr>"
                    f"{rows}</tbody></table>"
                )
            out.append("<h2>Environments</h2><ul><li>staging</li></ul>")
            return "".join(out)
        if kind == "runbook":
            service = f.spec.repo.path if f.spec else f.team.repos[0].path
            out = [
                f"<p>Service: {service}</p>",
                self.mention(page, epic, "Epic"),
                f"<h2>Overview</h2><p>Operating {name} in production.</p>",
            ]
            slug = f.slug
            if params.get("dashboards"):
                out.append(
                    f'<h2>Dashboards</h2><ul><li><a href="{GRAFANA_BASE}/d/{slug[:20]}/{slug}">'
                    f"{name} - latency and errors</a></li>"
                    f'<li><a href="{GRAFANA_BASE}/d/{slug[:20]}-sat/{slug}-saturation">{name} - saturation</a></li></ul>'
                )
            if params.get("alerts"):
                out.append(
                    "<h2>Alerts</h2><table><tbody><tr><th>Alert</th><th>Threshold</th><th>Action</th></tr>"
                    f"<tr><td>{slug}-error-rate</td><td>&gt; 2% for 5 min</td><td>Page on-call</td></tr>"
                    f"<tr><td>{slug}-p95-latency</td><td>&gt; 800 ms for 10 min</td><td>Ticket</td></tr>"
                    "</tbody></table>"
                )
            out.append(
                "<h2>Escalation</h2><p>Primary on-call, then the team lead.</p>"
                "<h2>Rollback</h2><p>Redeploy the previous tag from the pipeline.</p>"
            )
            return "".join(out)
        if kind == "auth-model":
            return "".join(
                [
                    status,
                    self.mention(page, epic, "Epic"),
                    "<h2>Actors</h2><ul><li>Partner service (client credentials)</li><li>End user (OIDC)</li></ul>",
                    tx.to_storage(
                        [
                            ("h", 2, "Scopes"),
                            (
                                "table",
                                ["Scope", "Grants"],
                                [
                                    [f"{f.slug}:read", f"Read {f.topic}"],
                                    [f"{f.slug}:write", f"Create and update {f.topic}"],
                                ],
                            ),
                        ]
                    ),
                    "<h2>Tokens</h2><p>Access tokens live 15 minutes; refresh tokens 30 days, rotated on use.</p>",
                ]
            )
        if kind == "api-spec":
            spec = f.spec
            assert spec is not None
            code = (
                f'<ac:structured-macro ac:name="code" ac:schema-version="1"><ac:parameter ac:name="language">'
                f"yaml</ac:parameter><ac:plain-text-body><![CDATA[{spec.approved_text}]]>"
                "</ac:plain-text-body></ac:structured-macro>"
            )
            return "".join(
                [
                    status,
                    self.mention(page, epic, "Epic"),
                    f"<p>Contract: {spec.repo.path}, file {spec.path}, tag {spec.tag}</p>",
                    "<h2>Specification</h2>",
                    code,
                ]
            )
        if kind == "edge-case-matrix":
            story = page.story
            assert story is not None
            rows = page.rows
            return "".join(
                [
                    self.mention(page, story.key, "Story"),
                    tx.to_storage(
                        [("h", 2, "Edge cases"), ("table", ["Case", "Expected behaviour"], rows)]
                    ),
                ]
            )
        raise ValueError(kind)

    # -- objects ---------------------------------------------------------------------------

    def page(self, page: Page, home_id: str) -> dict[str, Any]:
        at, who, params = page.versions[-1]
        number = len(page.versions)
        pid = page.id
        labels = [
            {"prefix": "global", "name": n, "id": label_id(n), "label": n} for n in page.labels
        ]
        obj = {
            "id": pid,
            "type": "page",
            "status": "current",
            "title": page.title,
            "space": self.space(page.team, home_id),
            "version": self.version(page, number, at, who),
            "ancestors": [
                {
                    "id": a.id,
                    "type": "page",
                    "status": "current",
                    "title": a.title,
                    "_links": {
                        "webui": self.webui(a),
                        "self": f"{self.base}/rest/api/content/{a.id}",
                    },
                    "_expandable": {
                        "container": f"/rest/api/space/{a.team.key}",
                        "body": "",
                        "version": "",
                        "ancestors": "",
                        "space": f"/rest/api/space/{a.team.key}",
                    },
                }
                for a in page.ancestors()
            ],
            "macroRenderedOutput": {},
            "body": {
                "storage": {
                    "value": self.body(page, params),
                    "representation": "storage",
                    "embeddedContent": [],
                    "_expandable": {"content": f"/rest/api/content/{pid}"},
                },
                "_expandable": {
                    "editor": "",
                    "atlas_doc_format": "",
                    "view": "",
                    "export_view": "",
                    "styled_view": "",
                    "dynamic": "",
                    "editor2": "",
                    "anonymous_export_view": "",
                },
            },
            "metadata": {
                "labels": {
                    "results": labels,
                    "start": 0,
                    "limit": 200,
                    "size": len(labels),
                    "_links": {"self": f"{self.base}/rest/api/content/{pid}/label"},
                },
                "_expandable": {
                    "currentuser": "",
                    "comments": "",
                    "simple": "",
                    "properties": "",
                    "frontend": "",
                    "likes": "",
                },
            },
            "extensions": {"position": int(pid) % 997},
            "_expandable": {
                "childTypes": "",
                "container": f"/rest/api/space/{page.team.key}",
                "schedulePublishInfo": "",
                "operations": "",
                "schedulePublishDate": "",
                "children": f"/rest/api/content/{pid}/child",
                "restrictions": f"/rest/api/content/{pid}/restriction/byOperation",
                "history": f"/rest/api/content/{pid}/history",
                "descendants": f"/rest/api/content/{pid}/descendant",
            },
            "_links": {
                "webui": self.webui(page),
                "edit": f"/pages/resumedraft.action?draftId={pid}",
                "tinyui": tiny(pid),
                "self": f"{self.base}/rest/api/content/{pid}",
            },
        }
        return obj

    def version(self, page: Page, number: int, at: datetime, who: Person) -> dict[str, Any]:
        return {
            "by": self.user(who),
            "when": utc_ts(at),
            "friendlyWhen": at.strftime("%b %d, %Y"),
            "message": "",
            "number": number,
            "minorEdit": False,
            "_expandable": {"collaborators": "", "content": f"/rest/api/content/{page.id}"},
            "_links": {"self": f"{self.base}/rest/api/content/{page.id}/version/{number}"},
        }

    def versions(self, page: Page) -> list[dict[str, Any]]:
        return [
            {
                "page_id": page.id,
                "number": i + 1,
                "when": utc_ts(at),
                "by": self.user(who),
                "body": self.body(page, params),
            }
            for i, (at, who, params) in enumerate(page.versions)
        ]
