"""What a run is asked to do: the run, its destination, and each collection's extraction settings
(`.dlt/config.toml` first, CLI flags over it). Plain data, validated here; nothing connects."""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Mapping

import dlt

from ingestion.errors import ConfigError
from ingestion.naming import pipeline_name, validate_name
from ingestion.schema.discovery import DEFAULT_SAMPLE_SIZE

Mode = Literal["full", "incremental", "cdc"]
MODES: tuple[str, ...] = ("full", "incremental", "cdc")
DELETES: tuple[str, ...] = ("hard", "soft")
ON_TOKEN_LOST: tuple[str, ...] = ("resync", "fail")
WRITE_DISPOSITIONS = ("replace", "merge", "append")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class CollectionConfig:
    """How one collection is extracted.

    In `.dlt/config.toml`:

        [sources.atlas.collections.customer_activity]
        mode = "incremental"
        cursor_field = "updated_at"
        filter = '{"status": {"$ne": "test"}}'
        projection = '{"internal_notes": 0}'
        workers = 4
        lookback_seconds = 60        # re-read a minute before the last cursor value
        detect_deletes = true        # after each run, remove rows whose document is gone (_id-only read)

        [sources.atlas.collections.orders]
        mode = "cdc"                 # snapshot, then the change stream
        deletes = "soft"             # keep deleted rows with _deleted_at (default: hard; also for detect_deletes)
        on_token_lost = "fail"       # default: resync
        checkpoint_docs = 50000      # documents or change events per load
    """

    name: str
    mode: Mode = "full"
    cursor_field: str | None = None
    primary_key: str = "_id"
    filter: dict[str, Any] = field(default_factory=dict)
    projection: dict[str, Any] | None = None
    write_disposition: str | None = None
    workers: int = 1
    # Re-read this many seconds before the last cursor value: for writers whose clocks disagree,
    # or whose commits land out of cursor order. Re-read documents are merged, not duplicated.
    lookback_seconds: float = 0.0
    # incremental: after the load, read every `_id` of the source (only the `_id` index) and remove
    # (deletes = "hard") or date (deletes = "soft") the rows whose document is gone.
    detect_deletes: bool = False
    # cdc: how a delete lands, what to do when the stored resume token has left the oplog, and
    # how many documents (snapshot) or change events (stream) each checkpointed load holds.
    deletes: str = "hard"
    on_token_lost: str = "resync"
    checkpoint_docs: int = 50_000

    @property
    def sees_deletes(self) -> bool:
        """Whether a run of this collection removes rows whose document was deleted: full loads
        replace the table, CDC reads deletes from the stream, incremental ones only with
        detect_deletes; an appended table keeps every row it was given."""
        if self.disposition == "append":
            return False
        return self.mode != "incremental" or self.detect_deletes

    @property
    def disposition(self) -> str:
        """replace for full loads, merge on `_id` for incremental and cdc ones, unless set explicitly."""
        return self.write_disposition or ("replace" if self.mode == "full" else "merge")

    def validate(self) -> "CollectionConfig":
        where = f"collection '{self.name}'"
        if self.mode not in MODES:
            raise ConfigError(f"{where}: unknown mode '{self.mode}': choose one of {', '.join(MODES)}")
        if self.mode == "incremental" and not self.cursor_field:
            raise ConfigError(f"{where}: incremental mode needs a cursor field (--cursor-field updated_at)")
        if self.cursor_field and not _FIELD.match(self.cursor_field):
            raise ConfigError(f"{where}: invalid cursor field '{self.cursor_field}'")
        if self.primary_key != "_id":
            raise ConfigError(f"{where}: the primary key is always _id (got '{self.primary_key}')")
        if self.write_disposition is not None and self.write_disposition not in WRITE_DISPOSITIONS:
            raise ConfigError(f"{where}: unknown write disposition '{self.write_disposition}': choose one of {', '.join(WRITE_DISPOSITIONS)}")
        if self.workers < 1 or self.workers > 64:
            raise ConfigError(f"{where}: workers must be between 1 and 64")
        if self.lookback_seconds < 0:
            raise ConfigError(f"{where}: lookback_seconds must be zero or more")
        if self.deletes not in DELETES:
            raise ConfigError(f"{where}: unknown deletes '{self.deletes}': choose one of {', '.join(DELETES)}")
        if self.on_token_lost not in ON_TOKEN_LOST:
            raise ConfigError(f"{where}: unknown on_token_lost '{self.on_token_lost}': choose one of {', '.join(ON_TOKEN_LOST)}")
        javascript = _server_javascript(self.filter)
        if javascript:
            raise ConfigError(f"{where}: the filter uses {javascript}, which runs JavaScript on the server (disabled on "
                              "many clusters, and slow): express it with query operators")
        kept = {key for key, value in (self.projection or {}).items() if key != "_id" and value not in (0, False)}
        dropped = {key for key, value in (self.projection or {}).items() if key != "_id" and value in (0, False)}
        if kept and dropped:
            raise ConfigError(f"{where}: the projection both keeps ({', '.join(sorted(kept))}) and drops "
                              f"({', '.join(sorted(dropped))}) fields: MongoDB takes one or the other")
        if self.projection and any(key == "_id" and value in (0, False) for key, value in self.projection.items()):
            raise ConfigError(f"{where}: the projection drops _id, which every row is keyed on: remove \"_id\": 0 from it")
        if self.detect_deletes and self.mode != "incremental":
            raise ConfigError(f"{where}: detect_deletes is for incremental mode (full loads replace the table, cdc "
                              "reads deletes from the change stream): drop it")
        if self.detect_deletes and self.disposition == "append":
            raise ConfigError(f"{where}: detect_deletes removes rows from a merged table: drop write_disposition 'append'")
        if self.checkpoint_docs < 1:
            raise ConfigError(f"{where}: checkpoint_docs must be at least 1")
        if self.mode == "cdc" and self.write_disposition not in (None, "merge"):
            raise ConfigError(f"{where}: cdc mode merges on _id: drop write_disposition '{self.write_disposition}'")
        if self.mode == "cdc" and self.filter:
            raise ConfigError(f"{where}: cdc mode mirrors the whole collection: drop the filter and filter in a dbt model")
        if self.mode == "cdc" and self.projection and any(v not in (0, False) for v in self.projection.values()):
            raise ConfigError(f"{where}: cdc mode takes exclusion projections only (e.g. {{\"internal_notes\": 0}})")
        if self.mode == "cdc" and self.workers > 1:
            raise ConfigError(f"{where}: a cdc snapshot reads in _id order with one reader: drop workers = {self.workers}")
        return self


