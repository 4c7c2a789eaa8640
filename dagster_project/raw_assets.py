"""The ops a raw asset's graph is made of: units of the policy -> one fetch step per unit
-> one load step (declared from ``defs/raw/<source>.py``).

    <source>_units  (DynamicOut: one output per unit of the scope, lib/scopes.py)
      -> fetch_<source>_unit  (pool "<source>": fetches one unit into its staging store)
      -> load_<source>  (pool "duckdb": the one writer of the main database)

A graph asset keeps one asset per source, so the nightly run stays one run: the chain
and analysis steps of the run read the raw layer as its load steps left it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.defs.raw import preflight
from dagster_project.defs.resources import KeptDuckDBResource
from dagster_project.lib.pipelined_store import PipelinedStore
from dagster_project.lib.policy import load_policy
from dagster_project.lib.rawstore import RawStore, ensure_raw_schema
from dagster_project.lib.scopes import Unit, source_scopes
from dagster_project.lib.staging import LoadCounts, load_units, unit_store
from dagster_project.metadata import raw_metadata


@dataclass(frozen=True)
class UnitFetch:
    """What a fetch step receives: its unit and the moment every unit of the run records
    as ``fetched_at`` (one per source and run, as when one step fetched the source)."""

    unit: Unit
    fetched_at: datetime


def units_op(source: str) -> dg.OpDefinition:
    @dg.op(
        name=f"{source}_units",
        out=dg.DynamicOut(UnitFetch),
        required_resource_keys={source, "duckdb"},
        pool="duckdb",  # it records the source's instance in the database
        description=f"Checks that {source} answers (or is skipped), then lists the units of "
        "the policy's scope, one fetch step each.",
    )
    def _units(context: dg.OpExecutionContext) -> Iterator[dg.DynamicOutput[UnitFetch]]:
        policy = load_policy()
        resource = getattr(context.resources, source)
        if not preflight(context, source, resource, context.resources.duckdb, policy):
            return  # skipped: no unit, and the load step records nothing new
        units = source_scopes(policy)[source]
        context.log.info(f"{source}: {len(units)} unit(s): {', '.join(u.label for u in units)}")
        fetched_at = datetime.now(UTC)
        for unit in units:
            yield dg.DynamicOutput(UnitFetch(unit, fetched_at), mapping_key=unit.name)

    return _units


@contextmanager
def staging_store(
    context: dg.OpExecutionContext, task: UnitFetch, duckdb: DuckDBResource
) -> Iterator[PipelinedStore]:
    """The unit's staging store, opened with the main database's DuckDB settings. A main
    connection kept from an earlier step is closed first: two buffer pools of the
    configured size would otherwise share the process."""
    if isinstance(duckdb, KeptDuckDBResource):
        duckdb.release()
    with unit_store(
        duckdb.database, task.unit, context.run.run_id, task.fetched_at, duckdb.connection_config
    ) as store:
        yield store


def fetched(task: UnitFetch, store: RawStore, extra: dict[str, Any]) -> dict[str, Any]:
    """What a fetch step hands the load step: its unit, its store's counts, its facts."""
    return {"unit": task.unit, "counts": asdict(store.counts), "extra": extra}


def load_op(source: str) -> dg.OpDefinition:
    @dg.op(
        name=f"load_{source}",
        pool="duckdb",
        out=dg.Out(dg.Nothing),
        description=f"Copies what the {source} units fetched into the main database, "
        "in one transaction.",
    )
    def _load(
        context: dg.OpExecutionContext, fetches: list[dict[str, Any]], duckdb: DuckDBResource
    ) -> None:
        units = [f["unit"] for f in fetches]
        with duckdb.get_connection() as con:
            if not units:  # skipped in this run (units step): what is stored stays as is
                ensure_raw_schema(con)  # the raw checks read it even when nothing is fetched
                metadata = raw_metadata(con, source, [], LoadCounts())
                context.add_output_metadata({**metadata, "skipped": True})
                return
            loaded = load_units(con, duckdb.database, source, units, context.run.run_id)
            metadata = raw_metadata(con, source, fetches, loaded, log=context.log)
        context.add_output_metadata(metadata)

    return _load
