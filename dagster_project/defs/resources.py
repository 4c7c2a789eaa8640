"""Resources: the three sources, the sandbox that stands in for them, and DuckDB.

Connections come from environment variables through ``dg.EnvVar`` (the UI shows the
variable's name, never its value). When a source URL is not set, that source is served
by the sandbox emulator on a loopback port, so a fresh clone runs with no setup.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.lib.connections import Connection
from dagster_project.sandbox.runtime import DEFAULT_DATASET, sandbox_url

DEFAULT_DB = str(Path("data") / "driftgate.duckdb")
DEFAULT_REPORTS = "reports"


class SandboxResource(dg.ConfigurableResource):
    """The emulator serving a dataset directory; used by any source left unconfigured."""

    dataset_dir: str = str(DEFAULT_DATASET)

    def url(self) -> str:
        return sandbox_url(self.dataset_dir)


class _SourceResource(dg.ConfigurableResource):
    """Where one source lives and how to authenticate; the sandbox when ``url`` is unset."""

    url: str | None = None
    user: str | None = None
    token: str | None = None
    timeout_s: float = 30.0
    max_retries: int = 6
    retry_base_s: float = 0.5
    sandbox: SandboxResource

    path_prefix: ClassVar[str] = ""

    def connection(self) -> Connection:
        if self.url:
            url, user, token = self.url.rstrip("/"), self.user or "", self.token or ""
        else:  # the sandbox accepts any credentials
            url, user, token = self.sandbox.url() + self.path_prefix, "driftgate", "sandbox"
        return Connection(
            url=url,
            user=user,
            token=token,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            retry_base_s=self.retry_base_s,
        )


class JiraResource(_SourceResource):
    """Jira Cloud or Server/DC (the flavour is read from /serverInfo)."""


class GitlabResource(_SourceResource):
    """GitLab (gitlab.com or self-managed), API v4."""


class ConfluenceResource(_SourceResource):
    """Confluence, REST API v1 under /wiki."""

    path_prefix: ClassVar[str] = "/wiki"


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
    sandbox = SandboxResource(dataset_dir=env_or("DRIFTGATE_DATASET", str(DEFAULT_DATASET)))
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
        "duckdb": DuckDBResource(database=env_or("DRIFTGATE_DB", DEFAULT_DB)),
        "reports": ReportsResource(folder=env_or("DRIFTGATE_REPORTS", DEFAULT_REPORTS)),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=source_resources())
