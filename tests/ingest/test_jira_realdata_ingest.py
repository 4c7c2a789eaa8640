"""Driftgate's Jira ingestion of real captured payloads, through its Dagster assets.

Each flavour's dataset (``tests/realdata_jira.py``) is served by the emulator and
ingested once per module into a temporary DuckDB with a policy of 5 issues a page, so
the product pages through real data the way it would through a real instance. A real
server would accept every one of these payloads, so nothing may be quarantined.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.sandbox.emulator import server
from tests.conftest import sandbox_stats
from tests.ingest.harness import materialize, table
from tests.realdata_jira import (
    CLOUD,
    SERVER,
    RealJiraDataset,
    build,
    histories,
    served_fields,
    status_items,
)

pytestmark = pytest.mark.realdata

PAGE = 5
DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "dagster_project/policy/default.yaml"
SELECTION = [
    'key:"raw/jira"',
    'key:"chain/work_items"',
    'key:"chain/status_transitions"',
    'key:"chain/remote_links"',
    'key:"analysis/ingest_completeness"',
]


@dataclass
class Ingested:
    dataset: RealJiraDataset
    db: Path
    result: dg.ExecuteInProcessResult
    requests: dict[str, int]


@pytest.fixture(scope="module", params=[CLOUD, SERVER])
def ingested(request, real_fixtures, tmp_path_factory) -> Ingested:
    flavor = request.param
    root = tmp_path_factory.mktemp(f"ingest-{flavor}")
    dataset = build(real_fixtures, root / "dataset", flavor)
    policy = root / "policy.yaml"
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert "page_size: 100" in text
    policy.write_text(text.replace("page_size: 100", f"page_size: {PAGE}"), encoding="utf-8")
    db = root / "driftgate.duckdb"
    emulator = server.start(str(dataset.root))
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DRIFTGATE_POLICY", str(policy))
            result = materialize(emulator.url, db, SELECTION)
        requests = sandbox_stats(emulator.url)["by_endpoint"]
    finally:
        emulator.stop()
    return Ingested(dataset, db, result, requests)


def _stored(db: Path, object_type: str) -> dict[str, object]:
    rows = table(
        db,
        "SELECT object_key, payload FROM raw.latest "
        "WHERE source = 'jira' AND object_type = ? AND NOT deleted",
        [object_type],
    )
    return {key: json.loads(payload) for key, payload in rows}


def test_every_issue_stored_once_as_served_with_its_changelog(ingested):
    """One raw issue per distinct captured issue, fields as the API served them and
    every captured history, after paging 5 issues at a time."""
    dataset = ingested.dataset
    stored = _stored(ingested.db, "issue")
    assert sorted(stored) == sorted(dataset.issues)
    version = "3" if dataset.flavor == CLOUD else "2"
    for key, payload in stored.items():
        capture = dataset.issues[key]
        assert payload["fields"] == served_fields(dataset, capture, version), key
        ids = [h["id"] for h in payload["changelog"]["histories"]]
        assert sorted(ids) == sorted(h["id"] for h in histories(capture)), key
    search = "GET /rest/api/3/search/jql" if dataset.flavor == CLOUD else "GET /rest/api/2/search"
    assert ingested.requests[search] == math.ceil(len(dataset.issues) / PAGE)


def test_nothing_quarantined_and_completeness_balances(ingested):
    """Real payloads are valid: an empty quarantine, and per object type expected ==
    stored with nothing missing; the raw and completeness checks pass."""
    dataset = ingested.dataset
    assert table(ingested.db, "SELECT object_key, reason FROM raw.quarantine") == []
    rows = table(
        ingested.db,
        "SELECT object_type, expected, stored, quarantined, missing "
        "FROM analysis.ingest_completeness WHERE source = 'jira'",
    )
    issues = len(dataset.issues)
    assert sorted(rows) == sorted(
        [
            ("issue", issues, issues, 0, 0),
            ("remotelink", issues, issues, 0, 0),
            ("field", len(dataset.fields), len(dataset.fields), 0, 0),
            ("status", len(dataset.statuses), len(dataset.statuses), 0, 0),
        ]
    )
    checks = {e.check_name: e.passed for e in ingested.result.get_asset_check_evaluations()}
    assert checks == {
        "listed_what_source_reported": True,
        "quarantine_not_growing": True,
        "nothing_missing": True,
        "every_raw_object_typed": True,  # every real issue has its chain.work_items row
        "freshness_check": True,  # raw/jira was just materialised
    }


def test_remote_links_fields_and_statuses_complete(ingested):
    """Every issue's remote links (an empty list where none was captured), each link a
    chain row, and the whole /field and /status listings."""
    dataset = ingested.dataset
    links = _stored(ingested.db, "remotelink")
    assert links == {
        key: {"issue_key": key, "links": dataset.links.get(key, [])} for key in dataset.issues
    }
    chain = table(ingested.db, "SELECT issue_key, link_id, url FROM chain.remote_links")
    expected = [
        (key, str(link["id"]), link["object"]["url"])
        for key, found in dataset.links.items()
        for link in found
    ]
    assert sorted(chain) == sorted(expected)
    assert len(chain) == (6 if dataset.flavor == CLOUD else 0)
    assert _stored(ingested.db, "field") == {f["id"]: f for f in dataset.fields}
    assert _stored(ingested.db, "status") == {s["id"]: s for s in dataset.statuses}


def test_work_items_one_per_issue_with_status_category(ingested):
    """chain.work_items: one row per issue, its status category taken from /status."""
    dataset = ingested.dataset
    categories = {s["id"]: s["statusCategory"]["key"] for s in dataset.statuses}
    rows = table(ingested.db, "SELECT issue_key, status_id, status_category FROM chain.work_items")
    assert sorted(r[0] for r in rows) == sorted(dataset.issues)
    for key, status_id, category in rows:
        assert status_id == dataset.issues[key]["fields"]["status"]["id"]
        assert category is not None and category == categories[status_id], key


def test_status_transitions_one_per_status_change(ingested):
    """chain.status_transitions: one row per captured status item, for exactly the
    issues with status history; ends whose status /status lists carry its category."""
    dataset = ingested.dataset
    categories = {s["id"]: s["statusCategory"]["key"] for s in dataset.statuses}
    expected = sorted(
        (key, item["from"], item["to"])
        for key, issue in dataset.issues.items()
        for item in status_items(issue)
    )
    rows = table(
        ingested.db,
        "SELECT issue_key, from_status_id, to_status_id, from_category, to_category "
        "FROM chain.status_transitions",
    )
    assert sorted(r[:3] for r in rows) == expected
    if dataset.flavor == CLOUD:
        assert len({r[0] for r in rows}) == 30 and len(rows) == 165
    for _key, from_id, to_id, from_category, to_category in rows:
        if from_id in categories:
            assert from_category == categories[from_id]
        if to_id in categories:
            assert to_category == categories[to_id]
