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
