"""Confluence storage XHTML -> text, issue mentions and approval markers (and their SQL)."""

import json

import duckdb
import pytest

from dagster_project.lib.chainsql import register_functions
from dagster_project.lib.storage_format import carries_marker, issue_mentions, storage_to_text


def jira(key: str, name: str = "key") -> str:
    return (
        '<ac:structured-macro ac:name="jira" ac:schema-version="1">'
        '<ac:parameter ac:name="server">Acme Jira</ac:parameter>'
        f'<ac:parameter ac:name="{name}">{key}</ac:parameter></ac:structured-macro>'
    )


def status(title: str) -> str:
    return (
        '<ac:structured-macro ac:name="status"><ac:parameter ac:name="colour">Green'
        f'</ac:parameter><ac:parameter ac:name="title">{title}</ac:parameter>'
        "</ac:structured-macro>"
    )


# -- text ---------------------------------------------------------------------------------


def test_blocks_become_lines_and_inline_markup_disappears():
    body = (
        "<h2>Goals</h2><p>Accept <strong>Visa</strong> and <em>Master</em>card&nbsp;now.</p>"
        "<ul><li>one</li><li>two<br/>lines</li></ul><p>a &lt; b &amp; c</p>"
    )
    assert storage_to_text(body).splitlines() == [
        "Goals",
        "Accept Visa and Mastercard now.",
        "one",
        "two",
        "lines",
        "a < b & c",
    ]


def test_table_rows_are_lines_with_cells_joined():
    body = (
        "<table><tbody><tr><th>Case</th><th>Expected</th></tr><tr><td>Expired</td>"
        "<td><p>Inline error</p><p>form kept</p></td><td/><td>x</td></tr></tbody></table>"
        "<p>after</p>"
    )
    assert storage_to_text(body).splitlines() == [
        "Case | Expected",
        "Expired | Inline error form kept | | x",
        "after",
    ]


def test_macro_settings_are_dropped_but_what_a_macro_shows_stays():
    """A reader sees a Jira macro as its key and a status lozenge as its title; macro
    settings (server ids, colours, depths) are not prose."""
    body = (
        f"<p>Status: {status('Approved')}</p><p>Epic: {jira('PAY-1')}</p>"
        '<ac:structured-macro ac:name="children"><ac:parameter ac:name="depth">1'
        "</ac:parameter></ac:structured-macro>"
        '<ac:structured-macro ac:name="info"><ac:rich-text-body><p>Heads up</p>'
        "</ac:rich-text-body></ac:structured-macro>"
    )
    assert storage_to_text(body).splitlines() == ["Status: Approved", "Epic: PAY-1", "Heads up"]


def test_code_bodies_links_and_templates():
    body = (
        '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">json'
        '</ac:parameter><ac:plain-text-body><![CDATA[{"a": "<b>"}]]></ac:plain-text-body>'
        "</ac:structured-macro>"
        '<p>See <ac:link><ri:page ri:content-title="Payments PRD" /></ac:link> and '
        '<ac:link><ri:page ri:content-title="X" /><ac:link-body>the runbook</ac:link-body>'
        '</ac:link>.</p><p>Due <time datetime="2026-04-01" /></p>'
        "<p><ac:placeholder>Type the summary</ac:placeholder></p>"
        "<ac:task-list><ac:task><ac:task-id>10</ac:task-id><ac:task-status>complete"
        "</ac:task-status><ac:task-body>Ship it</ac:task-body></ac:task></ac:task-list>"
    )
    assert storage_to_text(body).splitlines() == [
        '{"a": "<b>"}',
        "See Payments PRD and the runbook.",
        "Due 2026-04-01",
        "Ship it",
    ]


@pytest.mark.parametrize(
    "body",
    ["", None, "<p>unclosed <strong>bold", "plain words < 3 > 2", "<ac:structured-macro>"],
)
def test_malformed_or_empty_markup_never_raises(body):
    text = storage_to_text(body)
    assert isinstance(text, str)
    if body and "words" in body:
        assert text == "plain words < 3 > 2"


# -- mentions -------------------------------------------------------------------------------


