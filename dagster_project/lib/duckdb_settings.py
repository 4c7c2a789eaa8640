"""DuckDB's memory ceiling, threads and spill folder, from the environment.

By default DuckDB may use 80% of the machine's memory and every core. On a shared
nightly host a large build should spill to disk instead of growing, so the three
settings are configuration (``DRIFTGATE_DUCKDB_MEMORY_LIMIT``, ``..._THREADS``,
``..._TEMP_DIR``), passed to every connection the product opens: the main database and
the staging stores. Unset keeps DuckDB's own default (its spill folder is then
``<database>.tmp`` beside the file). A bad value names the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

SETTINGS_VARS = {
    "memory_limit": "DRIFTGATE_DUCKDB_MEMORY_LIMIT",
    "threads": "DRIFTGATE_DUCKDB_THREADS",
    "temp_directory": "DRIFTGATE_DUCKDB_TEMP_DIR",
}
_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


class SettingError(ValueError):
    """A DuckDB setting from the environment that DuckDB would not accept."""


def duckdb_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The DuckDB ``config`` for ``duckdb.connect``: only the settings that are set."""
    env = os.environ if env is None else env
    config: dict[str, Any] = {}
    memory = (env.get(SETTINGS_VARS["memory_limit"]) or "").strip()
    if memory:
        if not _SIZE.match(memory):
            raise SettingError(
                f"{SETTINGS_VARS['memory_limit']}={memory!r} is not a size such as 1GB or 512MiB"
            )
        config["memory_limit"] = memory
    threads = (env.get(SETTINGS_VARS["threads"]) or "").strip()
    if threads:
        if not threads.isdigit() or int(threads) < 1:
            raise SettingError(f"{SETTINGS_VARS['threads']}={threads!r} is not a whole number >= 1")
        config["threads"] = int(threads)
    temp = (env.get(SETTINGS_VARS["temp_directory"]) or "").strip()
    if temp:
        config["temp_directory"] = temp
    return config
