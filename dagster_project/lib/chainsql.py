"""Runs the chain and analysis SQL with what SQL does badly registered as functions.

Rich text (ADF, wiki markup, storage XHTML) is normalised in Python and exposed to
SQL as ``driftgate_text(json)``; Confluence storage XHTML as ``driftgate_storage_text``,
``driftgate_issue_mentions`` and ``driftgate_carries_marker``; GitLab path globs, diff
line counts and MR issue keys as ``driftgate_glob_match``, ``driftgate_diff_counts`` and
``driftgate_issue_keys``; requirement recognisers (lib/recognisers.py), page text diffs
(lib/text_diff.py), diff line numbers and the structural spec diff (lib/spec_diff.py)
likewise. The policy reaches SQL whole, as one JSON variable, and its gates, gap rules
and waivers as registered tables; the run's as_of as the variable ``as_of``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from dagster_project.lib import analysis_reuse
from dagster_project.lib.gitlab_text import (
    diff_line_counts,
    diff_lines,
    glob_pieces,
    issue_keys,
    matches_any,
)
from dagster_project.lib.incremental import build_chain_table
from dagster_project.lib.policy import Policy
from dagster_project.lib.rawstore import ensure_raw_schema
from dagster_project.lib.recognisers import (
    has_sections,
    meaningful_text,
    section_body,
    section_has_table,
    section_present,
)
from dagster_project.lib.richtext import to_text
from dagster_project.lib.spec_diff import diff_specs
from dagster_project.lib.sql import JsonValue, run_sql
from dagster_project.lib.storage_format import (
    carries_marker,
    headings_of,
    issue_mentions,
    parse_ahead,
    release_workers,
    storage_to_text,
)
from dagster_project.lib.text_diff import changed_sections, changed_words
from dagster_project.lib.udf_memo import UdfMemo

DIFF_COUNTS_TYPE = duckdb.struct_type({"added": "INTEGER", "removed": "INTEGER"})
DIFF_LINES_TYPE = duckdb.struct_type({"added": "INTEGER[]", "removed": "INTEGER[]"})
SPEC_DIFF_TYPE = duckdb.struct_type(
    {
        "error": "VARCHAR",
        "kind": "VARCHAR",
        "breaking": "INTEGER",
        "changes": duckdb.list_type(
            duckdb.struct_type(
                {
                    "category": "VARCHAR",
                    "breaking": "BOOLEAN",
                    "location": "VARCHAR",
                    "before": "VARCHAR",
                    "after": "VARCHAR",
                    "detail": "VARCHAR",
                }
            )
        ),
        "unresolved_refs": "VARCHAR[]",
    }
)
SECTIONS_TYPE = duckdb.list_type(
    duckdb.struct_type({"heading": "VARCHAR", "before": "VARCHAR", "after": "VARCHAR"})
)
MENTIONS_TYPE = duckdb.list_type(
    duckdb.struct_type({"issue_key": "VARCHAR", "found_by": "VARCHAR"})
)
_MENTIONS_ARROW = pa.list_(pa.struct([("issue_key", pa.string()), ("found_by", pa.string())]))


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


def register_functions(con: duckdb.DuckDBPyConnection, memo: UdfMemo | None = None) -> None:
    """Idempotent: a connection that already has the functions keeps them. The pure
    text functions the analysis layer calls are replaced: with ``memo`` they answer from
    it (lib/udf_memo.py), without it they are the plain ones again (a connection kept
    from step to step may hold an earlier build's memo)."""
    _create(con, "driftgate_text", _text_of_json, ["VARCHAR"], "VARCHAR")
    # Confluence storage format (lib/storage_format.py).
    _create_per_body(con, "driftgate_storage_text", _storage_text, "VARCHAR", pa.string())
    _create_per_body(con, "driftgate_issue_mentions", _mentions, MENTIONS_TYPE, _MENTIONS_ARROW)
    _create(con, "driftgate_carries_marker", carries_marker, ["VARCHAR", "VARCHAR"], "BOOLEAN")
    # GitLab paths, diffs and MR text (lib/gitlab_text.py).
    _create(con, "driftgate_glob_match", _glob_match, ["VARCHAR", "VARCHAR[]"], "BOOLEAN")
    _create(con, "driftgate_glob_pieces", _glob_pieces, ["VARCHAR[]"], "VARCHAR[][]")
    _create(con, "driftgate_diff_counts", _diff_counts, ["VARCHAR"], DIFF_COUNTS_TYPE)
    _create(con, "driftgate_issue_keys", _issue_keys, ["VARCHAR"], "VARCHAR[]")
    _create_per_body(
        con, "driftgate_storage_headings", headings_of, "VARCHAR[]", pa.list_(pa.string())
    )
    _create(con, "driftgate_has_sections", has_sections, ["VARCHAR", "VARCHAR[]"], "BOOLEAN")
    for name, fn, params, returns in _memoizable():
        _replace(con, name, fn if memo is None else memo.wrap(name, fn), params, returns)


def _memoizable() -> list[tuple[str, Any, list[Any], Any]]:
    """The pure text functions of the analysis layer: parsing their texts is most of its
    time."""
    return [
        ("driftgate_diff_lines", _diff_lines, ["VARCHAR"], DIFF_LINES_TYPE),
        # Requirement recognisers over rich text (lib/recognisers.py); NULL inputs give
        # False or [], never NULL; a NULL placeholder list means the defaults.
        ("driftgate_meaningful", meaningful_text, ["VARCHAR", "VARCHAR[]"], "BOOLEAN"),
        ("driftgate_section_present", section_present,
         ["VARCHAR", "VARCHAR", "VARCHAR[]"], "BOOLEAN"),
        ("driftgate_section_has_table", section_has_table, ["VARCHAR", "VARCHAR"], "BOOLEAN"),
        ("driftgate_section_text", section_body, ["VARCHAR", "VARCHAR"], "VARCHAR"),
        # How much and where a page changed (lib/text_diff.py); API specs (lib/spec_diff.py).
        ("driftgate_changed_words", changed_words, ["VARCHAR", "VARCHAR", "VARCHAR"], "INTEGER"),
        ("driftgate_changed_sections", changed_sections,
         ["VARCHAR", "VARCHAR", "VARCHAR[]", "VARCHAR"], SECTIONS_TYPE),
        ("driftgate_spec_diff", _spec_diff, ["VARCHAR", "VARCHAR"], SPEC_DIFF_TYPE),
    ]  # fmt: skip


def _create(
    con: duckdb.DuckDBPyConnection, name: str, fn: Any, params: list, returns: Any, **options: Any
) -> None:
    try:
        con.create_function(name, fn, params, returns, null_handling="special", **options)
    except (duckdb.CatalogException, duckdb.NotImplementedException):  # already there
        pass


def _create_per_body(
    con: duckdb.DuckDBPyConnection, name: str, fn: Any, returns: Any, arrow: pa.DataType
) -> None:
    """A function of one storage-format body, called with a vector of them: the bodies
    not parsed yet are parsed first, together (by worker processes in a large build,
    ``storage_format.parse_ahead``), then each answers from that parse."""

    def per_vector(bodies: pa.ChunkedArray) -> pa.Array:
        values = bodies.to_pylist()
        parse_ahead(values)
        return pa.array([fn(v) for v in values], type=arrow)

    _create(con, name, per_vector, ["VARCHAR"], returns, type="arrow")


def _replace(
    con: duckdb.DuckDBPyConnection, name: str, fn: Any, params: list, returns: Any
) -> None:
    try:
        con.remove_function(name)
    except duckdb.InvalidInputException:  # not registered on this connection yet
        pass
    con.create_function(name, fn, params, returns, null_handling="special")


def _spec_diff(approved: str | None, current: str | None) -> dict[str, Any] | None:
    if approved is None or current is None:
        return None
    result = diff_specs(approved, current)
    return {
        "error": result.error,
        "kind": result.kind,
        "breaking": len(result.breaking),
        "changes": [
            {
                "category": c.category,
                "breaking": c.breaking,
                "location": c.location,
                "before": None if c.before is None else json.dumps(c.before, default=str)[:300],
                "after": None if c.after is None else json.dumps(c.after, default=str)[:300],
                "detail": c.detail,
            }
            for c in result.changes
        ],
        "unresolved_refs": list(result.unresolved_refs),
    }


def _storage_text(storage: str | None) -> str | None:
    return None if storage is None else storage_to_text(storage)


def _mentions(storage: str | None) -> list[dict[str, str]]:
    return [{"issue_key": k, "found_by": by} for k, by in issue_mentions(storage)]


def _glob_match(path: str | None, globs: list[str] | None) -> bool:
    return matches_any(path, globs)


def _glob_pieces(globs: list[str] | None) -> list[list[str]]:
    return [list(glob_pieces(g)) for g in globs or [] if g is not None]


def _diff_counts(diff: str | None) -> dict[str, int] | None:
    if diff is None:
        return None
    added, removed = diff_line_counts(diff)
    return {"added": added, "removed": removed}


def _diff_lines(diff: str | None) -> dict[str, list[int]] | None:
    if diff is None:
        return None
    added, removed = diff_lines(diff)
    return {"added": added, "removed": removed}


def _issue_keys(text: str | None) -> list[str]:
    return issue_keys(text)


def policy_variables(policy: Policy, as_of: datetime) -> dict[str, Any]:
    """What every SQL file may read: ``getvariable('as_of')`` and the policy as one JSON
    value (read with the ``policy_text``/``policy_list`` macros of sql/prelude.sql)."""
    return {
        "as_of": as_of,
        "policy": JsonValue(policy.model_dump_json()),
    }


def policy_frames(policy: Policy) -> dict[str, pa.Table]:
    """The policy's gates, gap rules and waivers as typed tables SQL joins against
    (registered on the connection as ``policy_gates``, ``policy_gap_rules``,
    ``policy_waivers``); built once per policy in a process (every build registers them;
    Arrow tables are immutable, so builds share them)."""
    key = policy.model_dump_json()
    frames = _FRAMES.get(key)
    if frames is None:
        if len(_FRAMES) >= 8:
            _FRAMES.clear()
        frames = _FRAMES[key] = _policy_frames(policy)
    return frames


_FRAMES: dict[str, dict[str, pa.Table]] = {}


def _policy_frames(policy: Policy) -> dict[str, pa.Table]:

    def selector(rule: Any) -> dict[str, Any]:
        a = rule.applies_to
        return {
            "issue_types": list(a.issue_types),
            "projects": list(a.projects),
            "target_branches": list(a.target_branches),
            "states": list(a.states),
            "any_labels": list(a.any_of.labels),
            "any_components": list(a.any_of.components),
            "any_linked_issue_labels": list(a.any_of.linked_issue_labels),
        }

    gates = [
        {
            "gate_id": g.id,
            "title": g.title,
            "subject_type": g.subject,
            "trigger_event": g.trigger.event,
            "trigger_category": g.trigger.category,
            "requires": list(g.requires),
            **selector(g),
        }
        for g in policy.gates
    ]
    rules = [
        {
            "rule_id": r.id,
            "title": r.title,
            "severity": r.severity,
            "subject_type": r.subject,
            "requirement": r.requires,
            **selector(r),
        }
        for r in policy.gap_rules
    ]
    waivers = [
        {
            "subject_key": w.subject,
            "gate_id": w.gate,
            "rule_id": w.rule,
            "owner": w.owner,
            "reason": w.reason,
            "expires": w.expires,
        }
        for w in policy.waivers.entries
    ]
    return {
        "policy_gates": pa.Table.from_pylist(gates, schema=_GATES),
        "policy_gap_rules": pa.Table.from_pylist(rules, schema=_GAP_RULES),
        "policy_waivers": pa.Table.from_pylist(waivers, schema=_WAIVERS),
    }


_TEXTS = pa.list_(pa.string())
_SELECTOR = [
    (name, _TEXTS)
    for name in (
        "issue_types",
        "projects",
        "target_branches",
        "states",
        "any_labels",
        "any_components",
        "any_linked_issue_labels",
    )
]
_GATES = pa.schema(
    [
        ("gate_id", pa.string()),
        ("title", pa.string()),
        ("subject_type", pa.string()),
        ("trigger_event", pa.string()),
        ("trigger_category", pa.string()),
        ("requires", _TEXTS),
        *_SELECTOR,
    ]
)
_GAP_RULES = pa.schema(
    [
        ("rule_id", pa.string()),
        ("title", pa.string()),
        ("severity", pa.string()),
        ("subject_type", pa.string()),
        ("requirement", pa.string()),
        *_SELECTOR,
    ]
)
_WAIVERS = pa.schema(
    [
        ("subject_key", pa.string()),
        ("gate_id", pa.string()),
        ("rule_id", pa.string()),
        ("owner", pa.string()),
        ("reason", pa.string()),
        ("expires", pa.date32()),
    ]
)


def build_table(
    con: duckdb.DuckDBPyConnection,
    layer: str,
    table: str,
    policy: Policy,
    as_of: datetime,
    *,
    reuse: bool = True,
) -> int:
    """Rebuild ``<layer>.<table>`` from ``sql/<layer>/<table>.sql`` or, when that is a
    folder, from the union of its files (each one SELECT); returns the row count. An
    analysis table nothing it judges changed since its last build is kept instead
    (lib/analysis_reuse.py; ``reuse=False`` builds it anyway)."""
    if not (layer.isidentifier() and table.isidentifier()):
        raise ValueError(f"bad table name {layer}.{table}")
    con.execute("SET TimeZone = 'UTC'")
    ensure_raw_schema(con)  # a database from an older version gains the raw macros/views
    judged = layer == "analysis"
    if judged:
        analysis_reuse.ensure_state(con)
        inputs = analysis_reuse.fingerprint(con, table, policy.model_dump_json())
        if reuse and analysis_reuse.kept(con, table, inputs, as_of):
            return con.execute(f"SELECT count(*) FROM analysis.{table}").fetchone()[0]  # noqa: S608
    memo = None if layer == "chain" else UdfMemo.load(con, f"{layer}.{table}")
    register_functions(con, memo)
    for name, frame in policy_frames(policy).items():
        con.register(name, frame)
    variables = policy_variables(policy, as_of)
    run_sql(con, "prelude", variables, transaction=False)
    if layer == "chain":
        try:
            build_chain_table(con, table, str(variables["policy"]))
        finally:
            release_workers()  # the parsing processes of a large build, if it started any
    else:
        # The text of judged tables is written with ZSTD: DuckDB's own choice, DICT_FSST,
        # builds the analysis layer slower (8.9 s against 8.4 s a day after at 100,000
        # issues) in 3.6 times the blocks. Not for chain and raw tables: their keys are
        # scanned and joined all night, and ZSTD made the raw layer slower. DuckDB
        # compresses what a checkpoint writes with the setting of that moment, so the
        # build is checkpointed under it, and what earlier steps left is before it.
        con.execute("CHECKPOINT")
        con.execute("SET force_compression = 'zstd'")
        try:
            run_sql(con, f"{layer}/{table}")
            con.execute("CHECKPOINT")
        finally:
            con.execute("RESET force_compression")
    if memo is not None:
        memo.save(con)
    if judged:
        analysis_reuse.record(con, table, inputs, as_of)
    return con.execute(f"SELECT count(*) FROM {layer}.{table}").fetchone()[0]  # noqa: S608
