"""The dlt source: one resource per MongoDB collection, yielding Arrow tables of raw BSON batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

import bson
import dlt
import pyarrow as pa
from dlt.extract.resource import DltResource
from pymongo import MongoClient

from ingestion.arrow_batches import ColumnRegistry, documents_to_table, json_columns
from ingestion.bson_types import CODEC_OPTIONS


@dataclass(frozen=True)
class CollectionSpec:
    """How one collection is extracted."""

    name: str
    filter: dict[str, Any] = field(default_factory=dict)
    projection: dict[str, Any] | None = None
    write_disposition: str = "replace"
    primary_key: str = "_id"


@dataclass
class ExtractStats:
    """Documents read per collection, filled while the resources run."""

    documents_read: dict[str, int] = field(default_factory=dict)
    registries: dict[str, ColumnRegistry] = field(default_factory=dict)


def _table_batches(
    client: MongoClient, database: str, spec: CollectionSpec, registry: ColumnRegistry,
    stats: ExtractStats, batch_docs: int,
) -> Iterator[pa.Table]:
    collection = client[database][spec.name]
    extracted_at = datetime.now(timezone.utc)
    stats.documents_read[spec.name] = 0
    pending: list[dict[str, Any]] = []
    # Raw batches: the server's reply buffers are decoded in C, in one call per reply.
    for raw in collection.find_raw_batches(spec.filter, spec.projection, batch_size=batch_docs):
        pending.extend(bson.decode_all(raw, CODEC_OPTIONS))
        if len(pending) >= batch_docs:
            yield _with_hints(documents_to_table(pending, registry, extracted_at), registry)
            stats.documents_read[spec.name] += len(pending)
            pending = []
    if pending:
        yield _with_hints(documents_to_table(pending, registry, extracted_at), registry)
        stats.documents_read[spec.name] += len(pending)


def _with_hints(table: pa.Table, registry: ColumnRegistry) -> Any:
    return dlt.mark.with_hints(table, dlt.mark.make_hints(columns=json_columns(registry)))


def collection_resource(
    client: MongoClient, database: str, spec: CollectionSpec, stats: ExtractStats,
    known_kinds: dict[str, str] | None = None, batch_docs: int = 10_000,
) -> DltResource:
    """A dlt resource for one collection; `known_kinds` are column kinds already in the warehouse."""
    registry = stats.registries.setdefault(spec.name, ColumnRegistry(kinds=dict(known_kinds or {})))
    return dlt.resource(
        _table_batches(client, database, spec, registry, stats, batch_docs),
        name=spec.name,
        write_disposition=spec.write_disposition,
        primary_key=spec.primary_key,
    )
