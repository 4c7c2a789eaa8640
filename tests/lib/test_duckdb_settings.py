"""DuckDB's memory ceiling, threads and spill folder come from the environment and
reach every connection the product opens."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dagster_duckdb import DuckDBResource

from dagster_project.defs.resources import source_resources
from dagster_project.lib.duckdb_settings import SettingError, duckdb_config
from dagster_project.lib.policy import Policy
from dagster_project.lib.scopes import Unit
from dagster_project.lib.staging import unit_store

SETTINGS = (
    "SELECT current_setting('memory_limit'), current_setting('threads'), "
    "current_setting('temp_directory')"
)


def test_only_what_is_set_is_passed() -> None:
    assert duckdb_config({}) == {}
    assert duckdb_config(
        {
            "DRIFTGATE_DUCKDB_MEMORY_LIMIT": "1.5GB",
            "DRIFTGATE_DUCKDB_THREADS": "2",
            "DRIFTGATE_DUCKDB_TEMP_DIR": "/var/tmp/dg",
        }
    ) == {"memory_limit": "1.5GB", "threads": 2, "temp_directory": "/var/tmp/dg"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DRIFTGATE_DUCKDB_MEMORY_LIMIT", "lots"),
        ("DRIFTGATE_DUCKDB_MEMORY_LIMIT", "80%"),
        ("DRIFTGATE_DUCKDB_THREADS", "0"),
        ("DRIFTGATE_DUCKDB_THREADS", "two"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(SettingError, match=f"^{name}={value!r}"):
        duckdb_config({name: value})


def test_the_resource_and_the_staging_stores_use_the_settings(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTGATE_DUCKDB_MEMORY_LIMIT", "300MB")
    monkeypatch.setenv("DRIFTGATE_DUCKDB_THREADS", "1")
    monkeypatch.setenv("DRIFTGATE_DUCKDB_TEMP_DIR", str(tmp_path / "spill"))
    config = source_resources()["duckdb"].connection_config
    database = DuckDBResource(database=str(tmp_path / "db.duckdb"), connection_config=config)
    expected = ("286.1 MiB", 1, str(tmp_path / "spill"))
    with database.get_connection() as con:
        assert con.execute(SETTINGS).fetchone() == expected
    unit = Unit("jira", "all", "all", Policy())
    now = datetime(2026, 3, 1, tzinfo=UTC)
    with unit_store(database.database, unit, "run", now, database.connection_config) as store:
        assert store.con.execute(SETTINGS).fetchone() == expected
