"""Running unattended: the nightly job and its schedule, the alert on a failed run, and
the freshness checks that notice when nights were missed.

The job runs in process unless its run config chooses the multiprocess executor
(``dagster_project/run_config/nightly_multiprocess.yaml``): each fetch step of a source's
units then runs in its own process, as many at once as the instance's pool of that source
allows (pools ``jira``, ``gitlab``, ``confluence``), while every step that opens the
database shares pool ``duckdb``, limited to 1 (docs/deploy.md).

The schedule's cron and time zone come from the policy (``operations``), or from
``DRIFTGATE_NIGHTLY_CRON`` / ``DRIFTGATE_TIMEZONE``; the freshness limit from the policy.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import dagster as dg
import requests

from dagster_project.lib.asof import AS_OF_TAG, format_as_of
from dagster_project.lib.policy import Policy, check_schedule, load_policy
from dagster_project.lib.retry import scrub
from dagster_project.runlog import failure_lines

SNAPSHOT = dg.AssetKey(["reports", "daily_snapshot"])
FRESH_ASSETS = [
    dg.AssetKey(["raw", "jira"]),
    dg.AssetKey(["raw", "gitlab"]),
    dg.AssetKey(["raw", "confluence"]),
    dg.AssetKey(["reports", "html_report"]),
]
WEBHOOK_VAR = "DRIFTGATE_ALERT_WEBHOOK"
# The run config that chooses the multiprocess executor (README, "Running in parallel").
MULTIPROCESS_RUN_CONFIG = (
    Path(__file__).resolve().parents[1] / "run_config" / "nightly_multiprocess.yaml"
)
# Every run of the nightly job writes the one DuckDB file: a run coordinator limit on this
# tag (docs/deploy.md) keeps a second run queued instead of failing on the file lock.
WRITER_TAG = {"driftgate/writer": "duckdb"}

nightly = dg.define_asset_job(
    "nightly",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(SNAPSHOT),
    description="Ingest the three sources, rebuild the chain, analyse, publish the reports.",
    tags=WRITER_TAG,
    executor_def=dg.multi_or_in_process_executor,
    config={"execution": {"config": {"in_process": {}}}},  # the default; run config may differ
)

snapshot_backfill = dg.define_asset_job(
    "snapshot_backfill",
    selection=dg.AssetSelection.assets(SNAPSHOT),
    description="Judge past days from the raw history, one partition per day (backfill a "
    "range from the UI to draw a period's trend).",
    tags=WRITER_TAG,
)


def nightly_timing(policy: Policy) -> tuple[str, str]:
    """(cron, time zone): the environment's override, else the policy's."""
    cron = os.environ.get("DRIFTGATE_NIGHTLY_CRON") or policy.operations.nightly_cron
    zone = os.environ.get("DRIFTGATE_TIMEZONE") or policy.operations.timezone
    try:
        check_schedule(cron, zone)
    except ValueError as exc:
        names = [n for n in ("DRIFTGATE_NIGHTLY_CRON", "DRIFTGATE_TIMEZONE") if os.environ.get(n)]
        raise ValueError(f"{' / '.join(names) or 'policy operations'}: {exc}") from None
    return cron, zone


def build_nightly_schedule(policy: Policy) -> dg.ScheduleDefinition:
    cron, zone = nightly_timing(policy)

    @dg.schedule(
        name="nightly_schedule",
        job=nightly,
        cron_schedule=cron,
        execution_timezone=zone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Runs the nightly job at '{cron}' ({zone}), judged as of the tick.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """Each run is judged as of its scheduled moment, so a late or re-run tick gives
        the same answer as an on-time one."""
        return dg.RunRequest(tags={AS_OF_TAG: format_as_of(context.scheduled_execution_time)})

    return _schedule


def pool_limits(policy: Policy) -> dict[str, int]:
    """The concurrency pools of the nightly job and their limits: per source, as many
    fetch steps as keep its requests in flight within the policy's parallel_requests
    (each step has up to requests_per_step of them); one writer of the database."""
    ops = policy.operations
    limits = {source: ops.step_slots(source) for source in ops.parallel_requests.model_dump()}
    return {**limits, "duckdb": 1}


def pooled_home(home: Path) -> Path:
    """A scratch Dagster home (tests, benchmarks) whose instance holds every step to its
    pool, as README's "Running in parallel" configures it; telemetry off. The limits
    themselves come from :func:`apply_pool_limits` (``driftgate pools``)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        "concurrency:\n  pools:\n    granularity: op\n    default_limit: 1\n"
        "telemetry:\n  enabled: false\n"
    )
    return home


def apply_pool_limits(instance: dg.DagsterInstance, policy: Policy) -> dict[str, int]:
    """Write the pools' limits into the instance (what ``dagster instance concurrency
    set`` does), so the executor never runs more steps of a pool at once."""
    limits = pool_limits(policy)
    for pool, limit in limits.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)
    return limits


def alert_text(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """One line: which job failed, as of when, and each failed source or step's line."""
    lines = failure_lines(instance, run.run_id) or ["see the run's log"]
    as_of = run.tags.get(AS_OF_TAG, "")
    when = f" as of {as_of[:16]}" if as_of else ""
    return f"Driftgate {run.job_name} run {run.run_id[:8]}{when} failed: " + " | ".join(lines)


def post_alert(url: str, text: str) -> None:
    """POST Slack-compatible JSON ({"text": ...}); the URL (a secret) is never logged."""
    try:
        response = requests.post(
            url,
            data=json.dumps({"text": text}),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        response.raise_for_status()
    except requests.RequestException as exc:
        raise RuntimeError(
            scrub(f"alert webhook ({WEBHOOK_VAR}) failed: {type(exc).__name__}", (url,))
        ) from None


@dg.run_failure_sensor(
    name="nightly_failure_alert",
    monitored_jobs=[nightly, snapshot_backfill],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Posts a one-line summary of a failed run to the webhook in {WEBHOOK_VAR} "
    "(Slack-compatible JSON); does nothing when the variable is not set.",
)
def nightly_failure_alert(context: dg.RunFailureSensorContext) -> None:
    url = os.environ.get(WEBHOOK_VAR)
    text = alert_text(context.instance, context.dagster_run)
    if not url:
        context.log.info(f"{WEBHOOK_VAR} not set; not posted: {text}")
        return
    post_alert(url, text)
    context.log.info(f"posted: {text}")


def build_freshness(policy: Policy) -> tuple[list, dg.SensorDefinition]:
    checks = list(
        dg.build_last_update_freshness_checks(
            assets=FRESH_ASSETS,
            lower_bound_delta=timedelta(hours=policy.operations.freshness_hours),
            severity=dg.AssetCheckSeverity.ERROR,
        )
    )
    sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=checks,
        name="freshness_checks_sensor",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    return checks, sensor


@dg.definitions
def automation() -> dg.Definitions:
    policy = load_policy()
    freshness_checks, freshness_sensor = build_freshness(policy)
    return dg.Definitions(
        jobs=[nightly, snapshot_backfill],
        schedules=[build_nightly_schedule(policy)],
        sensors=[nightly_failure_alert, freshness_sensor],
        asset_checks=freshness_checks,
    )
