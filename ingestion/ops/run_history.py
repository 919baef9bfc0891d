"""The run-history table `_atlas_runs`: one row per collection per run, in the warehouse dataset.

Written by a pipeline of its own (`<pipeline>_runs`), so that recording a run never finishes,
retries or discards the loads of the ingestion pipeline itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import dlt

from ingestion.redact import redact

RUNS_TABLE = "_atlas_runs"
log = logging.getLogger("atlas_ingest")

RUN_COLUMNS: dict[str, dict[str, Any]] = {
    "run_id": {"data_type": "text", "nullable": False},
    "pipeline_name": {"data_type": "text", "nullable": False},
    "source_database": {"data_type": "text"},
    "collection": {"data_type": "text", "nullable": False},
    "table_name": {"data_type": "text"},
    "mode": {"data_type": "text"},
    "destination": {"data_type": "text"},
    "started_at": {"data_type": "timestamp", "nullable": False},
    "ended_at": {"data_type": "timestamp", "nullable": False},
    "status": {"data_type": "text", "nullable": False},
    "error": {"data_type": "text"},
    "documents_read": {"data_type": "bigint"},
    "rows_loaded": {"data_type": "bigint"},
    "quarantined": {"data_type": "bigint"},
    "new_columns": {"data_type": "text"},
    "variant_columns": {"data_type": "text"},
    "widened_columns": {"data_type": "text"},
    "schema_changes": {"data_type": "text"},
    "snapshot_docs": {"data_type": "bigint"},
    "change_events": {"data_type": "bigint"},
    "deletes": {"data_type": "bigint"},
    "resyncs": {"data_type": "text"},
    "source_count": {"data_type": "bigint"},
    "warehouse_count": {"data_type": "bigint"},
    "live_rows_only": {"data_type": "bool"},
    "sees_deletes": {"data_type": "bool"},
    "quarantined_missing": {"data_type": "bigint"},
    "changed_during_run": {"data_type": "bigint"},
    "sample_size": {"data_type": "bigint"},
    "sample_mismatches": {"data_type": "bigint"},
    "reconciliation": {"data_type": "text"},
}


@dataclass
class RunRecord:
    """One collection's row; fields not known (a failed run) stay None."""

    collection: str
    started_at: datetime
    ended_at: datetime
    status: str
    mode: str | None = None
    table_name: str | None = None
    error: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None  # another run's row recorded with this one's (a refused run)

    def row(self, run_id: str, pipeline_name: str, database: str, destination: str) -> dict[str, Any]:
        row = {name: None for name in RUN_COLUMNS}
        row.update(self.values)
        row.update(run_id=self.run_id or run_id, pipeline_name=pipeline_name, source_database=database, collection=self.collection, table_name=self.table_name,
                   mode=self.mode, destination=destination, started_at=self.started_at, ended_at=self.ended_at,
                   status=self.status, error=redact(self.error)[:2000] if self.error else None)
        return row


def tables_of_other_databases(pipeline: dlt.Pipeline, tables: list[str], database: str, legacy_pipeline: str) -> dict[str, str]:
    """Table -> the other database whose runs loaded it into this dataset, from `_atlas_runs`;
    nothing when the dataset has no run history yet. Rows recorded before the history held the
    database are told apart by pipeline name (`legacy_pipeline`: this database's earlier one)."""
    from dlt.destinations.exceptions import DatabaseTerminalException, DatabaseUndefinedRelation

    if not tables:
        return {}
    placeholders = ", ".join(["%s"] * len(tables))
    with pipeline.sql_client() as sql:
        runs = sql.make_qualified_table_name(RUNS_TABLE)
        try:
            sql.execute_sql(f"select source_database from {runs} where 1 = 0")
            has_database = True
        except DatabaseUndefinedRelation:
            return {}
        except DatabaseTerminalException:  # a history recorded before the column existed
            has_database = False
        if has_database:
            rows = sql.execute_sql(
                f"select table_name, min(coalesce(source_database, pipeline_name)) from {runs} where status = 'succeeded' "
                f"and table_name in ({placeholders}) and (source_database <> %s "
                "or (source_database is null and pipeline_name not in (%s, %s))) group by table_name",
                *tables, database, pipeline.pipeline_name, legacy_pipeline,
            )
        else:
            rows = sql.execute_sql(
                f"select table_name, min(pipeline_name) from {runs} where status = 'succeeded' "
                f"and table_name in ({placeholders}) and pipeline_name not in (%s, %s) group by table_name",
                *tables, pipeline.pipeline_name, legacy_pipeline,
            )
    return {str(table): str(owner) for table, owner in rows or []}


def record_runs(
    destination: Any, staging: Any, dataset: str, pipeline_name: str, database: str, pipelines_dir: Path | None,
    run_id: str, destination_name: str, records: list[RunRecord],
) -> bool:
    """Append the rows; False (and a warning) if the destination refuses them: a run's outcome
    never depends on its history row."""
    rows = [r.row(run_id, pipeline_name, database, destination_name) for r in records]
    history = None
    try:  # the history's own pipeline state can fail to save too (a full disk)
        history = dlt.pipeline(
            pipeline_name=f"{pipeline_name}_runs", destination=destination, staging=staging, dataset_name=dataset,
            pipelines_dir=str(pipelines_dir) if pipelines_dir else None,
        )
        if history.has_pending_data:
            history.abort_packages()
        history.run(dlt.resource(rows, name=RUNS_TABLE, write_disposition="append", columns=RUN_COLUMNS))
        return True
    except Exception as exc:
        # After a failed run its own error is the one line the user needs; the history's is a detail.
        level = logging.WARNING if all(r.status == "succeeded" for r in records) else logging.DEBUG
        log.log(level, "could not record the run in %s.%s: %s", dataset, RUNS_TABLE, redact(str(exc)).splitlines()[0][:300])
        try:
            if history is not None and history.has_pending_data:
                history.abort_packages()
        except OSError:
            pass
        return False
