"""The Jira emulator serving real captured payloads to the real ``jira`` client.

The datasets are built from the captures by ``tests/realdata_jira.py`` (Cloud: 38 issues
from 5 instances; Server: 25 issues from 2). Every expectation is computed from those
captures, so a page that drops, repeats or reshapes a real issue, history or link fails.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from jira import JIRA

from tests.conftest import sandbox_stats
from tests.realdata_jira import (
    CLOUD,
    SERVER,
    RealJiraDataset,
    build,
    histories,
    served_fields,
    served_histories,
)

pytestmark = pytest.mark.realdata

PAGE = 5


@pytest.fixture(scope="module")
def datasets(real_fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("real-jira")
    return {flavor: build(real_fixtures, root / flavor, flavor) for flavor in (CLOUD, SERVER)}


def _client(url: str, version: str = "2") -> JIRA:
    return JIRA(server=url, basic_auth=("u", "t"), options={"rest_api_version": version})


def _jql(dataset: RealJiraDataset) -> str:
    projects = ", ".join(f'"{p}"' for p in dataset.projects)
    return f"project in ({projects}) ORDER BY key"


def _requests(url: str, endpoint: str) -> int:
    return sandbox_stats(url)["by_endpoint"].get(endpoint, 0)


def _assert_issue_served(dataset: RealJiraDataset, raw: dict[str, Any], version: str) -> None:
    """One search result against its capture: fields, embedded changelog, identity."""
    stored = dataset.issues[raw["key"]]
    assert raw["id"] == str(stored["id"])
    assert raw["fields"] == served_fields(dataset, stored, version), raw["key"]
    changelog = raw["changelog"]
    expected = served_histories(dataset, stored)
    assert changelog["total"] == len(expected) <= 100  # no real issue has more
    got = changelog["histories"]
    if dataset.flavor == CLOUD:
        got = list(reversed(got))  # Cloud embeds newest first
    assert got == expected, raw["key"]


def test_conversion_keeps_every_captured_issue_once(datasets):
    """The datasets hold each captured issue once, as captured: nothing lost or merged."""
    cloud, server = datasets[CLOUD], datasets[SERVER]
    assert (cloud.gathered, len(cloud.issues), cloud.duplicates) == (39, 38, ["PROJ-123"])
    assert (server.gathered, len(server.issues), server.duplicates) == (25, 25, [])
    by_file = {}
    for dataset in (cloud, server):
        for key, name in dataset.origin.items():
            by_file.setdefault(name, []).append(key)
    assert len(by_file["devlake_cloud_agile_board_issues_expand_changelog.csv"]) == 33
    assert len(by_file["devlake_server_agile_board_issues_expand_changelog.csv"]) == 22
    assert sum(len(k) for n, k in by_file.items() if "perceval" in n) == 3
    # 33 DevLake Cloud issues carry 522 histories, 12 Server issues 18; no other has any
    assert (cloud.histories, server.histories) == (522, 18)
    # remote links: 6 distinct links on 5 dataset issues kept, 124 on 57 other issues dropped
    assert sum(len(v) for v in cloud.links.values()) == 6 and len(cloud.links) == 5
    assert (cloud.links_dropped, cloud.links_dropped_issues) == (124, 57)
    for dataset in (cloud, server):
        written = (dataset.root / "jira" / "issues.jsonl").read_text(encoding="utf-8")
        assert [json.loads(line) for line in written.splitlines()] == list(dataset.issues.values())


def test_server_search_all_pages_serves_every_issue_exactly(serve, datasets):
    """``search_issues(maxResults=False)``: every captured Server issue, unaltered, with
    its whole changelog oldest first, in one page of the client's batch size."""
    dataset = datasets[SERVER]
    emu = serve(dataset.root)
    client = _client(emu.url)
    assert client.deploymentType != "Cloud"
    found = client.search_issues(_jql(dataset), maxResults=False, expand="changelog")
    keys = [i.key for i in found]
    assert sorted(keys) == sorted(dataset.issues) and len(set(keys)) == len(keys)
    for issue in found:
        assert issue.raw["fields"] == dataset.issues[issue.key]["fields"]
        _assert_issue_served(dataset, issue.raw, "2")
    assert _requests(emu.url, "GET /rest/api/2/search") == 1


