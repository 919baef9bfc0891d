"""The dlt resource of one collection, full or incremental.

Batches leave as Arrow tables (written to parquet by dlt, no row normalization) or, for
destinations that need nested data as real JSON (Redshift COPY, the S3 jsonl landing zone), as
gzip JSON-lines files that dlt imports as they are. Documents that cannot be loaded leave the
same resource, last, as rows of `_atlas_quarantine` (appended, whatever the collection's write
disposition), so a load never holds a collection without its quarantine.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Literal

import dlt
from dlt.common.pipeline import NormalizeInfo
from dlt.extract.resource import DltResource
from pymongo import MongoClient

from ingestion import progress
from ingestion.config import CollectionConfig
from ingestion.errors import IngestError
from ingestion.mongo.bson_types import TIMESTAMP
from ingestion.mongo.reads import id_range_filters, read_parallel
from ingestion.schema.discovery import DEFAULT_SAMPLE_SIZE, CollectionSchema, discover
from ingestion.source.batches import (
    DELETED_AT,
    LOAD_ID,
    ColumnRegistry,
    ConvertedBatch,
    Quarantined,
    RowLimits,
    convert_documents,
    plan_columns,
    quarantine_rows,
    stored_kinds,
)
from ingestion.source.cursors import (
    Cursors,
    decode_cursors,
    incremental_filters,
    max_cursors,
    store_cursors,
    without_repeated_arrays,
)
from ingestion.source.widen import widen_columns

QUARANTINE_TABLE = "_atlas_quarantine"
ItemFormat = Literal["arrow", "jsonl"]
_MISMATCH_WARNING = "when merging arrow schema with dlt schema"


class _HideArrowHintMerge(logging.Filter):
    """dlt warns on every batch that our JSON hints override the Arrow string type: that is the intent."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _MISMATCH_WARNING not in record.getMessage()


logging.getLogger("dlt").addFilter(_HideArrowHintMerge())
# A column can widen within one run (int64 batches, then float64 ones). dlt's "permissive" mode
# would cast the float64 batches into the int64 file already open (7.5 becomes 7); "default"
# casts only what is exact and starts a new file for the rest, and the load reads each file
# into the table's one double column.
dlt.config["data_writer.arrow_concat_promote_options"] = "default"


@dataclass
class CollectionStats:
    """What one resource did in this run, filled while it runs."""

    documents_read: int = 0
    rows_written: int = 0
    quarantine: list[Quarantined] = field(default_factory=list)
    cursor_from: Cursors | None = None  # per bracket, as the run found them (None: first incremental load)
    cursor_to: Cursors | None = None
    registry: ColumnRegistry = field(default_factory=ColumnRegistry)
    expected: int | None = None  # documents the run expects to read, when known (for progress)
    schema: CollectionSchema | None = None  # what discovery's sample held, when it ran

    def checked_rows(self, collection: str, table: str, item_format: ItemFormat, info: NormalizeInfo) -> int:
        """The rows dlt normalized into `table` for this load, once every document read is one of
        them or quarantined; IngestError otherwise, before anything loads. Imported jsonl files
        are not re-counted by dlt's normalizer: their rows were counted as written."""
        rows = self.rows_written if item_format == "jsonl" else info.row_counts.get(table, 0)
        if self.documents_read != rows + len(self.quarantine):
            raise IngestError(
                f"collection '{collection}': read {self.documents_read} documents but normalized {rows} rows "
                f"and quarantined {len(self.quarantine)}; nothing was loaded"
            )
        return rows


QUARANTINE_COLUMNS: dict[str, dict[str, Any]] = {
    "collection": {"data_type": "text", "nullable": False},
    "document_id": {"data_type": "text", "nullable": False},
    "reason": {"data_type": "text", "nullable": False},
    "document": {"data_type": "text"},
    "document_truncated": {"data_type": "bool"},
    "quarantined_at": {"data_type": "timestamp"},
}


def with_quarantine(resource: DltResource, columns: dict[str, dict[str, Any]] | None) -> DltResource:
    """`resource` with its table's `columns`, able to yield `_atlas_quarantine` rows too: a table
    variant with hints of its own (appended, no primary key). The variant is made before the
    table's columns are set, since a variant starts from the hints the resource has then."""
    resource.apply_hints(table_name=QUARANTINE_TABLE, write_disposition="append", primary_key=[], merge_key=[],
                         columns=QUARANTINE_COLUMNS, create_table_variant=True)
    if columns:
        resource.apply_hints(columns=columns)
    return resource


