"""The Dagster definitions: layers as groups, a nightly job and schedule, checks in place."""

import dagster as dg

from tests.ingest.harness import definitions


def test_asset_graph_reads_like_the_pipeline():
    defs = definitions()
    groups = {}
    for spec in defs.resolve_all_asset_specs():
        groups.setdefault(spec.group_name, set()).add(spec.key.to_user_string())
    assert groups["raw"] == {"raw/jira", "raw/gitlab", "raw/confluence"}
    assert {"chain/work_items", "chain/merge_requests", "chain/pages", "chain/links"} <= groups[
        "chain"
    ]
    assert groups["analysis"] == {
        f"analysis/{t}"
        for t in ("ingest_completeness", "subjects", "linked_pages", "text_timelines",
                  "requirement_spans", "waivers", "gate_requirements", "gate_evaluations",
                  "findings", "rework_events", "rework_items", "rework_root_causes",
                  "rework_share")
    }  # fmt: skip
    assert groups["reports"] == {
        "reports/html_report",
        "reports/exports",
        "reports/history",
        "reports/daily_snapshot",
    }
    for spec in defs.resolve_all_asset_specs():
        assert spec.description, f"{spec.key} has no description"
        layer = spec.key.path[0]
        assert spec.group_name == layer, f"{spec.key} is not in group {layer}"


def test_raw_assets_have_blocking_completeness_checks():
    defs = definitions()
    checks = {
        (spec.asset_key.to_user_string(), spec.name): spec.blocking
        for checks_def in defs.asset_checks or []
        for spec in checks_def.check_specs
    }
    for source in ("jira", "gitlab", "confluence"):
        assert checks[(f"raw/{source}", "listed_what_source_reported")] is True
        assert (f"raw/{source}", "quarantine_not_growing") in checks
    assert checks[("analysis/ingest_completeness", "nothing_missing")] is False  # a warning
    for table in ("work_items", "merge_requests", "pages"):  # a broken chain stops the run
        assert checks[(f"chain/{table}", "every_raw_object_typed")] is True
    assert checks[("analysis/gate_evaluations", "gate_compliance_above_threshold")] is False
    assert checks[("analysis/findings", "no_open_critical_gaps")] is False


def test_nightly_job_and_schedule():
    defs = definitions()
    job = defs.resolve_job_def("nightly")
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    all_keys = {s.key.to_user_string() for s in defs.resolve_all_asset_specs()}
    assert selected == all_keys - {"reports/daily_snapshot"}  # partitioned: its own job
    backfill = defs.resolve_job_def("snapshot_backfill")
    assert {k.to_user_string() for k in backfill.asset_layer.selected_asset_keys} == {
        "reports/daily_snapshot"
    }
    schedule = defs.resolve_schedule_def("nightly_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == "nightly"
    assert job.tags == {"driftgate/writer": "duckdb"}  # the run queue's one-writer limit


def test_sensors_and_freshness_checks_as_documented():
    defs = definitions()
    alert = defs.resolve_sensor_def("nightly_failure_alert")
    assert alert.default_status == dg.DefaultSensorStatus.RUNNING
    assert "DRIFTGATE_ALERT_WEBHOOK" in alert.description
    freshness = defs.resolve_sensor_def("freshness_checks_sensor")
    assert freshness.default_status == dg.DefaultSensorStatus.RUNNING
    fresh = {
        spec.asset_key.to_user_string()
        for checks_def in defs.asset_checks or []
        for spec in checks_def.check_specs
        if spec.name == "freshness_check"
    }
    assert fresh == {"raw/jira", "raw/gitlab", "raw/confluence", "reports/html_report"}
    # the 26 h default limit of the policy, as the check's own metadata says
    checks_def = next(
        c
        for c in defs.asset_checks or []
        if any(s.name == "freshness_check" for s in c.check_specs)
    )
    spec = next(iter(checks_def.check_specs))
    params = spec.metadata["dagster/freshness_params"].value
    assert params["lower_bound_delta_seconds"] == 26 * 3600
