"""The moment an analysis is judged at: ``DRIFTGATE_AS_OF`` (set by ``driftgate run
--as-of``) or now. Read at run time, never at import."""

from __future__ import annotations

import os
from datetime import UTC, datetime


def as_of() -> datetime:
    value = os.environ.get("DRIFTGATE_AS_OF")
    if not value:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
