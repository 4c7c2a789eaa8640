"""Runs the chain and analysis SQL with what SQL does badly registered as functions.

Rich text (ADF, wiki markup, storage XHTML) is normalised in Python and exposed to
SQL as ``driftgate_text(json)``; Confluence storage XHTML as ``driftgate_storage_text``,
``driftgate_issue_mentions`` and ``driftgate_carries_marker``; policy settings reach SQL
as variables.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from dagster_project.lib.asof import as_of
from dagster_project.lib.policy import Policy
from dagster_project.lib.richtext import to_text
from dagster_project.lib.sql import run_sql
from dagster_project.lib.storage_format import carries_marker, issue_mentions, storage_to_text

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
    except duckdb.CatalogException:
        pass
    # Confluence storage format (lib/storage_format.py).
    _create(con, "driftgate_storage_text", _storage_text, ["VARCHAR"], "VARCHAR")
    _create(con, "driftgate_issue_mentions", _mentions, ["VARCHAR"], MENTIONS_TYPE)
    _create(con, "driftgate_carries_marker", carries_marker, ["VARCHAR", "VARCHAR"], "BOOLEAN")


def _create(con: duckdb.DuckDBPyConnection, name: str, fn: Any, params: list, returns: Any) -> None:
    try:
        con.create_function(name, fn, params, returns, null_handling="special")
    except duckdb.CatalogException:
        pass


def _storage_text(storage: str | None) -> str | None:
    return None if storage is None else storage_to_text(storage)


def _mentions(storage: str | None) -> list[dict[str, str]]:
    return [{"issue_key": k, "found_by": by} for k, by in issue_mentions(storage)]


def policy_variables(policy: Policy) -> dict[str, Any]:
    return {
        "as_of": as_of(),
        "ac_field": policy.jira.acceptance_criteria_field,
        "epic_link_field": policy.jira.epic_link_field,
        "points_field": policy.jira.story_points_field,
        "approved_marker": policy.confluence.approved_marker,
    }


def build_table(con: duckdb.DuckDBPyConnection, layer: str, table: str, policy: Policy) -> int:
    """Rebuild ``<layer>.<table>`` from ``sql/<layer>/<table>.sql``; returns its row count."""
    if not (layer.isidentifier() and table.isidentifier()):
        raise ValueError(f"bad table name {layer}.{table}")
    con.execute("SET TimeZone = 'UTC'")
    register_functions(con)
    run_sql(con, f"{layer}/{table}", policy_variables(policy))
    return con.execute(f"SELECT count(*) FROM {layer}.{table}").fetchone()[0]  # noqa: S608
