"""Format-v1 Jira datasets built, inside a test's tmp dir, from the captured real payloads.

Every issue payload found under ``<real fixtures>/jira/`` (see its PROVENANCE.md) goes
into one of two datasets, by the product that answered it, because users (``accountId``
vs ``name``/``key``) and bodies differ per flavour:

* **cloud** (``jira_flavor: cloud``): DevLake's agile-board capture of merico.atlassian.net
  (33 issues with embedded changelogs, boards 8 and 93), Airbyte's v3 search issue (ADF
  description), atlassian-python-api's v2 issue and its epic-page issue, go-jira's
  sprint-page issue, and mcp-atlassian's mock issue (a full issue, though MOCK grade).
* **server** (``jira_flavor: server``): DevLake's Jira Server 8 capture (22 issues with
  changelogs) and perceval's two ``/rest/api/2/search`` pages (3 issues; GPL-3.0 data,
  read from the shared folder, never copied into the project).

Reference data, per dataset:

* ``fields.json``: cloud takes the Public Jira Dataset's JiraEcosystem instance (the only
  real Cloud ``/field`` capture; none of its custom ids occurs in the issues, so it can
  mislabel nothing); server takes perceval's ``/field`` (the jira.fiware.org instance of
  its issues) plus DevLake's two Server custom fields, the first definition of an id
  winning (``customfield_10400`` is perceval's ``issueFunction``, not DevLake's
  ``gitBranch``). The other Public Jira Dataset instances match no issue's instance and
  would clash on custom field ids.
* ``statuses.json``: a status id means something only on its own instance. Cloud starts
  from DevLake's ``/status`` of merico.atlassian.net (the instance of 33 of its issues);
  server has no ``/status`` of its issues' instances. Each dataset then gets the status
  object embedded in each issue (``fields.status`` is the ``/status`` representation)
  whose id is not listed yet, and server finally go-jira's ``/status`` (an anonymised
  Server) minus the ids already taken (1 and 10000 clash with the issues' own).
* ``remotelinks.jsonl``: DevLake's ``/issue/{id}/remotelink`` capture of merico, grouped
  per issue id (from the request URL), kept for issues of that instance present in the
  dataset (the Server dataset has none); the rest are dropped and counted
  (``links_dropped``).

Adjustments (no payload is edited; each line is one captured object):

* Duplicates by key keep the latest ``fields.updated``, the first gathered on a tie
  (mcp-atlassian's PROJ-123 appears twice with the same ``updated``: the full issue wins
  over the trimmed JQL-result copy).
* Remote links collected twice (DevLake ran in June and July 2022; 20 links differ
  between the runs, e.g. an anonymised URL in June) keep the latest collection of each
  link id, in first-seen order.
* Issues captured without ``expand=changelog`` (Airbyte, atlassian-python-api, go-jira,
  mcp-atlassian, perceval) keep having no ``changelog`` key: their real history is not
  known, and the emulator serves an absent changelog as an empty one. An empty served
  changelog for them is expected, not evidence that they never changed.
* Keys the real endpoint does not put on an issue are left in place (Airbyte's top-level
  ``projectId``/``projectKey``/``created``/``updated``, mcp-atlassian's ``names``); the
  emulator serves only ``expand``/``id``/``self``/``key``/``fields``/``changelog``. The
  agile endpoints' own fields (``sprint``, ``closedSprints``, ``epic``, ``flagged``) stay.

Real quirks kept on purpose: go-jira's 2015 Cloud issue has ``name``/``key`` users (Cloud
serves them with a derived ``accountId``); five merico issues embed status 10068 with
category ``new`` while merico's ``/status`` says ``done``; BAR-111 belongs to project
MIRCOLL (anonymised upstream).

Not used: DevLake's ``/rest/api/3/issue/{id}/changelog`` capture (279 histories of issues
13383, 13954 and 13491, whose issue payloads were not captured), so no real issue has more
than 100 histories and none is truncated by Cloud's search embedding.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dagster_project.lib import richtext

CLOUD = "cloud"
SERVER = "server"

CLOUD_ISSUES = "devlake_cloud_agile_board_issues_expand_changelog.csv"
SERVER_ISSUES = "devlake_server_agile_board_issues_expand_changelog.csv"
REMOTE_LINKS = "devlake_cloud_v2_issue_remotelink.csv"
REMOTE_LINK_URL = re.compile(r"/rest/api/\d+/issue/(\d+)/remotelink")


@dataclass
class RealJiraDataset:
    """A dataset written from real payloads, with what the tests compare against."""

    root: Path
    flavor: str
    issues: dict[str, dict[str, Any]]  # key -> payload, as written to issues.jsonl
    origin: dict[str, str]  # key -> fixture file it came from
    links: dict[str, list[dict[str, Any]]]  # key -> remote links (only keys that have any)
    fields: list[dict[str, Any]]
    statuses: list[dict[str, Any]]
    gathered: int  # issue payloads read, duplicates included
    duplicates: list[str] = field(default_factory=list)  # keys seen more than once
    links_dropped: int = 0  # distinct captured links of issues not in the dataset
    links_dropped_issues: int = 0

    @property
    def projects(self) -> list[str]:
        return sorted({i["fields"]["project"]["key"] for i in self.issues.values()})

    @property
    def histories(self) -> int:
        return sum(len(histories(i)) for i in self.issues.values())


def histories(issue: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored histories of an issue, oldest first (ties by numeric id)."""
    found = (issue.get("changelog") or {}).get("histories") or []
    return sorted(found, key=lambda h: (jira_ts(h["created"]), int(h["id"])))