def quarantine_item(collection: str, quarantined: list[Quarantined]) -> Any:
    """Quarantined documents as an item of a resource made `with_quarantine`."""
    return dlt.mark.with_table_name(quarantine_rows(collection, quarantined), QUARANTINE_TABLE)


def emit_batch(
    batch: ConvertedBatch,
    columns: dict[str, dict[str, Any]],
    table: str,
    number: int,
    tmp: Path,
    stats: CollectionStats,
    item_format: ItemFormat,
    limits: RowLimits | None,
) -> Iterator[Any]:
    """A converted batch as a dlt item: an Arrow table, or a gzip JSON-lines file in `tmp` that
    dlt imports as it is. Rows over the `limits` join the batch's quarantine. Stored columns
    the batch widened are widened in the warehouse first."""
    widenings = stats.registry.take_widenings()
    if widenings:
        widen_columns(dlt.current.pipeline(), table, widenings)
    if item_format == "arrow":
        stats.rows_written += batch.size
        yield dlt.mark.with_hints(batch.to_arrow(), dlt.mark.make_hints(columns=columns))
        return
    path = tmp / f"{table}.{number}.jsonl.gz"
    load_id = dlt.current.load_package_state()["load_id"]
    before = len(batch.quarantined)
    written = batch.write_jsonl(path, load_id=load_id, limits=limits)
    stats.rows_written += written
    columns = {**columns, LOAD_ID: {"name": LOAD_ID, "data_type": "text", "nullable": False}}
    if written:
        yield dlt.mark.with_file_import(str(path), "jsonl", written, hints=dlt.mark.make_hints(columns=columns))
    if len(batch.quarantined) > before and not written:
        path.unlink(missing_ok=True)


def collection_resource(
    client: MongoClient,
    database: str,
    config: CollectionConfig,
    table: str,
    stats: CollectionStats,
    item_format: ItemFormat = "arrow",
    batch_docs: int = 10_000,
    limits: RowLimits | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> DltResource:
    """A dlt resource for one collection; its registry (`stats.registry`) learns the kinds the
    warehouse already has, and those discovery plans from a sample of `sample_size` documents
    (0: no sample), when extraction starts."""
    registry = stats.registry

    def batches() -> Iterator[Any]:
        collection = client[database][config.name]
        # The kinds the table already has (dlt hands the resource its stored schema), so a field
        # that changes type between runs widens its column or goes to a variant column.
        registry.seed(stored_kinds(dlt.current.source_schema(), table))
        if config.detect_deletes and config.deletes == "soft":
            registry.kinds.setdefault(DELETED_AT, TIMESTAMP)  # dated by delete detection after the load
        if sample_size:
            stats.schema = discover(collection, sample_size, config.filter, config.projection)
            plan_columns(registry, stats.schema)  # a name collision stops here, before anything is read
        state = dlt.current.resource_state()
        stats.cursor_from = decode_cursors(state) if config.mode == "incremental" else None
        if stats.cursor_from is not None:
            assert config.cursor_field
            filters = incremental_filters(config.filter, config.cursor_field, stats.cursor_from, config.lookback_seconds)
        elif config.workers > 1:
            filters = id_range_filters(collection, config.filter, config.workers * 2)
        else:
            filters = [config.filter]
        extracted_at = datetime.now(timezone.utc)
        cursors = stats.cursor_from or {}
        arrays_read: set[Any] = set()
        with tempfile.TemporaryDirectory(prefix="atlas-ingest-") as tmp:
            for number, docs in enumerate(read_parallel(collection, filters, config.projection, batch_docs, config.workers)):
                if stats.cursor_from is not None:  # several queries: an array cursor may match two
                    docs = without_repeated_arrays(docs, config.cursor_field, arrays_read)
                stats.documents_read += len(docs)
                progress.report(config.name, stats.documents_read, stats.expected)
                if config.cursor_field:
                    cursors = max_cursors(docs, config.cursor_field, cursors)
                batch = convert_documents(docs, registry, extracted_at, limits)
                if batch.size:
                    yield from emit_batch(batch, registry.dlt_columns(), table, number, Path(tmp), stats, item_format, limits)
                stats.quarantine.extend(batch.quarantined)
        if stats.quarantine:
            yield quarantine_item(config.name, stats.quarantine)
        progress.report(config.name, stats.documents_read, stats.expected, final=True)
        if config.cursor_field:
            stats.cursor_to = cursors
            # Saved with the load package: it only advances when the rows it covers are loaded.
            store_cursors(state, cursors)

    resource = dlt.resource(batches, name=table, write_disposition=config.disposition, primary_key=config.primary_key)()
    return with_quarantine(resource, registry.dlt_columns() if registry.kinds else None)
