"""Which server a source's rows came from, and the refusal to mix two organisations.

The first run that reads a source into a database records the instance (its normalised
base URL, or the sandbox dataset's name); a later run pointed at another instance fails
before it reads anything, naming both, instead of merging two organisations' issues.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import duckdb

DEFAULT_PORTS = {"http": 80, "https": 443}


class InstanceMismatch(RuntimeError):
    """The database already holds this source's data from another instance."""


def normalise_url(url: str) -> str:
    """Scheme and host lower-cased, default port, credentials and trailing slash dropped:
    the same server written two ways is one instance."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port and parts.port != DEFAULT_PORTS.get(scheme) else ""
    return urlunsplit((scheme, host + port, parts.path.rstrip("/"), "", ""))


def bind_instance(
    con: duckdb.DuckDBPyConnection, source: str, instance: str, run_id: str, *, where: str
) -> None:
    """Record ``instance`` as where ``source``'s rows come from, or refuse a different one.

    A database written before instances were recorded adopts the current one. ``where``
    names the database in the message."""
    row = con.execute("SELECT instance FROM raw.instances WHERE source = ?", [source]).fetchone()
    now = datetime.now(UTC)
    if row is None:
        con.execute(
            "INSERT INTO raw.instances VALUES (?, ?, ?, ?, ?, ?)",
            [source, instance, run_id, now, run_id, now],
        )
        return
    if row[0] != instance:
        raise InstanceMismatch(
            f"{where} holds {source} data from {row[0]}, not from {instance}: refusing to "
            "mix two organisations; point DRIFTGATE_DB at another file for this one"
        )
    con.execute(
        "UPDATE raw.instances SET last_run_id = ?, last_seen_at = ? WHERE source = ?",
        [run_id, now, source],
    )
