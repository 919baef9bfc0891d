"""One ingestion run: validate, connect, extract every collection, load, reconcile counts."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.schema import Schema
from dlt.pipeline.exceptions import PipelineStepFailed
from pymongo import MongoClient
from pymongo.errors import ConfigurationError, InvalidURI, OperationFailure, PyMongoError

from ingestion.destinations import DEFAULT_WAREHOUSE, DESTINATIONS, build_destination, loader_file_format
from ingestion.errors import ConfigError, DestinationError, IngestError, SourceError
from ingestion.redact import redact_uri
from ingestion.source import CollectionSpec, ExtractStats, collection_resource

DEFAULT_DATASET = "raw_atlas"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,119}$")
_MISMATCH_WARNING = "when merging arrow schema with dlt schema"


@dataclass
class RunConfig:
    uri: str
    database: str
    collections: list[str]
    destination: str = "local"
    warehouse: Path = DEFAULT_WAREHOUSE
    dataset: str = DEFAULT_DATASET
    pipelines_dir: Path | None = None
    batch_docs: int = 10_000
    server_timeout_ms: int = 5_000

    def validate(self) -> None:
        if self.destination not in DESTINATIONS:
            raise ConfigError(
                f"unknown destination '{self.destination}': choose one of {', '.join(DESTINATIONS)}"
            )
        if not self.collections:
            raise ConfigError("no collections given: pass --collections a,b")
        for name in [self.database, self.dataset, *self.collections]:
            if not _NAME.match(name):
                raise ConfigError(f"invalid name '{name}': use letters, digits, '_', '-' or '.'")
        if self.batch_docs < 1:
            raise ConfigError("--batch-docs must be at least 1")

    @property
    def pipeline_name(self) -> str:
        return f"atlas_{self.database}_{self.destination}".replace(".", "_").replace("-", "_")


@dataclass
class TableSummary:
    collection: str
    table: str
    documents_read: int
    rows_loaded: int
    new_columns: list[str] = field(default_factory=list)
    variant_columns: list[str] = field(default_factory=list)


@dataclass
class RunSummary:
    pipeline: str
    destination: str
    dataset: str
    elapsed_s: float
    tables: list[TableSummary]

    def as_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "destination": self.destination,
            "dataset": self.dataset,
            "elapsed_s": round(self.elapsed_s, 3),
            "tables": [t.__dict__ for t in self.tables],
        }


def table_name(collection: str) -> str:
    """The warehouse table of a collection: dlt's snake_case naming (`customerEvents` -> `customer_events`)."""
    return NamingConvention().normalize_table_identifier(collection)


class _HideArrowHintMerge(logging.Filter):
    """dlt warns on every batch that our JSON hints override the Arrow string type: that is the intent."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _MISMATCH_WARNING not in record.getMessage()


def connect(uri: str, timeout_ms: int = 5_000) -> MongoClient:
    """A client that has answered `ping`, or a SourceError/ConfigError naming the cause."""
    # A timeout written in the URI wins over the default.
    options = {} if "serverselectiontimeoutms" in uri.lower() else {"serverSelectionTimeoutMS": timeout_ms}
    try:
        client: MongoClient = MongoClient(uri, appname="atlas-ingest", **options)
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        raise ConfigError(f"invalid MongoDB URI {redact_uri(uri)}: {redact_uri(str(exc))}") from None
    try:
        client.admin.command("ping")
    except OperationFailure as exc:
        client.close()
        if exc.code == 18:
            raise SourceError(f"authentication failed for {redact_uri(uri)}: check the user and password") from None
        raise SourceError(f"MongoDB at {redact_uri(uri)} refused ping: {exc.details and exc.details.get('errmsg')}") from None
    except PyMongoError:
        client.close()
        raise SourceError(
            f"cannot reach MongoDB at {redact_uri(uri)}: "
            "check the URI and that the server is running and reachable"
        ) from None
    return client


def _known_kinds(schema: Schema | None, table: str) -> dict[str, str]:
    """Column kinds of a table in the pipeline's stored schema, so type drift is seen across runs."""
    if schema is None:
        return {}
    columns = schema.tables.get(table, {}).get("columns", {})
    return {name: col["data_type"] for name, col in columns.items() if "data_type" in col and not name.startswith("_dlt")}


def run(config: RunConfig) -> RunSummary:
    """Load every configured collection; raises an IngestError subclass on any user-fixable failure."""
    config.validate()
    started = time.monotonic()
    client = connect(config.uri, config.server_timeout_ms)
    try:
        db = client[config.database]
        try:
            existing = set(db.list_collection_names())
        except PyMongoError as exc:
            raise SourceError(f"cannot list collections of '{config.database}': {redact_uri(str(exc))}") from None
        missing = [c for c in config.collections if c not in existing]
        if missing:
            found = ", ".join(sorted(existing)) or "none"
            raise SourceError(
                f"collection '{missing[0]}' not found in database '{config.database}' (collections: {found})"
            )

        logging.getLogger("dlt").addFilter(_HideArrowHintMerge())
        dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
        # Replace loads go to a staging dataset first and swap in one transaction: a failed
        # run leaves the previous table intact.
        dlt.config["destination.replace_strategy"] = "insert-from-staging"
        pipeline = dlt.pipeline(
            pipeline_name=config.pipeline_name,
            destination=build_destination(config.destination, config.warehouse),
            dataset_name=config.dataset,
            pipelines_dir=str(config.pipelines_dir) if config.pipelines_dir else None,
        )
        stats = ExtractStats()
        stored = pipeline.default_schema if pipeline.default_schema_name else None
        resources = [
            collection_resource(
                client, config.database, CollectionSpec(name), stats,
                known_kinds=_known_kinds(stored, table_name(name)), batch_docs=config.batch_docs,
            )
            for name in config.collections
        ]
        try:
            pipeline.run(resources, loader_file_format=loader_file_format(config.destination))
        except PipelineStepFailed as exc:
            raise DestinationError(
                f"{exc.step} step failed for destination '{config.destination}': {redact_uri(str(exc.exception))}"
            ) from None
        row_counts = pipeline.last_trace.last_normalize_info.row_counts
        tables = []
        for name in config.collections:
            table = table_name(name)
            registry = stats.registries[name]
            read = stats.documents_read.get(name, 0)
            loaded = row_counts.get(table, 0)
            if read != loaded:
                raise IngestError(f"collection '{name}': read {read} documents but loaded {loaded} rows")
            tables.append(TableSummary(name, table, read, loaded, registry.new_columns, registry.variant_columns))
    finally:
        client.close()
    return RunSummary(config.pipeline_name, config.destination, config.dataset, time.monotonic() - started, tables)
