"""Analysis tables nothing they judge changed are kept (lib/analysis_reuse.py), and what
every night then holds is what building every table anew gives: judged later with
nothing new, with an event stored before the last as_of but dated after it, with a
changed input, with another policy."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from dagster_project.definitions import layer_tables
from dagster_project.lib import analysis_reuse
from dagster_project.lib.chainsql import build_table
from dagster_project.lib.policy import Policy, load_policy

TABLES = layer_tables("analysis")
# The costly per-subject tables, which read nothing that moves with time but waivers.
KEPT_WHEN_QUIET = {"text_timelines", "linked_pages", "subjects", "requirement_spans",
                   "gate_requirements"}  # fmt: skip


def judge_all(con, as_of: datetime, policy: Policy | None = None, *, reuse=True) -> dict:
    """Every analysis table judged at ``as_of``; table -> whether it was kept."""
    kept = {}
    for table in TABLES:
        build_table(con, "analysis", table, policy or load_policy(), as_of, reuse=reuse)
        kept[table] = analysis_reuse.was_kept(con, table)
    return kept


def snapshot(con) -> dict[str, list[tuple]]:
    return {
        t: con.execute(f"SELECT * FROM analysis.{t} ORDER BY ALL").fetchall()  # noqa: S608
        for t in TABLES
    }


def versions(con) -> dict[str, str]:
    return dict(con.execute("SELECT table_name, version FROM analysis_state.builds").fetchall())


def from_scratch(con, as_of: datetime, target: Path, policy: Policy | None = None) -> dict:
    """Every analysis table built anew, at ``as_of``, on a copy of ``con``'s database."""
    con.execute("CHECKPOINT")
    path = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()[0]
    shutil.copyfile(path, target)
    with duckdb.connect(str(target)) as scratch:
        scratch.execute("DROP SCHEMA IF EXISTS analysis_state CASCADE")
        judge_all(scratch, as_of, policy, reuse=False)
        return snapshot(scratch)


def test_what_moves_with_time_is_told_from_its_sql():
    moving = {t for t in TABLES if analysis_reuse.moves_with_time(t)}
    # an effort counted up to as_of, maturity a window back from it, a waiver's expiry,
    # the sources' listings
    assert {"rework_events", "rework_items", "waivers", "ingest_completeness"} <= moving
    assert not moving & (KEPT_WHEN_QUIET | {"findings", "gate_evaluations"})
    assert analysis_reuse.echoes("findings") == ("as_of", "detected_at")
    assert analysis_reuse.echoes("subjects") == ("as_of",)


@pytest.mark.parametrize(
    ("sql", "moves"),
    [
        ("SELECT * FROM chain.work_items WHERE created_at <= as_of()", False),
        ("SELECT as_of() AS detected_at, as_of() AS as_of FROM t", False),
        ("SELECT CAST(NULL AS TIMESTAMPTZ) AS held_until FROM t", False),
        ("SELECT * FROM raw.current_objects('gitlab', 'file') o", False),
        ("SELECT coalesce(done_at, as_of()) FROM t", True),
        ("WHERE done_at <= as_of() - to_days(30)", True),
        ("WHERE expires >= CAST(timezone('UTC', as_of()) AS DATE)", True),
        ("WHERE changed_at + INTERVAL 1 DAY <= as_of()", True),
        ("WHERE date_trunc('day', changed_at) <= as_of()", True),
        ("WHERE TRY_CAST(payload->>'$.due' AS TIMESTAMPTZ) <= as_of()", True),
        ("SELECT getvariable('as_of') AS as_of FROM raw.live_listings", True),
    ],
)
def test_what_moves_with_time_in_sql(sql, moves):
    assert analysis_reuse.sql_moves_with_time(sql) is moves


def test_a_night_with_nothing_new_keeps_what_does_not_move_with_time(judged_copy, tmp_path):
    con, as_of = judged_copy
    later = as_of + timedelta(days=1)
    moved_before = versions(con)
    kept = judge_all(con, later)
    assert {t for t in TABLES if kept[t]} >= KEPT_WHEN_QUIET
    assert not any(kept[t] for t in TABLES if analysis_reuse.moves_with_time(t))
    waivers_same = versions(con)["waivers"] == moved_before["waivers"]
    assert kept["findings"] == kept["gate_evaluations"] == waivers_same
    after = snapshot(con)
    assert after == from_scratch(con, later, tmp_path / "scratch.duckdb")
    assert {row[-1] for row in after["requirement_spans"]} == {later}
    # and again at the same moment: everything is kept but what reads the listings
    kept = judge_all(con, later)
    assert {t for t in TABLES if not kept[t]} == {"ingest_completeness"}
    assert snapshot(con) == after


