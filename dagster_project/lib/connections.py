"""Resolved connection settings for one source, free of any Dagster type."""

from __future__ import annotations

from dataclasses import dataclass, field

from dagster_project.lib.retry import RetryPolicy

# A source whose variable is set is read from that server; none set: the sandbox.
SOURCE_URL_VARS = ("JIRA_URL", "GITLAB_URL", "CONFLUENCE_URL")


@dataclass(frozen=True)
class Connection:
    url: str
    user: str
    token: str = field(repr=False)  # never printed: repr() omits it
    timeout_s: float = 30.0
    max_retries: int = 6  # attempts per request, see lib/retry.py
    retry_base_s: float = 0.5
    # time.monotonic() past which no request is retried (the source's outer deadline)
    deadline_at: float | None = None

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=max(self.max_retries, 1),
            base_s=self.retry_base_s,
            deadline_at=self.deadline_at,
        )
