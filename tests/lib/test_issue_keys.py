"""The one issue-key rule: whole words, branch names and URLs, nothing inside a longer key."""

import pytest

from dagster_project.lib import gitlab_text, storage_format
from dagster_project.lib.issue_keys import browse_link_key, find_issue_keys, is_issue_key


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        # branch names: a preceding "/" or "-" is allowed, a following "-word" too
        ("feature/PAY-21-refunds", ["PAY-21"]),
        ("bugfix-PAY-21", ["PAY-21"]),
        ("PAY-21/hotfix", ["PAY-21"]),
        ("release/PAY-21_fix", []),  # "_" glues the key to the next word
        # never inside a longer key or word
        ("ABC-12 only", ["ABC-12"]),
        ("XABC-1", ["XABC-1"]),
        ("xABC-1 1ABC-1 _ABC-1", []),
        ("ABC-1x ABC-1_2", []),
        ("ABC-1-2 is a range, ABC-3-4. (ABC-5-6) ABC-7-8/x", []),
        ("ABC-1-fix", ["ABC-1"]),
        ("fix/MOB-7-500-error-when-x", ["MOB-7"]),  # a slug that starts with a number
        ("feature/PAY-21-2fa-login", ["PAY-21"]),
        # URLs
        ("https://jira.acme.example/browse/PAY-7", ["PAY-7"]),
        ("https://jira.acme.example/browse/PAY-7?focusedCommentId=3#c3", ["PAY-7"]),
        ("https://jira.acme.example/browse/PAY-7x", []),
        # punctuation
        ("(ABC-1), ABC-2. ABC-3: ABC-4/ABC-5", ["ABC-1", "ABC-2", "ABC-3", "ABC-4", "ABC-5"]),
        ("[ABC-1] 'ABC-2' \"ABC-3\" ABC-4's ABC-5!", ["ABC-1", "ABC-2", "ABC-3", "ABC-4", "ABC-5"]),
        ("ABC-1\nABC-2\tABC-3", ["ABC-1", "ABC-2", "ABC-3"]),
        # what is not a key
        ("abc-1 Abc-1 aBC-1", []),
        ("ABC-0 ABC-01 ABC- -1 1A-2", []),
        # letters and digits of other scripts glue like ASCII ones
        ("éABC-1 ABC-1é ABC-1٣ ЖABC-1", []),
        ("«ABC-1» ABC-2… —ABC-3", ["ABC-1", "ABC-2", "ABC-3"]),
        # underscores and digits belong to the project key
        ("MY_PROJ-4 A2B-5", ["MY_PROJ-4", "A2B-5"]),
        # first occurrence order, each once
        ("PAY-2 then PAY-1 then PAY-2", ["PAY-2", "PAY-1"]),
        ("", []),
        (None, []),
    ],
)
def test_find_issue_keys(text, keys):
    assert find_issue_keys(text) == keys


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        ("PAY-21", True),
        ("MY_PROJ-4", True),
        ("A-1", True),
        ("pay-21", False),
        ("PAY-0", False),
        ("PAY-021", False),
        ("PAY-21 ", False),
        (" PAY-21", False),
        ("PAY-21x", False),
        ("PAY-21-2", False),
        ("1PAY-2", False),
        ("_PAY-2", False),
        ("", False),
        (None, False),
    ],
)
def test_is_issue_key(s, expected):
    assert is_issue_key(s) is expected


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://jira.acme.example/browse/ACC-4", "ACC-4"),
        ("https://jira.acme.example/browse/acc-4", "ACC-4"),  # Jira takes any case
        ("https://jira.acme.example/jira/browse/ACC-4?page=x", "ACC-4"),
        ("/browse/ACC-4#comment", "ACC-4"),
        ("/browse/ACC-4/", "ACC-4"),
        ("/browse/ACC-4x", None),
        ("/browse/ACC-4-5", None),
        ("/browse/ACC-0", None),
        ("/browse/", None),
        ("https://jira.acme.example/projects/ACC-4", None),
        ("", None),
        (None, None),
    ],
)
def test_browse_link_key(url, key):
    assert browse_link_key(url) == key


def test_gitlab_and_confluence_text_use_the_same_rule():
    text = "feature/PAY-21-refunds bugfix-PAY-22 ABC-1-2 PAY-211 xPAY-9"
    assert gitlab_text.issue_keys(text) == find_issue_keys(text) == ["PAY-21", "PAY-22", "PAY-211"]
    mentioned = storage_format.issue_mentions(f"<p>{text}</p>")
    assert [k for k, by in mentioned if by == "text"] == find_issue_keys(text)
