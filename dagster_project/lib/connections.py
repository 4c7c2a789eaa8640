"""Resolved connection settings for one source, free of any Dagster type."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Connection:
    url: str
    user: str
    token: str = field(repr=False)  # never printed: repr() omits it
    timeout_s: float = 30.0
    max_retries: int = 5
    sandbox: bool = False
