"""Timestamps in each API's own format, and working-hours arithmetic.

Each API renders time differently (Jira with a numeric offset in the viewer's zone, GitLab
in UTC with ``Z``, git commit dates in the committer's offset); the ingestion has to
normalise all of them, so the simulator writes each one the way its API does.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dagster_project.lib.sources.timeparse import parse_ts  # noqa: F401 - re-exported

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def _ms(dt: datetime) -> str:
    return f"{dt.microsecond // 1000:03d}"


def jira_ts(dt: datetime, zone: ZoneInfo) -> str:
    """``2022-06-09T16:29:31.871-0700``: Jira renders times in the viewer's zone."""
    local = dt.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + _ms(local) + local.strftime("%z")


def jira_date(dt: datetime, zone: ZoneInfo) -> str:
    return dt.astimezone(zone).strftime("%Y-%m-%d")


def utc_ts(dt: datetime) -> str:
    """``2026-01-20T10:00:00.000Z``: GitLab API objects and Confluence ``version.when``."""
    u = dt.astimezone(UTC)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + _ms(u) + "Z"


def git_ts(dt: datetime, offset_hours: float) -> str:
    """``2026-01-20T11:00:00.000+01:00``: git dates keep the committer's offset."""
    local = dt.astimezone(UTC) + timedelta(hours=offset_hours)
    sign = "+" if offset_hours >= 0 else "-"
    minutes = int(round(abs(offset_hours) * 60))
    return (
        local.strftime("%Y-%m-%dT%H:%M:%S.")
        + _ms(local)
        + f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    )


def at_work(dt: datetime, offset_hours: float, rng: random.Random) -> datetime:
    """Move ``dt`` forward to the next working hour (Mon-Fri, 08:00-19:00 local).

    Only ever moves forward, so timelines built step by step stay ordered.
    """
    off = timedelta(hours=offset_hours)
    local = dt + off
    if local.hour >= 19:
        local = (local + DAY).replace(hour=8, minute=0) + timedelta(minutes=rng.randint(20, 150))
    elif local.hour < 8:
        local = local.replace(hour=8, minute=0) + timedelta(minutes=rng.randint(20, 150))
    while local.weekday() >= 5:
        local = (local + DAY).replace(hour=8, minute=0) + timedelta(minutes=rng.randint(20, 150))
    return local - off


def later(
    dt: datetime, rng: random.Random, lo_hours: float, hi_hours: float, offset_hours: float = 0.0
) -> datetime:
    """A working-hours instant between ``lo`` and ``hi`` hours after ``dt`` (or a bit more)."""
    step = timedelta(
        seconds=int(rng.uniform(lo_hours, hi_hours) * 3600), milliseconds=rng.randint(0, 999)
    )
    return at_work(dt + step, offset_hours, rng)
