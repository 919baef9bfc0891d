"""One ingestion run: validate, connect, extract every collection, load, reconcile counts."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dlt
from bson import Timestamp
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.schema import Schema
from dlt.pipeline.exceptions import PipelineStepFailed
from pymongo import MongoClient
from pymongo.errors import ConfigurationError, InvalidURI, OperationFailure, PyMongoError

from ingestion.batches import ColumnRegistry
from ingestion.cdc import CollectionSync, Target, stop_on_signals
from ingestion.change_stream import cluster_time
from ingestion.config import CollectionConfig, collection_config
from ingestion.destinations import DUCKDB_MAX_MEMORY_LIMIT, DestinationConfig, ResolvedDestination, load_within_memory, resolve
from ingestion.errors import ConfigError, DestinationError, IngestError, SourceError
from ingestion.reconcile import DIVERGED, Reconciliation, SourceCount, counted_after, reconcile, source_count
from ingestion.redact import redact_uri
from ingestion.run_history import RunRecord, record_runs
from ingestion.run_lock import RunLock
from ingestion.source import QUARANTINE_TABLE, CollectionStats, collection_resource, quarantine_resource

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,119}$")
_MISMATCH_WARNING = "when merging arrow schema with dlt schema"
log = logging.getLogger("atlas_ingest")


@dataclass
class RunConfig:
    uri: str
    database: str
    collections: list[str]
    destination: DestinationConfig = field(default_factory=DestinationConfig)
    pipelines_dir: Path | None = None
    batch_docs: int = 10_000
    server_timeout_ms: int = 5_000
    overrides: dict[str, Any] = field(default_factory=dict)
    # cdc collections: keep streaming after catching up, loading every `flush_interval_s`
    follow: bool = False
    flush_interval_s: float = 5.0
    resync: bool = False  # cdc: take a new snapshot now, whatever the stored state

    def validate(self) -> list[CollectionConfig]:
        self.destination.validate()
        if not self.collections:
            raise ConfigError("no collections given: pass --collections a,b")
        for name in [self.database, self.destination.dataset, *self.collections]:
            if not _NAME.match(name):
                raise ConfigError(f"invalid name '{name}': use letters, digits, '_', '-' or '.'")
        if self.batch_docs < 1:
            raise ConfigError("--batch-docs must be at least 1")
        if self.flush_interval_s <= 0:
            raise ConfigError("--flush-interval must be more than 0 seconds")
        collections = [collection_config(name, self.overrides) for name in self.collections]
        if self.follow and not any(c.mode == "cdc" for c in collections):
            raise ConfigError("--follow streams changes: it needs --mode cdc")
        if self.resync and not any(c.mode == "cdc" for c in collections):
            raise ConfigError("--resync takes a new CDC snapshot: it needs --mode cdc (a full load already re-reads everything)")
        return collections

    @property
    def pipeline_name(self) -> str:
        return re.sub(r"[^a-z0-9_]", "_", f"atlas_{self.database}_{self.destination.name}".lower())


@dataclass
class TableSummary:
    collection: str
    table: str
    mode: str
    documents_read: int
    rows_loaded: int
    quarantined: int
    new_columns: list[str] = field(default_factory=list)
    variant_columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    first_load: bool = False
    # cdc: documents read by a snapshot, change events applied, deletes among them, resyncs
    snapshot_docs: int = 0
    events: int = 0
    deletes: int = 0
    resyncs: list[str] = field(default_factory=list)
    # cdc runs that only read the stream: inserts and deletes after the count taken before the run
    changed_since_count: int | None = None
    reconciliation: Reconciliation | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("reconciliation", "changed_since_count")}
        r = self.reconciliation
        out["reconciliation"] = None if r is None else {**r.__dict__, "status": r.status}
        return out


@dataclass
class RunSummary:
    pipeline: str
    destination: str
    dataset: str
    load_id: str | None
    elapsed_s: float
    tables: list[TableSummary]
    run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "destination": self.destination,
            "dataset": self.dataset,
            "load_id": self.load_id,
            "run_id": self.run_id,
            "elapsed_s": round(self.elapsed_s, 3),
            "tables": [t.as_dict() for t in self.tables],
        }


def table_name(collection: str) -> str:
    """The warehouse table of a collection: dlt's snake_case naming (`customerEvents` -> `customer_events`)."""
    return NamingConvention().normalize_table_identifier(collection)


