"""Point in time: a database holding later data, judged as of an earlier moment, gives
the gaps and gate statuses as they stood then (the earlier truth.json), not today's."""

from __future__ import annotations

import json
import shutil

import duckdb

from dagster_project.sandbox.simulator import advance, generate
from tests.analysis.conftest import judge
from tests.analysis.test_truth import confusion, expected, found


def test_judged_as_of_an_earlier_day_equals_that_days_truth(tmp_path):
    before = tmp_path / "before"
    generate(before, seed=11, scale="demo", flavor="server")
    later = tmp_path / "later"
    shutil.copytree(before, later)
    advance(later, days=6, seed=11)
    truth_before = json.loads((before / "truth.json").read_text())
    truth_later = json.loads((later / "truth.json").read_text())
    assert truth_later["as_of"] > truth_before["as_of"]

    db = tmp_path / "driftgate.duckdb"
    judge(later, db)  # everything up to the later day is ingested
    table, exact = confusion(expected(truth_later), found(db))
    assert exact, table
    later_rows = _statuses(db)

    judge(later, db, as_of=truth_before["as_of"], selection="group:chain or group:analysis")
    table, exact = confusion(expected(truth_before), found(db))
    assert exact, f"judged as of {truth_before['as_of']}:\n{table}"
    assert _statuses(db) != later_rows  # the later days did change something
    with duckdb.connect(str(db), read_only=True) as con:
        as_ofs = con.execute(
            "SELECT DISTINCT as_of FROM analysis.gate_evaluations UNION "
            "SELECT DISTINCT as_of FROM analysis.findings"
        ).fetchall()
    assert len(as_ofs) == 1

    # the aggregates for that past day are reproducible: same input, same numbers
    past = _aggregates(db)
    judge(later, db, as_of=truth_before["as_of"], selection="group:analysis")
    assert _aggregates(db) == past and past["rework_share"]


def _aggregates(db) -> dict[str, list[tuple]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            t: con.execute(f"SELECT * FROM analysis.{t} ORDER BY ALL").fetchall()  # noqa: S608
            for t in ("rework_share", "rework_root_causes", "rework_events")
        }


def _statuses(db) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT gate_id, subject_key, status FROM analysis.gate_evaluations ORDER BY ALL"
        ).fetchall()
