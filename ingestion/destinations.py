"""Destinations chosen with `--destination`: local DuckDB, an S3 landing zone, or Redshift.

| destination | what dlt writes | nested data |
|---|---|---|
| local    | parquet into DuckDB, dataset `raw_atlas` | JSON columns |
| s3       | `<bucket_url>/<prefix>/<database>/<collection>/load_date=YYYY-MM-DD/<load id>.<file id>.jsonl.gz` (or `.parquet`) | JSON objects in jsonl; JSON text in parquet |
| redshift | jsonl.gz staged on S3, then `COPY ... FORMAT AS JSON 'auto'` into `raw_atlas` | SUPER |
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import dlt
from dlt.common.configuration.specs import AwsCredentials
from dlt.pipeline.exceptions import PipelineStepFailed

from ingestion.errors import ConfigError
from ingestion.source import ItemFormat

DESTINATIONS = ("local", "s3", "redshift")
FILE_FORMATS = ("jsonl", "parquet")
DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")
# DuckDB caches the table it writes up to this cap (its default is 80% of RAM), so without a small
# cap the memory of a full load grows with the collection (docs/benchmarks.md). Large documents
# need more, and how much varies from run to run (the awkward corpus, with one 15 MB document,
# loaded under 128MB and failed once under 256MB): see DUCKDB_MAX_MEMORY_LIMIT.
DUCKDB_MEMORY_LIMIT = os.environ.get("ATLAS_DUCKDB_MEMORY_LIMIT", "256MB")
# How much memory DuckDB needs also depends on the documents: it holds values of several MB in
# memory together while it loads them. A load that runs out is loaded again with twice the cap,
# up to this (default: half of the machine's memory).
DUCKDB_MAX_MEMORY_LIMIT = os.environ.get("ATLAS_DUCKDB_MAX_MEMORY_LIMIT") or (
    f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2 // 2**20}MiB")
_MEMORY_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)
_MEMORY_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
                 "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
log = logging.getLogger("atlas_ingest")
S3_LAYOUT = "{table_name}/load_date={YYYY}-{MM}-{DD}/{load_id}.{file_id}.{ext}"
# Redshift refuses JSON objects over 4 MB in COPY; larger rows are quarantined instead.
REDSHIFT_MAX_JSON_BYTES = 4 * 1024 * 1024


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
class ResolvedDestination:
    destination: Any
    staging: Any
    dataset: str
    item_format: ItemFormat
    loader_file_format: str
    max_row_bytes: int | None
    is_sql: bool = True
    duckdb_credentials: Any = None  # local: whose memory cap a load that runs out may raise


def aws_credentials() -> AwsCredentials:
    """The AWS default chain (env, profile, instance role), plus a custom S3 endpoint when
    AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL is set (S3-compatible servers)."""
    credentials = AwsCredentials()
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        credentials.endpoint_url = endpoint
    credentials.region_name = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    credentials.on_partial()  # fills keys from the default chain when they are not configured
    return credentials


def _filesystem(bucket_url: str) -> Any:
    if bucket_url.startswith("s3://"):
        return dlt.destinations.filesystem(bucket_url=bucket_url, layout=S3_LAYOUT, credentials=aws_credentials())
    return dlt.destinations.filesystem(bucket_url=bucket_url, layout=S3_LAYOUT)


def _redshift_credentials() -> Any:
    """From the same REDSHIFT_* variables the dbt profile reads; otherwise dlt's own config
    (`[destination.redshift.credentials]` in .dlt/secrets.toml)."""
    if not os.environ.get("REDSHIFT_HOST"):
        return None
    from dlt.destinations.impl.redshift.configuration import RedshiftCredentials

    credentials = RedshiftCredentials()
    credentials.host = os.environ["REDSHIFT_HOST"]
    credentials.port = int(os.environ.get("REDSHIFT_PORT", "5439"))
    credentials.database = os.environ.get("REDSHIFT_DATABASE", "dev")
    credentials.username = os.environ.get("REDSHIFT_USER")
    credentials.password = os.environ.get("REDSHIFT_PASSWORD")
    return credentials


class AtomicReplaceRedshift(dlt.destinations.redshift):
    """dlt's Redshift destination, replacing tables with DELETE instead of TRUNCATE: on Redshift
    TRUNCATE commits the open transaction, so a failure after it would leave the table empty."""

    def _raw_capabilities(self) -> Any:
        caps = super()._raw_capabilities()
        caps.supports_truncate_command = False
        return caps


def resolve(config: DestinationConfig, database: str) -> ResolvedDestination:
    """The dlt destination objects and file formats for `config`."""
    config.validate()
    if config.name == "local":
        config.warehouse.parent.mkdir(parents=True, exist_ok=True)
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        credentials = DuckDbCredentials(str(config.warehouse.resolve()))
        # Row order in a raw table means nothing; without it DuckDB inserts with far less memory
        # (1,000,000 documents: peak RSS 790 MB instead of 996 MB, docs/benchmarks.md).
        credentials.global_config = {"memory_limit": DUCKDB_MEMORY_LIMIT, "preserve_insertion_order": False}
        return ResolvedDestination(dlt.destinations.duckdb(credentials), None, config.dataset, "arrow", "parquet", None,
                                   duckdb_credentials=credentials)
    bucket = config.resolved_bucket_url()
    if config.name == "s3":
        url = f"{bucket}/{config.prefix}" if config.prefix else bucket
        if "://" not in url:
            Path(url).mkdir(parents=True, exist_ok=True)
            url = Path(url).resolve().as_uri()
        item_format: ItemFormat = "jsonl" if config.file_format == "jsonl" else "arrow"
        return ResolvedDestination(_filesystem(url), None, database, item_format, config.file_format, None, is_sql=False)
    staging_url = f"{bucket}/{config.prefix}" if config.prefix else bucket
    destination = AtomicReplaceRedshift(
        credentials=_redshift_credentials(),
        staging_iam_role=os.environ.get("REDSHIFT_IAM_ROLE") or None,
    )
    return ResolvedDestination(destination, _filesystem(staging_url), config.dataset, "jsonl", "jsonl", REDSHIFT_MAX_JSON_BYTES)


def memory_bytes(text: str) -> int | None:
    """Bytes in a DuckDB memory size such as "256MB" or "2GiB"; None if it is not one."""
    match = _MEMORY_SIZE.match(text)
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()]) if match else None


def load_within_memory(pipeline: dlt.Pipeline, target: ResolvedDestination, run: Callable[[], Any]) -> None:
    """`run()` (a pipeline run). On the local destination, a load step that runs out of memory is
    loaded again, its package as it is, with twice DuckDB's cap, up to DUCKDB_MAX_MEMORY_LIMIT.
    The cap stays raised for the rest of the run."""
    try:
        run()
        return
    except PipelineStepFailed as exc:
        failure = exc
    credentials = target.duckdb_credentials
    ceiling = memory_bytes(DUCKDB_MAX_MEMORY_LIMIT) or 0
    while credentials is not None and failure.step == "load" and "Out of Memory Error" in str(failure.exception):
        current = memory_bytes(credentials.global_config["memory_limit"]) or ceiling
        raised = min(current * 2, ceiling) // 2**20  # whole MiB
        if raised * 2**20 <= current:
            break  # at the ceiling
        log.warning("DuckDB ran out of memory with memory_limit %s: loading again with %dMiB",
                    credentials.global_config["memory_limit"], raised)
        credentials.global_config["memory_limit"] = f"{raised}MiB"
        try:
            pipeline.load()
            return
        except PipelineStepFailed as exc:
            failure = exc
    raise failure
