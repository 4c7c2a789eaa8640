"""Confluence ingestion end to end: the product's assets and resources, the real
atlassian-python-api client, the emulator over HTTP, a temporary DuckDB file.

Expectations are read from the dataset files directly, never from the product's own
parsing. Request counts come from the emulator's ``/_sandbox/stats``.
"""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import requests

from dagster_project.lib.chainsql import build_table
from dagster_project.lib.connections import Connection
from dagster_project.lib.policy import Policy
from dagster_project.lib.rawstore import Batch, RawObject, RawStore
from dagster_project.lib.retry import SourceError
from dagster_project.lib.sources.confluence_source import (
    ConfluenceSource,
    check_page,
    check_version,
    current_version,
    ingest_confluence,
)
from dagster_project.lib.staging import copy_database
from dagster_project.sandbox.emulator import server
from tests.conftest import HANDMADE, sandbox_stats
from tests.ingest.harness import materialize, staged, table
from tests.realdata_confluence import write_dataset

ASSETS = (
    "raw/confluence",
    "chain/page_fields",
    "chain/pages",
    "chain/page_versions",
    "chain/page_labels",
)
SELECTION = " or ".join(f'key:"{k}"' for k in (*ASSETS, "chain/page_mentions"))
CHAIN = {
    "pages": "page_id",
    "page_versions": "page_id, number",
    "page_labels": "page_id, label, prefix",
    "page_mentions": "page_id, issue_key, found_by",
}


# -- the dataset, read without the product ----------------------------------------------------


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def dataset_pages(root: Path) -> dict[str, dict[str, Any]]:
    pages = jsonl(root / "confluence" / "pages.jsonl")
    return {p["id"]: p for p in pages if p["type"] == "page"}


def dataset_versions(root: Path) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for v in jsonl(root / "confluence" / "page_versions.jsonl"):
        out.setdefault(v["page_id"], []).append(v["number"])
    return {k: sorted(v) for k, v in out.items()}


def labels_of(page: dict[str, Any]) -> list[str]:
    return sorted(lab["name"] for lab in page["metadata"]["labels"]["results"])


# -- running and observing -------------------------------------------------------------------


@contextmanager
def emulator(dataset: Path, **options: Any) -> Iterator[server.RunningEmulator]:
    running = server.start(str(dataset), **options)
    try:
        yield running
    finally:
        running.stop()


def run(url: str, db: Path, **options: Any) -> dg.ExecuteInProcessResult:
    return materialize(url, db, SELECTION, **options)


def confluence_requests(url: str) -> Counter[str]:
    by_endpoint = sandbox_stats(url)["by_endpoint"]
    prefix = "GET /wiki/rest/api/"
    return Counter({k[len(prefix) :]: n for k, n in by_endpoint.items() if k.startswith(prefix)})


def chain_tables(db: Path) -> dict[str, list[tuple]]:
    """Every chain table of Confluence, without raw_id (which numbers rows per database)
    and web_url (which carries the address the server answered on)."""
    out = {}
    for name, order in CHAIN.items():
        columns = [
            c
            for (c,) in table(
                db,
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                "'chain' AND table_name = ? ORDER BY ordinal_position",
                [name],
            )
            if c not in ("raw_id", "web_url")
        ]
        sql = f"SELECT {', '.join(columns)} FROM chain.{name} ORDER BY {order}"  # noqa: S608
        out[name] = table(db, sql)
    return out


def raw_keys(db: Path) -> set[tuple[str, str, bool]]:
    return set(
        table(
            db,
            "SELECT object_type, object_key, deleted FROM raw.latest WHERE source = 'confluence'",
        )
    )


def quarantine(db: Path) -> list[tuple]:
    return table(
        db,
        "SELECT object_type, object_key, reason FROM raw.quarantine "
        "WHERE source = 'confluence' ORDER BY 1, 2",
    )


def latest_listing(db: Path, object_type: str) -> tuple[int, int, bool]:
    return table(
        db,
        "SELECT reported, listed, full_listing FROM raw.listings WHERE source = 'confluence' "
        "AND object_type = ? ORDER BY listed_at DESC LIMIT 1",
        [object_type],
    )[0]


@pytest.fixture(scope="module")
def handmade_full(tmp_path_factory) -> Iterator[tuple[str, Path, Counter[str]]]:
    """One full ingest of the hand-made dataset: (emulator url, database, requests)."""
    db = tmp_path_factory.mktemp("full") / "driftgate.duckdb"
    with emulator(HANDMADE) as running:
        run(running.url, db)
        yield running.url, db, confluence_requests(running.url)


