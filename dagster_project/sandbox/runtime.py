"""The zero-config sandbox: a demo dataset generated once and served in-process.

Resources call :func:`sandbox_url` when no source URL is configured. The emulator runs
in a daemon thread of the current process, once per dataset directory, so every asset
of an in-process run talks to the same server.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import tempfile
import threading
import zlib
from pathlib import Path

from dagster_project.sandbox.emulator import server

DEFAULT_DATASET = Path("data") / "sandbox" / "demo"
DEFAULT_SEED = 7

_lock = threading.Lock()
_running: dict[Path, server.RunningEmulator] = {}


def ensure_dataset(dataset_dir: str | os.PathLike[str], seed: int = DEFAULT_SEED) -> Path:
    """Generate the demo organisation into ``dataset_dir`` unless a dataset is there.

    Generation writes to a temporary sibling folder and renames it into place, so a
    killed generation never leaves a half-written dataset that looks complete.
    """
    target = Path(dataset_dir).resolve()
    if (target / "manifest.json").exists():
        return target
    from dagster_project.sandbox.simulator import generate

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        generate(staging, seed=seed, scale="demo")
        if (target / "manifest.json").exists():  # another process won the race
            return target
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def preferred_port(dataset_dir: str | os.PathLike[str]) -> int:
    """The port a dataset is served on when it is free: the same in every run, below the
    ports the system hands out to outgoing connections."""
    return 20000 + zlib.crc32(str(Path(dataset_dir).resolve()).encode()) % 10000


def sandbox_url(dataset_dir: str | os.PathLike[str] = DEFAULT_DATASET) -> str:
    """Base URL of the emulator serving ``dataset_dir`` (started on first use).

    Served on the dataset's own port where it can be: payloads carry links to the
    server, and a server at another address each night would change them, so a night
    with nothing new would store spaces and pages again and judge their readers anew. A
    real server keeps its address. If the port is taken, any free one serves."""
    path = ensure_dataset(dataset_dir)
    with _lock:
        running = _running.get(path)
        if running is None:
            port = preferred_port(path)
            if _free(port):
                # taken since the probe: werkzeug exits (SystemExit) rather than raise
                with contextlib.suppress(OSError, SystemExit):
                    running = server.start(str(path), port=port)
            if running is None:
                running = server.start(str(path))
            _running[path] = running
            atexit.register(running.stop)
        return running.url


def _free(port: int) -> bool:
    """Whether nothing listens on the loopback ``port`` (bound as the server binds)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stop_all() -> None:
    """Stop every in-process emulator (used by the CLI and tests between datasets)."""
    with _lock:
        for running in _running.values():
            running.stop()
        _running.clear()


def emulator_env(url: str, user: str = "driftgate", token: str = "t") -> dict[str, str]:
    """The source variables that point a run at an emulator serving at ``url``, as one
    would point it at real servers (the sandbox is then not started in the run)."""
    return {
        "JIRA_URL": f"{url}/", "JIRA_USER": user, "JIRA_TOKEN": token,
        "GITLAB_URL": url, "GITLAB_TOKEN": token,
        "CONFLUENCE_URL": f"{url}/wiki", "CONFLUENCE_USER": user, "CONFLUENCE_TOKEN": token,
    }  # fmt: skip
