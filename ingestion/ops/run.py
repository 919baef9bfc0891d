"""One ingestion run, in one direction: plan (settings, destination, lock) → extract and load each
collection (full and incremental through `atlas_source`, CDC through checkpointed syncs) →
reconcile source and warehouse → record the run in `_atlas_runs`."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone

import dlt
from dlt.pipeline.exceptions import PipelineStepFailed
from pymongo.errors import PyMongoError

from ingestion.config import RunConfig
from ingestion.disk import file_error
from ingestion.errors import IngestError, LockedError, PartialFailure, UnreconciledLoad
from ingestion.faults import progress_collector
from ingestion.load.failures import destination_error
from ingestion.load.recovery import discard_failed_load, finish_or_discard_pending
from ingestion.load.warehouse_lock import wait_for_warehouse
from ingestion.mongo.bson_types import read_legacy_uuids_as
from ingestion.mongo.connect import connect, source_failure
from ingestion.naming import NameCollision, database_key, legacy_pipeline_name, table_name
from ingestion.ops.load_batch import load_batch
from ingestion.ops.load_cdc import load_cdc
from ingestion.ops.plan import Plan, check_collections_exist, followed_tables, plan, select_collections
from ingestion.ops.reconcile import DIVERGED, Reconciliation, count_before_run, reconcile_table
from ingestion.ops.record import record_failure, record_refusal, record_results
from ingestion.ops.run_history import tables_of_other_databases
from ingestion.ops.run_lock import RunLock
from ingestion.ops.summary import CollectionFailure, RunSummary

log = logging.getLogger("atlas_ingest")


def run(config: RunConfig) -> RunSummary:
    """Load every configured collection; raises an IngestError subclass on any user-fixable failure.
    One run per pipeline at a time (LockedError otherwise); every run with a valid configuration is
    recorded in `_atlas_runs`: a refused one (the lock was held) as refused, a failed one with its
    error, a successful one with a reconciliation of source and warehouse counts."""
    the_plan = plan(config)
    try:
        with RunLock(the_plan.lock_path, config.pipeline_name):
            summary, failures = _run_recorded(the_plan)
    except LockedError as exc:  # only the lock raises it: this run read nothing
        record_refusal(the_plan, str(exc), datetime.now(timezone.utc))
        raise
    if failures and not summary.tables:
        raise failures[0].error
    if failures:
        names = ", ".join(f"'{f.config.name}'" for f in failures)
        raise PartialFailure(
            f"{len(failures)} of {len(failures) + len(summary.tables)} collections failed ({names}; first: {failures[0].error}); "
            f"the others loaded and are recorded in {summary.dataset}._atlas_runs", summary)
    return summary


def _run_recorded(the_plan: Plan) -> tuple[RunSummary, list[CollectionFailure]]:
    """`_run`, with a failure that stops the whole run recorded against each of its collections."""
    try:
        return _run(the_plan)
    except UnreconciledLoad:
        raise  # recorded as loaded
    except IngestError as exc:
        record_failure(the_plan, str(exc), datetime.now(timezone.utc))
        raise
    except PyMongoError as exc:  # MongoDB went away between the steps of the run (listing, counting)
        error = source_failure(exc, "preparing the run")
        record_failure(the_plan, str(error), datetime.now(timezone.utc))
        raise error from None
    except OSError as exc:  # a local file: the disk filled up, or a file became read-only
        local = file_error(exc, the_plan.pipelines_dir)
        if local is None:
            raise
        record_failure(the_plan, str(local), datetime.now(timezone.utc))
        raise local from None


def landed_load_dates(started_at: datetime) -> list[str]:
    """The `load_date=` folders a landing run wrote into: dlt dates each file by its load package,
    created between the run's start and now (UTC), so every date in between."""
    first, last = started_at.astimezone(timezone.utc).date(), datetime.now(timezone.utc).date()
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def restore_state(pipeline: dlt.Pipeline, p: Plan) -> None:
    """The pipeline's state and schema from the destination when it holds newer ones than this
    machine (a new runner, a lost pipelines dir), before anything reads them: cursors, CDC tokens,
    the followed collections and the stored column types all come from there."""
    try:
        pipeline.sync_destination()
    except Exception as exc:  # the run's first call to the destination: an unreachable one shows here
        raise destination_error(exc, p.config.destination) from None


