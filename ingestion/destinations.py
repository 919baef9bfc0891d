"""dlt destinations selected by `--destination`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt

from ingestion.errors import ConfigError

DESTINATIONS = ("local",)
DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")


def build_destination(name: str, warehouse: Path = DEFAULT_WAREHOUSE) -> Any:
    """The dlt destination object for `name`."""
    if name == "local":
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        return dlt.destinations.duckdb(str(warehouse.resolve()))
    raise ConfigError(f"unknown destination '{name}': choose one of {', '.join(DESTINATIONS)}")


def loader_file_format(name: str) -> str:
    """Arrow batches are written as parquet: no per-row normalization on the way to the warehouse."""
    return "parquet"