class _HideArrowHintMerge(logging.Filter):
    """dlt warns on every batch that our JSON hints override the Arrow string type: that is the intent."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _MISMATCH_WARNING not in record.getMessage()


logging.getLogger("dlt").addFilter(_HideArrowHintMerge())


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
            f"cannot reach MongoDB at {redact_uri(uri)}: check the URI and that the server is running and reachable"
        ) from None
    return client


def _known_kinds(schema: Schema | None, table: str) -> dict[str, str]:
    """Column kinds of a table in the pipeline's stored schema, so type drift is seen across runs."""
    if schema is None:
        return {}
    columns = schema.tables.get(table, {}).get("columns", {})
    return {
        name: col["data_type"] for name, col in columns.items()
        if "data_type" in col and not name.startswith("_dlt") and not name.startswith("_atlas")
    }


def _index_warning(client: MongoClient, database: str, config: CollectionConfig) -> str | None:
    if config.mode != "incremental" or not config.cursor_field:
        return None
    indexes = client[database][config.name].index_information()
    if any(info["key"][0][0] == config.cursor_field for info in indexes.values()):
        return None
    return (
        f"cursor field '{config.cursor_field}' of '{config.name}' has no index: every incremental run scans "
        f"the whole collection; create one with db.{config.name}.createIndex({{{config.cursor_field}: 1}})"
    )


def finish_or_discard_pending(pipeline: dlt.Pipeline, is_sql: bool) -> None:
    """Load what a previous, interrupted run extracted; if that can no longer load (a kill can
    leave dlt's schema bookkeeping and the staging tables out of step), discard it with dlt's
    scratch staging dataset. Safe either way: the cursor in a package only counts once the
    package is loaded, so this run reads again whatever was discarded."""
    if not pipeline.has_pending_data:
        return
    try:
        pipeline.normalize()
        pipeline.load()
    except PipelineStepFailed as exc:
        log.warning(
            "a previous run left a load that cannot complete (%s): discarding it; this run reads again from "
            "the last loaded state", redact_uri(str(exc.exception)).splitlines()[0][:200],
        )
        pipeline.abort_packages()
        if is_sql:
            with pipeline.sql_client() as client, client.with_staging_dataset():
                if client.has_dataset():
                    client.drop_dataset()


_UNREACHABLE = re.compile(r"connection refused|could not connect|timeout expired|timed out|could not translate host name|"
                          r"name or service not known|no route to host|network is unreachable", re.IGNORECASE)
_DENIED = re.compile(
    r"access ?denied|forbidden|\b403\b|invalidaccesskeyid|signaturedoesnotmatch|not authorized|"
    r"access key id you provided does not exist|security token included in the request is invalid|"
    r"signature we calculated does not match", re.IGNORECASE)


def destination_error(exc: PipelineStepFailed, config: RunConfig) -> DestinationError:
    """One line naming the cause and the fix, for the failures users meet most."""
    name = config.destination.name
    detail = " ".join(redact_uri(str(exc.exception)).split())
    if name == "redshift" and _UNREACHABLE.search(detail):
        host = os.environ.get("REDSHIFT_HOST", "the configured host")
        port = os.environ.get("REDSHIFT_PORT", "5439")
        return DestinationError(
            f"cannot reach Redshift at {host}:{port}: check REDSHIFT_HOST and REDSHIFT_PORT, and that the cluster accepts "
            f"connections from this machine (security group, publicly accessible); nothing was loaded ({detail[:200]})"
        )
    if _DENIED.search(detail) and name in ("s3", "redshift"):
        bucket = config.destination.resolved_bucket_url()
        return DestinationError(
            f"S3 access denied for {bucket}: check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID or the instance "
            f"role) and that they may list, read and write {bucket}/{config.destination.prefix}; nothing was loaded ({detail[:200]})"
        )
    if name == "local" and "Out of Memory Error" in detail:
        return DestinationError(
            f"DuckDB ran out of memory loading {config.destination.warehouse}, with its memory_limit raised up to "
            f"{DUCKDB_MAX_MEMORY_LIMIT}: raise ATLAS_DUCKDB_MAX_MEMORY_LIMIT (or start higher with ATLAS_DUCKDB_MEMORY_LIMIT) "
            f"and rerun; this load was discarded ({detail[:200]})"
        )
    if "nosuchbucket" in detail.lower().replace(" ", ""):
        return DestinationError(f"bucket {config.destination.resolved_bucket_url()} does not exist: create it or fix --bucket-url")
    return DestinationError(f"{exc.step} step failed for destination '{name}': {detail[:500]}")


