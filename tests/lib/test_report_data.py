"""The before/after shown beside a drift finding in the report."""

import json

from dagster_project.lib.report_data import drift_excerpt


def test_scope_prd_and_spec_excerpts():
    scope = {"changes": [{"field": "story_points", "before": "3", "after": "8"},
                         {"field": "summary", "before": None, "after": "Refunds"}]}  # fmt: skip
    assert drift_excerpt("scope_changed_after_start", json.dumps(scope)) == (
        "story_points: 3 → 8; summary: ∅ → Refunds"
    )
    prd = {"sections": [{"heading": "Requirements", "before": None, "after": "R5 | Bulk"}]}
    assert (
        drift_excerpt("prd_edited_after_stories", json.dumps(prd)) == "Requirements: −∅ +R5 | Bulk"
    )
    spec = {"specs": [{"changes": [
        {"category": "operation_added", "breaking": False, "location": "POST /a"},
        {"category": "operation_removed", "breaking": True, "location": "GET /b"}]}]}  # fmt: skip
    assert drift_excerpt("spec_drift_from_approved", json.dumps(spec)) == (
        "breaking operation_removed at GET /b; operation_added at POST /a"
    )
    assert drift_excerpt("scope_changed_after_start", "not json") == ""
    long = {"changes": [{"field": "summary", "before": "x" * 500, "after": "y"}]}
    assert len(drift_excerpt("scope_changed_after_start", json.dumps(long))) == 300
