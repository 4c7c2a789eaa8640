"""Jira ingestion end to end: the real `jira` client, the emulator, the Dagster assets, DuckDB.

Both flavours: Server pages /rest/api/2/search by startAt; Cloud pages /search/jql by
token and completes truncated changelogs. Page size 10 forces several pages.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import requests

from dagster_project.lib.connections import Connection
from dagster_project.lib.pipelined_store import PipelinedStore
from dagster_project.lib.policy import Policy
from dagster_project.lib.rawstore import Batch, RawObject, RawStore
from dagster_project.lib.sources.jira_source import (
    LINK_HISTORY,
    UPDATED,
    JiraSource,
    _StoredIssues,
    ingest_jira,
)
from dagster_project.lib.staging import staging_dir
from tests.conftest import HANDMADE, sandbox_stats
from tests.ingest.harness import copy_dataset, kill_midway, materialize, staged, table

RAW_JIRA = 'key:"raw/jira"'
JIRA_CHAIN = [
    RAW_JIRA,
    'key:"chain/work_items"',
    'key:"chain/status_transitions"',
    'key:"chain/field_changes"',
    'key:"chain/issue_links"',
    'key:"chain/remote_links"',
]
PAGE = 10


@pytest.fixture(autouse=True)
def small_pages(tmp_path, monkeypatch):
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"ingest:\n  page_size: {PAGE}\n")
    monkeypatch.setenv("DRIFTGATE_POLICY", str(policy))
    return policy


# raw_id numbers rows per database; web_url carries the address the server answered on
COMPARABLE = "COLUMNS(lambda c: c NOT IN ('raw_id', 'web_url'))"


def dataset_issues(root: Path) -> dict[str, dict]:
    lines = (root / "jira" / "issues.jsonl").read_text().splitlines()
    return {d["key"]: d for d in map(json.loads, filter(None, lines))}


def write_issues(root: Path, issues: dict[str, dict]) -> None:
    path = root / "jira" / "issues.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in issues.values()))


def remote_link_items(issue: dict) -> list[dict]:
    return [
        item
        for h in issue["changelog"]["histories"]
        for item in h["items"]
        if item["field"] == "RemoteIssueLink"
    ]


def raw_state(db: Path, base_url: str) -> list[tuple]:
    """Latest raw objects with the serving emulator's address masked (self links carry it)."""
    return table(
        db,
        "SELECT object_type, object_key, md5(replace(payload::VARCHAR, ?, '<base>')), deleted "
        "FROM raw.latest WHERE source = 'jira' ORDER BY 1, 2",
        [base_url],
    )


def chain_state(db: Path) -> dict[str, list[tuple]]:
    names = ["work_items", "status_transitions", "field_changes", "issue_links", "remote_links"]
    return {n: table(db, f"SELECT {COMPARABLE} FROM chain.{n} ORDER BY ALL") for n in names}  # noqa: S608


@pytest.mark.parametrize("flavor", ["server", "cloud"])
def test_full_ingest_equals_the_dataset(serve, tmp_path, flavor):
    emulator = serve(HANDMADE, jira_flavor=flavor)
    db = tmp_path / "dg.duckdb"
    materialize(emulator.url, db, JIRA_CHAIN)

    expected = dataset_issues(HANDMADE)
    stored = dict(
        table(
            db,
            "SELECT object_key, payload FROM raw.latest WHERE source = 'jira' "
            "AND object_type = 'issue'",
        )
    )
    assert set(stored) == set(expected)
    for key, payload in stored.items():
        histories = json.loads(payload)["changelog"]["histories"]
        assert len(histories) == len(expected[key]["changelog"]["histories"]), key
    assert table(db, "SELECT count(*) FROM raw.quarantine") == [(0,)]

    links_in_dataset = sum(
        len(json.loads(line)["links"])
        for line in (HANDMADE / "jira" / "remotelinks.jsonl").read_text().splitlines()
        if line
    )
    assert table(db, "SELECT count(*) FROM chain.remote_links") == [(links_in_dataset,)]
    assert table(db, "SELECT count(*) FROM chain.work_items") == [(len(expected),)]
    # Every status resolves to its category through /status, whatever its custom name.
    assert table(db, "SELECT count(*) FROM chain.work_items WHERE status_category IS NULL") == [
        (0,)
    ]
    assert table(db, "SELECT count(*) FROM chain.status_transitions WHERE to_category IS NULL") == [
        (0,)
    ]
    # PAY-3 holds 131 histories: Cloud embeds 100, the rest come from /changelog.
    pay3 = table(db, "SELECT count(*) FROM chain.field_changes WHERE issue_key = 'PAY-3'")[0][0]
    pay3 += table(db, "SELECT count(*) FROM chain.status_transitions WHERE issue_key = 'PAY-3'")[0][
        0
    ]
    assert pay3 >= 130


