"""Rich text conversion: what the emulator serves per API version and ingestion normalises."""

from __future__ import annotations

import json

import pytest

from dagster_project.lib import richtext
from dagster_project.lib.richtext import (
    adf_to_text,
    adf_to_wiki,
    section,
    sections,
    to_adf,
    to_text,
    to_wiki,
    wiki_blocks,
    wiki_outline,
    wiki_to_adf,
)

STORY = """As a *returning customer* I want my card stored as a token.
Second line with {{code}} and [the docs|https://docs.example.com/pay].

h2. Acceptance Criteria
* Given a *valid* card, a token is stored
** and _audited_
*# first nested step
* An expired card answers {{422}}
# numbered one
# numbered two

h2. Edge cases
||Case||Input||Expected||
|Expired card|exp 01/20|decline with "expired"|
|Unknown [BIN|https://bin.example.com]|999999|fallback to *3DS*|

{code:python}
def f(x):
    return x * 2
{code}

bq. Quoted remark
----
Ping [~alice] and [~accountid:5fc9e78d2730d800760becc4]; intra{*}word{*} bold, {color:#ff5630}red{color}."""


def _types(node, acc=None):
    acc = [] if acc is None else acc
    if isinstance(node, dict):
        acc.append(node.get("type"))
        for child in node.get("content") or []:
            _types(child, acc)
    return acc


def _texts_with_marks(node) -> list[tuple[str, list[str]]]:
    out = []
    if isinstance(node, dict):
        if node.get("type") == "text":
            out.append((node["text"], sorted(m["type"] for m in node.get("marks", []))))
        for child in node.get("content") or []:
            out.extend(_texts_with_marks(child))
    return out


def test_wiki_to_adf_structure():
    """Headings, lists (nested, mixed), tables with header cells, code, quote, rule, marks."""
    doc = wiki_to_adf(STORY)
    assert doc["type"] == "doc" and doc["version"] == 1
    headings = [n for n in doc["content"] if n["type"] == "heading"]
    assert [(h["attrs"]["level"], h["content"][0]["text"]) for h in headings] == [
        (2, "Acceptance Criteria"),
        (2, "Edge cases"),
    ]
    bullets = next(n for n in doc["content"] if n["type"] == "bulletList")
    first_item = bullets["content"][0]["content"]
    assert [n["type"] for n in first_item] == ["paragraph", "bulletList", "orderedList"]
    assert len(bullets["content"]) == 2
    numbered = next(n for n in doc["content"] if n["type"] == "orderedList")
    assert len(numbered["content"]) == 2

    table = next(n for n in doc["content"] if n["type"] == "table")
    assert [c["type"] for c in table["content"][0]["content"]] == ["tableHeader"] * 3
    assert [c["type"] for c in table["content"][1]["content"]] == ["tableCell"] * 3

    code = next(n for n in doc["content"] if n["type"] == "codeBlock")
    assert code["attrs"]["language"] == "python"
    assert code["content"][0]["text"] == "def f(x):\n    return x * 2"
    assert {"blockquote", "rule", "mention", "hardBreak"} <= set(_types(doc))

    marks = _texts_with_marks(doc)
    assert ("returning customer", ["strong"]) in marks
    assert ("the docs", ["link"]) in marks
    assert ("code", ["code"]) in marks
    assert ("word", ["strong"]) in marks  # Jira's {*} brace form inside a word
    assert ("red", ["textColor"]) in marks
    mentions = [n["attrs"]["id"] for n in _walk(doc) if n.get("type") == "mention"]
    assert mentions == ["alice", "5fc9e78d2730d800760becc4"]


def _walk(node):
    if isinstance(node, dict):
        yield node
        for child in node.get("content") or []:
            yield from _walk(child)


