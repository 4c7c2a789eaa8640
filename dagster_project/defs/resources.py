"""Resources: the three sources, the sandbox that stands in for them, and DuckDB.

Connections come from environment variables through ``dg.EnvVar`` (the UI shows the
variable's name, never its value). When no source URL is set, the sandbox emulator
serves all three on a loopback port, so a fresh clone runs with no setup. The sandbox
never stands in beside a real server: once any source URL is set, a source without one
is skipped (one line in the log and the CLI), never filled with simulated data.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import ClassVar

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.lib.connections import SOURCE_URL_VARS, Connection
from dagster_project.lib.duckdb_settings import duckdb_config
from dagster_project.lib.policy import Policy
from dagster_project.sandbox.runtime import DEFAULT_DATASET, sandbox_url

DEFAULT_DB = str(Path("data") / "driftgate.duckdb")
DEFAULT_REPORTS = "reports"


class SandboxResource(dg.ConfigurableResource):
    """The emulator serving a dataset directory, for sources left unconfigured.

    ``enabled`` is false as soon as any source URL is configured: real and simulated
    data never meet in one database."""

    dataset_dir: str = str(DEFAULT_DATASET)
    enabled: bool = True

    def url(self) -> str:
        return sandbox_url(self.dataset_dir)


class _SourceResource(dg.ConfigurableResource):
    """Where one source lives and how to authenticate; the sandbox when ``url`` is unset."""

    url: str | None = None
    user: str | None = None
    token: str | None = None
    timeout_s: float | None = None  # default: the policy's ingest.request_timeout_seconds
    max_retries: int = 6
    retry_base_s: float = 0.5
    sandbox: SandboxResource

    path_prefix: ClassVar[str] = ""
    env_prefix: ClassVar[str] = ""

    def skip_reason(self) -> str | None:
        """Why this source is not read in this run, or None when it is."""
        if self.url or self.sandbox.enabled:
            return None
        return (
            f"{self.env_prefix}_URL is not set while another source URL is: skipped "
            "(the sandbox serves only when no source URL is set)"
        )

    def connection(self, policy: Policy | None = None) -> Connection:
        """Where and how to connect; the policy sets the timeout and the outer deadline
        of this source's ingest, counted from now."""
        policy = policy or Policy()
        if self.url:
            url, user, token = self.url.rstrip("/"), self.user or "", self.token or ""
        else:  # the sandbox accepts any credentials
            url, user, token = self.sandbox.url() + self.path_prefix, "driftgate", "sandbox"
        return Connection(
            url=url,
            user=user,
            token=token,
            timeout_s=self.timeout_s or policy.ingest.request_timeout_seconds,
            max_retries=self.max_retries,
            retry_base_s=self.retry_base_s,
            deadline_at=time.monotonic() + policy.ingest.source_deadline_minutes * 60,
        )


class JiraResource(_SourceResource):
    """Jira Cloud or Server/DC (the flavour is read from /serverInfo)."""

    env_prefix: ClassVar[str] = "JIRA"


class GitlabResource(_SourceResource):
    """GitLab (gitlab.com or self-managed), API v4."""

    env_prefix: ClassVar[str] = "GITLAB"


class ConfluenceResource(_SourceResource):
    """Confluence, REST API v1 under /wiki."""

    path_prefix: ClassVar[str] = "/wiki"
    env_prefix: ClassVar[str] = "CONFLUENCE"


class ReportsResource(dg.ConfigurableResource):
    """The folder where reports are written."""

    folder: str = DEFAULT_REPORTS

    def path(self) -> Path:
        folder = Path(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def env_or(name: str, default: str | None = None) -> dg.EnvVar | str | None:
    """``dg.EnvVar(name)`` when the variable is set, else ``default``.

    Only the variable's presence is read while definitions load; its value is resolved
    by Dagster at run time and never shown in the UI.
    """
    return dg.EnvVar(name) if os.environ.get(name) else default


def source_resources() -> dict[str, dg.ConfigurableResource]:
    sandbox = SandboxResource(
        dataset_dir=env_or("DRIFTGATE_DATASET", str(DEFAULT_DATASET)),
        enabled=not any(os.environ.get(name) for name in SOURCE_URL_VARS),
    )
    return {
        "sandbox": sandbox,
        "jira": JiraResource(
            url=env_or("JIRA_URL"),
            user=env_or("JIRA_USER"),
            token=env_or("JIRA_TOKEN"),
            sandbox=sandbox,
        ),
        "gitlab": GitlabResource(
            url=env_or("GITLAB_URL"), token=env_or("GITLAB_TOKEN"), sandbox=sandbox
        ),
        "confluence": ConfluenceResource(
            url=env_or("CONFLUENCE_URL"),
            user=env_or("CONFLUENCE_USER"),
            token=env_or("CONFLUENCE_TOKEN"),
            sandbox=sandbox,
        ),
        # Memory ceiling, threads and spill folder: plain values (nothing secret), shown in
        # the UI with the resource; staging stores are opened with the same settings.
        "duckdb": DuckDBResource(
            database=env_or("DRIFTGATE_DB", DEFAULT_DB), connection_config=duckdb_config()
        ),
        "reports": ReportsResource(folder=env_or("DRIFTGATE_REPORTS", DEFAULT_REPORTS)),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=source_resources())