@pytest.mark.parametrize("flavor", ["server", "cloud"])
def test_full_ingest_makes_the_minimum_requests(serve, tmp_path, flavor):
    emulator = serve(HANDMADE, jira_flavor=flavor)
    materialize(emulator.url, tmp_path / "dg.duckdb", [RAW_JIRA])
    stats = sandbox_stats(emulator.url)
    n = len(dataset_issues(HANDMADE))
    truncated = sum(
        1 for d in dataset_issues(HANDMADE).values() if len(d["changelog"]["histories"]) > 100
    )
    # PAY-3's remote-link entry is older than the 100 histories Cloud embeds: it is
    # found in the completed changelog, before remote links are decided on.
    linked = sum(1 for d in dataset_issues(HANDMADE).values() if remote_link_items(d))
    assert linked == 6
    minimum = linked + math.ceil(n / PAGE) + 3  # remote links, search pages, field/status/myself
    if flavor == "cloud":
        minimum += 2 + 2 * truncated + 1  # serverInfo v2+v3, changelog pages, approximate count
    else:
        minimum += 1  # serverInfo
    assert stats["requests"]["jira"] <= math.ceil(minimum * 1.05)
    per_issue = [e for e in stats["by_endpoint"] if e.endswith("/issue/{key}")]
    assert per_issue == []  # the search already returned every issue whole
    remote_links = f"GET /rest/api/{'3' if flavor == 'cloud' else '2'}/issue/{{key}}/remotelink"
    assert stats["by_endpoint"][remote_links] == linked  # only issues whose changelog shows one


def test_second_run_without_changes_is_cheap_and_changes_nothing(serve, tmp_path):
    emulator = serve(HANDMADE, jira_flavor="cloud")
    db = tmp_path / "dg.duckdb"
    materialize(emulator.url, db, JIRA_CHAIN)
    before_rows = table(db, "SELECT count(*) FROM raw.objects")
    before_chain = chain_state(db)
    requests.delete(f"{emulator.url}/_sandbox/stats", timeout=5)

    materialize(emulator.url, db, JIRA_CHAIN)

    assert sandbox_stats(emulator.url)["requests"]["jira"] <= 7
    assert table(db, "SELECT count(*) FROM raw.objects") == before_rows
    assert chain_state(db) == before_chain


def edit_dataset(root: Path) -> None:
    """One issue moves to a new summary (with its changelog entry), one issue is new."""
    path = root / "jira" / "issues.jsonl"
    issues = [json.loads(line) for line in path.read_text().splitlines() if line]
    edited = next(i for i in issues if i["key"] == "WEB-7")
    edited["fields"]["summary"] = "Checkout button states, revised"
    edited["fields"]["updated"] = "2026-04-02T09:00:00.000+0000"
    edited["changelog"]["histories"].append(
        {
            "id": "990001",
            "author": edited["fields"].get("reporter"),
            "created": "2026-04-02T09:00:00.000+0000",
            "items": [
                {
                    "field": "summary",
                    "fieldtype": "jira",
                    "from": None,
                    "fromString": "old",
                    "to": None,
                    "toString": "Checkout button states, revised",
                }
            ],
        }
    )
    edited["changelog"]["total"] = len(edited["changelog"]["histories"])
    edited["changelog"]["maxResults"] = edited["changelog"]["total"]
    new = json.loads(json.dumps(next(i for i in issues if i["key"] == "WEB-11")))
    new["key"], new["id"] = "WEB-99", "19999"
    new["self"] = new["self"].rsplit("/", 1)[0] + "/19999"
    new["fields"]["created"] = new["fields"]["updated"] = "2026-04-02T10:00:00.000+0000"
    issues.append(new)
    path.write_text("".join(json.dumps(i) + "\n" for i in issues))