def test_wiki_adf_wiki_round_trip_keeps_structure():
    """wiki -> ADF -> wiki -> ADF is a fixed point, and the wiki keeps its markup."""
    doc = wiki_to_adf(STORY)
    wiki = adf_to_wiki(doc)
    assert wiki_to_adf(wiki) == doc
    for line in (
        "h2. Acceptance Criteria",
        "* Given a *valid* card, a token is stored",
        "** and _audited_",
        "*# first nested step",
        "||Case||Input||Expected||",
        "|Unknown [BIN|https://bin.example.com]|999999|fallback to *3DS*|",
        "{code:python}",
        "[the docs|https://docs.example.com/pay]",
        "[~accountid:5fc9e78d2730d800760becc4]",
    ):
        assert line in wiki.splitlines() or line in wiki, line


def test_adf_to_wiki_writes_cloud_documents_faithfully():
    """Hand-written ADF as Cloud stores it: marks beside words, whitespace inside marks."""
    doc = {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 3},
                "content": [{"type": "text", "text": "Edge cases"}],
            },
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "pre"},
                    {"type": "text", "text": "fix", "marks": [{"type": "strong"}]},
                    {"type": "text", "text": " and "},
                    {"type": "text", "text": "spaced ", "marks": [{"type": "em"}]},
                    {"type": "text", "text": "words"},
                    {"type": "hardBreak"},
                    {
                        "type": "text",
                        "text": "bold link",
                        "marks": [
                            {"type": "strong"},
                            {"type": "link", "attrs": {"href": "https://x.example"}},
                        ],
                    },
                    {
                        "type": "mention",
                        "attrs": {"id": "5fc9e78d2730d800760becc4", "text": "@Dana"},
                    },
                ],
            },
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {"type": "paragraph", "content": [{"type": "text", "text": "one"}]}
                        ],
                    }
                ],
            },
        ],
    }
    wiki = adf_to_wiki(doc)
    assert wiki.startswith("h3. Edge cases\n\n")
    assert "pre{*}fix{*} and _spaced_ words\n" in wiki
    assert "[*bold link*|https://x.example][~accountid:5fc9e78d2730d800760becc4]" in wiki
    assert wiki.endswith("* one")
    back = wiki_to_adf(wiki)
    assert adf_to_text(back) == adf_to_text(doc).replace("@Dana", "@5fc9e78d2730d800760becc4")


@pytest.mark.parametrize(
    "text",
    [
        "snake_case_name and __init__",
        "a - b -- c --- d",
        "C++ and 2^10 and x*y*z",
        "[ABC-12] stays a key, [not a link]",
        '{"json": {"nested": 1}} and {{literal braces}}',
        "http://unlinked.example/path_with_underscores",
        "100% *done* _really_ -gone- +under+",
        "h1. not a heading",
        "* not a list",
        "| not | a table |",
        "[~alice] is text here",
    ],
)
def test_plain_text_survives_adf_wiki_adf(text):
    """Text that looks like markup is escaped on the way to wiki markup, so nothing is lost."""
    doc = {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }
    back = wiki_to_adf(adf_to_wiki(doc))
    assert back == doc, adf_to_wiki(doc)


def test_to_text_is_robust_to_every_shape():
    """Ingestion feeds whatever the API returned: ADF, wiki, plain text, None, junk."""
    assert to_text(None) == ""
    assert to_text("plain words") == "plain words"
    assert to_text("h2. Title\n* *bold* item") == "Title\n- bold item"
    assert (
        to_text(
            {
                "type": "doc",
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x"}]}],
            }
        )
        == "x"
    )
    assert to_text(["a", {"type": "doc", "content": []}, None, "b"]) == "a\nb"
    assert to_text(42) == "42"
    junk = {
        "type": "doc",
        "content": [
            "stray string",
            {"content": "not a list"},
            {"type": "unknownBlock", "content": [{"type": "text", "text": "kept"}]},
            {"type": "mysteryInline", "text": "also kept"},
            {
                "type": "table",
                "content": [{"type": "tableRow", "content": [{"type": "tableCell"}]}],
            },
            {"type": "date", "attrs": {"timestamp": "not a number"}},
            {
                "type": "paragraph",
                "content": [None, {"type": "emoji", "attrs": {"shortName": ":tada:"}}],
            },
        ],
    }
    text = to_text(junk)
    assert "kept" in text and "also kept" in text and ":tada:" in text
    assert isinstance(adf_to_wiki(junk), str)
    assert to_adf(None) is None and to_wiki(None) is None
    adf = wiki_to_adf("x")
    assert to_adf(adf) is adf and to_wiki("h1. x") == "h1. x"
    assert to_adf({"type": "paragraph", "content": []})["type"] == "doc"