def test_server_startat_pages_of_five(serve, datasets):
    """startAt paging at 5 a page: 5 full pages, the same issues in the same order."""
    dataset = datasets[SERVER]
    emu = serve(dataset.root)
    client = _client(emu.url)
    everything = [i.key for i in client.search_issues(_jql(dataset), maxResults=False)]
    keys, start = [], 0
    while True:
        page = client.search_issues(
            _jql(dataset), startAt=start, maxResults=PAGE, expand="changelog"
        )
        keys.extend(i.key for i in page)
        for issue in page:
            _assert_issue_served(dataset, issue.raw, "2")
        start += len(page)
        if len(page) < PAGE or start >= page.total:
            break
    assert keys == everything
    assert _requests(emu.url, "GET /rest/api/2/search") == 1 + math.ceil(len(keys) / PAGE)


@pytest.mark.parametrize("version", ["2", "3"])
def test_cloud_enhanced_search_serves_every_issue_exactly(serve, datasets, version):
    """``enhanced_search_issues(maxResults=0)`` on v2 and v3: every captured Cloud issue,
    bodies in the version's form (ADF on v3), changelogs complete (none is truncated)."""
    dataset = datasets[CLOUD]
    emu = serve(dataset.root)
    client = _client(emu.url, version)
    assert client.deploymentType == "Cloud"
    found = client.enhanced_search_issues(_jql(dataset), maxResults=0, expand="changelog")
    keys = [i.key for i in found]
    assert sorted(keys) == sorted(dataset.issues) and len(set(keys)) == len(keys)
    for issue in found:
        _assert_issue_served(dataset, issue.raw, version)
    adf = next(i for i in found if i.key == "TESTKEY13-1").raw["fields"]["description"]
    if version == "3":
        assert adf == dataset.issues["TESTKEY13-1"]["fields"]["description"]
    else:
        assert adf == "Test issue"
    assert _requests(emu.url, f"GET /rest/api/{version}/search/jql") == 1


def test_cloud_token_pages_of_five(serve, datasets):
    """nextPageToken paging at 5 a page: 8 requests, the last without a token."""
    dataset = datasets[CLOUD]
    emu = serve(dataset.root)
    client = _client(emu.url, "3")
    everything = [i.key for i in client.enhanced_search_issues(_jql(dataset), maxResults=0)]
    keys, token, pages = [], None, 0
    while True:
        page = client.enhanced_search_issues(
            _jql(dataset), nextPageToken=token, maxResults=PAGE, expand="changelog"
        )
        pages += 1
        keys.extend(i.key for i in page)
        for issue in page:
            _assert_issue_served(dataset, issue.raw, "3")
        token = page.nextPageToken
        if token is None:
            break
    assert keys == everything
    assert pages == math.ceil(len(dataset.issues) / PAGE) == 8


def test_cloud_changelog_endpoint_pages_every_history(serve, datasets):
    """/issue/{key}/changelog at 5 a page returns each issue's captured histories, oldest
    first, and stops on ``isLast``: the path ingestion takes for truncated changelogs."""
    dataset = datasets[CLOUD]
    emu = serve(dataset.root)
    client = _client(emu.url, "3")
    calls = 0
    for key, stored in dataset.issues.items():
        values, start = [], 0
        while True:
            page = client._session.get(
                f"{emu.url}/rest/api/3/issue/{key}/changelog",
                params={"startAt": start, "maxResults": PAGE},
            ).json()
            calls += 1
            assert page["total"] == len(histories(stored))
            values.extend(page["values"])
            if page["isLast"]:
                break
            start += page["maxResults"]
        expected = served_histories(dataset, stored)
        assert values == expected, key
    assert calls == sum(
        max(1, math.ceil(len(histories(i)) / PAGE)) for i in dataset.issues.values()
    )


@pytest.mark.parametrize("flavor", [CLOUD, SERVER])
def test_remote_links_fields_and_statuses_as_captured(serve, datasets, flavor):
    """Remote links per issue (none where none was captured), /field and /status whole."""
    dataset = datasets[flavor]
    emu = serve(dataset.root)
    client = _client(emu.url)
    for key in dataset.issues:
        assert [link.raw for link in client.remote_links(key)] == dataset.links.get(key, []), key
    assert client.fields() == dataset.fields
    assert [s.raw for s in client.statuses()] == dataset.statuses


def test_cloud_items_without_field_id_are_served_without_one(serve, datasets):
    """Real Cloud changelog items for non-field events carry no ``fieldId``."""
    dataset = datasets[CLOUD]
    emu = serve(dataset.root)
    found = _client(emu.url, "3").issue("EE-1", expand="changelog")
    served = {h["id"]: h for h in found.raw["changelog"]["histories"]}
    for history in histories(dataset.issues["EE-1"]):
        assert served[history["id"]]["items"] == history["items"]
