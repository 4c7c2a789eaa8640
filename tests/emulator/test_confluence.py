"""The Confluence part of the emulator, driven by the real atlassian-python-api client.

Every client test talks HTTP to the emulator with ``Confluence(url=base + "/wiki",
cloud=False)``, the construction production uses, and checks answers against the
hand-made dataset files read directly. The CQL tests at the top exercise the parser
alone, on hand-built documents.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from atlassian import Confluence
from atlassian.errors import ApiError, ApiValueError
from requests import HTTPError

from dagster_project.sandbox.dataset import DatasetError
from dagster_project.sandbox.emulator import cql, server
from tests.conftest import HANDMADE, sandbox_stats

EXPAND = "body.storage,version,metadata.labels,ancestors"


# -- the dataset, read without the emulator ---------------------------------------------------


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


PAGES = _jsonl(HANDMADE / "confluence" / "pages.jsonl")
VERSIONS = _jsonl(HANDMADE / "confluence" / "page_versions.jsonl")


def space_of(page: dict[str, Any]) -> str:
    if "space" in page:
        return page["space"]["key"]
    return page["_expandable"]["space"].rsplit("/", 1)[1]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def dataset_pages(space: str, kind: str = "page") -> list[dict[str, Any]]:
    return [p for p in PAGES if space_of(p) == space and p["type"] == kind]


def history_of(page_id: str) -> list[dict[str, Any]]:
    return sorted((v for v in VERSIONS if v["page_id"] == page_id), key=lambda v: v["number"])


def client(url: str, **options: Any) -> Confluence:
    """The client as production builds it: v1 Server class under /wiki, bounded timeout."""
    options.setdefault("username", "u")
    options.setdefault("password", "t")
    return Confluence(url=url + "/wiki", cloud=False, timeout=10, **options)


@pytest.fixture(scope="module")
def wiki() -> Iterator[str]:
    """One emulator shared by the read-only tests that do not count requests."""
    running = server.start(str(HANDMADE))
    yield running.url
    running.stop()


# -- CQL, parser alone ----------------------------------------------------------------------

MAR = datetime(2026, 3, 1, 10, 0, tzinfo=UTC).timestamp()
DOCS = [
    {"id": "1", "space": "DOC", "type": "page", "title": "Card Payments PRD",
     "labels": ["prd"], "lastmodified": MAR - 60, "parent": "9", "ancestors": ["8", "9"]},
    {"id": "2", "space": "DOC", "type": "page", "title": "Payments Test Plan",
     "labels": ["test-plan"], "lastmodified": MAR, "parent": "9", "ancestors": ["8", "9"]},
    {"id": "3", "space": "OPS", "type": "page", "title": "Payments Runbook",
     "labels": ["runbook", "prd"], "lastmodified": MAR + 30, "parent": "7", "ancestors": ["7"]},
    {"id": "4", "space": "OPS", "type": "blogpost", "title": "Release notes",
     "labels": [], "lastmodified": MAR + 86400, "parent": None, "ancestors": []},
]  # fmt: skip


def ids(query: str, **kw: Any) -> list[str]:
    parsed = cql.parse(query, **kw)
    return [d["id"] for d in parsed.sort([d for d in DOCS if parsed.matches(d)])]


def test_cql_boolean_precedence_not_and_parentheses():
    """AND binds tighter than OR and NOT tightest, as in Confluence; a wrong precedence
    silently widens an incremental query."""
    assert ids("space = OPS and type = page or label = test-plan") == ["2", "3"]
    assert ids("space = OPS and (type = page or label = test-plan)") == ["3"]
    assert ids("NOT space = DOC AND type = page") == ["3"]
    assert ids("space in (DOC, OPS) and label not in (prd)") == ["2", "4"]
    assert ids('label in ("prd", "runbook") and space != DOC') == ["3"]
    assert ids("label = global:prd") == ["1", "3"]
    assert ids("parent = 9 or ancestor = 7") == ["1", "2", "3"]
    assert ids("id in (2, 4)") == ["2", "4"]


def test_cql_dates_are_instants_for_ranges_and_spans_for_equality():
    """``>=``/``>`` compare with the minute the literal starts at, ``=`` covers the whole
    minute or day, and literals are read in the user's time zone: the watermark rules."""
    assert ids('lastmodified >= "2026/03/01 10:00"') == ["2", "3", "4"]
    assert ids('lastmodified > "2026/03/01 10:00"') == ["3", "4"]
    assert ids('lastmodified < "2026-03-01 10:00"') == ["1"]
    assert ids('lastmodified = "2026/03/01 10:00"') == ["2", "3"]
    assert ids('lastmodified = "2026/03/02"') == ["4"]
    assert ids('lastModified >= "2026/03/02"') == ["4"]
    plus_two = timezone(timedelta(hours=2))
    assert ids('lastmodified >= "2026/03/01 12:00"', tz=plus_two) == ["2", "3", "4"]