def _followed_tables(config: RunConfig) -> set[str]:
    """Tables with CDC state in the pipeline's local state (nothing if the pipeline is new here)."""
    from dlt.common.pipeline import get_dlt_pipelines_dir

    state_file = Path(config.pipelines_dir or get_dlt_pipelines_dir()) / config.pipeline_name / "state.json"
    if not state_file.exists():
        return set()
    pipeline = dlt.attach(pipeline_name=config.pipeline_name, pipelines_dir=str(state_file.parent.parent))
    return {
        table for source in pipeline.state.get("sources", {}).values()
        for table, resource in source.get("resources", {}).items() if "cdc" in resource
    }


def lock_path(config: RunConfig) -> Path:
    """The run lock of a pipeline, next to its state."""
    from dlt.common.pipeline import get_dlt_pipelines_dir

    return Path(config.pipelines_dir or get_dlt_pipelines_dir()) / f"{config.pipeline_name}.lock"


def run(config: RunConfig) -> RunSummary:
    """Load every configured collection; raises an IngestError subclass on any user-fixable failure.
    One run per pipeline at a time (LockedError otherwise); every run with a valid configuration is
    recorded in `_atlas_runs`: a failed one with its error, a successful one with a reconciliation
    of source and warehouse counts."""
    collections = config.validate()
    target = resolve(config.destination, config.database)
    run_id = uuid.uuid4().hex
    started_at = datetime.now(timezone.utc)
    with RunLock(lock_path(config), config.pipeline_name):
        try:
            return _run(config, collections, target, run_id, started_at)
        except IngestError as exc:
            ended_at = datetime.now(timezone.utc)
            _record(config, target, run_id,
                    [RunRecord(cc.name, started_at, ended_at, "failed", cc.mode, table_name(cc.name), str(exc)) for cc in collections])
            raise


