"""`atlas_source`: the collections of one MongoDB database as a dlt source, one resource each.

Usable from any dlt pipeline (and so from dagster-dlt's `@dlt_assets`):

    pipeline = dlt.pipeline("atlas", destination="duckdb", dataset_name="raw_atlas")
    pipeline.run(atlas_source(database="sample_supplies", collections=["sales"]))

The connection URL comes from `sources.atlas.connection_url` in `.dlt/secrets.toml` (or
SOURCES__ATLAS__CONNECTION_URL); each collection's settings from `[sources.atlas.collections.<name>]`.
`atlas-ingest run` builds its full and incremental loads on this function too. CDC collections
are not resources of it: a CDC sync is a series of checkpointed loads (`ingestion.cdc`).
"""

from __future__ import annotations

from typing import Any, Sequence

import dlt
from dlt.extract.resource import DltResource

from ingestion.config import CollectionConfig, collection_config
from ingestion.errors import ConfigError
from ingestion.mongo.connect import collection_names, connect
from ingestion.naming import check_table_names, table_name
from ingestion.schema.discovery import DEFAULT_SAMPLE_SIZE
from ingestion.source.batches import RowLimits
from ingestion.source.resources import CollectionStats, ItemFormat, collection_resource


@dlt.source(name="atlas", section="atlas", max_table_nesting=0)
def atlas_source(
    connection_url: str | None = dlt.secrets.value,
    database: str = dlt.config.value,
    collections: Sequence[str] | None = None,
    batch_docs: int = 10_000,
    item_format: str = "arrow",
    limits: RowLimits | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    client: Any = None,
    stats: dict[str, CollectionStats] | None = None,
    collection_configs: Sequence[CollectionConfig] | None = None,
) -> list[DltResource]:
    """One resource per collection of `database` (all of them, views and `system.*` excluded, when
    `collections` is None), each named after its warehouse table.

    `client` (an already connected MongoClient) replaces `connection_url`; `stats`, filled while the
    resources run, receives per-collection counts and quarantined documents (pre-filled entries
    carry column kinds already in the warehouse); `collection_configs` replaces the settings read
    from dlt's config. `item_format` "jsonl" yields gzip JSON-lines files (for Redshift COPY and
    the S3 jsonl landing zone), "arrow" Arrow tables. Each resource first discovers its
    collection's schema from a sample of `sample_size` documents (0: none), so that numbers of
    mixed BSON types share one column from the first load. `limits` (`REDSHIFT_LIMITS` for a
    Redshift pipeline) quarantines, before the load, documents the destination would refuse.
    """
    if item_format not in ("arrow", "jsonl"):
        raise ConfigError(f"item_format must be 'arrow' or 'jsonl' (got '{item_format}')")
    if client is None and not connection_url:
        raise ConfigError("no MongoDB URI: set sources.atlas.connection_url in .dlt/secrets.toml "
                          "(or SOURCES__ATLAS__CONNECTION_URL), or pass connection_url=")
    mongo = client if client is not None else connect(connection_url)
    configs = list(collection_configs) if collection_configs is not None else [
        collection_config(name) for name in (collections if collections is not None else collection_names(mongo[database]))
    ]
    cdc = [c.name for c in configs if c.mode == "cdc"]
    if cdc:
        raise ConfigError(f"collection '{cdc[0]}' is in cdc mode: CDC runs through `atlas-ingest run`, not as a dlt resource")
    check_table_names(database, [c.name for c in configs])
    stats = stats if stats is not None else {}
    format_: ItemFormat = "jsonl" if item_format == "jsonl" else "arrow"
    return [
        collection_resource(mongo, database, config, table_name(config.name), stats.setdefault(config.name, CollectionStats()),
                            format_, batch_docs, limits, sample_size)
        for config in configs
    ]