def test_incremental_run_fetches_only_changes_and_matches_a_fresh_ingest(serve, tmp_path):
    data = copy_dataset(HANDMADE, tmp_path / "data")
    db = tmp_path / "dg.duckdb"
    first = serve(data, jira_flavor="server")
    materialize(first.url, db, JIRA_CHAIN)
    first.stop()

    edit_dataset(data)
    second = serve(data, jira_flavor="server")
    materialize(second.url, db, JIRA_CHAIN)
    stats = sandbox_stats(second.url)["by_endpoint"]
    # WEB-7's new history and the new WEB-99 show no remote link: nothing to ask.
    assert "GET /rest/api/2/issue/{key}/remotelink" not in stats
    changed = table(
        db,
        "SELECT object_key FROM raw.objects WHERE object_type = 'issue' "
        "GROUP BY 1 HAVING count(*) > 1",
    )
    assert changed == [("WEB-7",)]

    fresh = tmp_path / "fresh.duckdb"
    materialize(second.url, fresh, JIRA_CHAIN)
    assert chain_state(db) == chain_state(fresh)
    assert table(db, "SELECT summary FROM chain.work_items WHERE issue_key = 'WEB-7'") == [
        ("Checkout button states, revised",)
    ]


def history(issue: dict, at: str, hid: str, item: dict) -> None:
    """Append one changelog entry and make it the issue's latest update."""
    issue["changelog"]["histories"].append(
        {"id": hid, "author": issue["fields"].get("reporter"), "created": at, "items": [item]}
    )
    issue["changelog"]["total"] = issue["changelog"]["maxResults"] = len(
        issue["changelog"]["histories"]
    )
    issue["fields"]["updated"] = at


def remote_link_item(old: str | None, new: str | None) -> dict:
    return {
        "field": "RemoteIssueLink",
        "fieldtype": "jira",
        "from": old,
        "fromString": None if old is None else "This issue links to a page",
        "to": new,
        "toString": None if new is None else "This issue links to a page",
    }


def relink_dataset(root: Path) -> None:
    """WEB-3 gains a remote link, PAY-2 loses its one, WEB-7 changes its summary; WEB-4
    gets a link written without a changelog entry (as some apps do)."""
    issues = dataset_issues(root)
    history(
        issues["WEB-3"], "2026-04-02T09:00:00.000+0000", "990010", remote_link_item(None, "10100")
    )
    history(
        issues["PAY-2"], "2026-04-02T09:01:00.000+0000", "990011", remote_link_item("10003", None)
    )
    summary = {"field": "summary", "fieldtype": "jira", "from": None, "fromString": "old",
               "to": None, "toString": "Checkout button states, revised"}  # fmt: skip
    history(issues["WEB-7"], "2026-04-02T09:02:00.000+0000", "990012", summary)
    history(issues["WEB-4"], "2026-04-02T09:03:00.000+0000", "990013", {**summary, "to": "x"})
    write_issues(root, issues)
    path = root / "jira" / "remotelinks.jsonl"
    rows = {r["issue_key"]: r for r in map(json.loads, filter(None, path.read_text().splitlines()))}
    page = json.loads(json.dumps(rows["PAY-3"]["links"][0]))
    rows["WEB-3"] = {"issue_key": "WEB-3", "links": [{**page, "id": 10100}]}
    rows["WEB-4"] = {"issue_key": "WEB-4", "links": [{**page, "id": 10101}]}
    rows["PAY-2"]["links"] = []
    path.write_text("".join(json.dumps(r) + "\n" for r in rows.values()))


