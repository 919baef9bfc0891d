"""CDC collections: each brought up to the cluster time at the start of the run, in checkpointed
loads; with `follow`, then kept streaming until SIGTERM or SIGINT."""

from __future__ import annotations

import logging

import dlt
from bson import Timestamp
from dlt.common.schema import Schema
from dlt.pipeline.exceptions import PipelineStepFailed
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from ingestion.cdc.sync import CollectionSync, Target, stop_on_signals
from ingestion.config import CollectionConfig
from ingestion.errors import IngestError
from ingestion.load.recovery import discard_failed_load
from ingestion.mongo.change_stream import cluster_time
from ingestion.naming import table_name
from ingestion.ops.plan import Plan
from ingestion.ops.schema_files import update_schema_file
from ingestion.ops.summary import CollectionFailure, TableSummary
from ingestion.schema.discovery import discover
from ingestion.source.batches import ColumnRegistry, plan_columns

log = logging.getLogger("atlas_ingest")


def load_cdc(
    client: MongoClient, plan: Plan, pipeline: dlt.Pipeline, collections: list[CollectionConfig],
    stored: Schema | None, counts: dict[str, int | None], count_time: Timestamp | None,
) -> tuple[list[TableSummary], list[CollectionFailure]]:
    """Sync each of `collections`; one that fails is aborted (its checkpoint stays at the last load
    that committed), reported, and left out of `--follow`, while the others go on."""
    config = plan.config
    run_start = cluster_time(client)
    cdc_target = Target(pipeline, plan.target, land_events=config.destination.name == "s3")
    syncs: dict[str, CollectionSync] = {}
    failures: list[CollectionFailure] = []

    def failed(cc: CollectionConfig, exc: IngestError | PipelineStepFailed | PyMongoError) -> None:
        error = discard_failed_load(pipeline, exc, config.destination, cc.name)
        if config.follow:  # a long-running process says so when it happens, not only at its end
            log.error("collection '%s' stopped following: %s", cc.name, error)
        failures.append(CollectionFailure(cc, error))
        sync = syncs.pop(cc.name, None)
        if sync is not None:
            sync.close()

    try:
        for cc in collections:
            try:
                syncs[cc.name] = _collection_sync(client, plan, cc, stored, cdc_target, counts[cc.name], count_time)
                syncs[cc.name].sync(run_start, config.resync)
            except (IngestError, PipelineStepFailed, PyMongoError) as exc:
                failed(cc, exc)
        if config.follow and syncs:
            stop = stop_on_signals()
            log.info("following changes of %s; stop with Ctrl-C or SIGTERM", ", ".join(syncs))
            while syncs and not stop():
                for sync in list(syncs.values()):
                    try:
                        sync.follow_step(config.flush_interval_s)
                    except (IngestError, PipelineStepFailed, PyMongoError) as exc:
                        failed(sync.config, exc)
            for sync in list(syncs.values()):
                try:
                    if sync.pending:
                        sync.flush()
                except (IngestError, PipelineStepFailed, PyMongoError) as exc:
                    failed(sync.config, exc)
    finally:
        for sync in syncs.values():
            sync.close()
    tables = []
    for sync in syncs.values():
        try:
            tables.append(_summary(plan, sync, stored))
        except IngestError as exc:
            failures.append(CollectionFailure(sync.config, exc))
    return tables, failures


def _collection_sync(
    client: MongoClient, plan: Plan, cc: CollectionConfig, stored: Schema | None, target: Target,
    expected: int | None, count_time: Timestamp | None,
) -> CollectionSync:
    """The collection's sync, its columns planned by discovery as a full load's are."""
    config = plan.config
    table = table_name(cc.name)
    registry = ColumnRegistry.from_schema(stored, table)
    schema = None
    if config.sample_size:
        schema = discover(client[config.database][cc.name], config.sample_size, cc.filter, cc.projection)
        plan_columns(registry, schema)  # a name collision stops here, before anything is read
    sync = CollectionSync(client, config.database, cc, table, registry, target, config.batch_docs)
    sync.outcome.stats.schema = schema
    sync.expected = expected
    sync.count_time = count_time
    return sync


def _summary(plan: Plan, sync: CollectionSync, stored: Schema | None) -> TableSummary:
    """The collection's summary (each of its loads checked that every change it read was
    written or quarantined, before it loaded)."""
    cc, out, s = sync.config, sync.outcome, sync.outcome.stats
    summary = TableSummary(
        cc.name, sync.table, cc.mode, out.snapshot_docs + out.events, s.rows_written, len(s.quarantine),
        s.registry.new_columns, s.registry.variant_columns, [], not stored or sync.table not in stored.tables,
        snapshot_docs=out.snapshot_docs, events=out.events, deletes=out.deletes, resyncs=out.resyncs,
        changed_since_count=None if out.snapshot_taken or plan.config.follow else out.events_since_count,
        source_fields=s.registry.fields,
        widened_columns=list(s.registry.widened),
    )
    update_schema_file(plan, summary, s.schema, s.registry)
    return summary
