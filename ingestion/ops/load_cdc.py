"""CDC collections: each brought up to the cluster time at the start of the run, in checkpointed
loads; with `follow`, then kept streaming until SIGTERM or SIGINT."""

from __future__ import annotations

import logging

import dlt
from bson import Timestamp
from dlt.common.schema import Schema
from dlt.pipeline.exceptions import PipelineStepFailed
from pymongo import MongoClient

from ingestion.cdc.sync import CollectionSync, Target, stop_on_signals
from ingestion.config import CollectionConfig
from ingestion.errors import IngestError
from ingestion.load.failures import step_error
from ingestion.mongo.change_stream import cluster_time
from ingestion.naming import table_name
from ingestion.ops.plan import Plan
from ingestion.ops.summary import TableSummary
from ingestion.source.batches import ColumnRegistry

log = logging.getLogger("atlas_ingest")


def load_cdc(
    client: MongoClient, plan: Plan, pipeline: dlt.Pipeline, collections: list[CollectionConfig],
    stored: Schema | None, counts: dict[str, int | None], count_time: Timestamp | None,
) -> list[TableSummary]:
    config = plan.config
    run_start = cluster_time(client)
    pipeline.sync_destination()  # the CDC state may only exist in the destination (a new machine)
    cdc_target = Target(pipeline, plan.target, land_events=config.destination.name == "s3")
    syncs: list[tuple[CollectionConfig, CollectionSync]] = []
    try:
        for cc in collections:
            table = table_name(cc.name)
            sync = CollectionSync(client, config.database, cc, table, ColumnRegistry.from_schema(stored, table),
                                  cdc_target, config.batch_docs)
            sync.expected = counts[cc.name]
            sync.count_time = count_time
            syncs.append((cc, sync))
            sync.sync(run_start, config.resync)
        if config.follow:
            stop = stop_on_signals()
            log.info("following changes of %s; stop with Ctrl-C or SIGTERM", ", ".join(cc.name for cc in collections))
            while not stop():
                for _, sync in syncs:
                    sync.follow_step(config.flush_interval_s)
            for _, sync in syncs:
                if sync.pending:
                    sync.flush()
    except PipelineStepFailed as exc:
        raise step_error(exc, config.destination) from None
    finally:
        for _, sync in syncs:
            sync.close()
    tables = []
    for cc, sync in syncs:
        out, s = sync.outcome, sync.outcome.stats
        if s.documents_read != s.rows_written + len(s.quarantine):
            raise IngestError(
                f"collection '{cc.name}': produced {s.documents_read} rows but loaded {s.rows_written} "
                f"and quarantined {len(s.quarantine)}"
            )
        tables.append(TableSummary(
            cc.name, sync.table, cc.mode, out.snapshot_docs + out.events, s.rows_written, len(s.quarantine),
            s.registry.new_columns, s.registry.variant_columns, [], not stored or sync.table not in stored.tables,
            snapshot_docs=out.snapshot_docs, events=out.events, deletes=out.deletes, resyncs=out.resyncs,
            changed_since_count=None if out.snapshot_taken or config.follow else out.events_since_count,
            source_fields=s.registry.fields,
        ))
    return tables
