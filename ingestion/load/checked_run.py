"""A pipeline run whose rows are checked after normalize and before load: a check that fails
leaves nothing loaded and no state (cursor, checkpoint, resume token) committed, since dlt saves
the state with the package it loads."""

from __future__ import annotations

from typing import Any, Callable

import dlt
from dlt.common.pipeline import NormalizeInfo

from ingestion.faults import reached
from ingestion.load.memory import load_within_memory


def run_checked(pipeline: dlt.Pipeline, data: Any, loader_file_format: Any, duckdb_credentials: Any,
                check: Callable[[NormalizeInfo], None]) -> None:
    """`pipeline.run(data)` in its steps, with `check(normalize info)` before the load step (it
    raises to stop the run). On the local destination a load that runs out of memory is loaded
    again with more (load_within_memory)."""

    def steps() -> None:
        pipeline.run()  # restores state from the destination once, as run(data) does; nothing is pending here
        pipeline.extract(data, loader_file_format=loader_file_format)
        reached("after-extract")
        check(pipeline.normalize())
        reached("after-normalize")
        pipeline.load()
        reached("after-load")

    load_within_memory(pipeline, duckdb_credentials, steps)
