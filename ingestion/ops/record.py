"""The last step of a run: its rows in `_atlas_runs`, and one log record per collection."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from ingestion.config import CollectionConfig
from ingestion.naming import table_name
from ingestion.ops.plan import Plan
from ingestion.ops.run_history import RunRecord, record_runs
from ingestion.ops.summary import TableSummary
from ingestion.redact import redact

log = logging.getLogger("atlas_ingest")

REFUSED = "refused"
ALL_COLLECTIONS = "*"  # the collection of a refused run that named none (it would have loaded every one)


def record(plan: Plan, records: list[RunRecord]) -> None:
    """The run's rows, and those of runs refused meanwhile."""
    target = plan.target
    try:
        refused = _taken_refusals(plan)
    except (OSError, ValueError) as exc:
        log.debug("could not read the notes of refused runs: %s", exc)
        refused = []
    recorded = record_runs(target.destination, target.staging, target.dataset, plan.config.pipeline_name,
                           plan.config.database, plan.config.pipelines_dir, plan.run_id, plan.config.destination.name,
                           records + [r for _, rs in refused for r in rs])
    if recorded:
        for path, _ in refused:
            path.unlink(missing_ok=True)


def record_failure(plan: Plan, error: str, ended_at: datetime) -> None:
    """A failed run: one row per collection it was asked to load, with the error."""
    record(plan, [RunRecord(cc.name, plan.started_at, ended_at, "failed", cc.mode, table_name(cc.name), error)
                  for cc in plan.collections])


def record_refusal(plan: Plan, error: str, ended_at: datetime) -> None:
    """A run refused because another run of the pipeline holds the lock: one row per collection it
    was asked to load (`*` for every collection), status `refused`. Noted in a file beside the lock
    and written to `_atlas_runs` by the next run that records, the running one usually: writing
    now would compete with the running run for the warehouse (a DuckDB file has one writer)."""
    names = [(cc.name, cc.mode, table_name(cc.name)) for cc in plan.collections] or [(ALL_COLLECTIONS, None, None)]
    lines = "".join(json.dumps({"run_id": plan.run_id, "collection": name, "mode": mode, "table_name": table,
                                "started_at": plan.started_at.isoformat(), "ended_at": ended_at.isoformat(),
                                "error": redact(error)}) + "\n" for name, mode, table in names)
    try:
        with _refusals(plan).open("a") as notes:  # one append: whole lines even with other refused runs
            notes.write(lines)
    except OSError as exc:
        log.debug("could not note the refused run: %s", exc)


def _refusals(plan: Plan) -> Path:
    return plan.lock_path.with_suffix(".refused.jsonl")


def _taken_refusals(plan: Plan) -> list[tuple[Path, list[RunRecord]]]:
    """Refused runs noted since the last recording, each file renamed first so that a run refused
    meanwhile notes into a new one; files a failed recording left are taken again."""
    notes = _refusals(plan)
    if notes.exists():
        notes.rename(notes.with_name(f"{notes.name}.{plan.run_id}"))
    taken = []
    for path in sorted(notes.parent.glob(f"{notes.name}.*")):
        records = []
        for line in path.read_text().splitlines():
            if line.strip():
                note = json.loads(line)
                records.append(RunRecord(note["collection"], datetime.fromisoformat(note["started_at"]),
                                         datetime.fromisoformat(note["ended_at"]), REFUSED, note["mode"], note["table_name"],
                                         note["error"], run_id=note["run_id"]))
        taken.append((path, records))
    return taken


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