def test_cql_title_contains_words_and_wildcards():
    """``title ~`` is a word search (all terms, ``*`` wildcards), ``title =`` is exact."""
    assert ids('title ~ "payments"') == ["1", "2", "3"]
    assert ids('title ~ "payments plan"') == ["2"]
    assert ids('title ~ "run*"') == ["3"]
    assert ids('title !~ "payments"') == ["4"]
    assert ids('title = "release notes"') == ["4"]
    assert ids('title ~ "pay"') == []


def test_cql_order_by_several_keys_with_missing_values_last():
    assert ids("type = page order by lastmodified desc") == ["3", "2", "1"]
    assert ids("space in (DOC, OPS) ORDER BY space DESC, title ASC") == ["3", "4", "1", "2"]
    assert ids("id in (1, 4) order by parent") == ["1", "4"]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "creator = marta",
        "space = ",
        "space = = DOC",
        "(space = DOC",
        "space = DOC order lastmodified",
        'lastmodified >= now("-1d")',
        'lastmodified >= "yesterday"',
        'lastmodified >= "2026/02/30"',
        "title > A",
        "label ~ prd",
        "space = DOC garbage",
    ],
)
def test_cql_rejects_what_it_cannot_evaluate(query: str):
    """Outside the subset the server answers 400 rather than guessing a meaning."""
    with pytest.raises(cql.CqlError):
        cql.parse(query)


# -- content paging over HTTP -----------------------------------------------------------------


def test_paging_a_space_with_explicit_start_and_limit_returns_every_page(serve):
    """The ingestion's way of paging: explicit start/limit under /wiki; every page comes
    back once, with its body, labels, version and ancestors as stored."""
    emulator = serve()
    confluence = client(emulator.url)
    expected = dataset_pages("DOC")
    limit = 4
    seen: list[dict[str, Any]] = []
    start = 0
    while True:
        answer = confluence.get_all_pages_from_space_raw(
            space="DOC", start=start, limit=limit, expand=EXPAND
        )
        assert (answer["start"], answer["limit"]) == (start, limit)
        assert answer["size"] == len(answer["results"])
        assert answer["_links"]["base"] == emulator.url + "/wiki"
        assert answer["_links"]["context"] == "/wiki"
        seen.extend(answer["results"])
        if "next" not in answer["_links"]:
            break
        assert answer["_links"]["next"].startswith("/rest/api/content?")
        assert f"start={start + limit}" in answer["_links"]["next"]
        start += limit

    assert [p["id"] for p in seen] == [p["id"] for p in expected]
    for got, want in zip(seen, expected, strict=True):
        assert got["body"]["storage"]["value"] == want["body"]["storage"]["value"]
        assert got["version"]["number"] == want["version"]["number"]
        assert got["version"]["when"] == want["version"]["when"]
        assert [lab["name"] for lab in got["metadata"]["labels"]["results"]] == [
            lab["name"] for lab in want["metadata"]["labels"]["results"]
        ]
        assert [a["id"] for a in got["ancestors"]] == [a["id"] for a in want["ancestors"]]
        assert "space" not in got and got["_expandable"]["space"] == "/rest/api/space/DOC"
    requests_made = sandbox_stats(emulator.url)["by_endpoint"]["GET /wiki/rest/api/content"]
    assert requests_made == math.ceil(len(expected) / limit)


