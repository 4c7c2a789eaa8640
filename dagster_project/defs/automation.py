"""The nightly job over every layer and its 02:00 schedule."""

import dagster as dg

nightly = dg.define_asset_job(
    "nightly",
    selection=dg.AssetSelection.all(),
    description="Ingest the three sources, rebuild the chain, analyse, publish the reports.",
)

nightly_schedule = dg.ScheduleDefinition(
    name="nightly_0200",
    job=nightly,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Runs the nightly job every day at 02:00 UTC.",
)
