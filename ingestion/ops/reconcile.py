"""After a run: does the warehouse table hold what the collection holds?

Counts are compared within a window: documents that changed while the run ran may legitimately
differ. The caller says which changes bound its count (`SourceCount`): the count's own change
over the run, or the inserts and deletes after it; documents whose cursor value is newer than
the run's start are added here. A sample of `_id`s with their cursor values, sampled in the
warehouse and looked up in the source, is compared too, which catches a table with the right
count but stale or extra rows. Documents quarantined and never loaded are counted as known
differences.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

import dlt
from bson import Timestamp
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from pymongo import MongoClient, ReadPreference
from pymongo.collection import Collection
from pymongo.database import Database

from ingestion.cdc.sync import SOFT_DELETE
from ingestion.config import CollectionConfig
from ingestion.mongo.bson_types import id_from_text, id_to_text
from ingestion.mongo.change_stream import cluster_time
from ingestion.naming import column_name
from ingestion.source.resources import QUARANTINE_TABLE

SAMPLE_SIZE = 100
MATCH, DIVERGED, NOT_CHECKED = "match", "diverged", "not checked"
# The warehouse holds more rows than the source, every sampled row equal: what a mode that cannot
# see deletes leaves (incremental without detect_deletes, an appended table), not a divergence.
DELETES_UNSEEN = "deletes unseen"


@dataclass
class Reconciliation:
    source_count: int | None  # None: the source could not be counted (`failure` says why)
    warehouse_count: int | None = None
    quarantined_missing: int = 0
    changed_during_run: int = 0
    sample_size: int = 0
    sample_mismatches: int | None = None
    # CDC with soft deletes keeps deleted documents as rows with `_deleted_at`: count the others.
    live_rows_only: bool = False
    # whether the mode removes rows of deleted documents (CollectionConfig.sees_deletes)
    sees_deletes: bool = True
    elapsed_s: float = 0.0  # what the comparison cost (the source count scans on some servers)
    failure: str | None = None  # why the comparison could not be made

    @property
    def status(self) -> str:
        if self.source_count is None or self.warehouse_count is None or self.sample_mismatches is None:
            return NOT_CHECKED
        excess = self.warehouse_count + self.quarantined_missing - self.source_count
        if self.sample_mismatches > self.changed_during_run:
            return DIVERGED
        if abs(excess) <= self.changed_during_run:
            return MATCH
        return DELETES_UNSEEN if excess > 0 and not self.sees_deletes else DIVERGED

    def describe(self) -> str:
        if self.failure is not None:
            return self.failure
        if self.status == NOT_CHECKED:
            return f"{self.source_count} documents in the source; the warehouse was not checked"
        return (f"source {self.source_count}, warehouse {self.warehouse_count}"
                + (f" (+{self.quarantined_missing} quarantined)" if self.quarantined_missing else "")
                + f", sample {self.sample_size - (self.sample_mismatches or 0)}/{self.sample_size} equal"
                + (f", {self.changed_during_run} changed during the run" if self.changed_during_run else "")
                + ("; the extra rows are documents deleted in the source, which this mode does not remove "
                   "(incremental: detect_deletes = true)" if self.status == DELETES_UNSEEN else ""))


@dataclass(frozen=True)
class SourceCount:
    """The source count a reconciliation compares with, and how many documents are known to have
    changed between that count and the state the warehouse was brought to."""

    count: int
    changed: int = 0


def counted_after(collection: Collection, config: CollectionConfig, count_before: int) -> SourceCount:
    """A count now, after the run loaded: the count's change since `count_before` bounds what changed."""
    after = source_count(collection, config)
    return SourceCount(after, abs(after - count_before))


def source_count(collection: Collection, config: CollectionConfig) -> int:
    """Documents the table should hold: the filter's count, or the collection's metadata count.
    A CDC window starts at a cluster time taken from the primary, so CDC counts read the primary,
    never a secondary that lags behind it."""
    if config.mode == "cdc":
        collection = collection.with_options(read_preference=ReadPreference.PRIMARY)
    if config.filter:
        return collection.count_documents(config.filter)
    return collection.estimated_document_count()


def count_before_run(
    client: MongoClient, db: Database, collections: list[CollectionConfig],
) -> tuple[Timestamp | None, dict[str, int | None]]:
    """The source counts taken before a run reads, and the cluster time CDC windows start at. A
    count scans the collection on some servers, so each run counts once where it can:
    - full, and CDC runs that snapshot or follow: before and after; the count's change bounds
      what changed meanwhile;
    - CDC runs that only read the stream: before, after noting the cluster time (both on the
      primary); the inserts and deletes after it, which the run applies anyway, bound what changed;
    - incremental: after; the cursor bounds what changed."""
    count_time = cluster_time(client) if any(cc.mode == "cdc" for cc in collections) else None
    counts = {cc.name: None if cc.mode == "incremental" else source_count(db[cc.name], cc) for cc in collections}
    return count_time, counts