def test_following_links_base_plus_next_reaches_the_end(wiki):
    """``_links.base + _links.next`` is the other correct way to page: it keeps /wiki."""
    confluence = client(wiki)
    answer = confluence.get_all_pages_from_space_raw(space="OPS", limit=2, expand="version")
    ids_seen = [p["id"] for p in answer["results"]]
    while "next" in answer["_links"]:
        answer = confluence.get(answer["_links"]["base"] + answer["_links"]["next"], absolute=True)
        assert answer["limit"] == 2
        ids_seen.extend(p["id"] for p in answer["results"])
    assert ids_seen == [p["id"] for p in dataset_pages("OPS")]
    blog_ids = [p["id"] for p in dataset_pages("OPS", "blogpost")]
    answer = confluence.get_all_pages_from_space_raw(space="OPS", content_type="blogpost")
    assert [p["id"] for p in answer["results"]] == blog_ids


def test_the_clients_lazy_generator_drops_wiki_and_fails_on_page_two(serve):
    """The client trap the ingestion must avoid: ``get_all_pages_from_space`` resolves the
    relative ``next`` against the site root, loses ``/wiki`` and gets a 404, exactly as
    against Confluence Cloud. It proves nothing answers outside /wiki."""
    emulator = serve()
    confluence = client(emulator.url)
    pages = confluence.get_all_pages_from_space("DOC", limit=5, expand=EXPAND)
    first_page = [next(pages) for _ in range(5)]
    assert [p["id"] for p in first_page] == [p["id"] for p in dataset_pages("DOC")[:5]]
    with pytest.raises(HTTPError) as caught:
        next(pages)
    response = caught.value.response
    assert response.status_code == 404
    assert response.request.path_url.startswith("/rest/api/content?")
    assert "start=5" in response.request.path_url
    assert sandbox_stats(emulator.url)["by_endpoint"]["GET /rest/api/content"] == 1


def test_limit_is_capped_at_the_server_maximum_and_echoed(wiki):
    """A client that trusts its own limit (``*_as_generator`` stops on a short page) must
    see the effective one: 100 with bodies expanded, 200 without."""
    confluence = client(wiki)
    with_bodies = confluence.get_all_pages_from_space_raw(
        space="DOC", limit=500, expand="body.storage"
    )
    assert with_bodies["limit"] == 100
    assert with_bodies["size"] == len(dataset_pages("DOC"))
    assert "next" not in with_bodies["_links"]
    bare = confluence.get_all_pages_from_space_raw(space="DOC", limit=500)
    assert bare["limit"] == 200
    assert "body" not in bare["results"][0] and bare["results"][0]["_expandable"]["body"] == ""


# -- search -----------------------------------------------------------------------------------


def test_cql_method_uses_the_search_endpoint_and_finds_the_prds(serve):
    """``Confluence.cql`` calls /rest/api/search (not /content/search) and gets wrapper
    results; ``content.``-prefixed expansions reach the content."""
    emulator = serve()
    confluence = client(emulator.url)
    answer = confluence.cql('space = DOC and label = "prd"', limit=50, expand="content.version")
    expected = [
        p
        for p in dataset_pages("DOC")
        if "prd" in [lab["name"] for lab in p["metadata"]["labels"]["results"]]
    ]
    assert [r["content"]["id"] for r in answer["results"]] == [p["id"] for p in expected]
    assert answer["totalSize"] == len(expected) == 4
    assert answer["cqlQuery"] == 'space = DOC and label = "prd"'
    for result, page in zip(answer["results"], expected, strict=True):
        assert result["title"] == page["title"]
        assert result["content"]["version"]["number"] == page["version"]["number"]
        assert "body" not in result["content"]
        assert result["url"] == page["_links"]["webui"]
        assert when(result["lastModified"]) == when(page["version"]["when"])
        assert result["excerpt"]
    endpoints = sandbox_stats(emulator.url)["by_endpoint"]
    assert endpoints.get("GET /wiki/rest/api/search") == 1
    assert "GET /wiki/rest/api/content/search" not in endpoints


