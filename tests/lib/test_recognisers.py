"""Recognisers over Jira field values (v2 wiki, v3 ADF, changelog text) and storage XHTML."""

from __future__ import annotations

import json

import duckdb
import pytest

from dagster_project.lib.chainsql import register_functions
from dagster_project.lib.recognisers import (
    decode_rich,
    has_sections,
    is_placeholder,
    meaningful_text,
    section_body,
    section_has_table,
    section_present,
    storage_headings,
)

# -- Jira payload values --------------------------------------------------------------------

# REST v2 descriptions (wiki markup), as the JSON text of the payload value.
WIKI_FULL = json.dumps(
    "As a shopper I want to save my cart.\n\n"
    "h2. Acceptance Criteria\n"
    "* Given a signed-in shopper\n"
    "* When they close the browser\n"
    "* Then the cart is kept for 30 days\n\n"
    "h3. Edge cases\n"
    "||Case||Expected||\n"
    "|Empty cart|Nothing is saved|\n"
    "|Item out of stock|Item is flagged|\n\n"
    "h2. Notes\n"
    "Design in Figma."
)
WIKI_LIST_ONLY = json.dumps(
    "h2. Acceptance Criteria\n"
    "* Given a signed-in shopper, the cart is kept\n\n"
    "h3. Edge cases\n"
    "* Empty cart\n"
    "* Item out of stock\n"
)
WIKI_PLACEHOLDERS = json.dumps("h2. Acceptance Criteria\nTBD\n\nh3. Edge cases\n* TBD\n")
WIKI_NUMBERED = json.dumps(
    "h2. Acceptance Criteria\n"
    "# Given a signed-in shopper\n"
    "# When they close the browser\n"
    "# Then the cart is kept\n"
)

# The same content as REST v3 ADF documents.
ADF_FULL = {
    "type": "doc",
    "version": 1,
    "content": [
        {
            "type": "paragraph",
            "content": [{"type": "text", "text": "As a shopper I want to save my cart."}],
        },
        {
            "type": "heading",
            "attrs": {"level": 2},
            "content": [{"type": "text", "text": "Acceptance Criteria"}],
        },
        {
            "type": "bulletList",
            "content": [
                {
                    "type": "listItem",
                    "content": [
                        {
                            "type": "paragraph",
                            "content": [{"type": "text", "text": "Given a signed-in shopper"}],
                        }
                    ],
                },
                {
                    "type": "listItem",
                    "content": [
                        {
                            "type": "paragraph",
                            "content": [{"type": "text", "text": "Then the cart is kept"}],
                        }
                    ],
                },
            ],
        },
        {
            "type": "heading",
            "attrs": {"level": 3},
            "content": [{"type": "text", "text": "Edge cases"}],
        },
        {
            "type": "table",
            "attrs": {"isNumberColumnEnabled": False, "layout": "default"},
            "content": [
                {
                    "type": "tableRow",
                    "content": [
                        {
                            "type": "tableHeader",
                            "attrs": {},
                            "content": [
                                {"type": "paragraph", "content": [{"type": "text", "text": "Case"}]}
                            ],
                        },
                        {
                            "type": "tableHeader",
                            "attrs": {},
                            "content": [
                                {
                                    "type": "paragraph",
                                    "content": [{"type": "text", "text": "Expected"}],
                                }
                            ],
                        },
                    ],
                },
                {
                    "type": "tableRow",
                    "content": [
                        {
                            "type": "tableCell",
                            "attrs": {},
                            "content": [
                                {
                                    "type": "paragraph",
                                    "content": [{"type": "text", "text": "Empty cart"}],
                                }
                            ],
                        },
                        {
                            "type": "tableCell",
                            "attrs": {},
                            "content": [
                                {
                                    "type": "paragraph",
                                    "content": [{"type": "text", "text": "Nothing is saved"}],
                                }
                            ],
                        },
                    ],
                },
            ],
        },
        {
            "type": "heading",
            "attrs": {"level": 2},
            "content": [{"type": "text", "text": "Notes"}],
        },
        {"type": "paragraph", "content": [{"type": "text", "text": "Design in Figma."}]},
    ],
}
ADF_LIST_ONLY = {
    "type": "doc",
    "version": 1,
    "content": [
        {
            "type": "heading",
            "attrs": {"level": 2},
            "content": [{"type": "text", "text": "Acceptance Criteria"}],
        },
        {
            "type": "paragraph",
            "content": [{"type": "text", "text": "Given a signed-in shopper, the cart is kept"}],
        },
        {
            "type": "heading",
            "attrs": {"level": 3},
            "content": [{"type": "text", "text": "Edge cases"}],
        },
        {
            "type": "bulletList",
            "content": [
                {
                    "type": "listItem",
                    "content": [
                        {"type": "paragraph", "content": [{"type": "text", "text": "Empty cart"}]}
                    ],
                }
            ],
        },
    ],
}
ADF_PLACEHOLDERS = {
    "type": "doc",
    "version": 1,
    "content": [
        {
            "type": "heading",
            "attrs": {"level": 2},
            "content": [
                {"type": "text", "text": "Acceptance Criteria", "marks": [{"type": "strong"}]}
            ],
        },
        {
            "type": "bulletList",
            "content": [
                {
                    "type": "listItem",
                    "content": [
                        {"type": "paragraph", "content": [{"type": "text", "text": "TBD"}]}
                    ],
                }
            ],
        },
        {
            "type": "heading",
            "attrs": {"level": 3},
            "content": [{"type": "text", "text": "Edge cases"}],
        },
        {
            "type": "table",
            "content": [
                {
                    "type": "tableRow",
                    "content": [
                        {
                            "type": "tableHeader",
                            "content": [
                                {"type": "paragraph", "content": [{"type": "text", "text": "Case"}]}
                            ],
                        }
                    ],
                },
                {
                    "type": "tableRow",
                    "content": [
                        {
                            "type": "tableCell",
                            "content": [
                                {"type": "paragraph", "content": [{"type": "text", "text": "n/a"}]}
                            ],
                        }
                    ],
                },
                {
                    "type": "tableRow",
                    "content": [{"type": "tableCell", "content": [{"type": "paragraph"}]}],
                },
            ],
        },
    ],
}