# -- full, unchanged, incremental -------------------------------------------------------------


def test_full_ingest_stores_exactly_the_dataset(handmade_full):
    """Every page (not blog post) with its labels and its whole history, nothing
    quarantined, and the listings record what the source reported."""
    _url, db, _requests = handmade_full
    pages, versions = dataset_pages(HANDMADE), dataset_versions(HANDMADE)

    stored = {
        r[0]: r[1:] for r in table(db, "SELECT page_id, labels, version_number FROM chain.pages")
    }
    assert set(stored) == set(pages) and len(pages) == 30
    for page_id, page in pages.items():
        assert stored[page_id] == (labels_of(page), page["version"]["number"])
    history: dict[str, list[int]] = {}
    for page_id, number in table(db, "SELECT page_id, number FROM chain.page_versions"):
        history.setdefault(page_id, []).append(number)
    assert history == {p: versions[p] for p in pages}
    assert all(versions[p] == list(range(1, pages[p]["version"]["number"] + 1)) for p in pages)
    label_rows = table(db, "SELECT page_id, label FROM chain.page_labels")
    assert sorted(label_rows) == sorted((p, lab) for p in pages for lab in labels_of(pages[p]))
    assert quarantine(db) == []
    spaces = "SELECT object_key FROM raw.latest WHERE object_type = 'space' ORDER BY object_key"
    assert table(db, spaces) == [
        ("DOC",),
        ("OPS",),
    ]
    assert latest_listing(db, "page") == (30, 30, True)
    assert latest_listing(db, "page_version") == (60, 60, True)


def test_chain_tables_read_the_bodies(handmade_full):
    """Space from either the expanded space or its link, authors (plain names in the
    dataset are served as user objects), approval per version and since when, and
    mentions as whole words with the first version that carried them."""
    _url, db, _requests = handmade_full
    row = table(
        db,
        "SELECT space_key, space_name, parent_id, approved, first_approved_version, "
        "author, body_text FROM chain.pages WHERE page_id = '1015832'",
    )[0]
    assert row[:6] == ("OPS", "Operations", "1015831", False, None, "Tomás Ortega")
    assert row[6].splitlines()[:3] == [
        "Service behind PAY-1; ledger integration PAY-8.",
        "Dashboards",
        "Payments overview",
    ]
    assert table(
        db,
        "SELECT number, approved, author FROM chain.page_versions WHERE page_id = '1015821' "
        "ORDER BY number",
    ) == [
        (1, False, "Marta Rossi"),
        (2, False, "Deepak Iyer"),
        (3, False, "Marta Rossi"),
        (4, True, "Marta Rossi"),
        (5, True, "Marta Rossi"),
    ]
    # Approved in version 2, back "In review" in version 3: not approved now.
    assert table(
        db, "SELECT approved, first_approved_version FROM chain.pages WHERE page_id = '1015813'"
    ) == [(False, 2)]
    mentions = table(
        db,
        "SELECT page_id, issue_key, found_by, first_version FROM chain.page_mentions "
        "WHERE page_id IN ('1015804', '1015806') ORDER BY 1, 2",
    )
    assert mentions == [
        ("1015804", "PAY-1", "jira_macro", 1),
        ("1015804", "PAY-2", "jira_macro", 2),
        ("1015804", "PAY-3", "jira_macro", 2),
        ("1015804", "PAY-4", "text", 2),
        ("1015806", "PAY-12", "text", 1),  # and no PAY-1 inside PAY-12
    ]


def test_a_second_run_with_no_changes_is_three_requests_and_writes_nothing(handmade_full, tmp_path):
    """Spaces (one page), the user's time zone, one incremental search: no history is
    read again and no raw row is added."""
    url, full_db, _requests = handmade_full
    db = copy_database(full_db, tmp_path / "again.duckdb")
    rows_before = table(db, "SELECT count(*) FROM raw.objects")[0][0]
    requests.delete(f"{url}/_sandbox/stats", timeout=10)

    run(url, db)

    # "space" twice: the reachability check (limit=1), then the space listing
    assert confluence_requests(url) == Counter({"space": 2, "user/current": 1, "content/search": 1})
    # Only the page edited in the last 12 h 10 min (zone unknown + overlap) is listed.
    assert latest_listing(db, "page") == (1, 1, False)
    assert table(db, "SELECT count(*) FROM raw.objects")[0][0] == rows_before
    assert chain_tables(db) == chain_tables(full_db)


