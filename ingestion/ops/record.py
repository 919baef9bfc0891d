"""The last step of a run: its rows in `_atlas_runs`, and one log record per collection."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from ingestion.config import CollectionConfig
from ingestion.naming import table_name
from ingestion.ops.plan import Plan
from ingestion.ops.run_history import RunRecord, record_runs
from ingestion.ops.summary import TableSummary

log = logging.getLogger("atlas_ingest")


def record(plan: Plan, records: list[RunRecord]) -> None:
    target = plan.target
    record_runs(target.destination, target.staging, target.dataset, plan.config.pipeline_name, plan.config.database,
                plan.config.pipelines_dir,
                plan.run_id, plan.config.destination.name, records)


def record_failure(plan: Plan, error: str, ended_at: datetime) -> None:
    """A failed run: one row per collection it was asked to load, with the error."""
    record(plan, [RunRecord(cc.name, plan.started_at, ended_at, "failed", cc.mode, table_name(cc.name), error)
                  for cc in plan.collections])


def record_results(plan: Plan, tables: list[TableSummary], failed: list[tuple[CollectionConfig, str]], ended_at: datetime) -> None:
    """A run that got to its end: a row per collection that loaded, and one per collection that failed."""
    records = [run_record(t, plan.started_at, ended_at) for t in tables]
    records += [RunRecord(cc.name, plan.started_at, ended_at, "failed", cc.mode, table_name(cc.name), error) for cc, error in failed]
    record(plan, records)
    for rec in records:  # for schedulers reading --log-format json
        log.info("run %s: collection '%s' %s", plan.run_id, rec.collection, rec.status,
                 extra={"fields": {"run_id": plan.run_id, "collection": rec.collection, "status": rec.status,
                                   **{k: v for k, v in rec.values.items() if v is not None}}})


def run_record(t: TableSummary, started_at: datetime, ended_at: datetime) -> RunRecord:
    r = t.reconciliation
    values: dict[str, Any] = {
        "documents_read": t.documents_read, "rows_loaded": t.rows_loaded, "quarantined": t.quarantined,
        "new_columns": ",".join(t.new_columns) if not t.first_load else None,
        "variant_columns": ",".join(t.variant_columns) or None,
        "snapshot_docs": t.snapshot_docs, "change_events": t.events, "deletes": t.deletes,
        "resyncs": "; ".join(t.resyncs) or None,
        "widened_columns": ",".join(t.widened_columns) or None, "schema_changes": t.schema_changes,
    }
    if r is not None:
        values.update(source_count=r.source_count, warehouse_count=r.warehouse_count, live_rows_only=r.live_rows_only,
                      sees_deletes=r.sees_deletes,
                      quarantined_missing=r.quarantined_missing,
                      changed_during_run=r.changed_during_run, sample_size=r.sample_size,
                      sample_mismatches=r.sample_mismatches, reconciliation=r.status)
    # a load that succeeded but could not be reconciled says why in `error`
    return RunRecord(t.collection, started_at, ended_at, "succeeded", t.mode, t.table, r.failure if r else None, values)
