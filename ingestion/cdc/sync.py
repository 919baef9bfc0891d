"""Change data capture for one collection: a checkpointed snapshot, then the change stream, each
applied as merge loads on `_id` whose dlt state carries the checkpoint.

The first run notes the cluster time T0, snapshots the collection in `_id` order (every
`checkpoint_docs` documents are one load, whose state records the last `_id`: a killed snapshot
resumes after it), then reads the change stream from T0, so every change made while the snapshot
ran is applied after it. Later runs resume from the stored token and drain the changes up to the
cluster time at their start. A resync (lost token, dropped or renamed collection) takes a new
snapshot; rows it did not see and no change re-created are then deleted (the sweep), found by
the snapshot id each row carries.
"""

from __future__ import annotations

import gzip
import logging
import signal
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import dlt
import orjson
from bson import Timestamp, json_util
from pymongo import MongoClient

from ingestion import progress
from ingestion.config import CollectionConfig
from ingestion.errors import SourceError
from ingestion.faults import reached
from ingestion.load.checked_run import run_checked
from ingestion.load.destinations import ResolvedDestination
from ingestion.mongo.bson_types import BOOL, TEXT, TIMESTAMP, id_to_text
from ingestion.mongo.change_stream import (
    ROW_OPERATIONS,
    ChangeEvent,
    CollectionStream,
    HistoryLost,
    StreamEnded,
    cluster_time,
    read_snapshot,
)
from ingestion.source.batches import DELETED_AT, EXTRACTED_AT, LOAD_ID, ColumnRegistry, convert_documents
from ingestion.source.cursors import decode_cursor, encode_cursor
from ingestion.source.resources import CollectionStats, emit_batch, quarantine_item, with_quarantine

log = logging.getLogger("atlas_ingest")

SNAPSHOT_ID = "_atlas_snapshot_id"
# The landing zone has no table to sweep: a resync lands this marker row (no `_id`) instead, once
# its snapshot was read to the end; the landing-zone models read it (macros/spectrum/landed_current.sql).
SWEPT = "_atlas_swept"
HARD_DELETE = "_atlas_deleted"
SOFT_DELETE = DELETED_AT
COUNT_OPERATIONS = ("insert", "delete")
EVENTS_SUFFIX = "__change_events"
# A resync that needs another resync in the same run means the oplog window is shorter than a snapshot.
MAX_RESYNCS_PER_RUN = 2
FOLLOW_TOKEN_SAVE_S = 60.0
FOLLOW_READ_S = 0.5


@dataclass
class CdcState:
    """What a collection's CDC has done, kept in its dlt resource state (committed with each load)."""

    phase: str  # "snapshot" or "stream"
    snapshot_id: str
    start_at: str  # cluster time the stream starts from, as extended JSON
    after_id: str | None = None  # snapshot checkpoint: last `_id` loaded, as extended JSON
    token: dict[str, Any] | None = None
    sweep_pending: bool = True
    reason: str = "first run"

    @classmethod
    def new_snapshot(cls, start_at: Timestamp, reason: str) -> "CdcState":
        return cls("snapshot", f"{start_at.time}.{start_at.inc}", encode_cursor(start_at), reason=reason)


@dataclass
class CdcOutcome:
    """What one run did for a collection."""

    snapshot_docs: int = 0
    events: int = 0
    upserts: int = 0
    deletes: int = 0
    swept: int = 0
    resyncs: list[str] = field(default_factory=list)
    snapshot_taken: bool = False
    events_since_count: int = 0  # inserts and deletes after `CollectionSync.count_time`
    stats: CollectionStats = field(default_factory=CollectionStats)


@dataclass
class Target:
    """Where chunks are loaded (fixed for the run)."""

    pipeline: dlt.Pipeline
    destination: ResolvedDestination
    land_events: bool  # the s3 landing zone also keeps the raw change events


def _event_row(event: ChangeEvent) -> dict[str, Any]:
    """A raw change event as landed on S3: canonical extended JSON keeps every BSON type exact."""
    dump = lambda v: None if v is None else json_util.dumps(v, json_options=json_util.CANONICAL_JSON_OPTIONS)  # noqa: E731
    return {
        "operation": event.operation,
        "cluster_time": event.cluster_time.time,
        "cluster_time_inc": event.cluster_time.inc,
        "wall_time": event.wall_time.isoformat(),
        "document_key": dump({"_id": event.document_id}),
        "full_document": dump(event.full_document),
        "resume_token": dump(event.token),
        "namespace": f"{event.namespace.get('db')}.{event.namespace.get('coll')}",
    }


