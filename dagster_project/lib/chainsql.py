"""Runs the chain and analysis SQL with what SQL does badly registered as functions.

Rich text (ADF, wiki markup, storage XHTML) is normalised in Python and exposed to
SQL as ``driftgate_text(json)``; Confluence storage XHTML as ``driftgate_storage_text``,
``driftgate_issue_mentions`` and ``driftgate_carries_marker``; GitLab path globs, diff
line counts and MR issue keys as ``driftgate_glob_match``, ``driftgate_diff_counts`` and
``driftgate_issue_keys``; policy settings reach SQL as variables.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from dagster_project.lib.asof import as_of
from dagster_project.lib.gitlab_text import diff_line_counts, issue_keys, matches_any
from dagster_project.lib.policy import Policy
from dagster_project.lib.richtext import to_text
from dagster_project.lib.sql import run_sql
from dagster_project.lib.storage_format import carries_marker, issue_mentions, storage_to_text

DIFF_COUNTS_TYPE = duckdb.struct_type({"added": "INTEGER", "removed": "INTEGER"})
MENTIONS_TYPE = duckdb.list_type(
    duckdb.struct_type({"issue_key": "VARCHAR", "found_by": "VARCHAR"})
)


def _text_of_json(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        decoded: Any = json.loads(value)
    except (TypeError, ValueError):
        decoded = value
    if decoded is None:
        return None
    return to_text(decoded)


def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    """Idempotent: a connection that already has the functions keeps them."""
    try:
        con.create_function(
            "driftgate_text", _text_of_json, ["VARCHAR"], "VARCHAR", null_handling="special"
        )
    except (duckdb.CatalogException, duckdb.NotImplementedException):
        pass
    # Confluence storage format (lib/storage_format.py).
    _create(con, "driftgate_storage_text", _storage_text, ["VARCHAR"], "VARCHAR")
    _create(con, "driftgate_issue_mentions", _mentions, ["VARCHAR"], MENTIONS_TYPE)
    _create(con, "driftgate_carries_marker", carries_marker, ["VARCHAR", "VARCHAR"], "BOOLEAN")
    # GitLab paths, diffs and MR text (lib/gitlab_text.py).
    _create(con, "driftgate_glob_match", _glob_match, ["VARCHAR", "VARCHAR[]"], "BOOLEAN")
    _create(con, "driftgate_diff_counts", _diff_counts, ["VARCHAR"], DIFF_COUNTS_TYPE)
    _create(con, "driftgate_issue_keys", _issue_keys, ["VARCHAR"], "VARCHAR[]")


def _create(con: duckdb.DuckDBPyConnection, name: str, fn: Any, params: list, returns: Any) -> None:
    try:
        con.create_function(name, fn, params, returns, null_handling="special")
    except (duckdb.CatalogException, duckdb.NotImplementedException):  # already there
        pass


def _storage_text(storage: str | None) -> str | None:
    return None if storage is None else storage_to_text(storage)


def _mentions(storage: str | None) -> list[dict[str, str]]:
    return [{"issue_key": k, "found_by": by} for k, by in issue_mentions(storage)]


def _glob_match(path: str | None, globs: list[str] | None) -> bool:
    return matches_any(path, globs)


def _diff_counts(diff: str | None) -> dict[str, int] | None:
    if diff is None:
        return None
    added, removed = diff_line_counts(diff)
    return {"added": added, "removed": removed}


def _issue_keys(text: str | None) -> list[str]:
    return issue_keys(text)


def policy_variables(policy: Policy) -> dict[str, Any]:
    return {
        "as_of": as_of(),
        "ac_field": policy.jira.acceptance_criteria_field,
        "epic_link_field": policy.jira.epic_link_field,
        "points_field": policy.jira.story_points_field,
        "approved_marker": policy.confluence.approved_marker,
        "spec_globs": list(policy.ingest.spec_globs),
        "contract_test_globs": list(policy.ingest.contract_test_globs),
        "observability_globs": list(policy.ingest.observability_globs),
    }


def build_table(con: duckdb.DuckDBPyConnection, layer: str, table: str, policy: Policy) -> int:
    """Rebuild ``<layer>.<table>`` from ``sql/<layer>/<table>.sql``; returns its row count."""
    if not (layer.isidentifier() and table.isidentifier()):
        raise ValueError(f"bad table name {layer}.{table}")
    con.execute("SET TimeZone = 'UTC'")
    register_functions(con)
    run_sql(con, f"{layer}/{table}", policy_variables(policy))
    return con.execute(f"SELECT count(*) FROM {layer}.{table}").fetchone()[0]  # noqa: S608
