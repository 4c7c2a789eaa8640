"""The Jira emulator driven by the real ``jira`` client over HTTP, as Server and as Cloud.

Expectations are computed from the dataset files themselves, so the tests hold for any
hand-made dataset and fail if the emulator drops, repeats, reorders or reshapes data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from jira import JIRA, JIRAError
from jira.resources import Issue

from dagster_project.sandbox.dataset import DatasetWriter
from dagster_project.sandbox.emulator.faults import FaultPlan
from tests.conftest import HANDMADE, sandbox_stats

ALL = "project in (PAY, WEB) ORDER BY key"


# -- the dataset, read independently of the emulator ---------------------------------------


def _stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)


def _load_issues() -> dict[str, dict]:
    lines = (HANDMADE / "jira" / "issues.jsonl").read_text(encoding="utf-8").splitlines()
    return {i["key"]: i for i in (json.loads(line) for line in lines if line.strip())}


ISSUES = _load_issues()


def _key_order(key: str) -> tuple[str, int]:
    project, _, number = key.partition("-")
    return project, int(number)


KEYS = sorted(ISSUES, key=_key_order)
LONG = next(k for k, i in ISSUES.items() if len(i["changelog"]["histories"]) > 100)


def _history_ids_oldest_first(key: str) -> list[str]:
    histories = ISSUES[key]["changelog"]["histories"]
    ordered = sorted(histories, key=lambda h: (_stamp(h["created"]), int(h["id"])))
    return [h["id"] for h in ordered]


def _client(url: str, version: str = "2", **kwargs) -> JIRA:
    options = {"rest_api_version": version} if version != "2" else None
    return JIRA(server=url, basic_auth=("u", "t"), options=options, **kwargs)


def _requests(url: str, endpoint: str) -> int:
    return sandbox_stats(url)["by_endpoint"].get(endpoint, 0)


def test_handmade_dataset_is_consistent():
    """The hand-made org obeys what real Jira guarantees, so analysis tests can trust it."""
    fields = json.loads((HANDMADE / "jira" / "fields.json").read_text())
    statuses = {s["id"]: s for s in json.loads((HANDMADE / "jira" / "statuses.json").read_text())}
    field_ids = {f["id"] for f in fields}
    assert all("clauseNames" in f for f in fields)  # else the client refetches /field
    assert {s["statusCategory"]["key"] for s in statuses.values()} == {
        "new",
        "indeterminate",
        "done",
    }
    links: dict[str, set[tuple[str, str]]] = {}
    for key, issue in ISSUES.items():
        assert set(issue["fields"]) <= field_ids, key
        status = issue["fields"]["status"]
        assert statuses[status["id"]] == status, key
        moves = sorted(
            (
                h
                for h in issue["changelog"]["histories"]
                if any(i["field"] == "status" for i in h["items"])
            ),
            key=lambda h: _stamp(h["created"]),
        )
        if moves:
            last = next(i for i in moves[-1]["items"] if i["field"] == "status")
            assert last["to"] == status["id"], key
        events = [_stamp(h["created"]) for h in issue["changelog"]["histories"]]
        assert max(events, default=_created(key)) <= _updated(key), key
        for link in issue["fields"]["issuelinks"]:
            other = (link.get("outwardIssue") or link["inwardIssue"])["key"]
            links.setdefault(link["id"], set()).add((key, other))
    assert all(len(pair) == 2 for pair in links.values())  # every link shows on both issues


# -- Server / Data Center --------------------------------------------------------------------


def test_server_identity_and_no_v3(serve):
    """The client reads versionNumbers and deploymentType; Server has no /rest/api/3."""
    emu = serve()
    client = _client(emu.url)
    assert client.deploymentType == "Server"
    assert client._version == tuple(client.server_info()["versionNumbers"])
    assert client.myself()["timeZone"] == "UTC"
    assert {p.key for p in client.projects()} == {k.split("-")[0] for k in KEYS}
    assert requests.get(f"{emu.url}/rest/api/3/serverInfo", timeout=5).status_code == 404


def test_server_search_all_pages_returns_every_issue_with_full_changelog(serve):
    """maxResults=False pages by the echoed size: 25 issues at 10 a page are 3 requests."""
    emu = serve()
    client = _client(emu.url, default_batch_sizes={Issue: 10})
    found = client.search_issues(ALL, maxResults=False, expand="changelog")

    assert [i.key for i in found] == KEYS
    assert found.total == len(KEYS)
    assert _requests(emu.url, "GET /rest/api/2/search") == 3
    for issue in found:
        changelog = issue.raw["changelog"]
        ids = [h["id"] for h in changelog["histories"]]
        # embedded whole and oldest first, although the dataset stores some shuffled
        assert ids == _history_ids_oldest_first(issue.key)
        assert changelog["total"] == len(ids)
    assert len(next(i for i in found if i.key == LONG).raw["changelog"]["histories"]) > 100
    # the field cache is loaded once because the dataset's fields carry clauseNames
    client.search_issues("project = WEB", maxResults=5)
    assert _requests(emu.url, "GET /rest/api/2/field") == 1


def test_server_startat_loop_never_repeats_or_drops_on_ties(serve):
    """Sorting on a field with ties (project) still gives a total order: the id tie-break."""
    emu = serve()
    client = _client(emu.url)
    seen: list[str] = []
    start = 0
    while True:
        page = client.search_issues(
            "project in (PAY, WEB) ORDER BY project ASC",
            startAt=start,
            maxResults=4,
            fields="summary",
        )
        assert page.maxResults == 4 and page.total == len(KEYS)
        seen.extend(i.key for i in page)
        start += 4
        if start >= page.total:
            break
    assert len(seen) == len(set(seen)) == len(KEYS)
    assert [k.split("-")[0] for k in seen] == sorted(k.split("-")[0] for k in KEYS)


def _big_dataset(root: Path, count: int) -> Path:
    with DatasetWriter(root) as writer:
        writer.write_json(
            "manifest.json",
            {
                "format": 1,
                "name": "big",
                "as_of": "2026-03-31T00:00:00+00:00",
                "jira_flavor": "server",
            },
        )
        writer.write_json(
            "jira/fields.json",
            [{"id": "summary", "name": "Summary", "navigable": True, "clauseNames": ["summary"]}],
        )
        for n in range(1, count + 1):
            stamp = f"2026-01-{1 + n % 28:02d}T10:00:00.000+0000"
            writer.append(
                "jira/issues.jsonl",
                {
                    "id": str(30000 + n),
                    "key": f"BIG-{n}",
                    "fields": {
                        "project": {"id": "1", "key": "BIG", "name": "Big"},
                        "summary": f"issue {n}",
                        "created": stamp,
                        "updated": stamp,
                    },
                    "changelog": {"startAt": 0, "maxResults": 0, "total": 0, "histories": []},
                },
            )
    return root


def test_server_caps_page_size_at_100_and_client_pages_by_the_echo(serve, tmp_path):
    """Asked for 500 a page, Server answers 100 and says so; the client follows the echo."""
    emu = serve(_big_dataset(tmp_path / "big", 250))
    raw = requests.get(
        f"{emu.url}/rest/api/2/search",
        params={"jql": "project = BIG", "maxResults": 1000},
        auth=("u", "t"),
        timeout=5,
    ).json()
    assert raw["maxResults"] == 100 and len(raw["issues"]) == 100 and raw["total"] == 250

    client = _client(emu.url, default_batch_sizes={Issue: 500})
    found = client.search_issues("project = BIG ORDER BY key", maxResults=False)
    assert [i.key for i in found] == [f"BIG-{n}" for n in range(1, 251)]
    assert _requests(emu.url, "GET /rest/api/2/search") == 4  # the raw call + 3 pages


def test_server_fields_parameter_forms(serve):
    """Repeated, comma-joined, *all, *navigable, empty, and names resolved to field ids."""
    emu = serve()
    url = f"{emu.url}/rest/api/2/search"

    def search(fields) -> dict:
        params = [("jql", "key = WEB-2"), ("validateQuery", "True")]
        params += [("fields", f) for f in fields]
        response = requests.get(url, params=params, auth=("u", "t"), timeout=5)
        assert response.status_code == 200, response.text
        return response.json()["issues"][0]

    assert set(search(["summary", "status"])["fields"]) == {"summary", "status"}
    assert set(search(["summary,status"])["fields"]) == {"summary", "status"}
    assert set(search(["Acceptance Criteria", "Epic Link"])["fields"]) == {
        "customfield_10200",
        "customfield_10100",
    }
    everything = search(["*all"])["fields"]
    assert set(everything) == set(ISSUES["WEB-2"]["fields"])
    navigable = search(["*navigable"])["fields"]
    assert "comment" not in navigable and "worklog" not in navigable and "summary" in navigable
    assert set(search(["*all", "-comment"])["fields"]) == set(everything) - {"comment"}
    assert set(search([""])) == {"expand", "id", "self", "key"}

    # the client translates clause names to ids and adds the friendly alias back
    client = _client(emu.url)
    issue = client.search_issues("key = WEB-3", fields=["summary", "Acceptance Criteria"])[0]
    assert (
        issue.raw["fields"]["Acceptance Criteria"] == ISSUES["WEB-3"]["fields"]["customfield_10200"]
    )


def _updated(key: str) -> datetime:
    return _stamp(ISSUES[key]["fields"]["updated"])


def _created(key: str) -> datetime:
    return _stamp(ISSUES[key]["fields"]["created"])


_AS_OF = datetime.fromisoformat(json.loads((HANDMADE / "manifest.json").read_text())["as_of"])


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


JQL_CASES = [
    ("project = WEB ORDER BY key", [k for k in KEYS if k.startswith("WEB-")]),
    ('project in (pay, "Web Storefront") ORDER BY key', KEYS),
    ("key in (PAY-2, WEB-5) ORDER BY key", ["PAY-2", "WEB-5"]),
    ("issuekey in (WEB-5, 10001) ORDER BY key ASC", ["PAY-1", "WEB-5"]),
    (
        'updated >= "2026/03/01 00:00" ORDER BY key',
        [k for k in KEYS if _updated(k) >= _utc("2026-03-01T00:00")],
    ),
    (
        'updated >= "2026-03-01" AND project = PAY ORDER BY key',
        [k for k in KEYS if k.startswith("PAY") and _updated(k) >= _utc("2026-03-01T00:00")],
    ),
    (
        # PAY-12 was last updated at 18:01+0100, that is 17:01 in the user's zone (UTC)
        'updated >= "2026/01/29 17:00" AND updated < "2026/01/29 17:30"',
        [k for k in KEYS if _utc("2026-01-29T17:00") <= _updated(k) < _utc("2026-01-29T17:30")],
    ),
    (
        'created >= "2026-02-01 00:00" ORDER BY created DESC',
        sorted(
            (k for k in KEYS if _created(k) >= _utc("2026-02-01T00:00")),
            key=_created,
            reverse=True,
        ),
    ),
    ("project = PAY ORDER BY updated ASC", sorted((k for k in KEYS if k < "Q"), key=_updated)),
    (
        # periods count back from the dataset's as_of, the emulator's clock
        "updated >= -14d ORDER BY key",
        [k for k in KEYS if _updated(k) >= _AS_OF - timedelta(days=14)],
    ),
    (
        "project = WEB AND NOT key in (WEB-1, WEB-2) ORDER BY key",
        [k for k in KEYS if k.startswith("WEB-")][2:],
    ),
    ("key = PAY-1 OR (project = WEB AND key = WEB-4) ORDER BY key", ["PAY-1", "WEB-4"]),
]


@pytest.mark.parametrize(("query", "expected"), JQL_CASES, ids=[q for q, _ in JQL_CASES])
def test_jql_subset_filters_and_orders(serve, query, expected):
    """Each supported clause, dates read as UTC (the user's zone), ORDER BY honoured."""
    emu = serve()
    found = _client(emu.url).search_issues(query, maxResults=False, fields="summary")
    assert [i.key for i in found] == expected
    assert expected, "a case that matches nothing proves nothing"


def test_jql_errors_answer_400_with_jira_messages(serve):
    """What the emulator cannot or must not answer is a 400 the client raises, never a guess."""
    emu = serve()
    client = _client(emu.url)
    cases = {
        "labels = ui": "subset of JQL without the field 'labels'",
        "colour = red": "Field 'colour' does not exist or you do not have permission to view it.",
        'updated >= "yesterday"': "Date value 'yesterday' for field 'updated' is invalid",
        "project = NOPE": "The value 'NOPE' does not exist for the field 'project'.",
        "key in (PAY-999)": "An issue with key 'PAY-999' does not exist",
        'project = "PAY': "has not been completed",
        "project = PAY ORDER key": "Expecting 'by'",
    }
    for query, message in cases.items():
        with pytest.raises(JIRAError) as err:
            client.search_issues(query)
        assert err.value.status_code == 400
        assert message in err.value.text, query
    lax = requests.get(
        f"{emu.url}/rest/api/2/search",
        params={"jql": "project = NOPE", "validateQuery": "warn"},
        timeout=5,
    ).json()
    assert lax["total"] == 0 and "NOPE" in lax["warningMessages"][0]


def test_server_issue_remote_links_and_post_search(serve):
    """/issue by key or id, remote links by key, POST /search with the client's body."""
    emu = serve()
    client = _client(emu.url)
    issue = client.issue("PAY-2", expand="changelog")
    assert [h["id"] for h in issue.raw["changelog"]["histories"]] == _history_ids_oldest_first(
        "PAY-2"
    )
    assert issue.raw["fields"]["description"] == ISSUES["PAY-2"]["fields"]["description"]
    assert client.issue(ISSUES["PAY-2"]["id"]).key == "PAY-2"
    with pytest.raises(JIRAError) as err:
        client.issue("PAY-999")
    assert err.value.status_code == 404

    links = client.remote_links("PAY-1")
    assert {link.object.url for link in links} == {
        link["object"]["url"]
        for line in (HANDMADE / "jira" / "remotelinks.jsonl").read_text().splitlines()
        for link in json.loads(line)["links"]
        if json.loads(line)["issue_key"] == "PAY-1"
    }
    assert client.remote_links("WEB-7") == []

    posted = client.search_issues("project = PAY ORDER BY key", maxResults=3, use_post=True)
    assert [i.key for i in posted] == ["PAY-1", "PAY-2", "PAY-3"]
    assert _requests(emu.url, "POST /rest/api/2/search") == 1


def test_server_has_no_cloud_endpoints(serve):
    """Server/DC has neither /search/jql nor the paged changelog: ingestion must not rely on them."""
    emu = serve()
    for path in ("/rest/api/2/search/jql?jql=project=PAY", f"/rest/api/2/issue/{LONG}/changelog"):
        response = requests.get(emu.url + path, auth=("u", "t"), timeout=5)
        assert response.status_code == 404, path


# -- Cloud ---------------------------------------------------------------------------------------


def test_cloud_enhanced_search_returns_everything_with_truncated_changelog(serve):
    """v3 all pages: every key; >100 histories embedded as the newest 100 with the true total."""
    emu = serve(jira_flavor="cloud")
    client = _client(emu.url, "3")
    assert client.deploymentType == "Cloud"
    found = client.enhanced_search_issues(ALL, maxResults=0, expand="changelog")
    assert [i.key for i in found] == KEYS
    assert found.nextPageToken is None

    long_issue = next(i for i in found if i.key == LONG)
    changelog = long_issue.raw["changelog"]
    every = _history_ids_oldest_first(LONG)
    assert changelog["total"] == len(every) > 100
    assert changelog["maxResults"] == 100
    assert [h["id"] for h in changelog["histories"]] == list(reversed(every[-100:]))

    description = long_issue.raw["fields"]["description"]
    assert isinstance(description, dict) and description["type"] == "doc"
    for issue in found:
        for role in ("assignee", "reporter", "creator"):
            user = issue.raw["fields"][role]
            if user:
                assert user["accountId"] and "name" not in user and "key" not in user
        for history in issue.raw["changelog"]["histories"]:
            assert "accountId" in history["author"] and "name" not in history["author"]


def test_cloud_changelog_endpoint_pages_every_history(serve):
    """The documented workaround: page /issue/{key}/changelog through the client's session."""
    emu = serve(jira_flavor="cloud")
    client = _client(emu.url, "3")
    values, start, calls = [], 0, 0
    while True:
        page = client._session.get(
            f"{emu.url}/rest/api/3/issue/{LONG}/changelog",
            params={"startAt": start, "maxResults": 100},
        ).json()
        calls += 1
        assert page["total"] == len(_history_ids_oldest_first(LONG))
        values.extend(page["values"])
        if page["isLast"]:
            assert "nextPage" not in page
            break
        start += page["maxResults"]
    assert [h["id"] for h in values] == _history_ids_oldest_first(LONG)
    assert calls == 2
    # assignee changes carry accountIds on Cloud, the same ids the user objects carry
    assignee = client.issue(LONG, fields="assignee").raw["fields"]["assignee"]
    assert assignee["displayName"] == ISSUES[LONG]["fields"]["assignee"]["displayName"]
    moves = [item for h in values for item in h["items"] if item["field"] == "assignee"]
    assert moves and all(item["fieldId"] == "assignee" for item in moves)
    assert moves[-1]["to"] == assignee["accountId"]


def test_cloud_token_paging_omits_token_on_last_page(serve):
    """25 issues at 10 a page: exactly 3 requests, the last one without nextPageToken."""
    emu = serve(jira_flavor="cloud")
    client = _client(emu.url, "3")
    keys, token = [], None
    while True:
        page = client.enhanced_search_issues(
            ALL, nextPageToken=token, maxResults=10, fields="summary"
        )
        keys.extend(i.key for i in page)
        token = page.nextPageToken
        if token is None:
            break
    assert keys == KEYS
    assert _requests(emu.url, "GET /rest/api/3/search/jql") == 3
    last = requests.get(
        f"{emu.url}/rest/api/3/search/jql",
        params={"jql": ALL, "maxResults": 20, "nextPageToken": _first_token(emu.url, 20)},
        timeout=5,
    ).json()
    assert last["isLast"] is True and "nextPageToken" not in last and "total" not in last


def _first_token(url: str, size: int) -> str:
    first = requests.get(
        f"{url}/rest/api/3/search/jql", params={"jql": ALL, "maxResults": size}, timeout=5
    ).json()
    assert first["isLast"] is False
    return first["nextPageToken"]


def test_cloud_rich_text_follows_the_api_version(serve):
    """v3 answers ADF, v2 wiki markup: description, environment, comments, textarea fields."""
    emu = serve(jira_flavor="cloud")
    v3 = _client(emu.url, "3").issue("PAY-10").raw["fields"]
    v2 = _client(emu.url, "2").issue("PAY-10").raw["fields"]
    stored = ISSUES["PAY-10"]["fields"]

    assert v2["description"] == stored["description"]
    assert v2["environment"] == stored["environment"]
    assert isinstance(v3["description"], dict) and v3["description"]["type"] == "doc"
    assert any(node["type"] == "codeBlock" for node in v3["description"]["content"])
    assert isinstance(v3["environment"], dict)
    assert all(isinstance(c["body"], dict) for c in v3["comment"]["comments"])
    assert [c["body"] for c in v2["comment"]["comments"]] == [
        c["body"] for c in stored["comment"]["comments"]
    ]
    assert isinstance(v3["worklog"]["worklogs"][0]["comment"], dict)
    paged = _client(emu.url, "3").comments("PAY-10")
    assert [c.raw["body"] for c in paged] == [c["body"] for c in v3["comment"]["comments"]]

    ac_v3 = _client(emu.url, "3").issue("WEB-3").raw["fields"]["customfield_10200"]
    assert ac_v3["content"][0]["type"] == "bulletList"
    ac_v2 = _client(emu.url, "2").issue("WEB-3").raw["fields"]["customfield_10200"]
    assert ac_v2 == ISSUES["WEB-3"]["fields"]["customfield_10200"]


def test_cloud_refuses_what_real_cloud_refuses(serve):
    """410 on the removed /search, 400 on unbounded JQL, a bad page size or a foreign token."""
    emu = serve(jira_flavor="cloud")
    client = _client(emu.url, "3")
    for v in ("2", "3"):
        with pytest.raises(JIRAError) as err:
            client._session.get(f"{emu.url}/rest/api/{v}/search", params={"jql": "project = PAY"})
        assert err.value.status_code == 410
        assert "migrate to the /rest/api/3/search/jql API" in err.value.text
    with pytest.raises(JIRAError) as err:
        client.search_issues("project = PAY", startAt=5)  # refused by the client itself
    with pytest.raises(JIRAError) as err:
        client.enhanced_search_issues("ORDER BY key")
    assert err.value.status_code == 400 and "Unbounded JQL" in err.value.text
    url = f"{emu.url}/rest/api/3/search/jql"
    for size in (0, -1, 5001):
        response = requests.get(url, params={"jql": "project = PAY", "maxResults": size}, timeout=5)
        assert response.status_code == 400
        assert "between 1 and 5,000" in response.json()["errorMessages"][0]
    token = _first_token(emu.url, 5)
    response = requests.get(url, params={"jql": "project = WEB", "nextPageToken": token}, timeout=5)
    assert response.status_code == 400


def test_cloud_post_search_and_default_fields(serve):
    """POST with the client's body (properties null, reconcileIssues []); default fields = id."""
    emu = serve(jira_flavor="cloud")
    client = _client(emu.url, "2")
    posted = client.enhanced_search_issues(
        "project = PAY ORDER BY key", maxResults=3, fields=["summary"], use_post=True
    )
    assert [i.key for i in posted] == ["PAY-1", "PAY-2", "PAY-3"]
    assert all(set(i.raw["fields"]) == {"summary"} for i in posted)
    assert _requests(emu.url, "POST /rest/api/2/search/jql") == 1

    url = f"{emu.url}/rest/api/3/search/jql"
    bare = requests.get(url, params={"jql": "project = PAY"}, timeout=5).json()
    assert bare["issues"] and all(set(i) == {"id"} for i in bare["issues"])
    empty = requests.get(url, params={"jql": "project = PAY", "fields": ""}, timeout=5).json()
    assert all(set(i) == {"id"} for i in empty["issues"])
    unknown = requests.post(url, json={"jql": "project = PAY", "startAt": 0}, timeout=5)
    assert unknown.status_code == 400

    assert client.approximate_issue_count("project = WEB") == sum(k.startswith("WEB") for k in KEYS)


def test_cloud_serves_all_of_v3(serve):
    """With rest_api_version 3 every call goes to /rest/api/3, including serverInfo and field."""
    emu = serve(jira_flavor="cloud")
    client = _client(emu.url, "3")
    assert client.server_info()["deploymentType"] == "Cloud"
    assert {f["id"] for f in client.fields()} >= {"customfield_10100", "customfield_10200"}
    assert {s.name for s in client.statuses()} >= {"In Development", "Code Review"}
    me = client.myself()
    assert me["accountId"] and "name" not in me and me["timeZone"] == "UTC"
    assert client.issue("WEB-2").fields.summary == ISSUES["WEB-2"]["fields"]["summary"]
    assert len(client.remote_links("WEB-2")) == 2
    endpoints = sandbox_stats(emu.url)["by_endpoint"]
    assert endpoints and all("/rest/api/3/" in e for e in endpoints)


# -- auth and faults ---------------------------------------------------------------------------


def test_token_required(serve):
    """A wrong token is a 401 the client raises; the right one works."""
    emu = serve(require_token="t")
    with pytest.raises(JIRAError) as err:
        JIRA(server=emu.url, basic_auth=("u", "wrong"), max_retries=0)
    assert err.value.status_code == 401
    assert _client(emu.url).search_issues("key = PAY-1")[0].key == "PAY-1"


def _fast_client(url: str, max_retries: int) -> JIRA:
    """No request at construction (faults hit every request), short waits between retries."""
    client = JIRA(
        server=url, basic_auth=("u", "t"), get_server_info=False, max_retries=max_retries, timeout=3
    )
    client._session.max_retry_delay = 0.2  # the client honours Retry-After, capped by this
    return client


def test_429_is_retried_then_raised(serve):
    emu = serve(faults="429=1.0,seed=1,retry_after=1")
    with pytest.raises(JIRAError) as err:
        _fast_client(emu.url, max_retries=2).server_info()
    assert err.value.status_code == 429
    assert _requests(emu.url, "GET /rest/api/2/serverInfo") == 3


def _seed_for(status: int) -> int:
    return next(
        seed
        for seed in range(100)
        if FaultPlan.parse(f"5xx=1.0,seed={seed}").draw() == ("5xx", status)
    )


@pytest.mark.parametrize(("status", "attempts"), [(503, 2), (502, 1)])
def test_5xx_retried_only_with_retry_after(serve, status, attempts):
    """The emulator's 503 carries Retry-After and is retried; its HTML 502 is raised at once."""
    emu = serve(faults=f"5xx=1.0,burst=5,seed={_seed_for(status)}")
    with pytest.raises(JIRAError) as err:
        _fast_client(emu.url, max_retries=1).server_info()
    assert err.value.status_code == status
    assert _requests(emu.url, "GET /rest/api/2/serverInfo") == attempts


def test_reset_and_truncation_reach_the_caller(serve):
    """A reset is a ConnectionError; a body cut short is a ChunkedEncodingError."""
    reset = serve(faults="reset=1.0")
    with pytest.raises(requests.exceptions.ConnectionError):
        _fast_client(reset.url, max_retries=0).server_info()
    cut = serve(faults="truncate=1.0")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, ValueError)):
        _fast_client(cut.url, max_retries=0).server_info()
