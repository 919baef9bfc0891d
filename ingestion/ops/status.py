"""`atlas-ingest status`: the last run of each collection, from the run history `_atlas_runs`."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from ingestion.config import DestinationConfig
from ingestion.errors import ConfigError
from ingestion.load.destinations import warehouse_reader
from ingestion.load.failures import destination_error
from ingestion.naming import validate_name
from ingestion.ops.run_history import RUNS_TABLE


@dataclass
class CollectionStatus:
    collection: str
    source_database: str | None
    mode: str | None
    status: str
    ended_at: datetime
    age_s: float  # seconds since the run ended
    documents_read: int | None
    rows_loaded: int | None
    quarantined: int | None
    reconciliation: str | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ended_at": self.ended_at.isoformat()}


COLUMNS = ("collection", "source_database", "mode", "status", "ended_at", "documents_read", "rows_loaded", "quarantined",
           "reconciliation", "error")


def last_runs(destination: DestinationConfig, database: str | None = None) -> list[CollectionStatus]:
    """The newest row per collection (and source database) of `_atlas_runs` in the destination's
    dataset, newest first; `database` keeps one source database's."""
    if destination.name == "local" and not destination.warehouse.exists():
        raise ConfigError(f"no warehouse at {destination.warehouse}: nothing was loaded there yet (or pass --warehouse)")
    validate_name(destination.dataset)
    if database is not None:
        validate_name(database)
    reader = warehouse_reader(destination)
    with tempfile.TemporaryDirectory(prefix="atlas-status-") as scratch:
        pipeline = dlt.pipeline(pipeline_name="atlas_status", destination=reader, dataset_name=destination.dataset,
                                pipelines_dir=scratch)
        try:
            with pipeline.sql_client() as client:
                runs = client.make_qualified_table_name(RUNS_TABLE)
                where = "where source_database = %s" if database else ""
                rows = client.execute_sql(
                    f"select {', '.join(COLUMNS)} from (select *, row_number() over (partition by collection, "
                    f"source_database order by ended_at desc) as newest from {runs} {where}) as ranked "
                    "where newest = 1 order by ended_at desc", *([database] if database else []))
        except DatabaseUndefinedRelation:
            return []
        except Exception as exc:  # the warehouse unreachable, or its file held by another process
            raise destination_error(exc, destination) from None
    now = datetime.now(timezone.utc)
    result = []
    for row in rows or []:
        values = dict(zip(COLUMNS, row))
        ended = values["ended_at"] if values["ended_at"].tzinfo else values["ended_at"].replace(tzinfo=timezone.utc)
        values["ended_at"] = ended
        result.append(CollectionStatus(**values, age_s=(now - ended).total_seconds()))
    return result


def _age(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def table(statuses: list[CollectionStatus]) -> list[str]:
    """A terminal table: one line per collection."""
    header = ("collection", "mode", "status", "ended", "documents", "rows", "quarantined", "reconciliation", "error")
    lines = [[s.collection, s.mode or "", s.status, _age(s.age_s),
              "" if s.documents_read is None else f"{s.documents_read:,}",
              "" if s.rows_loaded is None else f"{s.rows_loaded:,}",
              "" if s.quarantined is None else f"{s.quarantined:,}",
              s.reconciliation or "", " ".join((s.error or "").split())[:80]] for s in statuses]
    widths = [max(len(str(r[i])) for r in [list(header), *lines]) for i in range(len(header))]
    return ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in [list(header), *lines]]