def mongodb_uri(given: str | None) -> str:
    """The MongoDB URI: `--uri` (or `$ATLAS_URI`, its default), else dlt's secret
    `sources.atlas.connection_url` (`.dlt/secrets.toml`, or `SOURCES__ATLAS__CONNECTION_URL`),
    the one the dlt source reads."""
    uri = given or dlt.secrets.get("sources.atlas.connection_url")
    if not uri:
        raise ConfigError("no MongoDB URI: pass --uri, set ATLAS_URI, or set connection_url under [sources.atlas] "
                          "in .dlt/secrets.toml")
    return str(uri)


def parse_json_object(text: str | Mapping[str, Any] | None, what: str) -> dict[str, Any] | None:
    """A filter or projection given as JSON text (CLI, toml string) or as a toml table."""
    if text is None or text == "":
        return None
    if isinstance(text, Mapping):
        return dict(text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what} is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a JSON object")
    return value


def _server_javascript(query: Any) -> str | None:
    """The first operator in a query that runs JavaScript on the server, if any."""
    if isinstance(query, dict):
        for key, value in query.items():
            if key in ("$where", "$function", "$accumulator"):
                return key
            found = _server_javascript(value)
            if found:
                return found
    elif isinstance(query, list):
        for value in query:
            found = _server_javascript(value)
            if found:
                return found
    return None