def test_mentions_by_macro_link_and_whole_word_text():
    body = (
        f"<p>Epic {jira('PAY-1')}, stories PAY-12 and PAY-13's spec.</p>"
        '<p><a href="https://jira.acme.example/browse/ACC-4">the profile story</a></p>'
    )
    assert issue_mentions(body) == [
        ("PAY-1", "jira_macro"),
        ("ACC-4", "jira_link"),
        ("PAY-12", "text"),
        ("PAY-13", "text"),
    ]


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("ABC-12 only", ["ABC-12"]),  # ABC-1 must not be found inside ABC-12
        ("XABC-1 is its own key; ABC-1x and ABC-1_2 are none", ["XABC-1"]),
        ("(ABC-1), ABC-2. ABC-3: ABC-4/ABC-5", ["ABC-1", "ABC-2", "ABC-3", "ABC-4", "ABC-5"]),
        ("abc-1 is not a key, ABC-0 neither", []),
        ("ABC-1-2 is a range, not ABC-1", ["ABC-1"]),
    ],
)
def test_text_keys_are_whole_words(text, keys):
    assert [k for k, by in issue_mentions(f"<p>{text}</p>") if by == "text"] == keys


def test_a_macro_key_is_not_also_a_text_mention_and_odd_macros_are_handled():
    """The key inside a Jira macro is found once, as a macro; an old storage form with
    the key as default parameter counts, a JQL macro names no single issue."""
    body = (
        f"<p>{jira('pay-2')} {jira('PAY-3', name='')}</p>"
        f"{jira('project = PAY', name='jqlQuery')}<p>PAY-2 again in text</p>"
    )
    assert issue_mentions(body) == [
        ("PAY-2", "jira_macro"),
        ("PAY-3", "jira_macro"),
        ("PAY-2", "text"),
    ]
    assert issue_mentions(f"<p>{jira('PAY-2')}{jira('PAY-2')}</p>") == [("PAY-2", "jira_macro")]


# -- approval marker ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Status: Approved", True),
        ("Intro\n  status:approved.", True),
        ("Status | Approved", True),  # page-properties table row
        ("Owner | Marta | Status | APPROVED", True),
        ("Status: Not approved", False),
        ("Status: In review", False),
        ("Once Status: Approved is set, we ship", False),
        ("Status: Approved-pending", False),
        ("", False),
    ],
)
def test_marker_is_found_at_a_line_or_cell_start(text, expected):
    assert carries_marker(text, "Status: Approved") is expected


def test_marker_without_a_label_and_an_empty_marker():
    assert carries_marker("Signed off by the board", "Signed off")
    assert not carries_marker("Not signed off", "Signed off")
    assert not carries_marker("Status: Approved", "")
    assert not carries_marker(None, "Status: Approved")


# -- the SQL functions ---------------------------------------------------------------------


def test_functions_reach_sql_and_registration_is_idempotent():
    con = duckdb.connect()
    register_functions(con)
    register_functions(con)
    body = f"<p><strong>Status:</strong> Approved</p><p>{jira('PAY-1')} PAY-2</p>"
    text, approved, mentions, nothing = con.execute(
        "SELECT driftgate_storage_text($1), "
        "driftgate_carries_marker(driftgate_storage_text($1), 'Status: Approved'), "
        "driftgate_issue_mentions($1), driftgate_storage_text(NULL)",
        [body],
    ).fetchone()
    assert text == "Status: Approved\nPAY-1 PAY-2"
    assert approved is True
    assert mentions == [
        {"issue_key": "PAY-1", "found_by": "jira_macro"},
        {"issue_key": "PAY-2", "found_by": "text"},
    ]
    assert nothing is None


# -- one tokenising for text, mentions and headings ---------------------------------------


def _bodies(value) -> list[str]:
    """Every storage-format body in a JSON document (``"storage": {"value": ...}``)."""
    if isinstance(value, dict):
        found = [value["value"]] if isinstance(value.get("value"), str) else []
        return found + [b for v in value.values() for b in _bodies(v)]
    if isinstance(value, list):
        return [b for v in value for b in _bodies(v)]
    return []


EDGE_BODIES = [
    None,
    "",
    "<h1>Open heading <p>never closed",
    "<h2>A<br/>B</h2><h3>  </h3><h4><em>Nested</em> <h5>inner</h5> tail</h4>",
    '<h2>Run <ac:structured-macro ac:name="status"><ac:parameter ac:name="title">Live'
    "</ac:parameter></ac:structured-macro>book</h2>",
    "<h1><![CDATA[a < b]]></h1><h2/><p>x</p></h1></h2>",
    "<h1>Bad <a href='x'>link</h1><div><<<>>></div>",
    "<h2>&amp; &lt;Steps&gt; &#x27;</h2><script>var h = '<h1>no</h1>'</script>",
]


