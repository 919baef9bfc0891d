"""The dlt source: one resource per MongoDB collection, full or incremental.

Batches leave as Arrow tables (written to parquet by dlt, no row normalization) or, for
destinations that need nested data as real JSON (Redshift COPY, the S3 jsonl landing zone), as
gzip JSON-lines files that dlt imports as they are.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator, Literal

import dlt
from bson import json_util
from dlt.extract.resource import DltResource
from pymongo import MongoClient

from ingestion import progress
from ingestion.batches import LOAD_ID, ColumnRegistry, ConvertedBatch, Quarantined, convert_documents, quarantine_rows
from ingestion.config import CollectionConfig
from ingestion.extract import id_range_filters, read_parallel

QUARANTINE_TABLE = "_atlas_quarantine"
ItemFormat = Literal["arrow", "jsonl"]


@dataclass
class CollectionStats:
    """What one resource did in this run, filled while it runs."""

    documents_read: int = 0
    rows_written: int = 0
    quarantine: list[Quarantined] = field(default_factory=list)
    cursor_from: Any = None
    cursor_to: Any = None
    registry: ColumnRegistry = field(default_factory=ColumnRegistry)
    expected: int | None = None  # documents the run expects to read, when known (for progress)


# Decoded as documents are read (tz-aware UTC): a naive stored date would not compare with the
# documents' dates, and the cursor would never move past its first value.
_CURSOR_JSON_OPTIONS = json_util.CANONICAL_JSON_OPTIONS.with_options(tz_aware=True, tzinfo=timezone.utc)


def encode_cursor(value: Any) -> str:
    """Cursor values are kept in dlt state as canonical extended JSON: exact for every BSON type."""
    return json_util.dumps({"v": value}, json_options=_CURSOR_JSON_OPTIONS)


def decode_cursor(text: str) -> Any:
    return json_util.loads(text, json_options=_CURSOR_JSON_OPTIONS)["v"]


def incremental_filters(user_filter: dict[str, Any], cursor_field: str, last_value: Any) -> list[dict[str, Any]]:
    """Documents at or after the last cursor value, evaluated by the server (`$gte`: documents
    sharing the boundary value are read again and merged on `_id`, never lost), and documents
    without a cursor value, which no range can reach. Two disjoint queries rather than one `$or`,
    so that each uses the cursor index on every server."""
    windows = [{cursor_field: {"$gte": last_value}}, {cursor_field: None}]
    return [{"$and": [user_filter, w]} if user_filter else w for w in windows]


def _max_cursor(docs: list[dict[str, Any]], path: str, current: Any) -> Any:
    keys = path.split(".")
    best = current
    for doc in docs:
        value: Any = doc
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        if best is None:
            best = value
        else:
            try:
                if value > best:
                    best = value
            except TypeError:
                pass  # a value of another BSON type than the cursor's: it cannot move the cursor
    return best


def emit_batch(
    batch: ConvertedBatch,
    columns: dict[str, dict[str, Any]],
    table: str,
    number: int,
    tmp: Path,
    stats: CollectionStats,
    item_format: ItemFormat,
    max_row_bytes: int | None,
) -> Iterator[Any]:
    """A converted batch as a dlt item: an Arrow table, or a gzip JSON-lines file in `tmp` that
    dlt imports as it is. Rows over `max_row_bytes` join the batch's quarantine."""
    if item_format == "arrow":
        stats.rows_written += batch.size
        yield dlt.mark.with_hints(batch.to_arrow(), dlt.mark.make_hints(columns=columns))
        return
    path = tmp / f"{table}.{number}.jsonl.gz"
    load_id = dlt.current.load_package_state()["load_id"]
    before = len(batch.quarantined)
    written = batch.write_jsonl(path, load_id=load_id, max_row_bytes=max_row_bytes)
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
    max_row_bytes: int | None = None,
) -> DltResource:
    """A dlt resource for one collection; `stats.registry` may hold kinds already in the warehouse."""
    registry = stats.registry

    def batches() -> Iterator[Any]:
        collection = client[database][config.name]
        state = dlt.current.resource_state()
        last = state.get("last_cursor") if config.mode == "incremental" else None
        if last is not None:
            assert config.cursor_field
            stats.cursor_from = decode_cursor(last)
            start = stats.cursor_from
            if config.lookback_seconds and isinstance(start, datetime):
                start = start - timedelta(seconds=config.lookback_seconds)
            filters = incremental_filters(config.filter, config.cursor_field, start)
        elif config.workers > 1:
            filters = id_range_filters(collection, config.filter, config.workers * 2)
        else:
            filters = [config.filter]
        extracted_at = datetime.now(timezone.utc)
        cursor = stats.cursor_from
        with tempfile.TemporaryDirectory(prefix="atlas-ingest-") as tmp:
            for number, docs in enumerate(read_parallel(collection, filters, config.projection, batch_docs, config.workers)):
                stats.documents_read += len(docs)
                progress.report(config.name, stats.documents_read, stats.expected)
                if config.cursor_field:
                    cursor = _max_cursor(docs, config.cursor_field, cursor)
                batch = convert_documents(docs, registry, extracted_at)
                if batch.size:
                    yield from emit_batch(batch, registry.dlt_columns(), table, number, Path(tmp), stats, item_format, max_row_bytes)
                stats.quarantine.extend(batch.quarantined)
        progress.report(config.name, stats.documents_read, stats.expected, final=True)
        if config.cursor_field and cursor is not None:
            stats.cursor_to = cursor
            # Saved with the load package: it only advances when the rows it covers are loaded.
            state["last_cursor"] = encode_cursor(cursor)

    return dlt.resource(
        batches,
        name=table,
        write_disposition=config.disposition,
        primary_key=config.primary_key,
        columns=registry.dlt_columns() if registry.kinds else None,
    )()


QUARANTINE_COLUMNS: dict[str, dict[str, Any]] = {
    "collection": {"data_type": "text", "nullable": False},
    "document_id": {"data_type": "text", "nullable": False},
    "reason": {"data_type": "text", "nullable": False},
    "document": {"data_type": "text"},
    "document_truncated": {"data_type": "bool"},
    "quarantined_at": {"data_type": "timestamp"},
}


def quarantine_resource(stats: dict[str, CollectionStats]) -> DltResource:
    """Documents that could not be loaded, with the reason; appended, one row per document.
    Extraction runs resources in order (fifo), so this one sees every collection's quarantine."""

    def rows() -> Iterator[list[dict[str, Any]]]:
        for name, s in stats.items():
            if s.quarantine:
                yield quarantine_rows(name, s.quarantine)

    return dlt.resource(rows, name=QUARANTINE_TABLE, write_disposition="append", columns=QUARANTINE_COLUMNS)()