def test_content_search_by_lastmodified_returns_exactly_the_pages_changed_since(wiki):
    """The incremental query: ``lastmodified >= watermark`` must return every content item
    changed since, and nothing older, in ``ORDER BY lastmodified`` order."""
    confluence = client(wiki)
    watermark = datetime(2026, 3, 15, tzinfo=UTC)
    answer = confluence.get(
        "rest/api/content/search",
        params={
            "cql": 'lastmodified >= "2026/03/15 00:00" order by lastmodified',
            "expand": "version",
            "limit": 100,
        },
    )
    changed = sorted(
        (p for p in PAGES if when(p["version"]["when"]) >= watermark),
        key=lambda p: when(p["version"]["when"]),
    )
    assert [r["id"] for r in answer["results"]] == [p["id"] for p in changed]
    assert 0 < len(changed) < len(PAGES)
    assert answer["totalSize"] == len(changed)

    older = confluence.get(
        "rest/api/content/search",
        params={"cql": 'space = DOC and type = page and lastmodified < "2026-01-08"'},
    )
    expected_older = [
        p["id"]
        for p in dataset_pages("DOC")
        if when(p["version"]["when"]) < datetime(2026, 1, 8, tzinfo=UTC)
    ]
    assert sorted(r["id"] for r in older["results"]) == sorted(expected_older)


def test_content_search_pages_with_relative_next_and_text_search(wiki):
    confluence = client(wiki)
    query = "type = page and (label = runbook or label = test-plan) order by title"
    answer = confluence.get("rest/api/content/search", params={"cql": query, "limit": 3})
    titles = [r["title"] for r in answer["results"]]
    total, requests_made = answer["totalSize"], 1
    while "next" in answer["_links"]:
        assert answer["_links"]["next"].startswith("/rest/api/content/search?")
        answer = confluence.get(answer["_links"]["base"] + answer["_links"]["next"], absolute=True)
        titles.extend(r["title"] for r in answer["results"])
        requests_made += 1
    expected = [
        p["title"]
        for p in PAGES
        if p["type"] == "page"
        and {"runbook", "test-plan"} & {lab["name"] for lab in p["metadata"]["labels"]["results"]}
    ]
    assert titles == sorted(expected, key=str.casefold)
    assert total == len(expected) and requests_made == math.ceil(len(expected) / 3)

    mentions = confluence.get("rest/api/content/search", params={"cql": 'text ~ "PAY-12"'})
    mentioning = [p["id"] for p in PAGES if "PAY-12" in p["body"]["storage"]["value"]]
    assert sorted(r["id"] for r in mentions["results"]) == sorted(mentioning)


def test_malformed_cql_is_a_400_the_client_reports(wiki):
    with pytest.raises(ApiValueError) as caught:
        client(wiki).cql("space = = DOC")
    body = caught.value.reason.response.json()
    assert caught.value.reason.response.status_code == 400
    assert "Could not parse cql : space = = DOC" in body["message"]


# -- single content, versions, history --------------------------------------------------------


def test_version_history_returns_every_version_with_its_body(wiki):
    """Versions come newest first, each with its own body; a ``by`` stored as a plain
    name is served as the full user object seen elsewhere in the dataset."""
    confluence = client(wiki)
    stored = history_of("1015821")
    versions = confluence.get_all_page_versions("1015821", expand="content.body.storage")
    assert [v["number"] for v in versions] == [5, 4, 3, 2, 1]
    by_number = {v["number"]: v for v in versions}
    for line in stored:
        got = by_number[line["number"]]
        assert got["content"]["body"]["storage"]["value"] == line["body"]
        assert got["when"] == line["when"]
        assert got["content"]["status"] == ("current" if line["number"] == 5 else "historical")
        assert isinstance(got["by"], dict) and got["by"]["type"] == "known"
    assert isinstance(stored[1]["by"], str)  # the dataset flattened this author
    assert by_number[2]["by"]["displayName"] == stored[1]["by"] == "Deepak Iyer"
    assert by_number[2]["by"]["accountId"] == "5e1f7a2b8c3d4e5f6a7b8c92"
    approved = [v["number"] for v in stored if "Status:</strong> Approved" in v["body"]]
    assert approved == [4, 5]


