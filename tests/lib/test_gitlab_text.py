"""Path globs, diff line counts and issue keys: the rules the gates and links stand on.

A glob that matches too much marks a file as a contract test that is not one (a gate
passes wrongly); one that matches too little hides a spec (a gap that is not there).
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from dagster_project.lib.chainsql import policy_variables, register_functions
from dagster_project.lib.gitlab_text import (
    diff_line_counts,
    git_blob_id,
    glob_match,
    glob_pieces,
    issue_keys,
    matches_any,
    path_kinds,
)
from dagster_project.lib.policy import Ingest, load_policy
from dagster_project.lib.sql import run_sql

DEFAULTS = Ingest()


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        # leading **/ : zero or more directories
        ("openapi.yaml", "**/openapi*.y*ml", True),
        ("api/openapi.yaml", "**/openapi*.y*ml", True),
        ("services/pay/api/openapi-v2.yml", "**/openapi*.y*ml", True),
        ("api/openapi.json", "**/openapi*.y*ml", False),
        ("api/my-openapi.yaml", "**/openapi*.y*ml", False),
        # * never crosses a slash
        ("api/v1/openapi.yaml", "api/*.yaml", False),
        ("api/openapi.yaml", "api/*.yaml", True),
        # trailing /** : everything inside the directory, not a file of that name
        ("tests/contract/ledger/refund_events_contract.py", "**/contract*/**", True),
        ("contract/x.py", "**/contract*/**", True),
        ("contracts/a/b/c.json", "**/contract*/**", True),
        ("src/contract_client.py", "**/contract*/**", False),
        ("tests/contract", "**/contract*/**", False),
        # middle /**/ : zero or more directories
        ("a/b", "a/**/b", True),
        ("a/x/y/b", "a/**/b", True),
        ("a/x/y/c", "a/**/b", False),
        # last-segment wildcards
        ("tests/payout_contract_test.py", "**/*contract*test*", True),
        ("tests/contract_helpers.py", "**/*contract*test*", False),
        ("x/pacts/deep/p.json", "**/pacts/**", True),
        ("x/pacts.json", "**/pacts/**", False),
        ("src/observability/metrics.ts", "**/observability/**", True),
        ("src/observability-notes.md", "**/observability/**", False),
        # anchored at the repository root, case-sensitive
        ("docs/openapi.yaml", "openapi.yaml", False),
        ("api/OpenAPI.yaml", "**/openapi*.y*ml", False),
        # ? and character classes stay inside a segment
        ("a/b.c", "a?b.c", False),
        ("v1/spec.yaml", "v[0-9]/spec.yaml", True),
        ("vx/spec.yaml", "v[!0-9]/spec.yaml", True),
        # a ** inside a segment is a plain *
        ("abc/d", "a**/d", True),
        ("a/bc/d", "a**/d", False),
        # special characters are literal
        ("api/spec(1).yaml", "api/spec(1).yaml", True),
        ("api/specX1).yaml", "api/spec(1).yaml", False),
    ],
)
def test_glob_semantics(path: str, pattern: str, expected: bool) -> None:
    assert glob_match(path, pattern) is expected


def test_default_policy_globs_classify_the_handmade_repository() -> None:
    kinds = {
        "contract_test": DEFAULTS.contract_test_globs,
        "spec": DEFAULTS.spec_globs,
        "observability": DEFAULTS.observability_globs,
    }
    assert path_kinds("api/asyncapi.yaml", kinds) == ["spec"]
    assert path_kinds("tests/contract/payments/pacts/ledger-payments-api.json", kinds) == [
        "contract_test"
    ]
    assert path_kinds("observability/dashboards/payouts.json", kinds) == ["observability"]
    assert path_kinds("src/payments_api/refunds.py", kinds) == []
    assert not matches_any(None, DEFAULTS.spec_globs)
    assert not matches_any("api/openapi.yaml", [])


def test_diff_counts_follow_hunk_headers() -> None:
    # A removed line whose text starts with "--" must count as removed, not as a header.
    diff = "@@ -1,3 +1,3 @@\n context\n--- a SQL comment\n+-- the new comment\n context\n"
    assert diff_line_counts(diff) == (1, 1)


def test_diff_counts_several_hunks_and_markers() -> None:
    diff = (
        "--- a/app.py\n+++ b/app.py\n"
        "@@ -1,2 +1,3 @@\n a\n+b\n c\n\\ No newline at end of file\n"
        "@@ -10 +11,0 @@\n-gone\n"
    )
    assert diff_line_counts(diff) == (1, 1)


def test_diff_counts_lines_past_an_undercounting_header() -> None:
    assert diff_line_counts("@@ -1 +1 @@\n-a\n+b\n+c\n") == (2, 1)


@pytest.mark.parametrize("diff", [None, "", "Binary files a/x.png and b/x.png differ\n"])
def test_diff_counts_of_diffs_gitlab_left_out(diff: str | None) -> None:
    assert diff_line_counts(diff) == (0, 0)


def test_issue_keys_are_whole_words() -> None:
    text = "feature/PAY-21-refunds fixes PAY-211, xPAY-9 and (WEB-4); pay-5; PAY-21 again"
    assert issue_keys(text) == ["PAY-21", "PAY-211", "WEB-4"]
    assert "PAY-21" not in issue_keys("PAY-211")
    assert issue_keys("PAY-21_x PAY-0 PAY-") == []
    assert issue_keys(None) == []


def test_git_blob_id_matches_git() -> None:
    # The id GitLab documents for this README, and `git hash-object` of "x\n".
    assert git_blob_id(b"This is a *README*!") == "0eba9dff767611060181e0423a1de2941d27efc8"
    assert git_blob_id(b"x\n") == "587be6b4c3f93f93c489c0111bba5596147a26cb"


@pytest.mark.parametrize(
    ("pattern", "pieces"),
    [("**/contract*/**", ("contract",)), ("**/*contract*test*", ("contract", "test")),
     ("/api/*.openapi.json ", ("api", ".openapi.json")), ("src/[ab]x/*.py", ("src", ".py")),
     ("**", ()), ("", ())],
)  # fmt: skip
def test_glob_pieces_are_text_every_match_contains(pattern: str, pieces: tuple) -> None:
    assert glob_pieces(pattern) == pieces
    for path in ("api/v1.openapi.json", "tests/contract/x_test.py", "src/ax/m.py", "a/b"):
        if glob_match(path, pattern):
            assert all(piece in path for piece in pieces)


def test_sql_glob_matches_answers_as_the_python_glob() -> None:
    """The prelude's glob_matches (pieces tested in SQL first) against matches_any."""
    con = duckdb.connect()
    register_functions(con)
    run_sql(con, "prelude", policy_variables(load_policy(), datetime.now(UTC)), transaction=False)
    globs = ["**/contract*/**", "**/*contract*test*", "src/[ab]x/*.py", "**/pacts/**"]
    paths = ["tests/contract/x.py", "contract/x", "src/contract_x.py", "a/my_contract_test.go",
             "src/ax/m.py", "src/cx/m.py", "pacts/p.json", "x/pacts/p.json", None]  # fmt: skip
    got = con.execute(
        "SELECT glob_matches(p, ?) FROM unnest(?) WITH ORDINALITY t(p, n) ORDER BY n",
        [globs, paths],
    ).fetchall()
    assert [g for (g,) in got] == [matches_any(p, globs) for p in paths]
    assert con.execute(
        "SELECT glob_matches('a/contract/b', []), glob_matches('x', NULL)"
    ).fetchone() == (False, False)
