"""Unattended nights: the schedule's settings, the failure alert, freshness, one writer."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.test_utils import freeze_time  # Dagster's own clock for its checks

from dagster_project.defs.automation import (
    FRESH_ASSETS,
    build_freshness,
    build_nightly_schedule,
    nightly_failure_alert,
)
from dagster_project.lib.asof import AS_OF_TAG
from dagster_project.lib.policy import Policy, load_policy
from dagster_project.lib.runlock import DatabaseBusy, run_lock
from tests.product.test_cli import REPO, driftgate

HOOK_SECRET = "hooks/T000/B000/xyzsecret"


# -- the schedule -----------------------------------------------------------------------
def test_the_schedule_follows_the_policy_and_the_environment(tmp_path, monkeypatch):
    policy = tmp_path / "policy.yaml"
    policy.write_text("operations:\n  nightly_cron: '30 4 * * 1-5'\n  timezone: Europe/Berlin\n")
    schedule = build_nightly_schedule(load_policy(policy))
    assert (schedule.cron_schedule, schedule.execution_timezone) == (
        "30 4 * * 1-5",
        "Europe/Berlin",
    )
    monkeypatch.setenv("DRIFTGATE_NIGHTLY_CRON", "15 1 * * *")
    monkeypatch.setenv("DRIFTGATE_TIMEZONE", "America/New_York")
    schedule = build_nightly_schedule(load_policy(policy))
    assert (schedule.cron_schedule, schedule.execution_timezone) == (
        "15 1 * * *",
        "America/New_York",
    )
    # a tick is judged as of its own scheduled moment
    context = dg.build_schedule_context(scheduled_execution_time=_dt("2026-12-01T06:15:00+00:00"))
    request = schedule.evaluate_tick(context).run_requests[0]
    assert request.tags[AS_OF_TAG] == "2026-12-01T06:15:00.000+00:00"

    monkeypatch.setenv("DRIFTGATE_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValueError, match="DRIFTGATE_TIMEZONE: 'Mars/Olympus' is not an IANA"):
        build_nightly_schedule(Policy())


def test_a_bad_schedule_in_the_policy_names_the_key(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("operations:\n  nightly_cron: 'at two'\n")
    result = driftgate("policy", "check", str(policy), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"{policy}:2:3: operations.nightly_cron: 'at two' is not a cron expression "
        "(e.g. '0 2 * * *')"
    )


def _dt(text):
    from datetime import datetime

    return datetime.fromisoformat(text)


# -- the alert on a failed run ------------------------------------------------------------
@pytest.fixture
def receiver() -> Iterator[tuple[str, list]]:
    """A local HTTP endpoint standing in for a Slack incoming webhook."""
    received: list = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the handler's API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], json.loads(body)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/{HOOK_SECRET}", received
    server.shutdown()


def _failed_run(instance: dg.DagsterInstance) -> tuple[dg.DagsterRun, object]:
    """A real failed run whose step failed the way an unreachable source fails."""

    @dg.asset(key=["raw", "jira"])
    def unreachable() -> None:
        raise dg.Failure(
            description="jira (jira.example.com): connection refused; check JIRA_URL",
            allow_retries=False,
        )

    result = dg.materialize(
        [unreachable], instance=instance, raise_on_error=False, tags={AS_OF_TAG: "2026-12-01"}
    )
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    return run, failure


def _failure_context(instance: dg.DagsterInstance):
    """The context the daemon hands the alert sensor for that failed run."""
    run, failure = _failed_run(instance)
    context = dg.build_run_status_sensor_context(
        sensor_name="nightly_failure_alert",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=run,
    ).for_run_failure()
    return run, context


def test_a_failed_run_posts_one_line_to_the_webhook(receiver, monkeypatch):
    url, received = receiver
    monkeypatch.setenv("DRIFTGATE_ALERT_WEBHOOK", url)
    with dg.instance_for_test() as instance:
        run, context = _failure_context(instance)
        nightly_failure_alert(context)
    assert len(received) == 1
    path, content_type, body = received[0]
    assert path == f"/{HOOK_SECRET}" and content_type == "application/json"
    assert list(body) == ["text"]  # Slack-compatible
    text = body["text"]
    assert "\n" not in text
    assert text == (
        f"Driftgate __ephemeral_asset_job__ run {run.run_id[:8]} as of 2026-12-01 failed: "
        "jira (jira.example.com): connection refused; check JIRA_URL"
    )


def test_an_unreachable_webhook_fails_the_tick_without_showing_its_url(monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("DRIFTGATE_ALERT_WEBHOOK", f"http://127.0.0.1:{port}/{HOOK_SECRET}")
    with dg.instance_for_test() as instance:
        run, context = _failure_context(instance)
        with pytest.raises(RuntimeError) as err:
            nightly_failure_alert(context)
    assert "DRIFTGATE_ALERT_WEBHOOK" in str(err.value)
    assert HOOK_SECRET not in str(err.value)


# -- freshness ----------------------------------------------------------------------------
def test_freshness_checks_fail_when_ingestion_or_the_report_is_older_than_the_limit():
    checks, sensor = build_freshness(Policy())
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    job = dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(*checks))
    defs = dg.Definitions(
        assets=[dg.AssetSpec(key) for key in FRESH_ASSETS], asset_checks=checks, jobs=[job]
    )
    start = _dt("2026-12-01T02:30:00+00:00")
    with dg.instance_for_test() as instance:
        with freeze_time(start):
            for key in FRESH_ASSETS[:3]:  # ingestion ran; the report did not
                instance.report_runless_asset_event(dg.AssetMaterialization(key))

        def evaluate(at):
            with freeze_time(at):
                result = defs.resolve_job_def("freshness").execute_in_process(instance=instance)
            return {
                e.asset_key.to_user_string(): e.passed for e in result.get_asset_check_evaluations()
            }

        soon = evaluate(start + timedelta(hours=25))
        assert soon == {
            "raw/jira": True,
            "raw/gitlab": True,
            "raw/confluence": True,
            "reports/html_report": False,  # never materialised
        }
        late = evaluate(start + timedelta(hours=27))  # past the 26 h default
        assert not any(late.values())


# -- one writer per database -------------------------------------------------------------
def holding(code: str) -> subprocess.Popen:
    """Another process running ``code``, once it has printed that it holds the file; it
    lets go when a line is written to its stdin (or when killed)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", code + "\n    print('held', flush=True); sys.stdin.readline()"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_run_on_a_database_being_written_is_refused_and_nothing_breaks(tmp_path):
    db = tmp_path / "dg.duckdb"
    holder = holding(
        "import sys; from dagster_project.lib.runlock import run_lock\n"
        f"with run_lock({str(db)!r}, what='nightly job'):"
    )
    try:
        env = {
            "DRIFTGATE_DB": str(db),
            "DRIFTGATE_REPORTS": str(tmp_path / "reports"),
            "DAGSTER_HOME": str(tmp_path / "home"),
            "DRIFTGATE_DATASET": str(REPO / "tests" / "data" / "handmade"),
        }
        started = time.monotonic()
        second = driftgate("run", cwd=tmp_path, env=env)
        waited = time.monotonic() - started
        assert second.returncode == 1
        assert second.stderr.strip().splitlines() == [
            f"driftgate: error: {db} is being written by another run (pid {holder.pid}, "
            f"nightly job since {_since(db)}); wait for it to finish, or set DRIFTGATE_DB "
            "to another file"
        ]
        assert not db.exists()  # refused before opening anything
        assert waited < 60  # it did not wait for the other run
    finally:
        holder.communicate("\n", timeout=30)
    # once the first run is over, the database is usable
    with run_lock(db):
        pass


