"""The moment a run is judged at ("as of"), resolved once per run.

Order: an explicit value (``driftgate run --as-of``, the schedule's tick, a run tag),
then ``DRIFTGATE_AS_OF``, then the sandbox dataset's own ``as_of`` when the sandbox
serves every source, then the moment the run started. Every analysis reads only what
was true at that moment, so two assets of one run never judge at different times.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from dagster_project.lib.connections import SOURCE_URL_VARS

AS_OF_TAG = "driftgate/as_of"


def parse_as_of(value: str) -> datetime:
    """An ISO-8601 date or timestamp as an aware UTC datetime (naive values are UTC)."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def format_as_of(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def dataset_as_of(dataset_dir: str | os.PathLike[str] | None) -> datetime | None:
    """The ``as_of`` of a sandbox dataset's manifest, if it has one."""
    if not dataset_dir:
        return None
    try:
        value = json.loads(Path(dataset_dir, "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    raw = value.get("as_of") if isinstance(value, dict) else None
    return parse_as_of(raw) if raw else None


def resolve_as_of(
    *,
    explicit: str | None,
    sandbox_dataset: str | os.PathLike[str] | None,
    started_at: datetime,
) -> datetime:
    """The run's as_of by the order in this module's docstring."""
    if explicit:
        return parse_as_of(explicit)
    env = os.environ.get("DRIFTGATE_AS_OF")
    if env:
        return parse_as_of(env)
    if not any(os.environ.get(name) for name in SOURCE_URL_VARS):
        found = dataset_as_of(sandbox_dataset)
        if found is not None:
            return found
    return started_at.astimezone(UTC)
