"""Timestamps as the three APIs write them, normalised to aware UTC datetimes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_OFFSET_NO_COLON = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_ts(value: str) -> datetime:
    """Parse ``2022-06-09T16:29:31.871-0700``, ``...Z``, ``...+00:00`` to UTC.

    Raises ValueError on anything else (the caller quarantines the record).
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    text = _OFFSET_NO_COLON.sub(r"\1:\2", text)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def query_time(mark: datetime, *, overlap_minutes: int, tz: str | None, fmt: str) -> str:
    """A watermark minus the overlap, in the searching user's time zone, as ``fmt``.

    JQL and CQL read dates with minute precision in the user's zone: without the
    conversion a user east of UTC would miss hours of changes.
    """
    shifted = (mark - timedelta(minutes=overlap_minutes)).astimezone(zone(tz))
    # Round down to the minute the query language can express.
    return shifted.replace(second=0, microsecond=0).strftime(fmt)
