"""Reading MongoDB for CDC: a snapshot in `_id` order that resumes after a checkpoint, and the
collection's change stream, with split large events put back together and lost history told apart
from other failures."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping

from bson import Binary, DatetimeMS, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from pymongo import MongoClient
from pymongo.change_stream import CollectionChangeStream
from pymongo.collection import Collection
from pymongo.errors import OperationFailure, PyMongoError

from ingestion.errors import SourceError
from ingestion.mongo.reads import read_batches

# ChangeStreamHistoryLost, ChangeStreamFatalError, CappedPositionLost: the resume point has left
# the oplog. (A real mongod sends 286; older ones 280 or 136.)
HISTORY_LOST_CODES = frozenset({286, 280, 136})
UNKNOWN_STAGE_CODE = 40324
BSON_TOO_LARGE_CODES = frozenset({10334, 17419})
SPLIT_STAGE = {"$changeStreamSplitLargeEvent": {}}
ROW_OPERATIONS = ("insert", "update", "replace", "delete")
# Events after which this collection's stream ends: the collection is gone or renamed.
ENDING_OPERATIONS = ("drop", "rename", "dropDatabase", "invalidate")

# BSON comparison order of the types an `_id` can hold. A range query (`$gt`) only matches values of
# its bound's bracket, so resuming a snapshot takes the rest of the bracket, then every later one.
_ID_BRACKETS: tuple[tuple[str, ...], ...] = (
    ("minKey",), ("null", "undefined"), ("int", "long", "double", "decimal"), ("string", "symbol"),
    ("object",), ("binData",), ("objectId",), ("bool",), ("date",), ("timestamp",), ("regex",), ("maxKey",),
)
_SINGLE_VALUE_BRACKETS = (0, 1, 11)


class HistoryLost(Exception):
    """The stored resume point is no longer in the oplog: changes since then cannot be read."""


class StreamEnded(Exception):
    """The collection was dropped or renamed (or its stream invalidated) at `event`."""

    def __init__(self, event: "ChangeEvent") -> None:
        super().__init__(event.operation)
        self.event = event


def cluster_time(client: MongoClient) -> Timestamp:
    """The cluster's current operation time: where a change stream opened now would start."""
    reply = client.admin.command("hello")
    ts = reply.get("operationTime") or (reply.get("$clusterTime") or {}).get("clusterTime")
    if not isinstance(ts, Timestamp) or not reply.get("setName"):
        raise SourceError(
            "change streams need a replica set or an Atlas cluster, and this server is standalone: "
            "use --mode incremental, or start it as a replica set"
        )
    return ts


def id_bracket(value: Any) -> int:
    """Index in `_ID_BRACKETS` of an `_id` value (as decoded with CODEC_OPTIONS)."""
    if isinstance(value, MinKey):
        return 0
    if value is None:
        return 1
    if isinstance(value, bool):
        return 7
    if isinstance(value, (int, float, Int64, Decimal128)):
        return 2
    if isinstance(value, str):
        return 3
    if isinstance(value, Mapping):
        return 4
    if isinstance(value, (bytes, Binary, uuid.UUID)):
        return 5
    if isinstance(value, ObjectId):
        return 6
    if isinstance(value, (datetime, DatetimeMS)):
        return 8
    if isinstance(value, Timestamp):
        return 9
    if isinstance(value, (Regex, re.Pattern)):
        return 10
    if isinstance(value, MaxKey):
        return 11
    raise ValueError(f"unsupported _id type {type(value).__name__}")


def snapshot_filters(after_id: Any, started: bool) -> list[dict[str, Any]]:
    """Queries that together read, in `_id` order, every document after the checkpoint `after_id`
    (every document when not `started`)."""
    if not started:
        return [{}]
    bracket = id_bracket(after_id)
    later = [t for group in _ID_BRACKETS[bracket + 1:] for t in group]
    filters = [] if bracket in _SINGLE_VALUE_BRACKETS else [{"_id": {"$gt": after_id}}]
    if later:
        filters.append({"_id": {"$type": later}})
    return filters