EVENT_COLUMNS: dict[str, dict[str, Any]] = {
    "operation": {"data_type": "text", "nullable": False},
    "cluster_time": {"data_type": "bigint", "nullable": False},
    "cluster_time_inc": {"data_type": "bigint", "nullable": False},
    "wall_time": {"data_type": "timestamp"},
    "document_key": {"data_type": "text"},
    "full_document": {"data_type": "text"},
    "resume_token": {"data_type": "text"},
    "namespace": {"data_type": "text"},
}


class CollectionSync:
    """Brings one collection's table up to the source, one checkpointed load at a time."""

    def __init__(
        self, client: MongoClient, database: str, config: CollectionConfig, table: str,
        registry: ColumnRegistry, target: Target, batch_docs: int,
    ) -> None:
        self.client = client
        self.collection = client[database][config.name]
        self.config = config
        self.table = table
        self.registry = registry
        self.target = target
        self.batch_docs = min(batch_docs, config.checkpoint_docs)
        self.outcome = CdcOutcome(stats=CollectionStats(registry=registry))
        self.state = self._stored_state()
        self.stream: CollectionStream | None = None
        self.expected: int | None = None  # the collection's size, for progress
        self.count_time: Timestamp | None = None  # when the reconciliation's source count started
        self.pending: list[ChangeEvent] = []
        self.last_flush = time.monotonic()
        self.exclude = [f for f, v in (config.projection or {}).items() if v in (0, False)] or None
        self.registry.kinds.setdefault("_id", TEXT)
        self.registry.kinds.setdefault(SNAPSHOT_ID, TEXT)
        if config.deletes == "soft":
            self.registry.kinds.setdefault(SOFT_DELETE, TIMESTAMP)
        else:
            self.registry.kinds.setdefault(HARD_DELETE, BOOL)

    # -- state -------------------------------------------------------------------------------

    def _stored_state(self) -> CdcState | None:
        sources = self.target.pipeline.state.get("sources", {})
        for source in sources.values():
            stored = source.get("resources", {}).get(self.table, {}).get("cdc")
            if stored:
                return CdcState(**stored)
        return None

    def _columns(self) -> dict[str, dict[str, Any]]:
        columns = self.registry.dlt_columns()
        if HARD_DELETE in columns:
            columns[HARD_DELETE]["hard_delete"] = True
        return columns

    def _load(self, rows: Callable[[], Iterator[list[dict[str, Any]]]], new_state: CdcState, events: list[ChangeEvent] | None = None,
              sweep_marker: bool = False) -> None:
        """One load: the rows `rows()` yields (documents with their CDC columns), merged on `_id`,
        with `new_state` saved in the same package, so the checkpoint moves only if they load."""
        stats = CollectionStats(registry=self.registry)
        target = self.target
        extracted_at = datetime.now(timezone.utc)

        def data() -> Iterator[Any]:
            with tempfile.TemporaryDirectory(prefix="atlas-cdc-") as tmp:
                for number, docs in enumerate(rows()):
                    stats.documents_read += len(docs)
                    batch = convert_documents(docs, self.registry, extracted_at, target.destination.limits)
                    if batch.size:
                        yield from emit_batch(batch, self._columns(), self.table, number, Path(tmp), stats,
                                              target.destination.item_format, target.destination.limits)
                        reached("cdc-flush")
                    stats.quarantine.extend(batch.quarantined)
                if sweep_marker:
                    yield self._sweep_marker(Path(tmp), extracted_at)
            if stats.quarantine:
                yield quarantine_item(self.config.name, stats.quarantine)
            dlt.current.resource_state()["cdc"] = asdict(new_state)

        resources = [
            with_quarantine(dlt.resource(data, name=self.table, write_disposition="merge", primary_key="_id")(), self._columns()),
        ]
        if events and target.land_events:
            resources.append(self._events_resource(events))
        def check(info: Any) -> None:  # before the load (and its checkpoint) commits
            stats.checked_rows(self.config.name, self.table, target.destination.item_format, info)

        run_checked(target.pipeline, resources, target.destination.loader_file_format,
                    target.destination.duckdb_credentials, check)
        # Every column the registry declared is in the table now: a wider value in a later load of
        # this run widens it in the warehouse first, as one in a later run would.
        self.registry.stored.update(self.registry.kinds)
        total = self.outcome.stats
        total.documents_read += stats.documents_read
        total.rows_written += stats.rows_written
        total.quarantine.extend(stats.quarantine)
        self.state = new_state

    def _sweep_marker(self, tmp: Path, extracted_at: datetime) -> Any:
        """The landed row that says: documents whose newest version is older than this and of
        another snapshot are gone (dated by `_deleted_at` with soft deletes)."""
        assert self.state is not None
        row: dict[str, Any] = {SNAPSHOT_ID: self.state.snapshot_id, SWEPT: True, EXTRACTED_AT: extracted_at.isoformat(),
                               LOAD_ID: dlt.current.load_package_state()["load_id"]}
        if self.config.deletes == "soft":
            row[SOFT_DELETE] = extracted_at.isoformat()
        path = tmp / f"{self.table}.sweep.jsonl.gz"
        with gzip.open(path, "wb", compresslevel=3) as out:
            out.write(orjson.dumps(row) + b"\n")
        columns = {SNAPSHOT_ID: {"data_type": "text"}, SWEPT: {"data_type": "bool"}}
        return dlt.mark.with_file_import(str(path), "jsonl", 1, hints=dlt.mark.make_hints(columns=columns))

    def _events_resource(self, events: list[ChangeEvent]) -> Any:
        name = f"{self.table}{EVENTS_SUFFIX}"

        def data() -> Iterator[Any]:
            with tempfile.TemporaryDirectory(prefix="atlas-cdc-events-") as tmp:
                path = Path(tmp) / f"{name}.jsonl.gz"
                load_id = dlt.current.load_package_state()["load_id"]
                with gzip.open(path, "wb", compresslevel=3) as out:
                    for event in events:
                        out.write(orjson.dumps({**_event_row(event), LOAD_ID: load_id}) + b"\n")
                columns = {**EVENT_COLUMNS, LOAD_ID: {"data_type": "text", "nullable": False}}
                yield dlt.mark.with_file_import(str(path), "jsonl", len(events), hints=dlt.mark.make_hints(columns=columns))

        if self.target.destination.item_format == "jsonl":
            return dlt.resource(data, name=name, write_disposition="append", columns=EVENT_COLUMNS)()
        return dlt.resource(lambda: iter([[_event_row(e) for e in events]]), name=name, write_disposition="append",
                            columns=EVENT_COLUMNS)()

    # -- snapshot ----------------------------------------------------------------------------

    def _start_resync(self, reason: str) -> None:
        if len(self.outcome.resyncs) >= MAX_RESYNCS_PER_RUN:
            raise SourceError(
                f"collection '{self.config.name}': resync needed again in the same run ({reason}): the oplog window "
                "is shorter than a snapshot takes; enlarge the oplog (Atlas: cluster configuration, oplog size) "
                "and run again"
            )
        self.outcome.resyncs.append(reason)
        self._close_stream()
        self.state = CdcState.new_snapshot(cluster_time(self.client), reason)

    def snapshot(self) -> None:
        """Load the collection in `_id` order from the checkpoint, one load per `checkpoint_docs`."""
        assert self.state is not None
        started = self.state.after_id is not None
        after = decode_cursor(self.state.after_id) if started else None
        if started:
            log.info("%s: snapshot resumes after _id %s", self.config.name, id_to_text(after))
        self.outcome.snapshot_taken = True
        batches = read_snapshot(self.collection, after, started, self.config.projection, self.batch_docs)
        exhausted = False
        while not exhausted:
            pending = CdcState(**asdict(self.state))
            taken = 0

            def chunk() -> Iterator[list[dict[str, Any]]]:
                nonlocal exhausted, taken
                while taken < self.config.checkpoint_docs:
                    docs = next(batches, None)
                    if docs is None:
                        exhausted = True
                        return
                    taken += len(docs)
                    progress.report(self.config.name, self.outcome.snapshot_docs + taken, self.expected)
                    for doc in docs:
                        doc[SNAPSHOT_ID] = pending.snapshot_id
                    # The checkpoint saved with this load: the last `_id` it holds.
                    pending.after_id = encode_cursor(docs[-1]["_id"])
                    yield docs

            self._load(chunk, pending)
            self.outcome.snapshot_docs += taken
        # Snapshot complete: the stream starts at T0 (or resumes its token, after a restart).
        state = CdcState(**{**asdict(self.state), "phase": "stream"})
        self._load(lambda: iter(()), state)
        log.info("%s: snapshot %s complete (%d documents this run)", self.config.name, state.snapshot_id,
                 self.outcome.snapshot_docs)

    # -- stream ------------------------------------------------------------------------------

    def _open_stream(self) -> CollectionStream:
        if self.stream is None:
            assert self.state is not None
            start = None if self.state.token else decode_cursor(self.state.start_at)
            self.stream = CollectionStream(self.collection, self.state.token, start, self.exclude)
        return self.stream

    def _close_stream(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def _event_rows(self, events: list[ChangeEvent]) -> list[dict[str, Any]]:
        """The row each changed `_id` ends with: the last event wins (one row per `_id` per load)."""
        assert self.state is not None
        latest: dict[str, ChangeEvent] = {}
        for event in events:
            if event.operation != "delete" and event.full_document is None:
                continue  # updated, then deleted before we looked: its delete event follows
            latest[id_to_text(event.document_id)] = event
        rows = []
        for event in latest.values():
            if event.operation == "delete":
                self.outcome.deletes += 1
                row: dict[str, Any] = {"_id": event.document_id, SNAPSHOT_ID: self.state.snapshot_id}
                if self.config.deletes == "soft":
                    row[SOFT_DELETE] = event.wall_time
                else:
                    row[HARD_DELETE] = True
            else:
                self.outcome.upserts += 1
                row = dict(event.full_document or {})
                row[SNAPSHOT_ID] = self.state.snapshot_id
            rows.append(row)
        return rows

    def flush(self) -> None:
        """Load the pending events, and the stream position after them."""
        assert self.state is not None and self.stream is not None
        events, self.pending = self.pending, []
        rows = self._event_rows(events)
        new_state = CdcState(**{**asdict(self.state), "token": self.stream.resume_token})
        self._load(lambda: iter([rows] if rows else []), new_state, events)
        self.outcome.events += len(events)
        if events:
            lag = (datetime.now(timezone.utc) - events[-1].wall_time).total_seconds()
            log.info("%s: applied %d change events (%d rows); %.1f s behind the source", self.config.name,
                     len(events), len(rows), lag)
        self.last_flush = time.monotonic()

    def _read(self, until: Timestamp | None) -> bool:
        """Read the events there are now into `self.pending` (flushing each full checkpoint);
        True when caught up with `until` or with the stream. False when the stream ended (drop,
        rename, invalidate): the events before the end are loaded and a resync is set up."""
        stream = self._open_stream()
        started = time.monotonic()
        while True:
            try:
                event = stream.next()
            except StreamEnded as ended:
                self.flush()
                self._handle_end(ended.event)
                return False
            if event is None:
                return True
            if event.operation in ROW_OPERATIONS:
                self.pending.append(event)
                # Only inserts and deletes move the count (CDC takes no filter, so an update cannot).
                if self.count_time is not None and event.cluster_time > self.count_time and event.operation in COUNT_OPERATIONS:
                    self.outcome.events_since_count += 1
            if len(self.pending) >= self.config.checkpoint_docs:
                self.flush()
            if until is not None and event.cluster_time >= until:
                return True
            if until is None and time.monotonic() - started >= FOLLOW_READ_S:
                return True  # let the other collections and the flush timer have their turn

    def drain(self, until: Timestamp) -> None:
        """Apply the change events up to cluster time `until`, then the sweep a snapshot left pending."""
        if not self._read(until):
            return
        assert self.state is not None and self.stream is not None
        if self.pending or self.state.token != self.stream.resume_token:
            self.flush()
        if self.state.sweep_pending:
            self._sweep()

    def follow_step(self, flush_s: float) -> None:
        """`--follow`: read what has arrived; load it once `flush_s` has passed since the last load.
        A quiet collection still saves its token every minute, to stay inside the oplog window."""
        try:
            ended = not self._read(None)
        except HistoryLost as exc:
            self._close_stream()
            self._token_lost(str(exc))
            ended = True
        if ended:
            self.sync(cluster_time(self.client))
            return
        since = time.monotonic() - self.last_flush
        if (self.pending and since >= flush_s) or since >= FOLLOW_TOKEN_SAVE_S:
            self.flush()

    def _handle_end(self, event: ChangeEvent) -> None:
        name = self.config.name
        if event.operation == "rename":
            to = event.to or {}
            reason = (f"collection '{name}' was renamed to '{to.get('db')}.{to.get('coll')}': its table now mirrors "
                      f"the empty '{name}'; load the new name with --collections {to.get('coll')}")
        elif event.operation in ("drop", "dropDatabase"):
            reason = f"collection '{name}' was dropped in the source: its table is emptied to match"
        else:
            reason = f"the change stream of '{name}' was invalidated"
        log.warning("%s (at cluster time %s); taking a new snapshot", reason, event.cluster_time)
        self._start_resync(reason)

    def _sweep(self) -> None:
        """After a snapshot and the changes since: rows of other snapshots were not seen again and
        not changed since T0, so the source no longer has them."""
        assert self.state is not None
        marker = False
        if self.target.destination.is_sql:
            self.outcome.swept = self._sweep_sql(self.state.snapshot_id)
        elif self.target.destination.item_format == "jsonl":
            marker = True
        elif self.state.reason != "first run":
            log.warning("%s: the parquet landing zone keeps documents the resync did not see again; land jsonl "
                        "(--file-format jsonl) for the landing-zone models to drop them", self.config.name)
        self._load(lambda: iter(()), CdcState(**{**asdict(self.state), "sweep_pending": False}), sweep_marker=marker)

    def _sweep_sql(self, snapshot_id: str) -> int:
        from dlt.destinations.exceptions import DatabaseUndefinedRelation

        with self.target.pipeline.sql_client() as client:
            table = client.make_qualified_table_name(self.table)
            snap = client.escape_column_name(SNAPSHOT_ID)
            if self.config.deletes == "soft":
                deleted = client.escape_column_name(SOFT_DELETE)
                sql = (f"update {table} set {deleted} = %s where ({snap} is null or {snap} <> %s) and {deleted} is null")
                args: tuple[Any, ...] = (datetime.now(timezone.utc), snapshot_id)
            else:
                sql = f"delete from {table} where {snap} is null or {snap} <> %s"
                args = (snapshot_id,)
            try:
                count_sql = f"select count(*) from {table} where {snap} is null or {snap} <> %s"
                counted = client.execute_sql(count_sql, snapshot_id)
                swept = counted[0][0] if counted else 0
                client.execute_sql(sql, *args)
            except DatabaseUndefinedRelation:
                return 0  # nothing was ever loaded
        if swept:
            log.info("%s: removed %d rows the source no longer has (snapshot %s)", self.config.name, swept, snapshot_id)
        return int(swept)

    # -- the run -----------------------------------------------------------------------------

    def sync(self, run_start: Timestamp, resync: bool = False) -> CdcOutcome:
        """Snapshot if needed (or if `resync`), then apply the changes up to `run_start`."""
        if self.state is None:
            self.state = CdcState.new_snapshot(cluster_time(self.client), "first run")
        elif resync:
            log.warning("RESYNC collection '%s': requested with --resync: taking a new snapshot", self.config.name)
            self._start_resync("requested with --resync")
        while True:
            if self.state.phase == "snapshot":
                self.snapshot()
                # Changes made while the snapshot ran must be applied before this run ends.
                run_start = max(run_start, cluster_time(self.client))
            try:
                self.drain(run_start)
            except HistoryLost as exc:
                self._close_stream()
                self._token_lost(str(exc))
                continue
            if self.state.phase == "stream":
                return self.outcome

    def _token_lost(self, detail: str) -> None:
        name = self.config.name
        if self.config.on_token_lost == "fail":
            raise SourceError(
                f"collection '{name}': the stored change stream position is no longer in the oplog ({detail}); "
                "nothing was loaded: rerun with on_token_lost = \"resync\" (--on-token-lost resync) to take a new snapshot"
            )
        log.warning(
            "RESYNC collection '%s': the stored change stream position is no longer in the oplog (%s): taking a new "
            "snapshot; rows the source no longer has are removed after it", name, detail,
        )
        self._start_resync(f"resume token lost: {detail}")

    def close(self) -> None:
        self._close_stream()


def stop_on_signals() -> Callable[[], bool]:
    """A flag set by SIGTERM or SIGINT, so `--follow` flushes what it holds and exits cleanly."""
    stopped = [False]

    def handler(signum: int, frame: Any) -> None:
        stopped[0] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return lambda: stopped[0]


__all__ = ["CdcOutcome", "CdcState", "CollectionSync", "Target", "stop_on_signals"]