MAX_LOOKBACK_SECONDS = 366 * 24 * 3600  # a year; beyond it a lookback re-reads about everything anyway


def _whole_number(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ConfigError(f"{what} must be a whole number (got {value!r})")


def _seconds(value: Any, what: str) -> float:
    try:
        seconds = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_LOOKBACK_SECONDS:
        raise ConfigError(f"{what} must be a number of seconds from 0 to {MAX_LOOKBACK_SECONDS:,} (got {value!r})")
    return seconds


def _flag(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{what} must be true or false (got {value!r})")


def collection_config(name: str, overrides: Mapping[str, Any] | None = None) -> CollectionConfig:
    """Settings for `name` from `sources.atlas.collections.<name>` in dlt's config, then `overrides`."""
    stored = dlt.config.get(f"sources.atlas.collections.{name}") or {}
    if not isinstance(stored, Mapping):
        raise ConfigError(f"sources.atlas.collections.{name} in .dlt/config.toml must be a table")
    merged = {**stored, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    unknown = set(merged) - {
        "mode", "cursor_field", "primary_key", "filter", "projection", "write_disposition", "workers", "lookback_seconds",
        "deletes", "on_token_lost", "checkpoint_docs", "detect_deletes",
    }
    if unknown:
        raise ConfigError(f"collection '{name}': unknown setting(s) {', '.join(sorted(unknown))}")
    config = CollectionConfig(name=name)
    config = replace(
        config,
        mode=merged.get("mode", config.mode),
        cursor_field=merged.get("cursor_field", config.cursor_field),
        primary_key=merged.get("primary_key", config.primary_key),
        filter=parse_json_object(merged.get("filter"), f"filter of '{name}'") or {},
        projection=parse_json_object(merged.get("projection"), f"projection of '{name}'"),
        write_disposition=merged.get("write_disposition"),
        workers=_whole_number(merged.get("workers", config.workers), f"workers of '{name}'"),
        lookback_seconds=_seconds(merged.get("lookback_seconds", config.lookback_seconds), f"lookback_seconds of '{name}'"),
        deletes=merged.get("deletes", config.deletes),
        detect_deletes=_flag(merged.get("detect_deletes", config.detect_deletes), f"detect_deletes of '{name}'"),
        on_token_lost=merged.get("on_token_lost", config.on_token_lost),
        checkpoint_docs=_whole_number(merged.get("checkpoint_docs", config.checkpoint_docs), f"checkpoint_docs of '{name}'"),
    )
    return config.validate()


DESTINATIONS = ("local", "s3", "redshift")
FILE_FORMATS = ("jsonl", "parquet")
DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")


@dataclass(frozen=True)
class DestinationConfig:
    name: str = "local"
    warehouse: Path = DEFAULT_WAREHOUSE
    dataset: str = "raw_atlas"
    bucket_url: str | None = None
    prefix: str = "atlas"
    file_format: Literal["jsonl", "parquet"] = "jsonl"

    def validate(self) -> "DestinationConfig":
        if self.name not in DESTINATIONS:
            raise ConfigError(f"unknown destination '{self.name}': choose one of {', '.join(DESTINATIONS)}")
        if self.file_format not in FILE_FORMATS:
            raise ConfigError(f"unknown file format '{self.file_format}': choose one of {', '.join(FILE_FORMATS)}")
        if self.name in ("s3", "redshift") and not self.resolved_bucket_url():
            flag = "--bucket-url" if self.name == "s3" else "--bucket-url (the S3 staging location)"
            raise ConfigError(f"destination '{self.name}' needs {flag} or ATLAS_BUCKET_URL")
        if self.name == "redshift" and not self.resolved_bucket_url().startswith("s3://"):
            raise ConfigError("Redshift COPY loads only from S3: --bucket-url must start with s3://")
        return self

    def resolved_bucket_url(self) -> str:
        return (self.bucket_url or os.environ.get("ATLAS_BUCKET_URL") or "").rstrip("/")


@dataclass(frozen=True)
class CollectionSelection:
    """Which collections a run without `--collections` loads: every collection of the database
    (views and `system.*` never) whose name matches an `include` pattern and no `exclude` one.

        [sources.atlas]
        include = ["*"]                  # shell-style patterns (default: every collection)
        exclude = ["tmp_*", "*_backup"]
    """

    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()

    def selects(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.include) and not any(fnmatch.fnmatchcase(name, p) for p in self.exclude)


def _patterns(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [p.strip() for p in value.split(",") if p.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(p, str) and p for p in value):
        raise ConfigError(f"sources.atlas.{key} in .dlt/config.toml must be a list of name patterns, e.g. [\"tmp_*\"]")
    return tuple(value)


def collection_selection() -> CollectionSelection:
    """`include` and `exclude` from `[sources.atlas]` in dlt's config."""
    include, exclude = dlt.config.get("sources.atlas.include"), dlt.config.get("sources.atlas.exclude")
    return CollectionSelection(
        include=_patterns(include, "include") if include is not None else ("*",),
        exclude=_patterns(exclude, "exclude") if exclude is not None else (),
    )


@dataclass
class RunConfig:
    uri: str
    database: str
    collections: list[str] | None = None  # None: every collection the selection picks
    destination: DestinationConfig = field(default_factory=DestinationConfig)
    pipelines_dir: Path | None = None
    batch_docs: int = 10_000
    server_timeout_ms: int = 5_000
    overrides: dict[str, Any] = field(default_factory=dict)
    # cdc collections: keep streaming after catching up, loading every `flush_interval_s`
    follow: bool = False
    flush_interval_s: float = 5.0
    resync: bool = False  # cdc: take a new snapshot now, whatever the stored state
    # schema discovery: documents sampled per collection (0: none), and where schema files go
    sample_size: int = DEFAULT_SAMPLE_SIZE
    schema_dir: Path | None = None  # None: no schema files (the CLI writes them to schemas/)

    def validate(self) -> list[CollectionConfig]:
        """The settings of the named collections (none yet when the run loads every collection)."""
        self.destination.validate()
        if self.collections is not None and not self.collections:
            raise ConfigError("--collections names no collection: pass a,b or leave it out to load every collection")
        for name in [self.database, self.destination.dataset, *(self.collections or [])]:
            validate_name(name)
        if "." in self.database or len(self.database.encode()) > 63:
            # MongoDB's own rule for database names (a dot would address a collection)
            raise ConfigError(f"invalid database name '{self.database}': no '.', at most 63 bytes")
        if self.batch_docs < 1:
            raise ConfigError("--batch-docs must be at least 1")
        if self.flush_interval_s <= 0:
            raise ConfigError("--flush-interval must be more than 0 seconds")
        if self.sample_size < 0:
            raise ConfigError("--sample-size must be zero (no discovery) or more")
        return self.collection_configs(self.collections or [], check_modes=self.collections is not None)

    def collection_configs(self, names: list[str], check_modes: bool = True) -> list[CollectionConfig]:
        """Validated settings of `names`; `--follow` and `--resync` need a cdc collection among them."""
        collections = [collection_config(name, self.overrides) for name in names]
        if not check_modes:
            return collections
        if self.follow and not any(c.mode == "cdc" for c in collections):
            raise ConfigError("--follow streams changes: it needs --mode cdc")
        if self.resync and not any(c.mode == "cdc" for c in collections):
            raise ConfigError("--resync takes a new CDC snapshot: it needs --mode cdc (a full load already re-reads everything)")
        return collections

    @property
    def pipeline_name(self) -> str:
        return pipeline_name(self.database, self.destination.name)