def read_snapshot(
    collection: Collection, after_id: Any, started: bool, projection: dict[str, Any] | None, batch_docs: int
) -> Iterator[list[dict[str, Any]]]:
    """Documents in `_id` order after the checkpoint, in decoded batches of about `batch_docs`."""
    for query in snapshot_filters(after_id, started):
        yield from read_batches(collection, query, projection, batch_docs, sort=[("_id", 1)])


@dataclass
class ChangeEvent:
    operation: str
    cluster_time: Timestamp
    wall_time: datetime
    document_id: Any
    full_document: dict[str, Any] | None
    token: dict[str, Any]
    namespace: dict[str, Any]
    to: dict[str, Any] | None = None

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> "ChangeEvent":
        ts = raw["clusterTime"]
        wall = raw.get("wallTime") or datetime.fromtimestamp(ts.time, timezone.utc)
        if wall.tzinfo is None:
            wall = wall.replace(tzinfo=timezone.utc)
        return cls(
            operation=raw["operationType"],
            cluster_time=ts,
            wall_time=wall,
            document_id=(raw.get("documentKey") or {}).get("_id"),
            full_document=raw.get("fullDocument"),
            token=raw["_id"],
            namespace=raw.get("ns") or {},
            to=raw.get("to"),
        )


def _stream_error(exc: OperationFailure, where: str, split: bool) -> Exception:
    if exc.code in HISTORY_LOST_CODES:
        return HistoryLost(f"{where}: {(exc.details or {}).get('errmsg', exc)}")
    if exc.code in BSON_TOO_LARGE_CODES and not split:
        return SourceError(
            f"{where}: a change event is over MongoDB's 16 MB limit and this server cannot split events "
            "($changeStreamSplitLargeEvent needs MongoDB 6.0.9 or later): upgrade the cluster, or load this "
            "collection with --mode incremental"
        )
    return SourceError(f"{where}: change stream failed: {(exc.details or {}).get('errmsg', exc)}")


class CollectionStream:
    """One collection's change stream, from a resume token or a cluster time. `next()` gives whole
    events (split fragments joined) or None when nothing more is there now."""

    def __init__(
        self,
        collection: Collection,
        token: dict[str, Any] | None,
        start_at: Timestamp | None,
        exclude_fields: list[str] | None = None,
        max_await_ms: int = 500,
    ) -> None:
        self.where = f"{collection.database.name}.{collection.name}"
        self.split = True
        extra = [{"$project": {f"fullDocument.{f}": 0 for f in exclude_fields}}] if exclude_fields else []
        options: dict[str, Any] = {"full_document": "updateLookup", "max_await_time_ms": max_await_ms}
        if token is not None:
            options["start_after"] = token
        else:
            options["start_at_operation_time"] = start_at
        try:
            try:
                self._stream: CollectionChangeStream = collection.watch([*extra, SPLIT_STAGE], **options)
            except OperationFailure as exc:
                if exc.code != UNKNOWN_STAGE_CODE:
                    raise
                self.split = False
                self._stream = collection.watch(extra, **options)
        except OperationFailure as exc:
            raise _stream_error(exc, self.where, self.split) from None

    @property
    def resume_token(self) -> dict[str, Any] | None:
        """The point after the last event returned (or after the last empty batch)."""
        return self._stream.resume_token

    def next(self) -> ChangeEvent | None:
        try:
            raw = self._stream.try_next()
            if raw is None:
                return None
            split = raw.get("splitEvent")
            if split and split["of"] > 1:
                merged = dict(raw)
                while merged["splitEvent"]["fragment"] < split["of"]:
                    merged.update(self._stream.next())  # the other fragments follow at once
                raw = merged
        except OperationFailure as exc:
            raise _stream_error(exc, self.where, self.split) from None
        except PyMongoError as exc:
            raise SourceError(f"{self.where}: change stream failed: {exc}") from None
        event = ChangeEvent.from_raw(raw)
        if event.operation in ENDING_OPERATIONS:
            raise StreamEnded(event)
        return event

    def close(self) -> None:
        self._stream.close()