def test_historical_version_body_through_get_page_by_id(wiki):
    confluence = client(wiki)
    v1, latest = history_of("1015804")[0], history_of("1015804")[-1]
    old = confluence.get_page_by_id(
        "1015804", expand="body.storage,version", status="historical", version=1
    )
    assert old["body"]["storage"]["value"] == v1["body"]
    assert old["version"]["number"] == 1 and old["version"]["when"] == v1["when"]
    assert old["status"] == "historical"
    assert "Approved" not in old["body"]["storage"]["value"]
    current = confluence.get_page_by_id("1015804", expand="body.storage,version")
    assert current["body"]["storage"]["value"] == latest["body"]
    assert current["version"]["number"] == latest["number"] == 4
    assert current["_links"]["base"] == wiki + "/wiki"


def test_only_requested_expansions_are_expanded(wiki):
    """Unrequested parts sit in ``_expandable``; a bare GET expands space, history and
    version, the real endpoint's default."""
    confluence = client(wiki)
    only_version = confluence.get_page_by_id("1015832", expand="version")
    assert "version" in only_version
    assert not {"body", "ancestors", "metadata", "space"} & set(only_version)
    assert {"body", "ancestors", "metadata", "space"} <= set(only_version["_expandable"])
    bare = confluence.get_page_by_id("1015832")
    assert bare["space"]["key"] == "OPS" and bare["space"]["name"] == "Operations"
    assert bare["history"]["createdDate"] == history_of("1015832")[0]["when"]
    assert bare["version"]["number"] == 3
    assert "body" not in bare


def test_version_by_number_history_labels_and_children(wiki):
    confluence = client(wiki)
    second = confluence.get_content_history_by_version_number("1015832", 2)
    assert second["number"] == 2 and second["when"] == history_of("1015832")[1]["when"]
    with pytest.raises(HTTPError) as caught:
        confluence.get_content_history_by_version_number("1015832", 9)
    assert caught.value.response.status_code == 404

    history = confluence.history("1015813")
    assert history["latest"] is True
    assert history["createdDate"] == history_of("1015813")[0]["when"]
    assert history["createdBy"]["displayName"] == "Marta Rossi"

    labels = confluence.get_page_labels("1015806")
    assert [lab["name"] for lab in labels["results"]] == ["api-spec"]

    children = confluence.get_page_child_by_type("1015811", type="page", start=0, limit=50)
    expected = [p["id"] for p in PAGES if p["ancestors"] and p["ancestors"][-1]["id"] == "1015811"]
    assert [c["id"] for c in children] == expected and len(expected) == 6


def test_spaces_and_space_content(wiki):
    confluence = client(wiki)
    spaces = confluence.get_all_spaces(limit=1)
    assert [s["key"] for s in spaces["results"]] == ["DOC"]
    assert spaces["_links"]["next"].startswith("/rest/api/space?")
    assert confluence.get_space("OPS", expand="description.plain")["description"]["plain"][
        "value"
    ].startswith("Runbooks")
    content = confluence.get("rest/api/space/DOC/content", params={"limit": 100})
    assert [p["id"] for p in content["page"]["results"]] == [p["id"] for p in dataset_pages("DOC")]
    assert [p["id"] for p in content["blogpost"]["results"]] == [
        p["id"] for p in dataset_pages("DOC", "blogpost")
    ]
    with pytest.raises(ApiError):
        confluence.get_space("NOPE")


def test_unknown_id_is_a_404_with_the_real_message(wiki):
    with pytest.raises(ApiError) as caught:
        client(wiki).get_page_by_id("999999", expand="body.storage")
    assert str(caught.value).startswith("There is no content with the given id")
    response = caught.value.reason.response
    assert response.status_code == 404
    assert response.json()["message"] == "No content found with id: ContentId{id=999999}"


# -- authentication and faults ------------------------------------------------------------------


