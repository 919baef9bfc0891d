"""Full and incremental collections: extracted by `atlas_source` and loaded in one dlt run."""

from __future__ import annotations

import logging

import dlt
from dlt.common.schema import Schema
from dlt.pipeline.exceptions import PipelineStepFailed
from pymongo import MongoClient

from ingestion.config import CollectionConfig
from ingestion.errors import IngestError
from ingestion.load.failures import destination_error
from ingestion.load.memory import load_within_memory
from ingestion.naming import table_name
from ingestion.ops.plan import Plan, index_warning
from ingestion.ops.summary import TableSummary
from ingestion.source.atlas import atlas_source
from ingestion.source.batches import ColumnRegistry
from ingestion.source.resources import CollectionStats

log = logging.getLogger("atlas_ingest")


def load_batch(
    client: MongoClient, plan: Plan, pipeline: dlt.Pipeline, collections: list[CollectionConfig],
    stored: Schema | None, counts: dict[str, int | None],
) -> list[TableSummary]:
    """Load `collections` and check that every document read was loaded or quarantined."""
    config, target = plan.config, plan.target
    stats: dict[str, CollectionStats] = {}
    first_load: dict[str, bool] = {}
    warnings: dict[str, list[str]] = {}
    for cc in collections:
        s = stats[cc.name] = CollectionStats(expected=counts[cc.name])
        first_load[cc.name] = not ColumnRegistry.from_schema(stored, table_name(cc.name)).kinds
        warnings[cc.name] = [w for w in [index_warning(client, config.database, cc)] if w]
        for w in warnings[cc.name]:
            log.warning(w)
    # The source is named after the pipeline, as the pipeline's state and schema always were.
    source = atlas_source.with_args(name=config.pipeline_name)(
        database=config.database, client=client, stats=stats, collection_configs=collections,
        batch_docs=config.batch_docs, item_format=target.item_format, max_row_bytes=target.max_row_bytes,
    )
    # fifo: each collection is extracted whole, in order (one collection's batches in memory at a time).
    dlt.config["extract.next_item_mode"] = "fifo"
    try:
        load_within_memory(pipeline, target.duckdb_credentials,
                           lambda: pipeline.run(source, loader_file_format=target.loader_file_format))
    except PipelineStepFailed as exc:
        raise destination_error(exc, config.destination) from None
    trace = pipeline.last_trace
    row_counts = trace.last_normalize_info.row_counts if trace and trace.last_normalize_info else {}
    tables = []
    for cc in collections:
        table, s = table_name(cc.name), stats[cc.name]
        # Imported jsonl files are not re-counted by dlt's normalizer: their rows were counted as written.
        loaded = s.rows_written if target.item_format == "jsonl" else row_counts.get(table, 0)
        if s.documents_read != loaded + len(s.quarantine):
            raise IngestError(
                f"collection '{cc.name}': read {s.documents_read} documents but loaded {loaded} rows "
                f"and quarantined {len(s.quarantine)}"
            )
        tables.append(TableSummary(
            cc.name, table, cc.mode, s.documents_read, loaded, len(s.quarantine),
            s.registry.new_columns, s.registry.variant_columns, warnings[cc.name], first_load[cc.name],
            source_fields=s.registry.fields,
        ))
    return tables