@pytest.mark.parametrize("kept", [True, False], ids=["kept-history", "stored-by-an-older-version"])
def test_remote_links_are_read_only_where_the_changelog_shows_a_change(serve, tmp_path, kept):
    """An issue that gains a remote-link entry is asked for its links, one whose link was
    removed is asked and ends with none; an issue changed otherwise costs no request.
    The stored issue's remote-link items are kept beside it (raw.parts); issues stored
    without them are compared through their stored changelog, with the same requests.
    The blind spot: a link written without a changelog entry is not seen."""
    data = copy_dataset(HANDMADE, tmp_path / "data")
    db = tmp_path / "dg.duckdb"
    first = serve(data, jira_flavor="server")
    materialize(first.url, db, JIRA_CHAIN)
    first.stop()
    [staged] = (staging_dir(db) / "jira").glob("*.duckdb")
    with duckdb.connect(str(staged)) as con:
        kept_items = dict(
            con.execute(
                "SELECT c.object_key, p.parts->'$.remote_link_history' FROM raw.current c "
                "JOIN raw.parts p USING (raw_id) WHERE c.object_type = 'issue'"
            ).fetchall()
        )
        if not kept:
            con.execute("DELETE FROM raw.parts")
    issues = dataset_issues(HANDMADE)
    assert {k: json.loads(v) for k, v in kept_items.items()} == {
        key: sorted(
            [str(h["id"]), str(item["from"]), str(item["to"])]
            for h in issue["changelog"]["histories"]
            for item in h["items"]
            if item["field"] == "RemoteIssueLink"
        )
        for key, issue in issues.items()
    }
    assert any(kept_items.values())
    links = "SELECT issue_key, link_id FROM chain.remote_links WHERE issue_key IN "
    mentioned = f"{links} ('WEB-3', 'PAY-2', 'WEB-4') ORDER BY ALL"
    assert table(db, mentioned) == [("PAY-2", "10003")]

    relink_dataset(data)
    second = serve(data, jira_flavor="server")
    materialize(second.url, db, JIRA_CHAIN)

    stats = sandbox_stats(second.url)["by_endpoint"]
    assert stats["GET /rest/api/2/issue/{key}/remotelink"] == 2  # WEB-3 and PAY-2
    assert table(db, mentioned) == [("WEB-3", "10100")]
    fresh = tmp_path / "fresh.duckdb"
    materialize(second.url, fresh, JIRA_CHAIN)
    assert chain_state(db) == chain_state(fresh)


def test_a_page_compares_with_what_this_run_handed_over_before_it_is_committed(tmp_path):
    """A listing page compares its issues with the committed store overlaid with what the
    run handed over since: an issue listed twice in one run (updated while it was read)
    is compared with its first delivery even while that still waits for the writer."""
    con = duckdb.connect(str(tmp_path / "store.duckdb"))
    raw = RawStore(con, "jira", "run-1")
    was = [["1", "", "10003"]]
    raw.commit(
        Batch(
            objects=[
                RawObject(
                    "issue", "PAY-2", {"key": "PAY-2"}, parts={LINK_HISTORY: was, UPDATED: "t1"}
                ),
                RawObject("remotelink", "PAY-2", {"links": []}, parent_key="PAY-2"),
            ]
        )
    )
    store = PipelinedStore(raw)
    known = _StoredIssues(store)
    assert known.before(["PAY-2", "WEB-3"]) == ({"PAY-2": (("1", "", "10003"),)}, {"PAY-2"})
    assert known.updated == {"PAY-2": "t1"}

    now = [["1", "", "10003"], ["7", "10003", ""]]
    handed = [
        RawObject("issue", "PAY-2", {"v": 2}, parts={LINK_HISTORY: now, UPDATED: "t2"}),
        RawObject("issue", "WEB-3", {}, parts={LINK_HISTORY: [["8", "", "1"]], UPDATED: "t3"}),
        RawObject("remotelink", "WEB-3", {"links": [1]}, parent_key="WEB-3"),
    ]
    known.handed(handed)  # not committed: the committed store still has PAY-2 as it was
    assert store.committed().kept_parts("issue", ["PAY-2"], LINK_HISTORY) == {"PAY-2": was}
    history, linked = known.before(["PAY-2", "WEB-3"])
    assert history == {"PAY-2": tuple(map(tuple, now)), "WEB-3": (("8", "", "1"),)}
    assert linked == {"PAY-2", "WEB-3"}
    assert known.updated == {"PAY-2": "t2", "WEB-3": "t3"}
    store.close()
    con.close()


