"""Fill a collection with generated documents (replacing what it held), in bounded chunks."""

from __future__ import annotations

from itertools import islice

from pymongo import ASCENDING, MongoClient

from ingestion.local.generator import generate_documents

DEFAULT_DATABASE = "operations"
DEFAULT_COLLECTION = "customer_activity"


def seed_collection(
    client: MongoClient, docs: int, seed: int = 42, database: str = DEFAULT_DATABASE,
    collection: str = DEFAULT_COLLECTION, chunk: int = 5_000,
) -> int:
    """Drop and refill `database.collection` with documents 0..docs-1 of `seed`; returns the count."""
    coll = client[database][collection]
    coll.drop()
    it = generate_documents(docs, seed)
    inserted = 0
    while batch := list(islice(it, chunk)):
        coll.insert_many(batch, ordered=False)
        inserted += len(batch)
    # The incremental cursor field: range queries on it must use an index.
    coll.create_index([("updated_at", ASCENDING)])
    return inserted