def _since(db: Path) -> str:
    return json.loads(Path(str(db) + ".lock").read_text())["since"]


def test_a_database_open_in_another_process_is_named(tmp_path):
    db = tmp_path / "dg.duckdb"
    holder = holding(f"import duckdb, sys\nwith duckdb.connect({str(db)!r}):")
    try:
        env = {"DRIFTGATE_DB": str(db), "DAGSTER_HOME": str(tmp_path / "home")}
        result = driftgate("run", cwd=tmp_path, env=env)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            f"driftgate: error: {db} is open in another process ("
        )
        assert f"PID {holder.pid}" in lines[0]
    finally:
        holder.communicate("\n", timeout=30)


def test_the_lock_is_released_by_a_killed_run(tmp_path):
    """flock dies with its process: a killed nightly never blocks the next one."""
    db = tmp_path / "dg.duckdb"
    holder = holding(
        f"import sys; from dagster_project.lib.runlock import run_lock\nwith run_lock({str(db)!r}):"
    )
    with pytest.raises(DatabaseBusy):
        with run_lock(db):
            pass
    holder.kill()
    holder.wait(timeout=30)
    with run_lock(db):
        pass


# -- pools --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("per_step", "slots"),
    [
        # every step may send one request at a time: a step per allowed request
        (1, {"jira": 3, "gitlab": 1, "confluence": 4}),
        # two at a time per step: half as many steps, and one where the source allows one
        (2, {"jira": 1, "gitlab": 1, "confluence": 2}),
    ],
)
def test_pools_take_their_limits_from_the_policy(tmp_path, per_step, slots):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "operations:\n  parallel_requests: {jira: 3, gitlab: 1, confluence: 4}\n"
        f"  requests_per_step: {per_step}\n"
    )
    home = tmp_path / "home"
    result = driftgate(
        "pools", cwd=tmp_path, env={"DAGSTER_HOME": str(home), "DRIFTGATE_POLICY": str(policy)}
    )
    assert result.returncode == 0, result.stderr
    assert f"pool jira: {slots['jira']} step(s) at a time" in result.stdout
    with dg.DagsterInstance.from_config(str(home)) as instance:
        set_slots = {
            pool: instance.event_log_storage.get_concurrency_info(pool).slot_count
            for pool in ("jira", "gitlab", "confluence", "duckdb")
        }
    assert set_slots == {**slots, "duckdb": 1}
    # steps x requests per step never exceed what the source allows
    for source, allowed in {"jira": 3, "gitlab": 1, "confluence": 4}.items():
        assert set_slots[source] * min(per_step, allowed) <= allowed
