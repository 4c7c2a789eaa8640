"""What the HTML report shows, read from the analysis tables as plain Python records
(pandas where result tables meet Python). Lists are capped; the tables hold everything."""

from __future__ import annotations

import json
from typing import Any

import duckdb

LIST_CAP = 50
SEVERITY_ORDER = (
    "CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END"
)


def _records(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    return con.execute(sql, params or []).df().to_dict("records")


def _has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchone()[0]
    )


def report_data(con: duckdb.DuckDBPyConnection, small_sample: int = 5) -> dict[str, Any]:
    """Every section's rows; a section whose table is absent is empty (render what exists)."""
    data: dict[str, Any] = {"gates": [], "gate_teams": [], "gaps": [], "drift": [],
                            "rework": [], "root_causes": [], "headline": {}}  # fmt: skip
    if _has(con, "analysis.gate_evaluations"):
        data["gates"] = _records(
            con,
            """
            SELECT gate_id, any_value(gate_title) AS title,
                   count(*) FILTER (WHERE status = 'compliant') AS compliant,
                   count(*) FILTER (WHERE status = 'late') AS late,
                   count(*) FILTER (WHERE status = 'violated') AS violated,
                   count(*) FILTER (WHERE status = 'waived') AS waived,
                   count(*) FILTER (WHERE status = 'not_applicable') AS not_applicable
            FROM analysis.gate_evaluations GROUP BY gate_id ORDER BY gate_id""",
        )
        data["gate_teams"] = _records(
            con,
            """
            SELECT gate_id, coalesce(split_part(linked_issues[1], '-', 1), project) AS team,
                   count(*) FILTER (WHERE status = 'compliant') AS compliant,
                   count(*) FILTER (WHERE status IN ('compliant', 'late', 'violated')) AS judged
            FROM analysis.gate_evaluations GROUP BY ALL HAVING judged > 0 ORDER BY ALL""",
        )
        data["bypassed"] = _records(
            con,
            """
            SELECT gate_id, subject_key, subject_title, status,
                   strftime(triggered_at, '%Y-%m-%d %H:%M') AS triggered_at,
                   array_to_string(from_json(missing, '["VARCHAR"]'), ', ') AS missing, web_url
            FROM analysis.gate_evaluations WHERE status IN ('late', 'violated')
            ORDER BY status = 'violated' DESC, triggered_at DESC LIMIT ?""",
            [LIST_CAP],
        )
    if _has(con, "analysis.findings"):
        for kind in ("gap", "drift"):
            data[f"{kind}s" if kind == "gap" else kind] = _records(
                con,
                """
                SELECT rule_id, severity, subject_key, summary, web_url, waived, evidence,
                       -- a page reads by its title, not its numeric id
                       CASE WHEN subject_type = 'page'
                            THEN coalesce(evidence->>'$.subject.title', subject_key)
                            ELSE subject_key END AS subject_label
                FROM analysis.findings WHERE kind = ?
                ORDER BY waived, CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, rule_id, subject_key LIMIT ?""",
                [kind, LIST_CAP],
            )
        data["finding_counts"] = _records(
            con,
            """
            SELECT kind, severity, count(*) FILTER (WHERE NOT waived) AS open,
                   count(*) FILTER (WHERE waived) AS waived
            FROM analysis.findings GROUP BY kind, severity ORDER BY kind, CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END""",
        )
    if _has(con, "analysis.rework_share"):
        data["rework"] = _records(
            con,
            """
            SELECT team, sum(delivered_items) AS delivered_items,
                   round(sum(delivered_hours), 0) AS delivered_hours,
                   sum(rework_events) AS rework_events, round(sum(rework_hours), 0) AS rework_hours,
                   round(sum(rework_hours) / nullif(sum(rework_hours) + sum(delivered_hours), 0), 3) AS share,
                   sum(rework_deployments) AS rework_deployments,
                   sum(production_deployments) AS production_deployments,
                   sum(delivered_items) < ? AS small
            FROM analysis.rework_share GROUP BY team ORDER BY team""",
            [small_sample],
        )
    if _has(con, "analysis.rework_root_causes"):
        data["root_causes"] = _records(
            con,
            """
            SELECT factor, exposed_items, exposed_reworked, exposed_rate, clean_items,
                   clean_reworked, clean_rate, relative_risk, ci_low, ci_high, small_sample
            FROM analysis.rework_root_causes ORDER BY factor = 'any' DESC, relative_risk DESC NULLS LAST""",
        )
    data["history"] = (
        _records(
            con,
            "SELECT * EXCLUDE (day), strftime(day, '%Y-%m-%d') AS day "
            "FROM reports.history ORDER BY day",
        )
        if _has(con, "reports.history")
        else []
    )
    if _has(con, "analysis.gate_evaluations"):
        data["gate_months"] = _records(
            con,
            """
            SELECT gate_id, strftime(triggered_at, '%Y-%m') AS month,
                   count(*) FILTER (WHERE status = 'compliant') AS compliant,
                   count(*) FILTER (WHERE status IN ('compliant', 'late', 'violated')) AS judged
            FROM analysis.gate_evaluations WHERE triggered_at IS NOT NULL
            GROUP BY ALL ORDER BY gate_id, month DESC""",
        )
    if _has(con, "analysis.rework_share"):
        data["rework_months"] = _records(
            con,
            """
            SELECT team, strftime(month, '%Y-%m') AS month, round(share, 3) AS share,
                   rework_events, delivered_items, small_sample
            FROM analysis.rework_share ORDER BY team, month DESC""",
        )
    for finding in data.get("drift", []):
        finding["excerpt"] = drift_excerpt(finding["rule_id"], finding.pop("evidence", None))
    judged = sum(g["compliant"] + g["late"] + g["violated"] for g in data["gates"])
    compliant = sum(g["compliant"] for g in data["gates"])
    rework_h = sum(r["rework_hours"] or 0 for r in data["rework"])
    delivered_h = sum(r["delivered_hours"] or 0 for r in data["rework"])
    previous = (
        [h for h in data["history"] if h["as_of"] < data["history"][-1]["as_of"]]
        if data["history"]
        else []
    )
    data["headline_previous"] = previous[-1] if previous else None
    data["headline"] = {
        "gate_compliance": compliant / judged if judged else None,
        "gates_judged": judged,
        "open_gaps": sum(c["open"] for c in data.get("finding_counts", []) if c["kind"] == "gap"),
        "open_drift": sum(
            c["open"] for c in data.get("finding_counts", []) if c["kind"] == "drift"
        ),
        "rework_share": rework_h / (rework_h + delivered_h) if rework_h + delivered_h else None,
    }
    return data


def drift_excerpt(rule_id: str, evidence: str | None, limit: int = 300) -> str:
    """The before/after a manager reads beside a drift finding (the full evidence is in
    analysis.findings)."""
    try:
        found = json.loads(evidence or "{}")
    except ValueError:
        return ""
    parts: list[str] = []
    if rule_id == "scope_changed_after_start":
        for change in found.get("changes", []):
            parts.append(
                f"{change['field']}: {change.get('before') or '∅'} → {change.get('after') or '∅'}"
            )
    elif rule_id == "prd_edited_after_stories":
        for section in found.get("sections", []):
            parts.append(
                f"{section['heading'] or '(top)'}: −{section.get('before') or '∅'} +{section.get('after') or '∅'}"
            )
    elif rule_id == "spec_drift_from_approved":
        for spec in found.get("specs", []):
            ordered = sorted(spec.get("changes") or [], key=lambda c: not c["breaking"])
            for change in ordered[:4]:
                mark = "breaking " if change["breaking"] else ""
                parts.append(f"{mark}{change['category']} at {change['location']}")
            if spec.get("error"):
                parts.append(spec["error"])
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"
