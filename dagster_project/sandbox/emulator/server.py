"""Serving the emulator on a loopback port, in a background thread or in the foreground."""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import ClientDisconnected
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

from dagster_project.sandbox.dataset import Dataset
from dagster_project.sandbox.emulator.app import Emulator
from dagster_project.sandbox.emulator.faults import FaultPlan


class KeepAliveHandler(WSGIRequestHandler):
    """Serves requests one after another on a connection, as GitLab's and Atlassian's
    servers do (werkzeug's own handler closes every connection after one answer, so each
    request would pay for a new TCP connection on both sides).

    The application's answer is buffered (every reply is a JSON body of known length),
    sent with its Content-Length, and the connection stays open unless the client asked
    to close it, the request body could not be drained, or the answer is deliberately
    short (the ``truncate`` fault: closing is how the client learns the body ended). No
    access log on stderr; a deliberately reset connection is not an error.
    """

    # An idle kept-alive connection is closed after this many seconds.
    timeout = 60

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").strip().lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        body_in = _request_body(environ)
        reply: list[Any] = []
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            reply[:] = [status, headers]
            return chunks.append

        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except ConnectionError:  # the reset fault
            self.close_connection = True
            return
        except Exception as exc:  # an emulator bug: answer 500 and say why on stderr
            self.log_error("error on %s %s: %r", self.command, self.path, exc)
            chunks, reply[:] = [b"internal error"], ["500 INTERNAL SERVER ERROR", []]
            self.close_connection = True
        if body_in is None or not _drained(body_in):
            self.close_connection = True
        self._send(reply[0], reply[1], b"".join(chunks))

    def _send(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        """Status line, headers and body in one write: two small writes would wait on
        the peer's delayed ACK (Nagle) for tens of milliseconds per request."""
        lines = [
            f"{self.protocol_version} {status}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
        ]
        declared = None
        for name, value in headers:
            if name.lower() == "content-length":
                declared = int(value)
            lines.append(f"{name}: {value}")
        if declared is None:
            declared = len(body)
            lines.append(f"Content-Length: {declared}")
        if declared != len(body) and self.command != "HEAD":
            self.close_connection = True
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head if self.command == "HEAD" else head + body)

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error" and not message.startswith("Request timed out"):
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


def _request_body(environ: dict[str, Any]) -> LimitedStream | None:
    """Bound ``wsgi.input`` to the declared length, so the next request on the
    connection is never read as this one's body; None for a chunked body (served, then
    the connection is closed rather than parsed further)."""
    if environ.get("wsgi.input_terminated"):
        return None
    try:
        length = max(int(environ.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        length = 0
    body = LimitedStream(environ["wsgi.input"], length)
    environ["wsgi.input"] = body
    return body


def _drained(body: LimitedStream) -> bool:
    """Read what the application left unread; False when the client sent less."""
    try:
        body.exhaust()
    except ClientDisconnected:
        return False
    return True


class SandboxServer(ThreadedWSGIServer):
    """werkzeug's threaded server (a thread per connection), keeping connections alive,
    able to drop one with a reset on demand, and closing every open connection when it
    stops so that no client is served by a stopped emulator."""

    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any):
        self.reset_sockets: set[int] = set()
        self.open_sockets: set[socket.socket] = set()
        self.connections_accepted = 0
        self._sockets_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._sockets_lock:
            self.open_sockets.add(request)
            self.connections_accepted += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._sockets_lock:
            self.open_sockets.discard(request)
        if id(request) in self.reset_sockets:
            self.reset_sockets.discard(id(request))
            self.close_request(request)  # no shutdown(SHUT_WR): that would send a FIN first
            return
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every kept-alive connection (their threads then finish)."""
        with self._sockets_lock:
            open_now = list(self.open_sockets)
        for sock in open_now:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


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
        self.server.close_connections()
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
    server = SandboxServer("127.0.0.1", port, app, KeepAliveHandler)
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