def test_basic_and_bearer_auth_against_a_required_token(serve):
    emulator = serve(require_token="t")
    with pytest.raises(HTTPError) as caught:
        client(emulator.url, password="wrong").get_page_by_id("1015801")
    assert caught.value.response.status_code == 401
    bearer = Confluence(url=emulator.url + "/wiki", token="t", cloud=False, timeout=10)
    assert bearer.get_page_by_id("1015801")["title"] == "Product Documentation"
    assert client(emulator.url).get_page_by_id("1015801")["id"] == "1015801"


def test_rate_limit_reaches_the_caller_after_one_retry_after_wait(serve):
    """The default client waits ``Retry-After`` once (``retry_with_header``) and then
    raises HTTPError 429: the ingestion needs its own retry policy on top."""
    emulator = serve(faults="429=1.0")
    with pytest.raises(HTTPError) as caught:
        client(emulator.url).get_page_by_id("1015801")
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "1"
    assert sandbox_stats(emulator.url)["requests"]["confluence"] == 2


def test_connection_reset_surfaces_as_connection_error(serve):
    emulator = serve(faults="reset=1.0")
    with pytest.raises(requests.exceptions.ConnectionError):
        client(emulator.url).get_page_by_id("1015801")


def test_truncated_body_surfaces_as_a_read_error(serve):
    emulator = serve(faults="truncate=1.0")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        client(emulator.url).get_all_pages_from_space_raw(space="DOC", expand="body.storage")


# -- datasets other than the hand-made one ------------------------------------------------------


def _dataset(root: Path, pages: list[dict[str, Any]]) -> Path:
    (root / "confluence").mkdir(parents=True)
    manifest = {"format": 1, "name": "t", "as_of": "2026-03-31T00:00:00+00:00"}
    (root / "manifest.json").write_text(json.dumps(manifest))
    lines = "".join(json.dumps(p) + "\n" for p in pages)
    (root / "confluence" / "pages.jsonl").write_text(lines, encoding="utf-8")
    return root


@pytest.mark.realdata
def test_captured_real_pages_are_served_as_they_came(serve, real_fixtures, tmp_path):
    """Dropped-in captures (a Server page with no ``space`` object, Cloud records with
    personal-space links) are served without a page_versions file: the space comes from
    ``_expandable``, the history holds the current version."""
    base = real_fixtures / "confluence"
    server_page = json.loads(
        (base / "gpl3_perceval/perceval_server_confluence_content_3.json").read_text()
    )
    cloud = [
        json.loads(line)["data"]
        for line in (base / "airbyte_cloud_v1_content_records.jsonl").read_text().splitlines()
        if json.loads(line)["stream"] in ("pages", "blog_posts")
    ]
    emulator = serve(_dataset(tmp_path, [server_page, *cloud]))
    confluence = client(emulator.url)

    listed = confluence.get_all_pages_from_space_raw(space="TEST", expand="body.storage,version")
    assert [p["id"] for p in listed["results"]] == ["3"]
    assert listed["results"][0]["body"]["storage"]["value"] == "Value text"
    assert listed["results"][0]["version"]["by"]["username"] == "smith"

    cloud_page = next(p for p in cloud if p["type"] == "page")
    personal = cloud_page["_expandable"]["space"].rsplit("/", 1)[1]
    found = confluence.cql(f'space = "{personal}" and type = page', expand="content.body.storage")
    assert [r["content"]["id"] for r in found["results"]] == [cloud_page["id"]]
    body = found["results"][0]["content"]["body"]["storage"]["value"]
    assert body == cloud_page["body"]["storage"]["value"]
    versions = confluence.get_all_page_versions(cloud_page["id"])
    assert [v["number"] for v in versions] == [cloud_page["version"]["number"]]
    assert versions[0]["_links"]["self"].startswith(emulator.url + "/wiki/rest/api/content/")


def test_a_malformed_page_line_fails_at_start_naming_file_and_line(tmp_path):
    """A dataset the emulator cannot serve is refused up front, not with a 500 later."""
    root = _dataset(tmp_path, [PAGES[0]])
    with (root / "confluence" / "pages.jsonl").open("a") as fh:
        fh.write('{"title": "no id"}\n')
    with pytest.raises(DatasetError, match=r"pages\.jsonl:2: missing or malformed 'id'"):
        server.start(str(root))
