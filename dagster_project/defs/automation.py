"""The nightly job over every layer and its 02:00 schedule.

The job runs in process unless its run config chooses the multiprocess executor
(``dg launch --job nightly -c dagster_project/run_config/nightly_multiprocess.yaml``):
each unit's fetch step then runs in its own process, as many at once as the instance's
pool of its source allows (pools ``jira``, ``gitlab``, ``confluence``), while every step
that opens the database shares pool ``duckdb``, which must be limited to 1 (README,
"Running in parallel").
"""

import dagster as dg

from dagster_project.lib.asof import AS_OF_TAG, format_as_of

SNAPSHOT = dg.AssetKey(["reports", "daily_snapshot"])

nightly = dg.define_asset_job(
    "nightly",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(SNAPSHOT),
    description="Ingest the three sources, rebuild the chain, analyse, publish the reports.",
    executor_def=dg.multi_or_in_process_executor,
    config={"execution": {"config": {"in_process": {}}}},  # the default; run config may differ
)

snapshot_backfill = dg.define_asset_job(
    "snapshot_backfill",
    selection=dg.AssetSelection.assets(SNAPSHOT),
    description="Judge past days from the raw history, one partition per day (backfill a "
    "range from the UI to draw a period's trend).",
)


@dg.schedule(
    name="nightly_0200",
    job=nightly,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Runs the nightly job every day at 02:00 UTC, judged as of the tick.",
)
def nightly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Each run is judged as of its scheduled moment, so a late or re-run tick gives the
    same answer as an on-time one."""
    return dg.RunRequest(tags={AS_OF_TAG: format_as_of(context.scheduled_execution_time)})