def _all_bodies(real_fixtures) -> list[str | None]:
    """The captured real bodies, the hand-made dataset's and malformed ones."""
    from tests.conftest import HANDMADE

    bodies = list(EDGE_BODIES)
    for path in sorted(real_fixtures.joinpath("confluence").rglob("*.json*")):
        text = path.read_text()
        lines = text.splitlines() if path.suffix == ".jsonl" else [text]
        bodies += [b for line in lines if line.strip() for b in _bodies(json.loads(line))]
    for name in ("pages.jsonl", "page_versions.jsonl"):
        for line in (HANDMADE / "confluence" / name).read_text().splitlines():
            bodies += _bodies(json.loads(line))
    return bodies


@pytest.fixture
def workers(monkeypatch):
    """Workers for every vector of 8 bodies or more from the first body on, two of them
    whatever cores the machine has, in place of the module's; an empty cache before and
    after."""
    from dagster_project.lib import storage_format

    monkeypatch.setattr(storage_format._Workers, "after", 0)
    monkeypatch.setattr(storage_format._Workers, "batch", 8)
    workers = storage_format._Workers()
    workers.count = 2
    monkeypatch.setattr(storage_format, "_workers", workers)
    storage_format.clear_cache()
    yield workers
    workers.close()
    storage_format.clear_cache()


def test_bodies_parsed_by_worker_processes_read_as_parsed_here(real_fixtures, workers):
    """In a large build a vector's bodies not parsed yet go to worker processes: what
    they answer is what this process's own parse gives, for every body."""
    from dagster_project.lib import storage_format

    bodies = _all_bodies(real_fixtures)
    distinct = list(dict.fromkeys(bodies))
    storage_format.parse_ahead(bodies)
    assert workers.by_workers == len(distinct) > 50
    for body in distinct:
        assert storage_format._cache[body] == storage_format._parse_body(body), body


def test_workers_that_die_leave_the_parsing_to_this_process(real_fixtures, workers, monkeypatch):
    """A worker that exits at once: the vector is parsed here, with the same answers, and
    no worker is asked again."""
    import subprocess
    import sys

    from dagster_project.lib import storage_format

    bodies = list(dict.fromkeys(_all_bodies(real_fixtures)))
    started: list[subprocess.Popen] = []

    def dying() -> subprocess.Popen:
        started.append(
            subprocess.Popen(
                [sys.executable, "-c", "pass"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
        )
        return started[-1]

    monkeypatch.setattr(storage_format, "_start_worker", dying)
    storage_format.parse_ahead(bodies[: len(bodies) // 2])
    storage_format.parse_ahead(bodies)
    assert started and workers.by_workers == 0
    assert len(started) == workers.count  # started once, not again after breaking
    for body in bodies:
        assert storage_format._cache[body] == storage_format._parse_body(body), body


def test_sql_reads_a_vector_of_bodies_as_python_reads_each(real_fixtures):
    """``driftgate_storage_text``, ``_storage_headings`` and ``_issue_mentions`` take a
    vector of bodies at a time (NULL included) and answer what the Python functions do."""
    from dagster_project.lib.storage_format import headings_of

    bodies = _all_bodies(real_fixtures)
    con = duckdb.connect()
    register_functions(con)
    rows = con.execute(
        "SELECT driftgate_storage_text(b), driftgate_storage_headings(b), "
        "driftgate_issue_mentions(b) FROM (SELECT unnest(?::VARCHAR[]) AS b, "
        "generate_subscripts(?::VARCHAR[], 1) AS i) ORDER BY i",
        [bodies, bodies],
    ).fetchall()
    assert rows == [
        (
            None if b is None else storage_to_text(b),
            headings_of(b),
            [{"issue_key": k, "found_by": by} for k, by in issue_mentions(b)],
        )
        for b in bodies
    ]


def test_headings_text_and_mentions_from_one_tokenising_equal_each_parser_alone(
    real_fixtures,
):
    """``headings_of`` answers exactly what ``recognisers.storage_headings`` does, and the
    text and mentions are what the text parser alone gives, on the captured real
    bodies, the hand-made dataset's and malformed ones."""
    from dagster_project.lib import storage_format
    from dagster_project.lib.recognisers import storage_headings

    bodies = _all_bodies(real_fixtures)
    assert sum(1 for b in bodies if b and "<h" in b) > 20  # headings were compared
    for body in bodies:
        storage_format.clear_cache()
        alone = storage_format._parse(body)
        assert storage_format.headings_of(body) == storage_headings(body), body
        assert storage_to_text(body) == "\n".join(alone.lines), body
        assert storage_format._parsed(body).prose == "".join(alone.prose), body
