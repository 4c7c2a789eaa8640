"""Rework events and the root-cause table on hand-written payloads: link direction, the
bug window's edges, a reopen inside one category, the churn boundary, review rounds,
and a relative risk known by hand."""

import math

from dagster_project.lib.policy import Policy
from tests.analysis.handmade import Org, at, rows

AC = "* Given a card, when it expires, then the customer is told"
EDGE = "h3. Edge cases\n||Case||Expected||\n|Expired|Error|\n"
START = (at(days=1), "status", "Backlog", "Building")
DONE = (at(days=2), "status", "Building", "Shipped")


def events(con, kind: str) -> set[str]:
    return {
        k
        for (k,) in rows(
            con, "SELECT subject_key FROM analysis.rework_events WHERE kind = ?", [kind]
        )
    }


def link(org: Org, bug: dict, story: str, type_name: str, inward: str, outward: str, side: str):
    """An issue link on the bug: side 'inward' puts the story in inwardIssue (the bug
    reads "<bug> <inward> <story>")."""
    entry = {"type": {"name": type_name, "inward": inward, "outward": outward}}
    entry[f"{side}Issue"] = {"key": story}
    bug["fields"]["issuelinks"].append(entry)


def test_bugs_traced_by_direction_and_window_edges(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    org.issue("PAY-1", "Story", ac=AC, status="Shipped", history=[START, DONE])
    cases = {  # bug key: (days after the story was done, link side, counts?)
        "PAY-2": (0, "inward", True),  # created the moment the story was done
        "PAY-3": (30, "inward", True),  # the last day of the window
        "PAY-4": (30.01, "inward", False),  # just past it
        "PAY-5": (5, "outward", False),  # "PAY-5 causes PAY-1": the other direction
        "PAY-6": (-1, "inward", False),  # before the story was done
    }
    for key, (days, side, _) in cases.items():
        bug = org.issue(key, "Bug", created=at(days=2 + days))
        link(org, bug, "PAY-1", "Problem/Incident", "is caused by", "causes", side)
    relates = org.issue("PAY-7", "Bug", created=at(days=4))
    link(org, relates, "PAY-1", "Relates", "relates to", "relates to", "outward")
    blocks = org.issue("PAY-8", "Bug", created=at(days=4))
    link(org, blocks, "PAY-1", "Blocks", "is blocked by", "blocks", "inward")
    con = org.build(as_of=at(days=60))
    expected = {k for k, (_, _, counts) in cases.items() if counts} | {"PAY-7"}
    assert events(con, "bug_traced_to_story") == expected
    item = rows(con, "SELECT DISTINCT item_key FROM analysis.rework_events "
                     "WHERE kind = 'bug_traced_to_story'")  # fmt: skip
    assert item == [("PAY-1",)]  # charged to the story


def test_a_reopen_leaves_done_and_a_move_inside_done_is_none(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    org.issue("WEB-1", "Story", ac=AC, status="Shipped", history=[
        START, DONE, (at(days=5), "status", "Shipped", "Building"),
        (at(days=7), "status", "Building", "Shipped")])  # fmt: skip
    org.issue("WEB-2", "Story", ac=AC, status="Shipped", history=[START, DONE])
    con = org.build(as_of=at(days=20))
    assert events(con, "reopened") == {"WEB-1"}
    assert rows(con, "SELECT effort FROM analysis.rework_events WHERE kind = 'reopened'") == [
        (48.0,)
    ]


def test_a_move_inside_the_done_category_is_not_a_reopen(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    org.issue("WEB-3", "Story", ac=AC, status="Released", history=[
        START, DONE, (at(days=5), "status", "Shipped", "Released")])  # fmt: skip
    con = org.build(as_of=at(days=20))
    assert events(con, "reopened") == set()
    assert rows(con, "SELECT status_name FROM analysis.subjects WHERE subject_key = 'WEB-3'") == [
        ("Released",)
    ]


def diff(old_start: int, removed: list[str], new_start: int, added: list[str]) -> str:
    head = f"@@ -{old_start},{len(removed)} +{new_start},{len(added)} @@\n"
    return head + "".join(f"-{x}\n" for x in removed) + "".join(f"+{x}\n" for x in added)


def test_churn_inside_the_window_and_not_at_its_boundary(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    base = diff(0, [], 1, [f"line {n}" for n in range(1, 11)])
    org.merge_request(1, "PAY-1 add", created=at(days=0), merged=at(days=1),
                      paths=("src/a.py",), diffs={"src/a.py": base})  # fmt: skip
    rewrite = diff(3, ["line 3", "line 4"], 3, ["line 3 again", "line 4 again"])
    org.merge_request(2, "PAY-1 fix", created=at(days=5), merged=at(days=6),
                      paths=("src/a.py",), diffs={"src/a.py": rewrite}, new_file=False)  # fmt: skip
    org.merge_request(3, "PAY-1 late", created=at(days=21), merged=at(days=22),
                      paths=("src/a.py",), diffs={"src/a.py": rewrite}, new_file=False)  # fmt: skip
    elsewhere = diff(20, ["other"], 20, ["other 2"])  # lines the first MR never added
    org.merge_request(4, "PAY-1 other", created=at(days=6), merged=at(days=7),
                      paths=("src/a.py",), diffs={"src/a.py": elsewhere}, new_file=False)  # fmt: skip
    con = org.build(as_of=at(days=40))
    # !3 merged exactly 21 days after !1 (outside "less than 21 days"), but 16 after !2
    churned = rows(con, "SELECT subject_key, evidence->>'$.rewrites.key', evidence->>'$.lines' "
                        "FROM analysis.rework_events WHERE kind = 'churn' ORDER BY ALL")  # fmt: skip
    assert churned == [("shop/api!2", "shop/api!1", "[3,4]"), ("shop/api!3", "shop/api!2", "[3,4]")]


def test_review_rounds_above_the_policy(tmp_path):
    org = Org(tmp_path / "db.duckdb")
    for iid, pushes in ((1, 2), (2, 3)):
        key = org.merge_request(iid, f"PAY-{iid} work", created=at(days=0), merged=at(days=5))
        org.notes(iid, [(at(days=1), "reviewer", False, "please rename")] + [
            (at(days=2, minutes=n), "dev", True, "added 1 commit") for n in range(pushes)])  # fmt: skip
        assert key
    con = org.build(as_of=at(days=10))
    assert events(con, "many_review_rounds") == {"shop/api!2"}
    strict = Policy.model_validate({"rework": {"max_review_rounds": 1}})
    con.close()
    again = org.build(as_of=at(days=10), policy=strict)
    assert events(again, "many_review_rounds") == {"shop/api!1", "shop/api!2"}


def test_root_cause_relative_risk_known_by_hand(tmp_path):
    """4 UI stories started without an edge-case matrix (violated gate), 2 of them
    reopened; 4 clean stories, 1 reopened: RR = (2/4)/(1/4) = 2, Katz 95% interval
    exp(ln 2 +- 1.96 * sqrt(1/2 - 1/4 + 1/1 - 1/4)) = exp(ln 2 +- 1.96)."""
    org = Org(tmp_path / "db.duckdb")
    reopen = [
        (at(days=5), "status", "Shipped", "Building"),
        (at(days=6), "status", "Building", "Shipped"),
    ]
    for n in range(1, 9):
        exposed = n <= 4
        history = [START, DONE, *(reopen if n in (1, 2, 5) else [])]
        org.issue(f"WEB-{n}", "Story", ac=AC, labels=("ui",), status="Shipped",
                  description="no table" if exposed else EDGE, history=history)  # fmt: skip
        org.merge_request(n, f"WEB-{n} work", created=at(days=1), merged=at(days=2))
    org.issue(
        "WEB-9",
        "Story",
        ac=AC,
        labels=("ui",),
        status="Shipped",
        description=EDGE,
        history=[START, (at(days=90), "status", "Building", "Shipped")],
    )  # too young
    org.issue("WEB-10", "Story", ac=AC, labels=("ui",), description=EDGE)  # not done
    con = org.build(as_of=at(days=100))
    got = rows(con, "SELECT exposed_items, exposed_reworked, clean_items, clean_reworked, "
                    "relative_risk, ci_low, ci_high, corrected, excluded_too_young, "
                    "excluded_not_done FROM analysis.rework_root_causes WHERE factor = 'gate:ui_gate'")  # fmt: skip
    low, high = math.exp(math.log(2) - 1.96), math.exp(math.log(2) + 1.96)
    assert got == [(4, 2, 4, 1, 2.0, round(low, 4), round(high, 4), False, 1, 1)]
