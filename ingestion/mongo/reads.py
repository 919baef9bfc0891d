"""Reading a collection in decoded batches: one cursor, or several over `_id` ranges in parallel."""

from __future__ import annotations

import queue
import threading
from typing import Any, Iterator

import bson
from pymongo.collection import Collection

from ingestion.mongo.bson_types import CODEC_OPTIONS

_DONE = object()


def read_batches(
    collection: Collection, filter: dict[str, Any], projection: dict[str, Any] | None, batch_docs: int,
    sort: list[tuple[str, int]] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Decoded documents in lists of about `batch_docs`. Raw batches are decoded in C, one call per
    server reply, so no Python work happens per document here."""
    pending: list[dict[str, Any]] = []
    for raw in collection.find_raw_batches(filter, projection, sort=sort, batch_size=min(batch_docs, 100_000)):
        pending.extend(bson.decode_all(raw, CODEC_OPTIONS))
        if len(pending) >= batch_docs:
            yield pending
            pending = []
    if pending:
        yield pending


def id_range_filters(collection: Collection, filter: dict[str, Any], parts: int, sample_size: int = 1_000) -> list[dict[str, Any]]:
    """Filters that split the collection by `_id` into about `parts` ranges, together matching
    every document exactly once. Split points come from a random sample of ObjectId `_id`s; range
    queries only match the bounds' BSON type, so a last filter takes every other `_id` type."""
    if parts <= 1:
        return [filter]
    sample = collection.aggregate([
        {"$match": {"_id": {"$type": "objectId"}}},
        {"$sample": {"size": sample_size}},
        {"$project": {"_id": 1}},
    ])
    ids = sorted(doc["_id"] for doc in sample)
    if len(ids) < parts:
        return [filter]
    bounds = sorted({ids[len(ids) * k // parts] for k in range(1, parts)})
    ranges: list[dict[str, Any]] = []
    lower = None
    for upper in [*bounds, None]:
        cond: dict[str, Any] = {"$type": "objectId"}
        if lower is not None:
            cond["$gte"] = lower
        if upper is not None:
            cond["$lt"] = upper
        ranges.append(cond)
        lower = upper
    ranges.append({"$not": {"$type": "objectId"}})
    return [{"$and": [filter, {"_id": r}]} if filter else {"_id": r} for r in ranges]


def read_parallel(
    collection: Collection, filters: list[dict[str, Any]], projection: dict[str, Any] | None, batch_docs: int, workers: int
) -> Iterator[list[dict[str, Any]]]:
    """Batches from range cursors read by `workers` threads while the caller converts the previous
    ones (with one worker, the read of the next batch overlaps the conversion of this one); at most
    2 batches per worker wait in memory. Errors in a reader are raised here."""
    workers = max(1, min(workers, len(filters)))
    out: queue.Queue[Any] = queue.Queue(maxsize=workers * 2)
    todo: queue.Queue[dict[str, Any]] = queue.Queue()
    for f in filters:
        todo.put(f)
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                try:
                    f = todo.get_nowait()
                except queue.Empty:
                    break
                for batch in read_batches(collection, f, projection, batch_docs):
                    while not stop.is_set():
                        try:
                            out.put(batch, timeout=0.2)
                            break
                        except queue.Full:
                            continue
        except BaseException as exc:  # handed to the consumer
            out.put(exc)
        finally:
            out.put(_DONE)

    threads = [threading.Thread(target=reader, daemon=True, name=f"atlas-reader-{i}") for i in range(workers)]
    for t in threads:
        t.start()
    finished = 0
    try:
        while finished < len(threads):
            item = out.get()
            if item is _DONE:
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
