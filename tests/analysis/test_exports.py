"""The published tables' exports (lib/exports.py): written when the table's build or
as_of moved or the files are not as the last export left them, and then equal to the
table; left alone otherwise."""

from __future__ import annotations

from datetime import timedelta

from dagster_project.lib.chainsql import build_table
from dagster_project.lib.exports import PUBLISHED, export_tables
from dagster_project.lib.policy import load_policy


def written(con, folder) -> set[str]:
    return {table for table, export in export_tables(con, folder).items() if export.written}


def same_as_table(con, folder, table: str) -> bool:
    path = str(folder / f"{table}.parquet")
    return con.execute(
        f"SELECT count(*) = 0 FROM ((FROM analysis.{table} EXCEPT ALL FROM read_parquet(?)) "  # noqa: S608
        f"UNION ALL (FROM read_parquet(?) EXCEPT ALL FROM analysis.{table}))",
        [path, path],
    ).fetchone()[0]


def test_an_export_is_written_again_only_when_its_table_or_its_files_changed(judged_copy, tmp_path):
    con, as_of = judged_copy
    folder = tmp_path / "exports"
    assert written(con, folder) == set(PUBLISHED)
    assert written(con, folder) == set()  # nothing moved
    # a table judged at another moment: kept, but its as_of columns moved
    build_table(con, "analysis", "findings", load_policy(), as_of + timedelta(days=1))
    (folder / "rework_share.csv").write_text("edited by hand\n")
    (folder / "gate_requirements.parquet").unlink()
    assert written(con, folder) == {"findings", "rework_share", "gate_requirements"}
    assert all(same_as_table(con, folder, table) for table in PUBLISHED)
    assert "edited by hand" not in (folder / "rework_share.csv").read_text()
    assert written(con, folder) == set()


def test_a_database_that_did_not_write_the_files_writes_them_again(judged_copy, tmp_path):
    """Its own record of the last export is what lets files stand, not the files alone."""
    con, _ = judged_copy
    folder = tmp_path / "exports"
    written(con, folder)
    con.execute("DROP TABLE analysis_state.exports")
    assert written(con, folder) == set(PUBLISHED)