def test_a_rerun_at_the_same_moment_judges_what_moves_with_time_only_if_its_inputs_changed(
    judged_copy, tmp_path
):
    con, as_of = judged_copy
    kept = judge_all(con, as_of)
    assert kept["rework_events"] and kept["rework_items"] and kept["waivers"]
    con.execute("DELETE FROM chain.status_transitions WHERE issue_key = "
                "(SELECT min(issue_key) FROM chain.status_transitions)")  # fmt: skip
    con.execute(
        "UPDATE chain_state.builds SET generation = generation + 1, built_at = now() "
        "WHERE table_name = 'status_transitions'"
    )
    kept = judge_all(con, as_of)
    assert not kept["rework_events"] and not kept["subjects"]
    assert kept["text_timelines"]  # reads no status transition
    assert snapshot(con) == from_scratch(con, as_of, tmp_path / "scratch.duckdb")


@pytest.mark.parametrize(
    ("sql", "every_run"),
    [
        ("SELECT coalesce(done_at, as_of()) FROM chain.work_items", False),
        ("SELECT * FROM raw.current_objects('gitlab', 'mr_change') o", False),
        ("SELECT * FROM raw.live_listings", True),
        ("SELECT count(*) FROM raw.quarantine", True),
        ("SELECT coalesce(done_at, now()) FROM t", True),
        ("SELECT current_date - 1 FROM t", True),
        ("SELECT random() FROM t", True),
    ],
)
def test_what_a_rerun_at_the_same_moment_judges_again_in_sql(sql, every_run):
    assert analysis_reuse.sql_judged_every_run(sql) is every_run


def test_an_event_stored_before_the_last_as_of_counts_once_as_of_reaches_it(judged_copy, tmp_path):
    """A source can hand over an object changed after the run's as_of (the fetch runs
    later): that night leaves it out; the next one, judged later, must see it."""
    con, as_of = judged_copy
    issue = con.execute(
        "SELECT issue_key FROM chain.status_transitions ORDER BY changed_at DESC, issue_key LIMIT 1"
    ).fetchone()[0]
    con.execute(
        "UPDATE chain.status_transitions SET changed_at = ? WHERE issue_key = ? "
        "AND changed_at = (SELECT max(changed_at) FROM chain.status_transitions "
        "WHERE issue_key = ?)",
        [as_of + timedelta(hours=3), issue, issue],
    )
    kept = judge_all(con, as_of + timedelta(hours=2))  # still before it: nothing moved
    assert kept["subjects"] and kept["gate_requirements"]
    later = as_of + timedelta(days=1)
    kept = judge_all(con, later)
    assert not kept["subjects"] and not kept["gate_requirements"]
    assert kept["text_timelines"]  # reads no status transition
    assert snapshot(con) == from_scratch(con, later, tmp_path / "scratch.duckdb")


def test_a_changed_input_is_judged_again_and_what_does_not_read_it_kept(judged_copy, tmp_path):
    con, as_of = judged_copy
    page, number = con.execute(
        "SELECT page_id, max(number) FROM chain.page_versions GROUP BY ALL "
        "HAVING count(*) > 1 ORDER BY ALL LIMIT 1"
    ).fetchone()
    con.execute("DELETE FROM chain.page_versions WHERE page_id = ? AND number = ?", [page, number])
    con.execute(
        "UPDATE chain_state.builds SET generation = generation + 1, built_at = now() "
        "WHERE table_name = 'page_versions'"
    )
    kept = judge_all(con, as_of)
    assert not kept["requirement_spans"] and not kept["gate_requirements"]
    assert kept["text_timelines"] and kept["subjects"] and kept["linked_pages"]
    assert snapshot(con) == from_scratch(con, as_of, tmp_path / "scratch.duckdb")


def test_another_policy_judges_every_table_again(judged_copy, tmp_path):
    con, as_of = judged_copy
    policy = load_policy().model_copy(update={"gate_compliance_threshold": 0.5})
    kept = judge_all(con, as_of, policy)
    assert not any(kept.values())
    assert snapshot(con) == from_scratch(con, as_of, tmp_path / "scratch.duckdb", policy)


def test_a_run_stopped_between_a_build_and_its_record_builds_it_again(
    judged_copy, tmp_path, monkeypatch
):
    """The record of the build before stays; its inputs no longer match."""
    con, as_of = judged_copy
    con.execute("DELETE FROM chain.field_changes WHERE issue_key = "
                "(SELECT min(issue_key) FROM chain.field_changes)")  # fmt: skip
    con.execute(
        "UPDATE chain_state.builds SET generation = generation + 1, built_at = now() "
        "WHERE table_name = 'field_changes'"
    )

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(analysis_reuse, "record", stopped)
    with pytest.raises(KeyboardInterrupt):
        build_table(con, "analysis", "text_timelines", load_policy(), as_of)
    monkeypatch.undo()
    kept = judge_all(con, as_of)
    assert not kept["text_timelines"] and not kept["requirement_spans"]
    assert kept["linked_pages"]  # reads no field change
    assert snapshot(con) == from_scratch(con, as_of, tmp_path / "scratch.duckdb")
