"""Full and incremental collections: extracted by `atlas_source` and loaded one collection per
dlt run, so that one collection's failure leaves the others loaded."""

from __future__ import annotations

import logging

import dlt
from dlt.common.pipeline import NormalizeInfo
from dlt.common.schema import Schema
from dlt.pipeline.exceptions import PipelineStepFailed
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from ingestion.config import CollectionConfig
from ingestion.errors import IngestError
from ingestion.load.checked_run import run_checked
from ingestion.load.recovery import discard_failed_load
from ingestion.naming import table_name
from ingestion.ops.deletes import remove_deleted
from ingestion.ops.plan import Plan, index_warning
from ingestion.ops.schema_files import update_schema_file
from ingestion.ops.summary import CollectionFailure, TableSummary
from ingestion.source.atlas import atlas_source
from ingestion.source.batches import ColumnRegistry
from ingestion.source.resources import CollectionStats

log = logging.getLogger("atlas_ingest")


def load_batch(
    client: MongoClient, plan: Plan, pipeline: dlt.Pipeline, collections: list[CollectionConfig],
    stored: Schema | None, counts: dict[str, int | None],
) -> tuple[list[TableSummary], list[CollectionFailure]]:
    """Load each of `collections` in a dlt run of its own; a failed one is aborted (dlt keeps the
    state it had, so no cursor moves past rows that are not in the warehouse) and reported."""
    tables: list[TableSummary] = []
    failures: list[CollectionFailure] = []
    for cc in collections:
        try:
            tables.append(_load_collection(client, plan, pipeline, cc, stored, counts[cc.name]))
        except (IngestError, PipelineStepFailed, PyMongoError) as exc:
            failures.append(CollectionFailure(cc, discard_failed_load(pipeline, exc, plan.config.destination, cc.name)))
    return tables, failures


def _load_collection(
    client: MongoClient, plan: Plan, pipeline: dlt.Pipeline, cc: CollectionConfig, stored: Schema | None,
    expected: int | None,
) -> TableSummary:
    """Load one collection and check that every document read was loaded or quarantined."""
    config, target = plan.config, plan.target
    table = table_name(cc.name)
    s = CollectionStats(expected=expected)
    first_load = not ColumnRegistry.from_schema(stored, table).kinds
    warnings = [w for w in [index_warning(client, config.database, cc)] if w]
    for w in warnings:
        log.warning(w)
    # The source is named after the pipeline, as the pipeline's state and schema always were.
    source = atlas_source.with_args(name=config.pipeline_name)(
        database=config.database, client=client, stats={cc.name: s}, collection_configs=[cc],
        batch_docs=config.batch_docs, item_format=target.item_format, limits=target.limits,
        sample_size=config.sample_size,
    )
    loaded = 0

    def check(info: NormalizeInfo) -> None:
        nonlocal loaded
        loaded = s.checked_rows(cc.name, table, target.item_format, info)

    run_checked(pipeline, source, target.loader_file_format, target.duckdb_credentials, check)
    # after the load, so that every row the run wrote is there to be kept
    deleted = remove_deleted(client[config.database][cc.name], cc, table, pipeline) if cc.detect_deletes else 0
    summary = TableSummary(
        cc.name, table, cc.mode, s.documents_read, loaded, len(s.quarantine),
        s.registry.new_columns, s.registry.variant_columns, warnings, first_load,
        deletes=deleted,
        source_fields=s.registry.fields,
        widened_columns=list(s.registry.widened),
    )
    update_schema_file(plan, summary, s.schema, s.registry)
    return summary
