"""One ingestion run, in one direction: plan (settings, destination, lock) → extract and load each
collection (full and incremental through `atlas_source`, CDC through checkpointed syncs) →
reconcile source and warehouse → record the run in `_atlas_runs`."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import dlt
from dlt.pipeline.exceptions import PipelineStepFailed

from ingestion.config import RunConfig
from ingestion.errors import IngestError
from ingestion.load.failures import destination_error
from ingestion.load.recovery import finish_or_discard_pending
from ingestion.mongo.connect import connect
from ingestion.ops.load_batch import load_batch
from ingestion.ops.load_cdc import load_cdc
from ingestion.ops.plan import Plan, check_collections_exist, plan
from ingestion.ops.reconcile import DIVERGED, count_before_run, reconcile_table
from ingestion.ops.record import record_failure, record_success
from ingestion.ops.run_lock import RunLock
from ingestion.ops.summary import RunSummary

log = logging.getLogger("atlas_ingest")


def run(config: RunConfig) -> RunSummary:
    """Load every configured collection; raises an IngestError subclass on any user-fixable failure.
    One run per pipeline at a time (LockedError otherwise); every run with a valid configuration is
    recorded in `_atlas_runs`: a failed one with its error, a successful one with a reconciliation
    of source and warehouse counts."""
    the_plan = plan(config)
    with RunLock(the_plan.lock_path, config.pipeline_name):
        try:
            return _run(the_plan)
        except IngestError as exc:
            record_failure(the_plan, str(exc), datetime.now(timezone.utc))
            raise


def _pipeline(p: Plan) -> dlt.Pipeline:
    dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
    if p.target.is_sql:
        # Replace loads go to a staging dataset first and swap in one transaction: a failed
        # run leaves the previous table intact.
        dlt.config["destination.replace_strategy"] = "insert-from-staging"
    return dlt.pipeline(
        pipeline_name=p.config.pipeline_name,
        destination=p.target.destination,
        staging=p.target.staging,
        dataset_name=p.target.dataset,
        pipelines_dir=str(p.config.pipelines_dir) if p.config.pipelines_dir else None,
    )


def _run(p: Plan) -> RunSummary:
    started = time.monotonic()
    config, target = p.config, p.target
    client = connect(config.uri, config.server_timeout_ms)
    try:
        db = client[config.database]
        check_collections_exist(client, p)
        cdc_count_time, counts_before = count_before_run(client, db, p.collections)
        pipeline = _pipeline(p)
        try:
            finish_or_discard_pending(pipeline, target.is_sql)
            stored = pipeline.default_schema if pipeline.default_schema_name else None
            batch_collections = [cc for cc in p.collections if cc.mode != "cdc"]
            cdc_collections = [cc for cc in p.collections if cc.mode == "cdc"]
            tables = load_batch(client, p, pipeline, batch_collections, stored, counts_before) if batch_collections else []
            if cdc_collections:
                tables += load_cdc(client, p, pipeline, cdc_collections, stored, counts_before, cdc_count_time)
        except (IngestError, PipelineStepFailed) as exc:
            # A load that failed is aborted: dlt restores the state it had before this run, so no
            # cursor, checkpoint or token moves past rows that are not in the warehouse.
            if pipeline.has_pending_data:
                pipeline.abort_packages()
            if isinstance(exc, PipelineStepFailed):
                raise destination_error(exc, config.destination) from None
            raise
        trace = pipeline.last_trace
        load_id = trace.last_load_info.loads_ids[-1] if trace and trace.last_load_info and trace.last_load_info.loads_ids else None
        by_name = {cc.name: cc for cc in p.collections}
        for t in tables:
            t.reconciliation = reconcile_table(db[t.collection], by_name[t.collection], t.table, pipeline, target.is_sql,
                                               counts_before[t.collection], t.changed_since_count, p.started_at,
                                               t.source_fields)
            if t.reconciliation.status == DIVERGED:
                t.warnings.append(f"reconciliation: the warehouse differs from the source ({t.reconciliation.describe()})")
                log.warning("collection '%s': %s", t.collection, t.warnings[-1])
        record_success(p, tables, datetime.now(timezone.utc))
    finally:
        client.close()
    return RunSummary(config.pipeline_name, config.destination.name, target.dataset, load_id, time.monotonic() - started,
                      tables, p.run_id)
