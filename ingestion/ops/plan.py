"""A run's plan, before anything is read: validated settings, the destination, the lock, and the
checks on the source that can refuse the run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import dlt
from dlt.common.pipeline import get_dlt_pipelines_dir
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from ingestion.config import CollectionConfig, RunConfig, collection_selection
from ingestion.disk import writable_directory
from ingestion.errors import ConfigError, SourceError
from ingestion.faults import check_fault_point
from ingestion.load.destinations import ResolvedDestination, resolve
from ingestion.load.warehouse_lock import lock_wait_s
from ingestion.mongo.connect import collection_names
from ingestion.naming import check_table_names, table_name
from ingestion.redact import redact


@dataclass
class Plan:
    config: RunConfig
    collections: list[CollectionConfig]
    target: ResolvedDestination
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def pipelines_dir(self) -> Path:
        return Path(self.config.pipelines_dir or get_dlt_pipelines_dir())

    @property
    def lock_path(self) -> Path:
        """The run lock of a pipeline, next to its state."""
        return self.pipelines_dir / f"{self.config.pipeline_name}.lock"


def plan(config: RunConfig) -> Plan:
    """Validated settings and the resolved destination; raises ConfigError for what the user must fix."""
    collections = config.validate()
    target = resolve(config.destination, config.database)
    if not target.is_sql:
        refused = next((cc.name for cc in collections if cc.detect_deletes), None)
        if refused:
            raise ConfigError(f"collection '{refused}': detect_deletes removes rows from warehouse tables; the landing "
                              "zone keeps every version landed (use --mode cdc there: deletes land as versions)")
    check_fault_point()
    if config.destination.name == "local":
        lock_wait_s()  # validated before the run starts
    the_plan = Plan(config, collections, target)
    writable_directory(the_plan.pipelines_dir, "--pipelines-dir")
    if config.schema_dir is not None:
        writable_directory(config.schema_dir, "--schema-dir")
    return the_plan


def followed_tables(pipeline: dlt.Pipeline) -> set[str]:
    """Tables with CDC state in the pipeline's state (restored from the destination first)."""
    return {
        table for source in pipeline.state.get("sources", {}).values()
        for table, resource in source.get("resources", {}).items() if "cdc" in resource
    }


def select_collections(client: MongoClient, plan: Plan) -> None:
    """A run without `--collections` loads every collection of the database (no views, no
    `system.*`) that the `include` / `exclude` patterns of `[sources.atlas]` select. Then no two
    collections may map to one table."""
    if plan.config.collections is None:
        selection = collection_selection()
        names = [n for n in collection_names(client[plan.config.database]) if selection.selects(n)]
        if not names:
            raise SourceError(f"database '{plan.config.database}' has no collection to load (views and system.* are "
                              "never loaded; check include / exclude in [sources.atlas] of .dlt/config.toml)")
        plan.collections = plan.config.collection_configs(names)
    check_table_names(plan.config.database, [c.name for c in plan.collections])


def check_collections_exist(client: MongoClient, plan: Plan, followed: set[str]) -> None:
    """Every named collection exists. A CDC collection this pipeline already follows may be gone
    (dropped or renamed): its change stream says so, and the run makes the table follow. Any other
    missing name is a typo."""
    database = plan.config.database
    try:
        existing = set(client[database].list_collection_names())  # views too: a named view can be read
    except PyMongoError as exc:
        raise SourceError(f"cannot list collections of '{database}': {redact(str(exc))}") from None
    missing = [c.name for c in plan.collections
               if c.name not in existing and not (c.mode == "cdc" and table_name(c.name) in followed)]
    if missing:
        found = ", ".join(sorted(existing)) or "none"
        raise SourceError(f"collection '{missing[0]}' not found in database '{database}' (collections: {found})")


def index_warning(client: MongoClient, database: str, config: CollectionConfig) -> str | None:
    """A warning when an incremental cursor has no index: every run would scan the collection."""
    if config.mode != "incremental" or not config.cursor_field:
        return None
    indexes = client[database][config.name].index_information()
    if any(info["key"][0][0] == config.cursor_field for info in indexes.values()):
        return None
    return (
        f"cursor field '{config.cursor_field}' of '{config.name}' has no index: every incremental run scans "
        f"the whole collection; create one with db.{config.name}.createIndex({{{config.cursor_field}: 1}})"
    )
