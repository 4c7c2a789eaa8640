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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import ClassVar

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

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


class KeptDuckDBResource(DuckDBResource):
    """dagster-duckdb's resource, keeping its connection for as long as Dagster keeps the
    resource: the whole run under the in-process executor (``driftgate run``), one step
    under the multiprocess one.

    Opening the database and closing it (a checkpoint) in each of a nightly's ~50 steps
    cost about 4.5 s of the day after at 100,000 issues, and every step began with a
    cold buffer pool. Each ``get_connection`` block still starts from a clean session:
    when it ends, the settings and variables it set are reset and its temporary tables
    dropped; a block that raises closes the connection. Outside a Dagster run (no
    ``setup_for_execution``) every block opens and closes its own, as before.
    """

    _keep: bool = PrivateAttr(default=False)
    _open: ExitStack | None = PrivateAttr(default=None)
    _con: duckdb.DuckDBPyConnection | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._keep = True

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.release()

    def release(self) -> None:
        """Close the kept connection, if any (the next block opens another): before a
        step opens a DuckDB of its own, so the two buffer pools do not add up."""
        stack, self._open, self._con = self._open, None, None
        if stack is not None:
            stack.close()

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if not self._keep:
            with super().get_connection() as con:
                yield con
            return
        if self._con is None:
            stack = ExitStack()
            self._con = stack.enter_context(super().get_connection())
            self._open = stack
        try:
            yield self._con
        except BaseException:
            self.release()  # whatever the block left open goes with the connection
            raise
        _clean_session(self._con)


def _clean_session(con: duckdb.DuckDBPyConnection) -> None:
    """Leave the session as a new connection has it, for the next block: the time zone
    and variables reset, temporary tables dropped (functions and macros stay: every
    block registers the same ones)."""
    con.execute("RESET TimeZone")
    for (name,) in con.execute("SELECT name FROM duckdb_variables()").fetchall():
        con.execute(f'RESET VARIABLE "{name}"')
    temp = "SELECT table_name FROM duckdb_tables() WHERE temporary"
    for (name,) in con.execute(temp).fetchall():
        con.execute(f'DROP TABLE temp."{name}"')


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
        "duckdb": KeptDuckDBResource(
            database=env_or("DRIFTGATE_DB", DEFAULT_DB), connection_config=duckdb_config()
        ),
        "reports": ReportsResource(folder=env_or("DRIFTGATE_REPORTS", DEFAULT_REPORTS)),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=source_resources())
