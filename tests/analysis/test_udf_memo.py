"""The analysis layer's text functions answer from the memo of the table's last build:
the same rows as computing every answer, nothing recomputed for texts already judged,
and nothing read that another version of the code wrote."""

from __future__ import annotations

import duckdb

from dagster_project.lib import udf_memo
from dagster_project.lib.chainsql import build_table
from dagster_project.lib.policy import load_policy
from dagster_project.lib.udf_memo import UdfMemo

# Tables whose SQL calls the memoized functions (recognisers, text and spec diffs).
TABLES = ("requirement_spans", "findings", "rework_events")


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    return sorted(
        con.execute(f"SELECT * EXCLUDE (as_of) FROM analysis.{table}").fetchall(),  # noqa: S608
        key=repr,
    )


def test_a_warm_memo_gives_the_rows_of_a_cold_build(judged_copy):
    con, as_of = judged_copy
    con.execute("DROP SCHEMA IF EXISTS analysis_state CASCADE")
    cold, warm = {}, {}
    for table in TABLES:
        build_table(con, "analysis", table, load_policy(), as_of, reuse=False)
        cold[table] = _rows(con, table)
    entries = con.execute(
        "SELECT table_name, count(*), count(DISTINCT code) FROM analysis_state.udf_memo "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert {name for name, _, _ in entries} == {f"analysis.{t}" for t in TABLES}
    assert all(count > 0 and codes == 1 for _, count, codes in entries)
    for table in TABLES:
        build_table(con, "analysis", table, load_policy(), as_of, reuse=False)
        warm[table] = _rows(con, table)
    assert warm == cold
    assert all(cold[t] for t in TABLES)


def test_the_memo_is_what_answers(judged_copy, monkeypatch):
    """A memo whose answers are all False removes the requirements the recognisers found;
    the same memo under another code fingerprint is ignored."""
    con, as_of = judged_copy
    build_table(con, "analysis", "requirement_spans", load_policy(), as_of, reuse=False)
    judged = _rows(con, "requirement_spans")
    con.execute(
        "UPDATE analysis_state.udf_memo SET answer = 'false' "
        "WHERE table_name = 'analysis.requirement_spans'"
    )
    build_table(con, "analysis", "requirement_spans", load_policy(), as_of, reuse=False)
    poisoned = _rows(con, "requirement_spans")
    assert len(poisoned) < len(judged)
    assert "acceptance_criteria" not in {row[2] for row in poisoned}

    con.execute(
        "UPDATE analysis_state.udf_memo SET answer = 'false' "
        "WHERE table_name = 'analysis.requirement_spans'"
    )
    monkeypatch.setattr(udf_memo, "code_fingerprint", lambda: "another version")
    build_table(con, "analysis", "requirement_spans", load_policy(), as_of, reuse=False)
    assert _rows(con, "requirement_spans") == judged


def test_answers_are_computed_once_and_unused_ones_dropped():
    con = duckdb.connect()
    calls: list[tuple] = []

    def shout(text: str | None, mark: str | None) -> str | None:
        calls.append((text, mark))
        return None if text is None else text.upper() + (mark or "")

    def run(texts: list[str | None]) -> list:
        memo = UdfMemo.load(con, "analysis.t")
        try:
            con.remove_function("shout")
        except duckdb.InvalidInputException:
            pass
        con.create_function(
            "shout", memo.wrap("shout", shout), ["VARCHAR", "VARCHAR"], "VARCHAR",
            null_handling="special",
        )  # fmt: skip
        out = con.execute(
            "SELECT shout(t, '!') FROM (SELECT unnest(?::VARCHAR[]) AS t, generate_subscripts(?::VARCHAR[], 1) AS i) ORDER BY i",
            [texts, texts],
        ).fetchall()
        memo.save(con)
        return [row[0] for row in out]

    assert run(["a", "b", None, "None"]) == ["A!", "B!", None, "NONE!"]
    assert sorted(calls, key=repr) == sorted(
        [("a", "!"), ("b", "!"), (None, "!"), ("None", "!")], key=repr
    )
    calls.clear()
    assert run(["b", None]) == ["B!", None]
    assert calls == []  # both answered from the memo
    assert con.execute("SELECT count(*) FROM analysis_state.udf_memo").fetchone()[0] == 2
    assert run(["a"]) == ["A!"]
    assert calls == [("a", "!")]  # dropped by the build before, so computed again


def test_calls_that_differ_in_any_argument_have_different_digests():
    """Arguments are hashed with their kind and length: no two calls hash the same text,
    however their texts split or escape."""
    calls = [
        ("f", ("ab", "c")),
        ("f", ("a", "bc")),
        ("f", ("abc",)),
        ("f", (None, "x")),
        ("f", ("None", "x")),
        ("f", ("x", ["a"])),
        ("f", ("x", '["a"]')),
        ("f", ("x", None)),
        ("f", ("x", [])),
        ("f", ("é\ud800",)),  # a lone surrogate, as DuckDB may hand a broken text over
        ("fa", ("b",)),
        ("f", ("ab",)),
    ]
    digests = [udf_memo._call_digest(name, args) for name, args in calls]
    assert len(set(digests)) == len(calls)
    assert digests == [udf_memo._call_digest(name, args) for name, args in calls]