class ReadsRecorded(RawStore):
    """The store, recording what it was asked of stored pages and versions."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[str, str, tuple[str, ...]]] = []

    def stored_keys(self, object_type: str, parent_key: str | None = None) -> set[str]:
        self.asked.append(("stored_keys", object_type, ()))
        return super().stored_keys(object_type, parent_key)

    def kept_or_stored_parts(self, object_type: str, keys: Any, *args: Any) -> dict[str, Any]:
        keys = list(keys)
        self.asked.append(("parts", object_type, tuple(keys)))
        return super().kept_or_stored_parts(object_type, keys, *args)

    def stored_children(self, object_type: str, parents: Any) -> dict[str, set[str]]:
        parents = list(parents)
        self.asked.append(("children", object_type, tuple(parents)))
        return super().stored_children(object_type, parents)


def test_a_night_reads_what_is_stored_only_of_the_pages_it_lists(handmade_full, tmp_path):
    """What is stored of a page (its version number, its versions) is read only to
    compare a listed page with it: a night that lists nothing reads nothing, the overlap
    window's re-listed page costs one look-up of its number and none of its versions,
    and the version listing is recorded as the night before, also where the pages were
    stored without their version number beside them (by an earlier version)."""
    url, full_db, _requests = handmade_full
    db = copy_database(full_db, tmp_path / "quiet.duckdb")
    before = latest_listing(db, "page_version")
    source = ConfluenceSource(Connection(url=f"{url}/wiki", user="u", token="t"), Policy())
    with duckdb.connect(str(staged(db, "confluence"))) as con:
        con.execute(
            "DELETE FROM raw.parts WHERE raw_id IN "
            "(SELECT raw_id FROM raw.current WHERE object_type = 'page')"
        )
        store = ReadsRecorded(con, "confluence", "overlap")
        result = ingest_confluence(source, store, now=datetime.now(UTC))
        assert result.pages_listed == 1 and result.histories_fetched == 0
        pages = [a for a in store.asked if a[1] in ("page", "page_version")]
        last_edited = max(dataset_pages(HANDMADE).values(), key=lambda p: p["version"]["when"])
        assert pages == [("parts", "page", (last_edited["id"],))]

        # later than every page's edit, overlap and unknown zone included: nothing is listed
        con.execute("UPDATE raw.watermarks SET watermark = now() WHERE object_type = 'page'")
        store = ReadsRecorded(con, "confluence", "quiet")
        result = ingest_confluence(source, store, now=datetime.now(UTC))
        assert result.pages_listed == 0 and result.search_pages == 1
        assert [a for a in store.asked if a[1] in ("page", "page_version")] == []
        listed = con.execute(
            "SELECT reported, listed, full_listing FROM raw.listings WHERE object_type = "
            "'page_version' ORDER BY listed_at DESC LIMIT 1"
        ).fetchone()
    assert listed == before and before[0] > 0


def edit_dataset(root: Path) -> None:
    """A new version (4) of page 1015813 and a new page 1015840, both later than all else."""
    folder = root / "confluence"
    pages = jsonl(folder / "pages.jsonl")
    versions = jsonl(folder / "page_versions.jsonl")
    body = (
        "<p><strong>Status:</strong> Approved</p><p>Epic: <ac:structured-macro "
        'ac:name="jira"><ac:parameter ac:name="key">ACC-1</ac:parameter>'
        "</ac:structured-macro></p><p>Unlinking needs re-authentication (ACC-7).</p>"
    )
    edited = next(p for p in pages if p["id"] == "1015813")
    edited["version"] = {**edited["version"], "number": 4, "when": "2026-03-31T12:00:00.000Z"}
    edited["body"]["storage"]["value"] = body
    versions.append(
        {"page_id": "1015813", "number": 4, "when": "2026-03-31T12:00:00.000Z",
         "by": "Marta Rossi", "body": body}
    )  # fmt: skip
    new = json.loads(json.dumps(next(p for p in pages if p["id"] == "1015816")))
    new_body = (
        '<p>Story: <ac:structured-macro ac:name="jira"><ac:parameter ac:name="key">ACC-5'
        "</ac:parameter></ac:structured-macro></p><h2>Edge cases</h2>"
    )
    new.update(id="1015840", title="Switch Account — Edge Case Matrix")
    new["version"] = {**new["version"], "number": 1, "when": "2026-03-31T12:30:00.000Z"}
    new["history"] = {**new["history"], "createdDate": "2026-03-31T12:30:00.000Z"}
    new["body"]["storage"]["value"] = new_body
    new["_links"] = {"webui": "/spaces/DOC/pages/1015840/Switch+Account"}
    pages.append(new)
    versions.append(
        {"page_id": "1015840", "number": 1, "when": "2026-03-31T12:30:00.000Z",
         "by": "Lena Vogel", "body": new_body}
    )  # fmt: skip
    write_jsonl(folder / "pages.jsonl", pages)
    write_jsonl(folder / "page_versions.jsonl", versions)


def test_incremental_run_fetches_only_what_changed_and_matches_a_fresh_ingest(tmp_path):
    """After a page gets a new version and a new page appears, the next run lists only
    them (plus the overlap window), reads only their histories, stores only their new
    rows, and its chain tables equal a full ingest of the edited dataset."""
    dataset = shutil.copytree(HANDMADE, tmp_path / "dataset")
    db = tmp_path / "incremental.duckdb"
    with emulator(dataset) as first:
        run(first.url, db)
        port = first.port
    edit_dataset(dataset)
    # Same port: payloads carry absolute links, so unchanged pages stay byte-identical.
    with emulator(dataset, port=port) as second:
        run(second.url, db)
        spent = confluence_requests(second.url)

    # No history: 1015813 had versions 1-3 stored, 1015840 is at version 1; the listing
    # carries both new versions.
    assert spent == Counter({"space": 2, "user/current": 1, "content/search": 1})
    assert latest_listing(db, "page") == (3, 3, False)  # the two, and 1015821 (overlap)
    latest_run = table(db, "SELECT run_id FROM raw.objects ORDER BY raw_id DESC LIMIT 1")[0][0]
    new_rows = table(
        db,
        "SELECT object_type, object_key FROM raw.objects WHERE run_id = ? ORDER BY 1, 2",
        [latest_run],
    )
    assert new_rows == [
        ("page", "1015813"),
        ("page", "1015840"),
        ("page_version", "1015813:4"),
        ("page_version", "1015840:1"),
    ]
    marks = "SELECT watermark FROM raw.watermarks WHERE object_type = 'page'"
    assert table(staged(db, "confluence"), marks) == [(datetime(2026, 3, 31, 12, 30, tzinfo=UTC),)]

    fresh = tmp_path / "fresh.duckdb"
    with emulator(dataset) as third:
        run(third.url, fresh)
    incremental = chain_tables(db)
    assert incremental == chain_tables(fresh)
    mentions = [r[:4] for r in incremental["page_mentions"] if r[0] == "1015813"]
    assert ("1015813", "ACC-7", "text", 4) in mentions
    assert ("1015840", "ACC-5", "jira_macro", 1) in [r[:4] for r in incremental["page_mentions"]]


def add_versions(root: Path, page_id: str, bodies: list[str], first_when: datetime) -> None:
    """New versions of a page, an hour apart from ``first_when``, the last one current."""
    folder = root / "confluence"
    pages = jsonl(folder / "pages.jsonl")
    versions = jsonl(folder / "page_versions.jsonl")
    page = next(p for p in pages if p["id"] == page_id)
    for i, body in enumerate(bodies):
        when = (first_when + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        number = page["version"]["number"] + 1
        page["version"] = {**page["version"], "number": number, "when": when}
        page["body"]["storage"]["value"] = body
        versions.append(
            {"page_id": page_id, "number": number, "when": when, "by": "Marta Rossi", "body": body}
        )
    write_jsonl(folder / "pages.jsonl", pages)
    write_jsonl(folder / "page_versions.jsonl", versions)


def test_only_versions_below_the_current_one_that_are_not_stored_are_fetched(tmp_path):
    """A page edited once between two runs (2 -> 3) costs no history request: its new
    version is the listed page. A page edited twice (3 -> 5) costs one, for version 4
    only. Either way the chain equals a full ingest of the edited dataset."""
    dataset = shutil.copytree(HANDMADE, tmp_path / "dataset")
    db = tmp_path / "incremental.duckdb"
    with emulator(dataset) as first:
        run(first.url, db)
        port = first.port
    noon = datetime(2026, 3, 31, 12, tzinfo=UTC)
    add_versions(dataset, "1015805", ["<p>Refunds, third cut (PAY-5).</p>"], noon)
    add_versions(dataset, "1015809", ["<p>Plan v4</p>", "<p>Status: Approved</p>"], noon)
    with emulator(dataset, port=port) as second:
        run(second.url, db)
        spent = confluence_requests(second.url)

    assert spent["content/{id}/version"] == 1
    latest_run = table(db, "SELECT run_id FROM raw.objects ORDER BY raw_id DESC LIMIT 1")[0][0]
    new_versions = table(
        db,
        "SELECT object_key, payload->>'$._links.self' IS NOT NULL FROM raw.objects "
        "WHERE run_id = ? AND object_type = 'page_version' ORDER BY 1",
        [latest_run],
    )
    # Version 4 comes from the history (with its own link), the current ones from the listing.
    assert new_versions == [("1015805:3", False), ("1015809:4", True), ("1015809:5", False)]
    fresh = tmp_path / "fresh.duckdb"
    with emulator(dataset) as third:
        run(third.url, fresh)
    assert chain_tables(db) == chain_tables(fresh)
    assert table(
        db,
        "SELECT number, body_text FROM chain.page_versions WHERE page_id = '1015809' "
        "AND number > 3 ORDER BY number",
    ) == [(4, "Plan v4"), (5, "Status: Approved")]


def test_pages_at_version_one_cost_no_history_and_keep_their_version_row(tmp_path):
    """A page's only version is the page itself: nothing is asked beyond the listing,
    and chain.page_versions has its row (author, date, body) all the same."""
    dataset = shutil.copytree(HANDMADE, tmp_path / "dataset")
    folder = dataset / "confluence"
    firsts = [p for p in jsonl(folder / "pages.jsonl") if p["version"]["number"] == 1]
    write_jsonl(folder / "pages.jsonl", firsts)
    kept = {p["id"] for p in firsts}
    versions = [v for v in jsonl(folder / "page_versions.jsonl") if v["page_id"] in kept]
    write_jsonl(folder / "page_versions.jsonl", versions)
    db = tmp_path / "driftgate.duckdb"
    with emulator(dataset) as running:
        run(running.url, db)
        spent = confluence_requests(running.url)

    assert "content/{id}/version" not in spent
    pages = dataset_pages(dataset)
    assert len(pages) == 10
    rows = table(
        db,
        "SELECT page_id, number, edited_at, author, body_text <> '' FROM chain.page_versions "
        "ORDER BY page_id",
    )
    assert rows == [
        (
            p,
            1,
            datetime.fromisoformat(pages[p]["version"]["when"]),
            pages[p]["version"]["by"]["displayName"],
            True,
        )
        for p in sorted(pages)
    ]
    assert latest_listing(db, "page_version") == (10, 10, True)


def test_a_listed_page_gives_its_version_as_the_history_does(handmade_full):
    """What the chain reads of a version is the same from the listing as from
    ``/content/{id}/version``: number, date, author, message, title and body."""
    url, _db, _requests = handmade_full
    source = ConfluenceSource(Connection(url=f"{url}/wiki", user="u", token="t"), Policy())
    (listed, _total), *_ = source.search("type = page ORDER BY lastmodified ASC", limit=100)

    def read(version: dict[str, Any]) -> tuple:
        content = version["content"]
        return (
            *(version.get(k) for k in ("number", "when", "by", "message", "minorEdit")),
            content["title"],
            content["body"]["storage"]["value"],
        )

    assert len(listed) == 30
    for page in listed:
        history = source.get_json(
            f"rest/api/content/{page['id']}/version", {"expand": "content.body.storage"}
        )["results"]
        served = next(v for v in history if v["number"] == page["version"]["number"])
        assert read(current_version(page)) == read(served), page["id"]


# -- bad input, faults, cost ----------------------------------------------------------------


def test_malformed_records_are_quarantined_with_reasons_and_the_rest_stored(tmp_path):
    """A page whose version has no ``when`` and one version without it are quarantined;
    every other page and version is stored, and the listings still add up."""
    dataset = shutil.copytree(HANDMADE, tmp_path / "dataset")
    pages = jsonl(dataset / "confluence" / "pages.jsonl")
    del next(p for p in pages if p["id"] == "1015805")["version"]["when"]
    write_jsonl(dataset / "confluence" / "pages.jsonl", pages)
    versions = jsonl(dataset / "confluence" / "page_versions.jsonl")
    next(v for v in versions if (v["page_id"], v["number"]) == ("1015804", 2))["when"] = None
    write_jsonl(dataset / "confluence" / "page_versions.jsonl", versions)
    db = tmp_path / "driftgate.duckdb"

    with emulator(dataset) as running:
        run(running.url, db)

    assert [(t, k) for t, k, _ in quarantine(db)] == [
        ("page", "1015805"),
        ("page_version", "1015804:2"),
    ]
    reasons = [r for _, _, r in quarantine(db)]
    assert reasons[0].startswith("version.when: Field required")
    assert reasons[1].startswith("when: ")
    stored = {r[0] for r in table(db, "SELECT page_id FROM chain.pages")}
    assert stored == set(dataset_pages(dataset)) - {"1015805"}
    assert table(
        db, "SELECT list(number ORDER BY number) FROM chain.page_versions WHERE page_id = '1015804'"
    ) == [([1, 3, 4],)]
    assert table(db, "SELECT count(*) FROM chain.page_versions")[0][0] == 60 - 2 - 1
    assert latest_listing(db, "page") == (30, 30, True)
    assert latest_listing(db, "page_version") == (58, 58, True)


def test_payload_validation_reasons():
    """What the quarantine says, for shapes the emulator cannot serve (it refuses a
    dataset with unparseable dates)."""
    good = {"id": 7, "version": {"number": 2, "when": "2026-03-01T10:00:00.000+01:00"}}
    page, reason = check_page(good)
    assert page is not None and page.id == "7" and reason is None
    assert check_page({"version": good["version"]})[1] == "id: Field required"
    assert check_page({"id": " ", "version": good["version"]})[1].startswith("id: ")
    assert check_page({"id": "7", "version": {"number": 2, "when": "last tuesday"}})[1].startswith(
        "version.when: "
    )
    assert check_page({"id": "7"})[1] == "version: Field required"
    assert check_version({"number": "two", "when": "2026-03-01T10:00:00Z"})[1].startswith(
        "number: "
    )
    assert check_version({"number": 2, "when": None})[1].startswith("when: ")


def test_faults_do_not_change_what_is_stored(handmade_full, tmp_path):
    """Rate limits, 5xx bursts, resets and truncated bodies are retried request by
    request (ten attempts: a 5xx burst alone takes three), without falling back on the
    asset's own retry; the run ends with the same tables as an undisturbed one."""
    _url, clean_db, _requests = handmade_full
    db = tmp_path / "faulty.duckdb"
    faults = "429=0.2,5xx=0.1,reset=0.05,truncate=0.05,seed=3,retry_after=0"
    with emulator(HANDMADE, faults=faults) as running:
        result = run(running.url, db, max_retries=10)
        injected = sandbox_stats(running.url)
    assert sum(injected["requests"].values()) > 32 + 10  # faults were really injected
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert chain_tables(db) == chain_tables(clean_db)
    assert {(t, k) for t, k, _ in raw_keys(db)} == {(t, k) for t, k, _ in raw_keys(clean_db)}
    assert quarantine(db) == []


