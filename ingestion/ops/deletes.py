"""Delete detection for incremental loads: the rows whose document is no longer in the source.

An incremental run reads what changed since its cursor, so a deleted document is never read again
and its row stays. With `detect_deletes`, each run then reads every `_id` of the source (with no
filter, in `_id` order: MongoDB answers from the `_id` index alone, without touching a document)
and every `_id` of the table, and removes the rows the source no longer has (`deletes = "hard"`)
or dates them in `_deleted_at` (`"soft"`). The `_id`s are read after the load, so a document
inserted meanwhile is in the source's list and never removed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import dlt
from pymongo.collection import Collection

from ingestion.config import CollectionConfig
from ingestion.mongo.bson_types import id_to_text
from ingestion.source.batches import DELETED_AT

log = logging.getLogger("atlas_ingest")
CHUNK = 1_000  # `_id`s per DELETE / UPDATE statement


def source_ids(collection: Collection, config: CollectionConfig) -> set[str]:
    """Every `_id` the table should hold, as its text. Without a filter the read is index-only."""
    cursor = collection.find(config.filter, {"_id": 1}) if config.filter else collection.find({}, {"_id": 1}).sort("_id", 1)
    return {id_to_text(doc["_id"]) for doc in cursor.batch_size(10_000)}


def remove_deleted(collection: Collection, config: CollectionConfig, table: str, pipeline: dlt.Pipeline) -> int:
    """Remove (or date) the rows of `table` whose document is gone; returns how many."""
    from dlt.destinations.exceptions import DatabaseUndefinedRelation

    present = source_ids(collection, config)
    soft = config.deletes == "soft"
    with pipeline.sql_client() as client:
        qualified = client.make_qualified_table_name(table)
        deleted_at = client.escape_column_name(DELETED_AT)
        try:
            rows = client.execute_sql(f"select _id from {qualified}" + (f" where {deleted_at} is null" if soft else ""))
        except DatabaseUndefinedRelation:
            return 0  # nothing loaded yet
        gone = sorted({str(r[0]) for r in rows or []} - present)
        now = datetime.now(timezone.utc)
        with client.begin_transaction():  # all of them or none
            for start in range(0, len(gone), CHUNK):
                chunk: list[Any] = gone[start:start + CHUNK]
                placeholders = ", ".join(["%s"] * len(chunk))
                if soft:
                    client.execute_sql(f"update {qualified} set {deleted_at} = %s where _id in ({placeholders})", now, *chunk)
                else:
                    client.execute_sql(f"delete from {qualified} where _id in ({placeholders})", *chunk)
    if gone:
        log.info("%s: %s %d rows whose document is gone from the source", config.name,
                 "dated" if soft else "removed", len(gone))
    return len(gone)