def jira_ts(value: str) -> datetime:
    """Jira's ``2021-03-28T16:06:08.713+0800`` timestamps."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def devlake_rows(path: Path) -> Iterator[dict[str, str]]:
    """Rows of a DevLake raw table; ``data`` is one element of the response, as JSON."""
    csv.field_size_limit(1 << 30)
    with path.open(newline="", encoding="utf-8") as fh:
        yield from csv.DictReader(fh)


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def gather(real: Path, flavor: str) -> list[tuple[str, dict[str, Any]]]:
    """Every captured issue payload of one flavour, as (fixture file, payload)."""
    jira = real / "jira"
    found: list[tuple[str, dict[str, Any]]] = []

    def add(name: str, payloads: list[dict[str, Any]]) -> None:
        found.extend((name, p) for p in payloads)

    if flavor == CLOUD:
        add(CLOUD_ISSUES, [json.loads(r["data"]) for r in devlake_rows(jira / CLOUD_ISSUES)])
        for name in (
            "airbyte_cloud_v3_search_issues.json",
            "gojira_cloud_anon_agile_sprint_issues_page.json",
            "atlassianpythonapi_cloud_anon_agile_epic_issues_page.json",
        ):
            add(name, _json(jira / name)["issues"])
        name = "atlassianpythonapi_cloud_anon_v2_issue.json"
        add(name, [_json(jira / name)])
        name = "mcpatlassian_cloud_sanitized_v2_mocks.json"
        mocks = _json(jira / name)
        add(name, [mocks["MOCK_JIRA_ISSUE_RESPONSE"], *mocks["MOCK_JIRA_JQL_RESPONSE"]["issues"]])
    elif flavor == SERVER:
        add(SERVER_ISSUES, [json.loads(r["data"]) for r in devlake_rows(jira / SERVER_ISSUES)])
        for page in (1, 2):
            name = f"gpl3_perceval/perceval_server_jira_issues_page_{page}.json"
            add(name, _json(jira / name)["issues"])
    else:
        raise ValueError(f"flavor must be {CLOUD!r} or {SERVER!r}, not {flavor!r}")
    return found


def _dedupe(
    gathered: list[tuple[str, dict[str, Any]]],
) -> tuple[dict[str, dict[str, Any]], dict[str, str], list[str]]:
    issues: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    duplicates: list[str] = []
    for name, payload in gathered:
        key = payload["key"]
        kept = issues.get(key)
        if kept is not None:
            duplicates.append(key)
            if jira_ts(payload["fields"]["updated"]) <= jira_ts(kept["fields"]["updated"]):
                continue
        issues[key] = payload
        origin[key] = name
    return issues, origin, duplicates


def _fields(real: Path, flavor: str) -> list[dict[str, Any]]:
    jira = real / "jira"
    if flavor == CLOUD:
        candidates = _json(jira / "publicjiradataset_v2_field_6instances.json")["JiraEcosystem"]
    else:
        candidates = _json(jira / "gpl3_perceval/perceval_server_jira_fields.json") + [
            json.loads(r["data"]) for r in devlake_rows(jira / "devlake_server_v2_field.csv")
        ]
    out: dict[str, dict[str, Any]] = {}
    for fdef in candidates:
        out.setdefault(fdef["id"], fdef)
    return list(out.values())


def _statuses(real: Path, flavor: str, issues: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    jira = real / "jira"
    listed: list[dict[str, Any]] = []
    if flavor == CLOUD:
        listed = [json.loads(r["data"]) for r in devlake_rows(jira / "devlake_cloud_v2_status.csv")]
    embedded = [i["fields"]["status"] for i in issues.values()]
    extra = _json(jira / "gojira_server_anon_v2_status.json") if flavor == SERVER else []
    out: dict[str, dict[str, Any]] = {}
    for status in [*listed, *embedded, *extra]:
        out.setdefault(str(status["id"]), status)
    return list(out.values())


def _remote_links(
    real: Path, issues: dict[str, dict[str, Any]]
) -> tuple[dict[str, list[dict[str, Any]]], int, int]:
    """Links per dataset key; plus how many distinct links and issues were dropped."""
    path = real / "jira" / REMOTE_LINKS
    by_issue: dict[tuple[str, str], dict[Any, tuple[str, dict[str, Any]]]] = {}
    for row in devlake_rows(path):
        url = urlsplit(row["url"])
        match = REMOTE_LINK_URL.search(url.path)
        if match is None:
            raise ValueError(f"{path}: unexpected remote link URL {row['url']}")
        links = by_issue.setdefault((url.netloc, match.group(1)), {})
        link = json.loads(row["data"])
        seen = links.get(link["id"])
        if seen is None or row["created_at"] >= seen[0]:
            links[link["id"]] = (row["created_at"], link)
    key_of = {(urlsplit(i["self"]).netloc, str(i["id"])): k for k, i in issues.items()}
    kept: dict[str, list[dict[str, Any]]] = {}
    dropped = dropped_issues = 0
    for issue, links in by_issue.items():
        key = key_of.get(issue)
        if key is None:
            dropped += len(links)
            dropped_issues += 1
        else:
            kept[key] = [link for _, link in links.values()]
    return kept, dropped, dropped_issues


def build(real: Path, root: Path, flavor: str) -> RealJiraDataset:
    """Write the ``flavor`` dataset of the real payloads under ``root``."""
    gathered = gather(real, flavor)
    issues, origin, duplicates = _dedupe(gathered)
    links, dropped, dropped_issues = _remote_links(real, issues) if flavor == CLOUD else ({}, 0, 0)
    fields = _fields(real, flavor)
    statuses = _statuses(real, flavor, issues)
    as_of = max(jira_ts(i["fields"]["updated"]) for i in issues.values())

    (root / "jira").mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": 1,
        "name": f"real-jira-{flavor}",
        "as_of": as_of.isoformat(),
        "jira_flavor": flavor,
    }
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (root / "jira" / "fields.json").write_text(json.dumps(fields), encoding="utf-8")
    (root / "jira" / "statuses.json").write_text(json.dumps(statuses), encoding="utf-8")
    with (root / "jira" / "issues.jsonl").open("w", encoding="utf-8") as fh:
        for payload in issues.values():
            fh.write(json.dumps(payload, ensure_ascii=False) + "\n")
    with (root / "jira" / "remotelinks.jsonl").open("w", encoding="utf-8") as fh:
        for key, found in links.items():
            fh.write(json.dumps({"issue_key": key, "links": found}, ensure_ascii=False) + "\n")
    return RealJiraDataset(
        root=root,
        flavor=flavor,
        issues=issues,
        origin=origin,
        links=links,
        fields=fields,
        statuses=statuses,
        gathered=len(gathered),
        duplicates=duplicates,
        links_dropped=dropped,
        links_dropped_issues=dropped_issues,
    )


# -- what the emulator answers for a stored issue ---------------------------------------------
RICH_SYSTEM_FIELDS = ("description", "environment")


class FlavourUser:
    """Equal to the user object a flavour serves for a user stored in the other shape.

    Cloud derives an ``accountId`` for a ``name``/``key`` user (and drops those), Server
    derives ``name``/``key`` from an ``accountId``; every other key is served unchanged.
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, user: dict[str, Any], cloud: bool):
        self.user = user
        self.ident = "accountId" if cloud else "name"
        self.gone = ("name", "key") if cloud else ("accountId", "accountType")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, dict) or not other.get(self.ident):
            return False
        kept = {k: v for k, v in self.user.items() if k not in ("self", *self.gone)}
        return not set(self.gone) & set(other) and all(other.get(k) == v for k, v in kept.items())

    def __repr__(self) -> str:
        return f"FlavourUser({self.user.get('displayName')!r} with {self.ident})"


