"""Judged tables store their text with ZSTD (lib/chainsql.py build_table); the setting
does not outlive the build, so raw and chain tables keep DuckDB's own choice."""

from __future__ import annotations

import pytest

from dagster_project.lib import chainsql
from dagster_project.lib.chainsql import build_table
from dagster_project.lib.policy import load_policy
from tests.conftest import text_compressions


def setting(con) -> str:
    return con.execute("SELECT current_setting('force_compression')").fetchone()[0]


def test_a_judged_table_stores_its_text_with_zstd_and_leaves_the_setting_as_it_was(
    judged_copy,
):
    con, as_of = judged_copy
    build_table(con, "analysis", "requirement_spans", load_policy(), as_of, reuse=False)
    assert text_compressions(con, "analysis.requirement_spans") == {"ZSTD"}
    assert setting(con) == "auto"
    con.execute("CREATE TABLE chain.copied AS SELECT * FROM analysis.requirement_spans")
    assert "ZSTD" not in text_compressions(con, "chain.copied")


def test_a_failed_build_leaves_the_setting_as_it_was(judged_copy, monkeypatch):
    con, as_of = judged_copy

    def failing(con, name, *args, **kwargs):
        if name.startswith("analysis/"):
            raise RuntimeError("stopped")
        return original(con, name, *args, **kwargs)

    original = chainsql.run_sql
    monkeypatch.setattr(chainsql, "run_sql", failing)
    with pytest.raises(RuntimeError, match="stopped"):
        build_table(con, "analysis", "subjects", load_policy(), as_of, reuse=False)
    assert setting(con) == "auto"
