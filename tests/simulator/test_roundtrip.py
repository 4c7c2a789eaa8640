"""Generated organisations served by the emulator round-trip through the real clients,
and `advance` changes exactly what the APIs' own incremental filters return.

Every scale runs here (large: 20,000 issues, about 40 s a flavour);
`benchmarks/roundtrip_scale.py` times the same check (results in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import gitlab
import pytest
from atlassian import Confluence
from jira import JIRA

from dagster_project.sandbox.simulator import advance, generate
from tests.conftest import sandbox_stats

UNBOUNDED = 'created >= "1970/01/01 00:00" ORDER BY key'


def file_keys(root: Path) -> dict[str, set[str]]:
    def jsonl(rel: str) -> list[dict]:
        return [json.loads(line) for line in (root / rel).read_text().splitlines() if line]

    return {
        "issue": {i["key"] for i in jsonl("jira/issues.jsonl")},
        "merge_request": {
            f"{m['project_id']}!{m['iid']}" for m in jsonl("gitlab/merge_requests.jsonl")
        },
        "commit": {f"{c['project_id']}:{c['id']}" for c in jsonl("gitlab/commits.jsonl")},
        "page": {str(p["id"]) for p in jsonl("confluence/pages.jsonl")},
    }


def client_keys(url: str, flavor: str, jql: str = UNBOUNDED, since: str | None = None):
    """Every key the three real clients list, the way a user of each library would."""
    options = {"rest_api_version": "3"} if flavor == "cloud" else {}
    jira = JIRA(server=url, basic_auth=("sandbox", "t"), options=options)
    if flavor == "cloud":
        issues = jira.enhanced_search_issues(jql, maxResults=0, fields="key")
    else:
        issues = jira.search_issues(jql, maxResults=False, fields="key")

    gl = gitlab.Gitlab(url, private_token="t")
    filters = {"updated_after": since} if since else {}
    mrs = gl.mergerequests.list(iterator=True, scope="all", state="all", per_page=100, **filters)
    commits = set()
    if since is None:
        for project in gl.projects.list(iterator=True, per_page=100):
            listed = gl.projects.get(project.id, lazy=True).commits.list(
                iterator=True, per_page=100, query_parameters={"all": True}
            )
            commits |= {f"{project.id}:{c.id}" for c in listed}

    wiki = Confluence(url=f"{url}/wiki", username="sandbox", password="t", cloud=False)
    cql = "type = page" + (f' AND lastmodified >= "{since_cql(since)}"' if since else "")
    pages, start = set(), 0
    while True:
        found = wiki.get(
            "rest/api/content/search", params={"cql": cql, "start": start, "limit": 100}
        )
        pages |= {r["id"] for r in found["results"]}
        start += found["size"]
        if "next" not in found["_links"]:
            break
    return {
        "issue": {i.key for i in issues},
        "merge_request": {f"{m.project_id}!{m.iid}" for m in mrs},
        "commit": commits,
        "page": pages,
    }


def since_cql(iso: str) -> str:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%Y/%m/%d %H:%M")


@pytest.mark.parametrize(
    ("scale", "flavor"),
    [(scale, flavor) for scale in ("demo", "medium", "large") for flavor in ("cloud", "server")],
)
def test_generated_dataset_round_trips_exactly(serve, tmp_path, scale, flavor):
    root = tmp_path / "org"
    generate(root, seed=5, scale=scale, flavor=flavor)
    emulator = serve(root)
    assert client_keys(emulator.url, flavor) == file_keys(root)
    assert sandbox_stats(emulator.url)["requests"]["jira"] > 1  # paged, not one answer


def test_advance_changes_what_the_incremental_filters_return(serve, tmp_path):
    root = tmp_path / "org"
    generate(root, seed=5, scale="demo", flavor="cloud")
    before = {
        rel: set((root / rel).read_text().splitlines())
        for rel in (
            "jira/issues.jsonl",
            "gitlab/merge_requests.jsonl",
            "confluence/pages.jsonl",
            "gitlab/commits.jsonl",
        )
    }
    old_as_of = json.loads((root / "manifest.json").read_text())["as_of"]
    advance(root, days=2, seed=4)

    changed = {}
    for rel, old_lines in before.items():
        new_lines = set((root / rel).read_text().splitlines())
        changed[rel] = [json.loads(line) for line in new_lines - old_lines]
    touched = {
        "issue": {i["key"] for i in changed["jira/issues.jsonl"]},
        "merge_request": {
            f"{m['project_id']}!{m['iid']}" for m in changed["gitlab/merge_requests.jsonl"]
        },
        "page": {str(p["id"]) for p in changed["confluence/pages.jsonl"]},
    }
    assert touched["issue"] and touched["page"]

    emulator = serve(root)
    when = datetime.fromisoformat(old_as_of.replace("Z", "+00:00"))
    jql = f'updated > "{when.strftime("%Y/%m/%d %H:%M")}" ORDER BY key'
    seen = client_keys(emulator.url, "cloud", jql=jql, since=old_as_of)
    assert seen["issue"] == touched["issue"]
    assert seen["merge_request"] == touched["merge_request"]
    assert seen["page"] == touched["page"]
