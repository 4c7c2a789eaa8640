"""One ``as_of`` per run: resolved by the first asset that asks, recorded as a run tag,
read back by every other asset of the run (plain helper, outside the autoloaded defs/)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import dagster as dg

from dagster_project.lib.asof import AS_OF_TAG, format_as_of, parse_as_of, resolve_as_of
from dagster_project.sandbox.runtime import DEFAULT_DATASET


def run_as_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> datetime:
    run = context.run
    stored = context.instance.get_run_by_id(run.run_id)  # tags added by an earlier step
    tagged = run.tags.get(AS_OF_TAG) or (stored.tags.get(AS_OF_TAG) if stored else None)
    if tagged:
        return parse_as_of(tagged)
    record = context.instance.get_run_record_by_id(run.run_id)
    started = record.create_timestamp if record is not None else datetime.now(UTC)
    value = resolve_as_of(
        explicit=None,
        sandbox_dataset=os.environ.get("DRIFTGATE_DATASET") or DEFAULT_DATASET,
        started_at=started,
    )
    context.instance.add_run_tags(run.run_id, {AS_OF_TAG: format_as_of(value)})
    return value