MARKDOWN_FULL = json.dumps(
    "# Save cart\n"
    "Shoppers keep their cart.\n\n"
    "## Acceptance Criteria\n"
    "1. Given a signed-in shopper\n"
    "2. Then the cart is kept\n\n"
    "### Edge cases\n"
    "| Case | Expected |\n"
    "|------|:--------:|\n"
    "| Empty cart | Nothing is saved |\n\n"
    "## Notes\n"
    "Design in Figma.\n"
)
MARKDOWN_LIST_ONLY = "## Acceptance Criteria\n- Given x\n\n### Edge cases\n- Empty cart\n"

# A custom "Acceptance Criteria" field (textarea) in each shape it arrives in.
AC_FIELD_V2 = json.dumps("* Given a signed-in shopper\n* Then the cart is kept")
AC_FIELD_V3 = json.dumps(
    {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "orderedList",
                "attrs": {"order": 1},
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {
                                "type": "paragraph",
                                "content": [{"type": "text", "text": "Given a shopper"}],
                            }
                        ],
                    }
                ],
            }
        ],
    }
)
AC_FIELD_CHANGELOG = "* Given a signed-in shopper\n* Then the cart is kept"
AC_FIELD_V3_TBD = json.dumps(
    {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "TBD"}]}],
    }
)


# -- decode_rich ----------------------------------------------------------------------------


def test_decode_rich_handles_every_input_shape():
    assert decode_rich('"h2. AC\\n* Given"') == "h2. AC\n* Given"
    assert decode_rich(json.dumps(ADF_FULL)) == ADF_FULL
    assert decode_rich(ADF_FULL) is ADF_FULL
    assert decode_rich("null") == ""
    assert decode_rich(None) == ""
    assert decode_rich(AC_FIELD_CHANGELOG) == AC_FIELD_CHANGELOG
    # Looks like JSON but is wiki markup or quoted prose: kept as it is.
    assert decode_rich("{code}x = 1{code}") == "{code}x = 1{code}"
    assert decode_rich('"Quoted" says the user') == '"Quoted" says the user'