def _run(
    config: RunConfig, collections: list[CollectionConfig], target: ResolvedDestination, run_id: str, started_at: datetime,
) -> RunSummary:
    started = time.monotonic()
    client = connect(config.uri, config.server_timeout_ms)
    try:
        db = client[config.database]
        try:
            existing = set(db.list_collection_names())
        except PyMongoError as exc:
            raise SourceError(f"cannot list collections of '{config.database}': {redact_uri(str(exc))}") from None
        # A CDC collection this pipeline already follows may be gone (dropped or renamed): its
        # change stream says so, and the run makes the table follow. Any other missing name is a typo.
        followed = _followed_tables(config)
        missing = [c.name for c in collections if c.name not in existing and not (c.mode == "cdc" and table_name(c.name) in followed)]
        if missing:
            found = ", ".join(sorted(existing)) or "none"
            raise SourceError(f"collection '{missing[0]}' not found in database '{config.database}' (collections: {found})")
        # Source counts for the reconciliation (a count scans the collection on some servers, so
        # each run counts once where it can):
        # - full, and CDC runs that snapshot or follow: before and after; the count's change bounds
        #   what changed meanwhile;
        # - CDC runs that only read the stream: before, after noting the cluster time (both on the
        #   primary); the inserts and deletes after it, which the run applies anyway, bound what changed;
        # - incremental: after; the cursor bounds what changed.
        cdc_count_time = cluster_time(client) if any(cc.mode == "cdc" for cc in collections) else None
        counts_before = {cc.name: None if cc.mode == "incremental" else source_count(db[cc.name], cc) for cc in collections}

        dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
        if target.is_sql:
            # Replace loads go to a staging dataset first and swap in one transaction: a failed
            # run leaves the previous table intact.
            dlt.config["destination.replace_strategy"] = "insert-from-staging"
        pipeline = dlt.pipeline(
            pipeline_name=config.pipeline_name,
            destination=target.destination,
            staging=target.staging,
            dataset_name=target.dataset,
            pipelines_dir=str(config.pipelines_dir) if config.pipelines_dir else None,
        )

        try:
            finish_or_discard_pending(pipeline, target.is_sql)
            stored = pipeline.default_schema if pipeline.default_schema_name else None
            batch_collections = [cc for cc in collections if cc.mode != "cdc"]
            cdc_collections = [cc for cc in collections if cc.mode == "cdc"]
            tables = _load_batch(client, config, pipeline, target, batch_collections, stored, counts_before) if batch_collections else []
            if cdc_collections:
                tables += _sync_cdc(client, config, pipeline, target, cdc_collections, stored, counts_before, cdc_count_time)
        except (IngestError, PipelineStepFailed) as exc:
            # A load that failed is aborted: dlt restores the state it had before this run, so no
            # cursor, checkpoint or token moves past rows that are not in the warehouse.
            if pipeline.has_pending_data:
                pipeline.abort_packages()
            if isinstance(exc, PipelineStepFailed):
                raise destination_error(exc, config) from None
            raise
        trace = pipeline.last_trace
        load_id = trace.last_load_info.loads_ids[-1] if trace and trace.last_load_info and trace.last_load_info.loads_ids else None
        by_name = {cc.name: cc for cc in collections}
        for t in tables:
            reconcile_started = time.monotonic()
            cc, coll = by_name[t.collection], db[t.collection]
            if cc.mode == "incremental":
                counted = SourceCount(source_count(coll, cc))
            elif t.changed_since_count is not None:
                counted = SourceCount(counts_before[t.collection], t.changed_since_count)
            else:
                counted = counted_after(coll, cc, counts_before[t.collection])
            if target.is_sql:
                t.reconciliation = reconcile(coll, cc, t.table, pipeline, counted, started_at)
            else:
                t.reconciliation = Reconciliation(source_count=counted.count)
            t.reconciliation.elapsed_s = time.monotonic() - reconcile_started
            if t.reconciliation.status == DIVERGED:
                t.warnings.append(f"reconciliation: the warehouse differs from the source ({t.reconciliation.describe()})")
                log.warning("collection '%s': %s", t.collection, t.warnings[-1])
        ended_at = datetime.now(timezone.utc)
        records = [_run_record(t, started_at, ended_at) for t in tables]
        _record(config, target, run_id, records)
        for rec in records:  # for schedulers reading --log-format json
            log.info("run %s: collection '%s' %s", run_id, rec.collection, rec.status,
                     extra={"fields": {"run_id": run_id, "collection": rec.collection, "status": rec.status,
                                       **{k: v for k, v in rec.values.items() if v is not None}}})
    finally:
        client.close()
    return RunSummary(config.pipeline_name, config.destination.name, target.dataset, load_id, time.monotonic() - started,
                      tables, run_id)


def _record(config: RunConfig, target: ResolvedDestination, run_id: str, records: list[RunRecord]) -> None:
    record_runs(target.destination, target.staging, target.dataset, config.pipeline_name, config.pipelines_dir, run_id,
                config.destination.name, records)


def _run_record(t: "TableSummary", started_at: datetime, ended_at: datetime) -> RunRecord:
    r = t.reconciliation
    values: dict[str, Any] = {
        "documents_read": t.documents_read, "rows_loaded": t.rows_loaded, "quarantined": t.quarantined,
        "new_columns": ",".join(t.new_columns) if not t.first_load else None,
        "variant_columns": ",".join(t.variant_columns) or None,
        "snapshot_docs": t.snapshot_docs, "change_events": t.events, "deletes": t.deletes,
        "resyncs": "; ".join(t.resyncs) or None,
    }
    if r is not None:
        values.update(source_count=r.source_count, warehouse_count=r.warehouse_count, live_rows_only=r.live_rows_only,
                      quarantined_missing=r.quarantined_missing,
                      changed_during_run=r.changed_during_run, sample_size=r.sample_size,
                      sample_mismatches=r.sample_mismatches, reconciliation=r.status)
    return RunRecord(t.collection, started_at, ended_at, "succeeded", t.mode, t.table, None, values)