def _users(value: Any, cloud: bool) -> Any:
    if isinstance(value, list):
        return [_users(item, cloud) for item in value]
    if not isinstance(value, dict):
        return value
    if "displayName" in value and ("accountId" in value or "name" in value):
        foreign = "accountId" not in value if cloud else "name" not in value
        return FlavourUser(value, cloud) if foreign else value
    return {k: _users(item, cloud) for k, item in value.items()}


def _rich(value: Any, version: str) -> Any:
    return richtext.to_adf(value) if version == "3" else richtext.to_wiki(value)


def served_fields(dataset: RealJiraDataset, payload: dict[str, Any], version: str) -> dict:
    """A stored issue's ``fields`` as the dataset's flavour serves them on API ``version``.

    Rich text (description, environment, textarea custom fields, comment bodies, worklog
    comments) takes the version's form (ADF on v3, wiki markup on v2) and users the
    flavour's shape; every other value is the captured one.
    """
    cloud = dataset.flavor == CLOUD
    rich = set(RICH_SYSTEM_FIELDS) | {
        f["id"]
        for f in dataset.fields
        if str((f.get("schema") or {}).get("custom", "")).endswith(":textarea")
    }
    out: dict[str, Any] = {}
    for fid, value in payload["fields"].items():
        if fid in rich:
            out[fid] = _rich(value, version)
            continue
        value = _users(value, cloud)
        if fid == "comment" and isinstance(value, dict):
            value = {
                **value,
                "comments": [
                    {**c, "body": _rich(c["body"], version)} if "body" in c else c
                    for c in value.get("comments") or []
                ],
            }
        if fid == "worklog" and isinstance(value, dict):
            value = {
                **value,
                "worklogs": [
                    {**w, "comment": _rich(w["comment"], version)} if "comment" in w else w
                    for w in value.get("worklogs") or []
                ],
            }
        out[fid] = value
    return out


def served_histories(dataset: RealJiraDataset, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """A stored issue's histories, oldest first, with users in the flavour's shape."""
    return [_users(h, dataset.flavor == CLOUD) for h in histories(payload)]


def status_items(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``status`` change item of an issue's stored changelog."""
    return [i for h in histories(payload) for i in h["items"] if i.get("field") == "status"]