# -- placeholders ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "  \n ", None, "TBD", "tbc.", "-", "--", "* TBD", "- n/a", "N/A", "…", "...", "?",
     "TODO!", "xxx", "Placeholder", "To be defined", "to be done", "1. TBD", "TBD / TBC",
     "*TBD*", "{{TBD}}", "* TBD\n* -\n# n/a"],
)  # fmt: skip
def test_placeholder_text_carries_no_content(text):
    assert is_placeholder(text)


@pytest.mark.parametrize(
    "text", ["Given a user", "None of the above applies", "TBD\nGiven a user", "42", "n/a: see X"]
)
def test_real_text_is_content(text):
    assert not is_placeholder(text)


def test_placeholders_can_be_overridden_by_policy():
    assert is_placeholder("Pending", ["pending"])
    assert not is_placeholder("TBD", ["pending"])
    assert not is_placeholder("TBD", [])
    assert is_placeholder("- ...", [])  # nothing but punctuation is never content
    assert is_placeholder("TBD", None)  # None means the defaults


# -- meaningful_text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [AC_FIELD_V2, AC_FIELD_V3, AC_FIELD_CHANGELOG, json.loads(AC_FIELD_V3), "Given x"]
)
def test_custom_ac_field_with_content_is_meaningful(value):
    assert meaningful_text(value)


@pytest.mark.parametrize(
    "value",
    [None, "null", '"TBD"', '"* TBD"', AC_FIELD_V3_TBD, "* TBD", "n/a", "…", '"-"', '""', ""],
)
def test_empty_or_placeholder_ac_field_is_not_meaningful(value):
    assert not meaningful_text(value)


# -- sections: wiki markup (v2) -------------------------------------------------------------


def test_wiki_sections_are_found_with_their_bodies():
    body = section_body(WIKI_FULL, "Acceptance Criteria")
    assert body is not None and "Given a signed-in shopper" in body
    assert "Then the cart is kept for 30 days" in body
    assert "Design in Figma" not in body  # the next h2 ends the section
    assert section_body(WIKI_FULL, "edge cases:") == (
        "Case | Expected\nEmpty cart | Nothing is saved\nItem out of stock | Item is flagged"
    )
    assert section_body(WIKI_FULL, "Out of scope") is None
    assert section_present(WIKI_FULL, "acceptance criteria")
    assert section_has_table(WIKI_FULL, "Edge cases")


def test_wiki_heading_with_list_only_has_no_table():
    assert section_present(WIKI_LIST_ONLY, "Edge cases")
    assert not section_has_table(WIKI_LIST_ONLY, "Edge cases")


def test_wiki_placeholder_sections_are_not_present():
    assert section_body(WIKI_PLACEHOLDERS, "Acceptance Criteria") == "TBD\nEdge cases\n- TBD"
    assert not section_present(WIKI_PLACEHOLDERS, "Acceptance Criteria")
    assert not section_present(WIKI_PLACEHOLDERS, "Edge cases")


def test_wiki_numbered_list_is_content_not_headings():
    body = section_body(WIKI_NUMBERED, "Acceptance Criteria")
    assert (
        body
        == "1. Given a signed-in shopper\n2. When they close the browser\n3. Then the cart is kept"
    )
    assert section_present(WIKI_NUMBERED, "Acceptance Criteria")
    assert section_body(WIKI_NUMBERED, "Given a signed-in shopper") is None
    # With any wiki heading in the text, "# ..." lines stay list items.
    mixed = "h2. Summary\nSave carts.\n# Acceptance Criteria\n# Given x"
    assert section_body(mixed, "Acceptance Criteria") is None


def test_heading_markers_and_colon_are_tolerated_but_bold_paragraphs_are_not_headings():
    assert section_present("h3. *Acceptance Criteria:*\n* Given x", "Acceptance Criteria")
    assert section_present("## **Acceptance Criteria**\n- Given x", "acceptance criteria")
    assert section_body("*Acceptance Criteria*\n* Given x", "Acceptance Criteria") is None