def test_sections_find_acceptance_criteria_and_edge_case_tables():
    """The policy's recognisers: a headed section, and a table inside "Edge cases"."""
    for value in (STORY, wiki_to_adf(STORY)):
        found = sections(value)
        assert [s.title for s in found] == ["Acceptance Criteria", "Edge cases"]
        criteria = section(value, "acceptance criteria:")
        assert criteria is not None and "Given a valid card, a token is stored" in criteria.text
        assert criteria.tables == []
        edge = section(value, "Edge cases")
        assert edge is not None
        assert edge.tables[0][0] == ["Case", "Input", "Expected"]
        assert edge.tables[0][2][0] == "Unknown BIN"
    assert section("no headings here", "Edge cases") is None
    nested = sections("h2. A\nalpha\nh3. B\nbeta\nh2. C\ngamma")
    assert [(s.title, s.text) for s in nested] == [
        ("A", "alpha\nbeta"),
        ("B", "beta"),
        ("C", "gamma"),
    ]


def test_the_plain_text_shortcut_gives_what_the_character_scan_gives(monkeypatch):
    lines = ["plain prose, with on-call and 2-3 days", "a *bold* word", "x_y_z and _em_",
             "see [docs]", "esc \\* star", "{{code}}", "{*}intra{*}word", "mailto:a@b.c",
             "https://x.example/a", "-strike-", "a - b", "trailing *", "", "* lone", "é ~x~"]  # fmt: skip
    shortcut = [richtext._parse_inline(line) for line in lines]
    monkeypatch.setattr(richtext, "_may_hold_markup", lambda text: True)
    assert [richtext._parse_inline(line) for line in lines] == shortcut


def test_wiki_outline_splits_the_document_at_its_headings():
    text = STORY.split("{code:python}")[0] + "h3. Sub\n* item\nh1. Top\nprose"
    lines = text.split("\n")
    outline = wiki_outline(lines)
    doc = wiki_to_adf(text)["content"]
    headings = [n for n in doc if n["type"] == "heading"]
    assert [node for _, node in outline] == headings
    starts = [i for i, _ in outline] + [len(lines)]
    pieces = [wiki_blocks(lines[: starts[0]])]
    for (start, node), end in zip(outline, starts[1:], strict=True):
        pieces.append([node, *wiki_blocks(lines[start + 1 : end])])
    assert [n for piece in pieces for n in piece] == doc
    # a block macro may hide or add heading lines: no outline, the whole text is parsed
    assert wiki_outline(["h2. A", "{code}", "h2. not a heading", "{code}"]) is None


@pytest.mark.realdata
def test_real_cloud_adf_converts_and_keeps_the_words(real_fixtures):
    """Real v3 payloads (airbyte's Cloud test instance): descriptions and comment bodies."""
    jira_dir = real_fixtures / "jira"
    search = json.loads((jira_dir / "airbyte_cloud_v3_search_issues.json").read_text())
    comments = json.loads((jira_dir / "airbyte_cloud_v3_issue_comments.json").read_text())
    bodies = [i["fields"]["description"] for i in search["issues"] if i["fields"]["description"]]
    bodies += [c["body"] for c in comments["comments"]]
    assert bodies
    for adf in bodies:
        words = [
            word
            for node in _walk(adf)
            if node.get("type") == "text"
            for word in node["text"].split()
        ]
        text = to_text(adf)
        assert text.split() == words
        wiki = to_wiki(adf)
        assert isinstance(wiki, str) and to_text(wiki).split() == words
        assert richtext.is_adf(to_adf(wiki))