def _load_batch(
    client: MongoClient, config: RunConfig, pipeline: dlt.Pipeline, target: ResolvedDestination,
    collections: list[CollectionConfig], stored: Schema | None, counts: dict[str, int | None],
) -> list[TableSummary]:
    """Full and incremental collections: one load for all of them."""
    stats: dict[str, CollectionStats] = {}
    first_load: dict[str, bool] = {}
    warnings: dict[str, list[str]] = {}
    resources = []
    for cc in collections:
        table = table_name(cc.name)
        s = stats[cc.name] = CollectionStats()
        s.expected = counts[cc.name]
        s.registry.kinds.update(_known_kinds(stored, table))
        first_load[cc.name] = not s.registry.kinds
        warnings[cc.name] = [w for w in [_index_warning(client, config.database, cc)] if w]
        for w in warnings[cc.name]:
            log.warning(w)
        resources.append(collection_resource(
            client, config.database, cc, table, s, target.item_format, config.batch_docs, target.max_row_bytes,
        ))
    resources.append(quarantine_resource(stats))
    # fifo: each collection is extracted whole, in order, and the quarantine last.
    dlt.config["extract.next_item_mode"] = "fifo"
    try:
        load_within_memory(pipeline, target, lambda: pipeline.run(resources, loader_file_format=target.loader_file_format))
    except PipelineStepFailed as exc:
        raise destination_error(exc, config) from None
    trace = pipeline.last_trace
    row_counts = trace.last_normalize_info.row_counts if trace and trace.last_normalize_info else {}
    tables = []
    for cc in collections:
        table, s = table_name(cc.name), stats[cc.name]
        # Imported jsonl files are not re-counted by dlt's normalizer: their rows were counted as written.
        loaded = s.rows_written if target.item_format == "jsonl" else row_counts.get(table, 0)
        if s.documents_read != loaded + len(s.quarantine):
            raise IngestError(
                f"collection '{cc.name}': read {s.documents_read} documents but loaded {loaded} rows "
                f"and quarantined {len(s.quarantine)}"
            )
        tables.append(TableSummary(
            cc.name, table, cc.mode, s.documents_read, loaded, len(s.quarantine),
            s.registry.new_columns, s.registry.variant_columns, warnings[cc.name], first_load[cc.name],
        ))
    return tables


def _sync_cdc(
    client: MongoClient, config: RunConfig, pipeline: dlt.Pipeline, target: ResolvedDestination,
    collections: list[CollectionConfig], stored: Schema | None, counts: dict[str, int | None], count_time: Timestamp | None,
) -> list[TableSummary]:
    """CDC collections: each brought up to the cluster time at the start of the run, in
    checkpointed loads; with `follow`, then kept streaming until SIGTERM or SIGINT."""
    run_start = cluster_time(client)
    pipeline.sync_destination()  # the CDC state may only exist in the destination (a new machine)
    cdc_target = Target(pipeline, target, land_events=config.destination.name == "s3")
    syncs: list[tuple[CollectionConfig, CollectionSync]] = []
    try:
        for cc in collections:
            table = table_name(cc.name)
            registry = ColumnRegistry()
            registry.kinds.update(_known_kinds(stored, table))
            sync = CollectionSync(client, config.database, cc, table, registry, cdc_target, config.batch_docs)
            sync.expected = counts[cc.name]
            sync.count_time = count_time
            syncs.append((cc, sync))
            sync.sync(run_start, config.resync)
        if config.follow:
            stop = stop_on_signals()
            log.info("following changes of %s; stop with Ctrl-C or SIGTERM", ", ".join(cc.name for cc in collections))
            while not stop():
                for _, sync in syncs:
                    sync.follow_step(config.flush_interval_s)
            for _, sync in syncs:
                if sync.pending:
                    sync.flush()
    except PipelineStepFailed as exc:
        raise destination_error(exc, config) from None
    finally:
        for _, sync in syncs:
            sync.close()
    tables = []
    for cc, sync in syncs:
        out, s = sync.outcome, sync.outcome.stats
        if s.documents_read != s.rows_written + len(s.quarantine):
            raise IngestError(
                f"collection '{cc.name}': produced {s.documents_read} rows but loaded {s.rows_written} "
                f"and quarantined {len(s.quarantine)}"
            )
        tables.append(TableSummary(
            cc.name, sync.table, cc.mode, out.snapshot_docs + out.events, s.rows_written, len(s.quarantine),
            s.registry.new_columns, s.registry.variant_columns, [], not stored or sync.table not in stored.tables,
            snapshot_docs=out.snapshot_docs, events=out.events, deletes=out.deletes, resyncs=out.resyncs,
            changed_since_count=None if out.snapshot_taken or config.follow else out.events_since_count,
        ))
    return tables


__all__ = ["QUARANTINE_TABLE", "RunConfig", "RunSummary", "TableSummary", "connect", "run", "table_name"]