def check_tables_are_ours(p: Plan, pipeline: dlt.Pipeline) -> None:
    """A table another database's runs loaded into this dataset is not replaced or merged into:
    two databases with a same-named collection need a dataset each."""
    try:
        owners = tables_of_other_databases(pipeline, [table_name(cc.name) for cc in p.collections], p.config.database,
                                           legacy_pipeline_name(p.config.database, p.config.destination.name))
    except Exception as exc:  # the run's first query: an unreachable warehouse shows here,
        # as dlt's error or as the driver's own (psycopg2 raises from the connection dlt opens)
        raise destination_error(exc, p.config.destination) from None
    if owners:
        table, owner = next(iter(owners.items()))
        raise NameCollision(
            f"table '{p.target.dataset}.{table}' already holds a collection of '{owner}' (another database): "
            f"load database '{p.config.database}' into a dataset of its own, e.g. --dataset raw_{database_key(p.config.database)}"
        )


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
        progress=progress_collector(),
    )


def _run(p: Plan) -> tuple[RunSummary, list[CollectionFailure]]:
    """The run's summary and the collections that failed (recorded as failed, each with its error)."""
    started = time.monotonic()
    config, target = p.config, p.target
    if config.destination.name == "local":  # a dbt build may hold the file: wait for it, within a bound
        wait_for_warehouse(config.destination.warehouse)
    client = connect(config.uri, config.server_timeout_ms)
    read_legacy_uuids_as(client.codec_options.uuid_representation)  # the URI's uuidRepresentation
    try:
        db = client[config.database]
        select_collections(client, p)
        pipeline = _pipeline(p)
        restore_state(pipeline, p)
        check_collections_exist(client, p, followed_tables(pipeline))
        cdc_count_time, counts_before = count_before_run(client, db, p.collections)
        try:
            finish_or_discard_pending(pipeline, target.is_sql)
            if target.is_sql:
                check_tables_are_ours(p, pipeline)
            stored = pipeline.default_schema if pipeline.default_schema_name else None
            batch_collections = [cc for cc in p.collections if cc.mode != "cdc"]
            cdc_collections = [cc for cc in p.collections if cc.mode == "cdc"]
            tables, failures = load_batch(client, p, pipeline, batch_collections, stored, counts_before) if batch_collections else ([], [])
            if cdc_collections:
                cdc_tables, cdc_failures = load_cdc(client, p, pipeline, cdc_collections, stored, counts_before, cdc_count_time)
                tables, failures = tables + cdc_tables, failures + cdc_failures
        except (IngestError, PipelineStepFailed, PyMongoError) as exc:
            raise discard_failed_load(pipeline, exc, config.destination) from None
        trace = pipeline.last_trace
        load_id = trace.last_load_info.loads_ids[-1] if trace and trace.last_load_info and trace.last_load_info.loads_ids else None
        by_name = {cc.name: cc for cc in p.collections}
        unreconciled: list[tuple[str, str]] = []  # (collection, why)
        for t in tables:
            try:
                t.reconciliation = reconcile_table(db[t.collection], by_name[t.collection], t.table, pipeline, target.is_sql,
                                                   counts_before[t.collection], t.changed_since_count, p.started_at,
                                                   t.source_fields)
            except PyMongoError as exc:  # loaded, but MongoDB went away: recorded as loaded and not reconciled
                failure = str(source_failure(exc, f"counting '{t.collection}' for the reconciliation"))
                t.reconciliation = Reconciliation(source_count=None, failure=failure)
                unreconciled.append((t.collection, failure))
                continue
            if t.reconciliation.status == DIVERGED:
                t.warnings.append(f"reconciliation: the warehouse differs from the source ({t.reconciliation.describe()})")
                log.warning("collection '%s': %s", t.collection, t.warnings[-1])
        record_results(p, tables, [(f.config, str(f.error)) for f in failures], datetime.now(timezone.utc))
    finally:
        client.close()
    summary = RunSummary(config.pipeline_name, config.destination.name, target.dataset, load_id, time.monotonic() - started,
                         tables, p.run_id, failed={f.config.name: str(f.error) for f in failures},
                         load_dates=landed_load_dates(p.started_at) if config.destination.name == "s3" else [])
    if unreconciled:
        raise UnreconciledLoad(
            f"loaded and recorded in {target.dataset}._atlas_runs, but not reconciled "
            f"({', '.join(name for name, _ in unreconciled)}): {unreconciled[0][1]}", summary)
    return summary, failures
