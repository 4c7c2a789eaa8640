"""Serving the emulator on a loopback port, in a background thread or in the foreground."""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from dagster_project.sandbox.dataset import Dataset
from dagster_project.sandbox.emulator.app import Emulator
from dagster_project.sandbox.emulator.faults import FaultPlan


class QuietHandler(WSGIRequestHandler):
    """No access log on stderr; a deliberately reset connection is not an error."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            super().log(type, message, *args)

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        self.close_connection = True

    def handle(self) -> None:
        try:
            super().handle()
        except (OSError, ValueError):
            pass

    def finish(self) -> None:
        environ = getattr(self, "environ", None) or {}
        if environ.get("driftgate.reset"):
            # Abortive close: with SO_LINGER 0 the final close() sends a RST, no FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.server.reset_sockets.add(id(self.connection))  # type: ignore[attr-defined]
        try:
            super().finish()
        except OSError:
            pass


class SandboxServer(ThreadedWSGIServer):
    """werkzeug's threaded server, able to drop a connection with a reset on demand."""

    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any):
        self.reset_sockets: set[int] = set()
        super().__init__(*args, **kwargs)

    def shutdown_request(self, request: Any) -> None:
        if id(request) in self.reset_sockets:
            self.reset_sockets.discard(id(request))
            self.close_request(request)  # no shutdown(SHUT_WR): that would send a FIN first
            return
        super().shutdown_request(request)


@dataclass
class RunningEmulator:
    """A started emulator: ``url`` is its base URL (Jira at url, Confluence at url/wiki)."""

    app: Emulator
    server: SandboxServer
    thread: threading.Thread | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    @property
    def port(self) -> int:
        return self.server.server_port

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)
        self.app.dataset.close()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def build(
    dataset_dir: str,
    *,
    port: int = 0,
    require_token: str | None = None,
    faults: str | FaultPlan | None = None,
    latency_ms: int = 0,
    jira_flavor: str | None = None,
    gitlab_graphql: bool = True,
) -> RunningEmulator:
    """Load a dataset and bind the emulator to 127.0.0.1:port (0 = a free port);
    ``gitlab_graphql=False`` serves GitLab as an instance without GraphQL (404)."""
    plan = FaultPlan.parse(faults) if isinstance(faults, str) else faults
    app = Emulator(
        Dataset(dataset_dir),
        require_token=require_token,
        faults=plan,
        latency_ms=latency_ms,
        jira_flavor=jira_flavor,
        gitlab_graphql=gitlab_graphql,
    )
    server = SandboxServer("127.0.0.1", port, app, QuietHandler)
    return RunningEmulator(app=app, server=server, thread=None)


def start(dataset_dir: str, **options: Any) -> RunningEmulator:
    """Start the emulator in a daemon thread and return once it accepts connections."""
    running = build(dataset_dir, **options)
    # A short poll interval lets stop() return at once instead of after up to 0.5 s.
    thread = threading.Thread(
        target=running.server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="driftgate-sandbox",
        daemon=True,
    )
    thread.start()
    running.thread = thread
    return running