def test_full_ingest_costs_within_five_percent_of_the_minimum(tmp_path, monkeypatch):
    """With a page size of 5 paging matters: spaces, pages and each history cost what
    their sizes require and not more; a page at version 1 has no history to read."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("ingest:\n  page_size: 5\n", encoding="utf-8")
    monkeypatch.setenv("DRIFTGATE_POLICY", str(policy))
    pages, versions = dataset_pages(HANDMADE), dataset_versions(HANDMADE)
    spaces = json.loads((HANDMADE / "confluence" / "spaces.json").read_text(encoding="utf-8"))
    minimum = (
        math.ceil(len(spaces) / 5)
        + math.ceil(len(pages) / 5)
        + sum(math.ceil(len(versions[p]) / 5) for p in pages if len(versions[p]) > 1)
    )
    db = tmp_path / "driftgate.duckdb"
    with emulator(HANDMADE) as running:
        run(running.url, db)
        spent = sum(confluence_requests(running.url).values())
    assert minimum == 27
    assert minimum <= spent <= minimum * 1.05
    assert table(db, "SELECT count(*) FROM chain.pages")[0][0] == 30
    assert table(db, "SELECT count(*) FROM chain.page_versions")[0][0] == 60


def test_default_page_size_full_ingest_is_one_request_per_listing_page(handmade_full):
    _url, _db, spent = handmade_full
    edited = sum(1 for p in dataset_pages(HANDMADE).values() if p["version"]["number"] > 1)
    assert edited == 20  # the other 10 pages are at version 1: no history to read
    # "space" twice: the reachability check (limit=1), then the space listing
    assert spent == Counter({"space": 2, "content/search": 1, "content/{id}/version": edited})


# -- reconciliation ---------------------------------------------------------------------------


def test_reconciliation_tombstones_deleted_pages_and_recovers_unseen_ones(tmp_path):
    """When due, a keys-only listing turns a deleted page and its versions into
    tombstones, and fetches a page the incremental query cannot see (its last edit is
    older than the watermark)."""
    dataset = shutil.copytree(HANDMADE, tmp_path / "dataset")
    db = tmp_path / "driftgate.duckdb"
    with emulator(dataset) as first:
        run(first.url, db)
        port = first.port
    folder = dataset / "confluence"
    pages = [p for p in jsonl(folder / "pages.jsonl") if p["id"] != "1015819"]
    late = json.loads(json.dumps(next(p for p in pages if p["id"] == "1015838")))
    late.update(id="1015841", title="Escalation matrix")
    late["version"] = {**late["version"], "when": "2026-01-02T10:00:00.000Z"}
    late["_links"] = {"webui": "/spaces/OPS/pages/1015841/Escalation+matrix"}
    write_jsonl(folder / "pages.jsonl", [*pages, late])
    versions = [v for v in jsonl(folder / "page_versions.jsonl") if v["page_id"] != "1015819"]
    late_version = {"page_id": "1015841", "number": 1, "when": "2026-01-02T10:00:00.000Z",
                    "by": "Tomás Ortega", "body": late["body"]["storage"]["value"]}  # fmt: skip
    write_jsonl(folder / "page_versions.jsonl", [*versions, late_version])

    with duckdb.connect(str(staged(db, "confluence"))) as con:  # eight days pass
        con.execute(
            "UPDATE raw.watermarks SET watermark = watermark - INTERVAL 8 DAY "
            "WHERE source = 'confluence' AND object_type = 'reconcile'"
        )
    with emulator(dataset, port=port) as second:
        run(second.url, db)
        spent = confluence_requests(second.url)

    assert spent["content/search"] == 3  # incremental, keys only, the unseen page by id
    gone = table(
        db,
        "SELECT object_type, object_key FROM raw.latest WHERE deleted ORDER BY 1, 2",
    )
    assert gone == [
        ("page", "1015819"),
        ("page_version", "1015819:1"),
        ("page_version", "1015819:2"),
        ("page_version", "1015819:3"),
    ]
    ids = {r[0] for r in table(db, "SELECT page_id FROM chain.pages")}
    assert "1015819" not in ids and "1015841" in ids and len(ids) == 30
    assert table(db, "SELECT number FROM chain.page_versions WHERE page_id = '1015841'") == [(1,)]
    assert latest_listing(db, "page") == (30, 30, True)
    reconciled = table(
        staged(db, "confluence"),
        "SELECT watermark FROM raw.watermarks WHERE object_type = 'reconcile'",
    )
    assert reconciled[0][0] > datetime.now(UTC) - timedelta(hours=1)


# -- authentication, real payloads, chain edge cases ------------------------------------------


def test_an_empty_user_means_bearer_token_and_errors_carry_no_secret(serve):
    running = serve(require_token="s3cret-token")
    url = running.url + "/wiki"
    source = ConfluenceSource(Connection(url=url, user="", token="s3cret-token"), Policy())
    assert source.client._session.headers["Authorization"] == "Bearer s3cret-token"
    assert [s["key"] for a in source.spaces() for s in a["results"]] == ["DOC", "OPS"]

    wrong = ConfluenceSource(Connection(url=url, user="", token="wrong-token"), Policy())
    with pytest.raises(SourceError) as caught:
        list(wrong.spaces())
    message = str(caught.value)
    assert "401" in message and "\n" not in message and "wrong-token" not in message


def test_cql_dates_are_written_in_the_users_zone_and_scope_is_quoted(monkeypatch, serve):
    """CQL reads dates in the searching user's zone at minute precision: the watermark
    minus the overlap is converted, or widened by 12 h when the zone is unknown."""
    policy = Policy.model_validate({"scope": {"confluence_spaces": ["DOC", '~j"d']}})
    conn = Connection(url="http://127.0.0.1:9/wiki", user="u", token="t")
    source = ConfluenceSource(conn, policy)  # sends nothing until asked
    mark = datetime(2026, 3, 30, 8, 2, 17, tzinfo=UTC)
    scope = 'type = page AND space in ("DOC", "~j\\"d")'
    assert source.page_cql(None) == f"{scope} ORDER BY lastmodified ASC"
    monkeypatch.setattr(source, "user_time_zone", lambda: "America/Los_Angeles")
    assert source.page_cql(mark) == (
        f'{scope} AND lastmodified >= "2026/03/30 00:52" ORDER BY lastmodified ASC'
    )
    monkeypatch.setattr(source, "user_time_zone", lambda: None)
    assert '>= "2026/03/29 19:52"' in source.page_cql(mark)
    served = ConfluenceSource(Connection(url=f"{serve().url}/wiki", user="u", token="t"), Policy())
    assert served.user_time_zone() == "UTC" and served.requests == 1  # /user/current
    assert served.user_time_zone() == "UTC" and served.requests == 1  # asked once


@pytest.mark.realdata
def test_real_payloads_are_stored_or_quarantined_and_the_capture_gap_is_flagged(
    real_fixtures, tmp_path
):
    """Captured Server and Cloud payloads: pages without a ``space`` object (space from
    its link), personal-space keys, a current version without ``when`` (quarantined),
    attachments and blog posts (not pages). Every page the search lists is stored or
    quarantined; the versions Confluence numbers but the capture lacks are reported
    missing by the completeness analysis (a warning) instead of passing silently, and
    without stopping the run: a retention policy may have purged them."""
    real = write_dataset(real_fixtures, tmp_path / "dataset")
    db = tmp_path / "driftgate.duckdb"
    with emulator(real.root) as running:
        result = materialize(running.url, db, f'{SELECTION} or key:"analysis/ingest_completeness"')
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["listed_what_source_reported"] is True
    assert checks["nothing_missing"] is False
    assert table(
        db,
        "SELECT expected, stored, missing FROM analysis.ingest_completeness "
        "WHERE source = 'confluence' AND object_type = 'page_version'",
    ) == [
        (
            sum(real.pages[p]["version"]["number"] for p in real.pages if p != "1"),
            sum(len(real.versions[p]) for p in real.pages if p != "1"),
            2,
        )
    ]

    expected_pages = set(real.pages)
    assert {"1", "2", "3", "98487", "987654321"} == expected_pages
    assert [(t, k, r) for t, k, r in quarantine(db)] == [
        ("page", "1", "version.when: Field required")
    ]
    stored = dict(table(db, "SELECT page_id, space_key FROM chain.pages"))
    assert stored == {
        "2": "sfc",
        "3": "TEST",
        "98487": "~5fc9e78d2730d800760becc4",
        "987654321": "PROJ",
    }
    versions = table(db, "SELECT page_id, number FROM chain.page_versions ORDER BY 1, 2")
    assert versions == [(p, n) for p in sorted(stored) for n in real.versions[p]]
    assert latest_listing(db, "page") == (5, 5, True)
    numbered = sum(real.pages[p]["version"]["number"] for p in stored)
    assert latest_listing(db, "page_version") == (numbered, len(versions), True)
    assert numbered - len(versions) == 2  # page 3 is at version 3; only v3 was captured
    assert table(db, "SELECT body_text FROM chain.pages WHERE page_id = '3'") == [("Value text",)]
    assert table(db, "SELECT author FROM chain.page_versions WHERE page_id = '3'") == [
        ("John Smith",)
    ]


def test_chain_reads_plain_name_authors_and_linked_spaces(tmp_path):
    """Captured datasets may hold a version's ``by`` as a plain name and a page's space
    only as ``_expandable.space``: both still give an author and a space key."""
    con = duckdb.connect(str(tmp_path / "unit.duckdb"))
    store = RawStore(con, "confluence", "run-1")
    page = {
        "id": "5",
        "type": "page",
        "title": "Runbook",
        "version": {"number": 2, "when": "2026-03-02T10:00:00.000Z", "by": {"username": "ana"}},
        "_expandable": {"space": "/rest/api/space/~ana%2Bops"},
        "body": {"storage": {"value": "<p>Status: Approved</p>"}},
    }
    v1 = {"page_id": "5", "number": 1, "when": "2026-03-01T10:00:00.000Z", "by": "Ana Lima",
          "content": {"body": {"storage": {"value": "<p>Draft for OPS-3</p>"}}}}  # fmt: skip
    v2 = {"page_id": "5", "number": 2, "when": "2026-03-02T10:00:00.000Z",
          "by": {"displayName": "Ana L.", "accountId": "a-1"},
          "content": {"body": {"storage": {"value": "<p>Status: Approved</p>"}}}}  # fmt: skip
    store.commit(
        Batch(
            objects=[
                RawObject("page", "5", page),
                RawObject("page_version", "5:1", v1, parent_key="5"),
                RawObject("page_version", "5:2", v2, parent_key="5"),
            ]
        )
    )
    for name in ("page_versions", "page_fields", "pages", "page_labels", "page_mentions"):
        build_table(con, "chain", name, Policy(), datetime(2026, 12, 1, tzinfo=UTC))
    assert con.execute(
        "SELECT number, author, author_id, approved FROM chain.page_versions ORDER BY number"
    ).fetchall() == [(1, "Ana Lima", "Ana Lima", False), (2, "Ana L.", "a-1", True)]
    assert con.execute(
        "SELECT space_key, author, last_modified_by, approved, first_approved_version, labels "
        "FROM chain.pages"
    ).fetchall() == [("~ana+ops", "Ana Lima", "ana", True, 2, [])]
    assert con.execute("SELECT count(*) FROM chain.page_mentions").fetchone()[0] == 0
    con.close()
