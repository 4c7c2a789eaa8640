"""A generated dataset served by the emulator reads back through the real clients."""

from __future__ import annotations

from pathlib import Path

import gitlab
from atlassian import Confluence
from jira import JIRA

from tests.simulator.conftest import read_jsonl

PROJECTS_JQL = "project in (PAY, WEB, DATA, OPS, MOB, IAM) ORDER BY key"


def test_cloud_dataset_through_the_clients(serve, demo_cloud: Path) -> None:
    url = serve(demo_cloud).url
    jira = JIRA(server=url, basic_auth=("sandbox", "token"))
    issues = jira.enhanced_search_issues(PROJECTS_JQL, maxResults=0, expand="changelog")
    assert len(issues) == 150
    long = [i for i in issues if i.raw["changelog"]["total"] > 100]
    assert long and all(len(i.raw["changelog"]["histories"]) == 100 for i in long)

    gl = gitlab.Gitlab(url, private_token="token")
    projects = gl.projects.list(get_all=True)
    assert len(projects) == 19
    merge_requests = sum(
        len(gl.projects.get(p.id, lazy=True).mergerequests.list(get_all=True, state="all"))
        for p in projects
    )
    assert merge_requests == sum(1 for _ in read_jsonl(demo_cloud / "gitlab/merge_requests.jsonl"))

    wiki = Confluence(url=f"{url}/wiki", username="sandbox", password="token", cloud=False)
    pages = list(
        wiki.get_all_pages_from_space_as_generator(
            "PAY", start=0, limit=50, expand="body.storage,version,metadata.labels,ancestors"
        )
    )
    prds = [
        p for p in pages if "prd" in {lab["name"] for lab in p["metadata"]["labels"]["results"]}
    ]
    assert prds and all(len(p["ancestors"]) == 2 for p in prds)
    assert any("<p>Status: Approved</p>" in p["body"]["storage"]["value"] for p in prds)


def test_server_dataset_through_the_client(serve, demo_server: Path) -> None:
    jira = JIRA(server=serve(demo_server).url, basic_auth=("sandbox", "token"))
    issues = jira.search_issues(PROJECTS_JQL, maxResults=False, expand="changelog")
    assert len(issues) == 150
    assert all(i.raw["changelog"]["total"] == len(i.raw["changelog"]["histories"]) for i in issues)
    assert all(isinstance(i.raw["fields"]["description"], str | None) for i in issues)