class ReadsRecorded(RawStore):
    """The store, recording which stored issues it was asked about."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[str] = []

    def kept_part_sets(self, object_type, keys):
        keys = list(keys)
        if object_type == "issue":
            self.asked.extend(keys)
        return super().kept_part_sets(object_type, keys)


def test_a_night_reads_what_is_stored_only_of_the_issues_it_lists(serve, tmp_path):
    """What a listed issue is compared with (its stored ``updated`` and remote-link items)
    is read for the issues a search page lists, not for every stored issue: the overlap
    window's re-listed issues cost one look-up of theirs, a night that lists nothing
    reads nothing."""
    emulator = serve(HANDMADE, jira_flavor="server")
    db = tmp_path / "dg.duckdb"
    materialize(emulator.url, db, [RAW_JIRA])
    source = JiraSource(Connection(url=emulator.url, user="u", token="t"), Policy())
    with duckdb.connect(str(staged(db, "jira"))) as con:
        stored = {
            k
            for (k,) in con.execute(
                "SELECT object_key FROM raw.current WHERE object_type = 'issue'"
            ).fetchall()
        }
        store = ReadsRecorded(con, "jira", "overlap")
        result = ingest_jira(source, store, now=datetime.now(UTC))
        assert 0 < result.issues_seen < len(stored)  # the overlap window only
        assert sorted(store.asked) == sorted(set(store.asked)) and set(store.asked) <= stored
        assert len(store.asked) == result.issues_seen
        # compared with what is stored and left out before the store: only the fields and
        # statuses, listed whole every night, reach it
        reference = con.execute(
            "SELECT count(*) FROM raw.current WHERE object_type IN ('field', 'status')"
        ).fetchone()[0]
        assert store.counts.stored == 0 and store.counts.unchanged == reference

        con.execute(
            "UPDATE raw.watermarks SET watermark = now() + INTERVAL 1 DAY "
            "WHERE object_type = 'issue'"
        )
        store = ReadsRecorded(con, "jira", "quiet")
        result = ingest_jira(source, store, now=datetime.now(UTC))
        assert result.issues_seen == 0 and store.asked == []


def test_every_issue_has_a_remote_link_object_fetched_or_known_empty(serve, tmp_path):
    """One remotelink object per issue, as before: its links fetched where the changelog
    shows any, empty where it shows none; the completeness table counts them all."""
    emulator = serve(HANDMADE, jira_flavor="cloud")
    db = tmp_path / "dg.duckdb"
    materialize(emulator.url, db, [*JIRA_CHAIN, 'key:"analysis/ingest_completeness"'])
    issues = dataset_issues(HANDMADE)
    stored = dict(
        table(
            db,
            "SELECT object_key, json_array_length(payload, '$.links') FROM raw.latest "
            "WHERE source = 'jira' AND object_type = 'remotelink' AND NOT deleted",
        )
    )
    assert set(stored) == set(issues)
    assert {k for k, n in stored.items() if n} == {
        k for k in issues if remote_link_items(issues[k])
    }
    assert (
        table(
            db,
            "SELECT expected, stored, missing FROM analysis.ingest_completeness "
            "WHERE object_type IN ('issue', 'remotelink') ORDER BY object_type",
        )
        == [(len(issues), len(issues), 0)] * 2
    )


def test_malformed_issue_is_quarantined_and_the_rest_stored(serve, tmp_path):
    data = copy_dataset(HANDMADE, tmp_path / "data")
    path = data / "jira" / "issues.jsonl"
    issues = [json.loads(line) for line in path.read_text().splitlines() if line]
    issues[3]["fields"]["issuetype"] = "Story"  # a string where an object belongs
    bad_key = issues[3]["key"]
    path.write_text("".join(json.dumps(i) + "\n" for i in issues))
    emulator = serve(data, jira_flavor="server")
    db = tmp_path / "dg.duckdb"
    materialize(emulator.url, db, [RAW_JIRA])
    quarantined = table(db, "SELECT object_key, reason FROM raw.quarantine")
    assert len(quarantined) == 1 and quarantined[0][0] == bad_key
    assert "fields.issuetype" in quarantined[0][1]
    stored = table(db, "SELECT count(*) FROM raw.current WHERE object_type = 'issue'")
    assert stored == [(len(issues) - 1,)]


def test_faults_do_not_change_the_result(serve, tmp_path):
    clean = serve(HANDMADE, jira_flavor="cloud")
    clean_db = tmp_path / "clean.duckdb"
    materialize(clean.url, clean_db, JIRA_CHAIN)

    faulty = serve(
        HANDMADE,
        jira_flavor="cloud",
        faults="429=0.1,5xx=0.08,burst=2,reset=0.05,truncate=0.1,retry_after=0,seed=9",
    )
    faulty_db = tmp_path / "faulty.duckdb"
    materialize(faulty.url, faulty_db, JIRA_CHAIN)
    injected = sandbox_stats(faulty.url)["faults"]
    assert sum(injected.values()) >= 5 and {"429", "5xx", "reset", "truncate"} <= set(injected)
    assert raw_state(faulty_db, faulty.url) == raw_state(clean_db, clean.url)
    assert chain_state(faulty_db) == chain_state(clean_db)


def test_a_killed_run_resumes_without_loss_or_duplicates(serve, tmp_path, small_pages):
    # Five search pages, one request at a time: Server's pages are otherwise asked two at
    # once (lib/inflight.offset_pages), and the order below is what the kill relies on.
    small_pages.write_text("ingest:\n  page_size: 5\noperations:\n  requests_per_step: 1\n")
    emulator = serve(HANDMADE, jira_flavor="server", latency_ms=100)
    db = tmp_path / "killed.duckdb"
    search = "GET /rest/api/2/search"
    # Killed once the fourth page is asked for: the first page's batch is committed by
    # then. The next page is asked for as the run takes a page (lib/inflight.read_ahead),
    # so page 4 is asked as it takes page 3, after handing page 2's batch to the writer,
    # which first waits for page 1's to commit (lib/pipelined_store.py).
    kill_midway(
        emulator.url,
        db,
        [RAW_JIRA],
        ready=lambda stats: stats["by_endpoint"].get(search, 0) >= 4,
    )
    # It really died mid-way, with pages committed to its staging store.
    staged_issues = "SELECT count(*) FROM raw.current WHERE object_type = 'issue'"
    partial = table(staged(db, "jira"), staged_issues)[0][0]
    assert 0 < partial < len(dataset_issues(HANDMADE))

    materialize(emulator.url, db, JIRA_CHAIN)
    reference = tmp_path / "reference.duckdb"
    materialize(emulator.url, reference, JIRA_CHAIN)
    assert raw_state(db, emulator.url) == raw_state(reference, emulator.url)
    assert chain_state(db) == chain_state(reference)
    duplicates = table(
        db,
        "SELECT object_key, content_hash, count(*) FROM raw.objects "
        "GROUP BY ALL HAVING count(*) > 1",
    )
    assert duplicates == []


@pytest.mark.parametrize("flavor", ["server", "cloud"])
def test_reconciliation_turns_deleted_issues_into_tombstones(serve, tmp_path, flavor):
    data = copy_dataset(HANDMADE, tmp_path / "data")
    db = tmp_path / "dg.duckdb"
    first = serve(data, jira_flavor=flavor)
    materialize(first.url, db, JIRA_CHAIN)
    port = first.port
    first.stop()

    path = data / "jira" / "issues.jsonl"
    kept = [line for line in path.read_text().splitlines() if '"key":"WEB-11"' not in line]
    path.write_text("\n".join(kept) + "\n")
    import duckdb

    with duckdb.connect(str(staged(db, "jira"))) as con:  # the last reconciliation: 8 days ago
        con.execute(
            "UPDATE raw.watermarks SET watermark = watermark - INTERVAL 8 DAY "
            "WHERE object_type = 'reconcile'"
        )
    second = serve(data, jira_flavor=flavor, port=port)
    materialize(second.url, db, JIRA_CHAIN)
    assert table(
        db, "SELECT deleted FROM raw.latest WHERE object_key = 'WEB-11' AND object_type = 'issue'"
    ) == [(True,)]
    assert table(db, "SELECT count(*) FROM chain.work_items WHERE issue_key = 'WEB-11'") == [(0,)]
    kept_keys = {json.loads(line)["key"] for line in kept if line}
    assert {k for (k,) in table(db, "SELECT issue_key FROM chain.work_items")} == kept_keys