def reconcile_table(
    collection: Collection, config: CollectionConfig, table: str, pipeline: dlt.Pipeline, is_sql: bool,
    count_before: int | None, changed_since_count: int | None, run_started_at: datetime,
    source_fields: Mapping[str, str] | None = None,
) -> Reconciliation:
    """The reconciliation of one collection after its load, timed."""
    started = time.monotonic()
    if config.mode == "incremental" or count_before is None:
        counted = SourceCount(source_count(collection, config))
    elif changed_since_count is not None:
        counted = SourceCount(count_before, changed_since_count)
    else:
        counted = counted_after(collection, config, count_before)
    if is_sql:
        result = reconcile(collection, config, table, pipeline, counted, run_started_at, source_fields)
    else:
        result = Reconciliation(source_count=counted.count)
    result.elapsed_s = time.monotonic() - started
    return result


def _same(source: Any, warehouse: Any) -> bool:
    if isinstance(source, datetime) and isinstance(warehouse, datetime):
        # MongoDB keeps milliseconds; compare in UTC at that precision.
        as_utc = lambda t: (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)  # noqa: E731
        return int(as_utc(source).timestamp() * 1000) == int(as_utc(warehouse).timestamp() * 1000)
    return source == warehouse


def reconcile(
    collection: Collection, config: CollectionConfig, table: str, pipeline: dlt.Pipeline,
    source: SourceCount, run_started_at: datetime, source_fields: Mapping[str, str] | None = None,
) -> Reconciliation:
    """Compare the collection's `source` count with its table right after the run loaded it (SQL
    destinations). Documents whose cursor is newer than the run's start widen the window.
    `source_fields` maps warehouse columns to the source fields they came from."""
    result = Reconciliation(source_count=source.count, changed_during_run=source.changed, sees_deletes=config.sees_deletes)
    cursor = config.cursor_field
    if cursor:
        changed = {**config.filter, cursor: {"$gte": run_started_at}} if config.filter else {cursor: {"$gte": run_started_at}}
        result.changed_during_run += collection.count_documents(changed)
    columns = pipeline.default_schema.tables.get(table, {}).get("columns", {}) if pipeline.default_schema_name else {}
    # Compared by column in the warehouse and by field in the source (`updated_at` / `updatedAt`):
    # the cursor's column is named from the cursor field; another column's field is the one the
    # registry saw it come from.
    cursor_column = column_name(cursor) if cursor else None
    compare = cursor_column if cursor_column in columns else ("updated_at" if "updated_at" in columns else None)
    field = cursor if compare and compare == cursor_column else (source_fields or {}).get(compare or "", compare)
    with pipeline.sql_client() as client:
        qualified = client.make_qualified_table_name(table)
        result.live_rows_only = (config.mode == "cdc" or config.detect_deletes) and config.deletes == "soft" and SOFT_DELETE in columns
        live = f"where {client.escape_column_name(SOFT_DELETE)} is null" if result.live_rows_only else ""
        try:
            result.warehouse_count = _scalar(client, f"select count(*) from {qualified} {live}")
        except DatabaseUndefinedRelation:  # no table yet (an empty collection): nothing loaded
            result.warehouse_count, result.sample_mismatches = 0, 0
            return result
        quarantine = client.make_qualified_table_name(QUARANTINE_TABLE)
        try:
            result.quarantined_missing = _scalar(
                client, f"select count(distinct q.document_id) from {quarantine} q where q.collection = %s and not exists "
                f"(select 1 from {qualified} t where t._id = q.document_id)", config.name)
        except DatabaseUndefinedRelation:  # no quarantine table: nothing was ever quarantined
            result.quarantined_missing = 0
        # Rows sampled in the warehouse, looked up in the source by `_id` (an index lookup on any
        # server; a missing row shows in the counts above).
        selected = f", {client.escape_column_name(compare)}" if compare else ""
        sampled = client.execute_sql(f"select _id{selected} from {qualified} {live} order by random() limit {SAMPLE_SIZE}") or []
    sample = {row[0]: (row[1] if compare else None) for row in sampled}
    query: dict[str, Any] = {"_id": {"$in": [id_from_text(text) for text in sample]}}
    source = {
        id_to_text(doc["_id"]): doc.get(field) if field else None
        for doc in collection.find({"$and": [config.filter, query]} if config.filter else query, {field: 1} if field else {"_id": 1})
    }
    result.sample_size = len(sample)
    missing = sum(1 for _id in sample if _id not in source)
    differing = sum(1 for _id, value in sample.items() if _id in source and not _same(source[_id], value))
    # a sampled row whose document is gone is stale where the mode removes such rows, expected where it does not
    result.sample_mismatches = differing + (missing if config.sees_deletes else 0)
    return result


def _scalar(client: Any, sql: str, *args: Any) -> int:
    rows = client.execute_sql(sql, *args)
    return int(rows[0][0]) if rows else 0
