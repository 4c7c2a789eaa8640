"""The churn benchmark (benchmarks/analysis_churn.py) counts what a night changed in the
analysis tables: nothing between a database and itself, exactly the rows and subjects
that differ, and not the columns that only repeat the run's as_of."""

from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "analysis_churn.py"


def churn_module():
    spec = importlib.util.spec_from_file_location("analysis_churn", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def by_table(rows: list[dict]) -> dict[str, dict]:
    return {r["table"]: r for r in rows}


def test_a_database_against_itself_changed_nothing(judged_org, tmp_path):
    bench = churn_module()
    org = judged_org("demo", "server")
    before = org.copy_db(tmp_path / "before.duckdb")
    after = org.copy_db(tmp_path / "after.duckdb")
    rows = by_table(bench.churn(before, after))
    assert {"findings", "gate_evaluations", "rework_events", "requirement_spans"} <= set(rows)
    assert rows["requirement_spans"]["rows_after"] > 0
    for row in rows.values():
        assert row["only_before"] == row["only_after"] == 0, row
        assert row.get("keys_changed", 0) == 0, row


def test_the_rows_and_subjects_that_differ_are_counted(judged_org, tmp_path):
    bench = churn_module()
    org = judged_org("demo", "server")
    before = org.copy_db(tmp_path / "before.duckdb")
    after = org.copy_db(tmp_path / "after.duckdb")
    with duckdb.connect(str(after)) as con:
        subject, spans = con.execute(
            "SELECT subject_key, count(*) FROM analysis.requirement_spans "
            "GROUP BY ALL ORDER BY 2 DESC, 1 LIMIT 1"
        ).fetchone()
        con.execute("DELETE FROM analysis.requirement_spans WHERE subject_key = ?", [subject])
        # A finding judged at another moment is the same finding.
        con.execute("UPDATE analysis.findings SET detected_at = detected_at + INTERVAL 1 DAY")
        changed = con.execute(
            "UPDATE analysis.gate_evaluations SET status = 'violated' "
            "WHERE status <> 'violated' RETURNING subject_key"
        ).fetchall()
    rows = by_table(bench.churn(before, after))
    spans_row = rows["requirement_spans"]
    assert (spans_row["only_before"], spans_row["only_after"]) == (spans, 0)
    assert spans_row["keys_changed"] == 1
    assert spans_row["rows_after"] == spans_row["rows_before"] - spans
    assert rows["findings"]["only_before"] == rows["findings"]["only_after"] == 0
    gates = rows["gate_evaluations"]
    assert gates["only_before"] == gates["only_after"] == len(changed) > 0
    assert gates["keys_changed"] == len({k for (k,) in changed})


def test_a_copy_is_rejudged_at_a_later_moment(judged_org, tmp_path):
    bench = churn_module()
    org = judged_org("demo", "server")
    before = org.copy_db(tmp_path / "before.duckdb")
    later = datetime.fromisoformat(org.as_of) + timedelta(days=1)
    copy, seconds = bench.rejudged_copy(before, later.isoformat(), tmp_path)
    assert set(seconds) == set(bench.TABLES)
    with duckdb.connect(str(copy), read_only=True) as con:
        for table in bench.TABLES:
            stamps = con.execute(
                f"SELECT DISTINCT as_of FROM analysis.{table}"  # noqa: S608
            ).fetchall()
            assert stamps in ([], [(later,)]), (table, stamps)
    with duckdb.connect(str(before), read_only=True) as con:
        assert con.execute("SELECT DISTINCT as_of FROM analysis.subjects").fetchall() == [
            (datetime.fromisoformat(org.as_of),)
        ]


def test_how_far_the_changes_reach_over_links(judged_org, tmp_path):
    bench = churn_module()
    org = judged_org("demo", "server")
    before = org.copy_db(tmp_path / "before.duckdb")
    after = org.copy_db(tmp_path / "after.duckdb")
    nothing = bench.link_closure(before, after)
    assert nothing["changed"] == nothing["reached"] == 0
    assert nothing["groups"] > 1 and nothing["objects"] > nothing["groups"]
    with duckdb.connect(str(after)) as con:
        # a new version of one story that has an epic: its group is the epic's
        story, epic = con.execute(
            "SELECT issue_key, epic_key FROM chain.work_items WHERE epic_key IS NOT NULL "
            "ORDER BY issue_key LIMIT 1"
        ).fetchone()
        con.execute(
            "INSERT INTO raw.objects SELECT * REPLACE ("
            "(SELECT max(raw_id) + 1 FROM raw.objects) AS raw_id) FROM raw.objects "
            "WHERE source = 'jira' AND object_type = 'issue' AND object_key = ? LIMIT 1",
            [story],
        )
        group = con.execute(
            "SELECT count(*) FROM (SELECT issue_key FROM chain.work_items "
            "WHERE ? IN (issue_key, epic_key))",
            [epic],
        ).fetchone()[0]
    reached = bench.link_closure(before, after)
    assert reached["changed"] == 1
    # the epic, its issues, and whatever merge requests and pages link to them
    assert group <= reached["reached"] < reached["objects"]
