"""Entry point of the code location: everything under ``defs/`` is loaded automatically.

Jobs run in process: assets share one DuckDB writer and one sandbox emulator, and a
step costs milliseconds instead of a process start. The nightly job's run config may
choose the multiprocess executor instead (defs/automation.py).
"""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(executor=dg.in_process_executor),
    )


def layer_tables(layer: str) -> list[str]:
    """The tables of one layer (``chain``, ``analysis``), each after the tables it reads:
    the order to build them in outside a run (snapshots, tests, benchmarks)."""
    graph = defs.load_fn().resolve_asset_graph()
    keys = [k for k in graph.toposorted_asset_keys if k.path[0] == layer]
    return [k.path[1] for k in keys if graph.get(k).is_materializable]