def test_subsection_heading_alone_is_not_content():
    value = "h2. Acceptance Criteria\n* TBD\nh3. Details\n-\nh2. Notes\nReal notes"
    assert section_body(value, "Acceptance Criteria") == "- TBD\nDetails\n-"
    assert not section_present(value, "Acceptance Criteria")


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("||Case||Expected||\n|Empty|Error|", True),
        ("|Case|Expected|\n|Empty|Error|", True),  # headerless: first row is the header
        ("||Case||Expected||", False),  # header only
        ("|Case|Expected|", False),
        ("||Case||Expected||\n|TBD|-|\n| | |", False),  # data cells all placeholders
        ("||Case||Expected||\n|Empty|TBD|", True),
        ("Case: Empty, Expected: Error", False),  # prose
    ],
)
def test_table_needs_a_data_row_with_content(table, expected):
    assert section_has_table(f"h3. Edge cases\n{table}\n", "Edge cases") is expected


# -- sections: ADF (v3) -------------------------------------------------------------------


@pytest.mark.parametrize("value", [ADF_FULL, json.dumps(ADF_FULL)])
def test_adf_sections_match_wiki(value):
    body = section_body(value, "Acceptance Criteria")
    assert body == "- Given a signed-in shopper\n- Then the cart is kept\nEdge cases\n" + (
        "Case | Expected\nEmpty cart | Nothing is saved"
    )
    assert section_present(value, "Acceptance Criteria")
    assert section_has_table(value, "Edge cases")
    assert not section_has_table(value, "Notes")
    assert section_body(value, "Notes") == "Design in Figma."


def test_adf_list_only_and_placeholders():
    assert section_present(ADF_LIST_ONLY, "Edge cases")
    assert not section_has_table(ADF_LIST_ONLY, "Edge cases")
    assert not section_has_table(json.dumps(ADF_LIST_ONLY), "Edge cases")
    assert not section_present(ADF_PLACEHOLDERS, "Acceptance Criteria")  # bold heading ok
    assert section_body(ADF_PLACEHOLDERS, "Acceptance Criteria") == "- TBD\nEdge cases\nCase\nn/a"
    # Table header cells are labels: a header over placeholder rows is no content.
    assert not section_present(ADF_PLACEHOLDERS, "Edge cases")
    assert not section_has_table(json.dumps(ADF_PLACEHOLDERS), "Edge cases")


# -- sections: Markdown ---------------------------------------------------------------------


def test_markdown_sections_and_pipe_table():
    assert section_body(MARKDOWN_FULL, "Acceptance Criteria") == (
        "1. Given a signed-in shopper\n2. Then the cart is kept\n"
        "Edge cases\nCase | Expected\nEmpty cart | Nothing is saved"
    )
    assert section_present(MARKDOWN_FULL, "Acceptance Criteria")
    assert section_has_table(MARKDOWN_FULL, "Edge cases")
    assert section_body(MARKDOWN_FULL, "Save cart").startswith("Shoppers keep their cart.")
    assert not section_has_table(MARKDOWN_LIST_ONLY, "Edge cases")
    assert section_present(MARKDOWN_LIST_ONLY, "Edge cases")
    assert not section_present("## Acceptance Criteria\n- TBD\n## Notes\nx", "Acceptance Criteria")


def test_markdown_table_without_data_rows_is_not_a_table():
    assert not section_has_table("## Edge cases\n| Case | Expected |\n|---|---|\n", "Edge cases")
    assert not section_has_table("## Edge cases\n| Case |\n|---|\n| TBD |\n", "Edge cases")


def test_markdown_code_fence_hash_lines_are_not_headings():
    value = "## Acceptance Criteria\n```\n# Edge cases\n```\nGiven x\n"
    assert section_body(value, "Edge cases") is None
    assert "Given x" in section_body(value, "Acceptance Criteria")


# -- totality -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        '{"type": "doc", "content": "oops"}',
        '{"type": "doc", "content": [1, null, {"type": "heading"}]}',
        '{"broken": ',
        '"unterminated',
        "[1, 2",
        {"type": "heading", "attrs": {"level": "x"}, "content": [{"text": 5}]},
        12,
        ["TBD", {"type": "doc", "content": []}],
    ],
)
def test_malformed_values_never_raise(value):
    assert isinstance(meaningful_text(value), bool)
    assert section_body(value, "Acceptance Criteria") in (None, "")
    assert section_present(value, "Acceptance Criteria") is False
    assert section_has_table(value, None) is False


# -- Confluence storage headings ------------------------------------------------------------

RUNBOOK = (
    "<p>Status: Approved</p>"
    "<h1>Payments &amp; Refunds <em>runbook</em></h1>"
    "<h2><strong>Dash</strong>boards</h2><p>See Grafana.</p>"
    "<h2>Alerts&nbsp;&amp;\n  paging:</h2>"
    '<h3>On call <ac:structured-macro ac:name="status">'
    '<ac:parameter ac:name="title">Draft</ac:parameter></ac:structured-macro></h3>'
    "<h4></h4>"
    '<ac:structured-macro ac:name="code"><ac:plain-text-body>'
    "<![CDATA[<h2>Not a heading</h2>]]></ac:plain-text-body></ac:structured-macro>"
    "<h5>Escalation &lt;L2&gt;</h5>"
)


def test_storage_headings_unescape_strip_and_collapse():
    assert storage_headings(RUNBOOK) == [
        "Payments & Refunds runbook",
        "Dashboards",
        "Alerts & paging:",
        "On call",
        "Escalation <L2>",
    ]
    assert storage_headings(None) == []
    assert storage_headings("<p>no headings</p>") == []
    assert storage_headings("<h2>Unclosed <b>heading") == ["Unclosed heading"]


def test_has_sections_requires_every_heading():
    assert has_sections(RUNBOOK, ["dashboards", "Alerts & Paging"])
    assert has_sections(RUNBOOK, ["Dashboards:"])
    assert not has_sections(RUNBOOK, ["Dashboards", "Alerts"])
    assert not has_sections("<p>Dashboards</p><p>Alerts</p>", ["Dashboards"])
    assert not has_sections(None, ["Dashboards"])
    assert not has_sections(RUNBOOK, None)


# -- SQL ------------------------------------------------------------------------------------


@pytest.fixture
def con():
    connection = duckdb.connect()
    register_functions(connection)
    register_functions(connection)  # idempotent
    yield connection
    connection.close()


def test_sql_functions(con):
    con.execute("CREATE TABLE f (v VARCHAR)")
    con.executemany(
        "INSERT INTO f VALUES (?)",
        [[AC_FIELD_V2], [AC_FIELD_V3], ['"TBD"'], ["null"], [None], [WIKI_FULL]],
    )
    rows = con.execute(
        "SELECT driftgate_meaningful(v, NULL), driftgate_meaningful(v, ['given a shopper']),"
        " driftgate_section_present(v, 'Acceptance Criteria', NULL),"
        " driftgate_section_has_table(v, 'Edge cases') FROM f ORDER BY rowid"
    ).fetchall()
    assert rows == [
        (True, True, False, False),
        (True, False, False, False),
        (False, True, False, False),
        (False, False, False, False),
        (False, False, False, False),
        (True, True, True, True),
    ]
    assert con.execute(
        "SELECT driftgate_section_present(?, 'Acceptance Criteria', []),"
        " driftgate_section_present(?, 'Acceptance Criteria', ['tbd']),"
        " driftgate_section_present(NULL, NULL, NULL), driftgate_section_has_table(NULL, NULL)",
        [WIKI_PLACEHOLDERS, WIKI_PLACEHOLDERS],
    ).fetchone() == (True, False, False, False)


def test_sql_storage_functions(con):
    assert con.execute("SELECT driftgate_storage_headings(?)", [RUNBOOK]).fetchone()[0][:2] == [
        "Payments & Refunds runbook",
        "Dashboards",
    ]
    assert con.execute(
        "SELECT driftgate_storage_headings(NULL), driftgate_has_sections(?, ['Dashboards',"
        " 'alerts & paging']), driftgate_has_sections(?, ['Runbook']),"
        " driftgate_has_sections(NULL, ['Dashboards']), driftgate_has_sections(?, NULL)",
        [RUNBOOK, RUNBOOK, RUNBOOK],
    ).fetchone() == ([], True, False, False, False)
