"""Destinations chosen with `--destination`: local DuckDB, an S3 landing zone, or Redshift.

| destination | what dlt writes | nested data |
|---|---|---|
| local    | parquet into DuckDB, dataset `raw_atlas` | JSON columns |
| s3       | `<bucket_url>/<prefix>/<database>/<collection>/load_date=YYYY-MM-DD/<load id>.<file id>.jsonl.gz` (or `.parquet`) | JSON objects in jsonl; JSON text in parquet |
| redshift | jsonl.gz staged on S3, then `COPY ... FORMAT AS JSON 'auto'` into `raw_atlas` | SUPER |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
from dlt.common.configuration.specs import AwsCredentials

from ingestion.config import DestinationConfig
from ingestion.disk import writable_directory
from ingestion.errors import ConfigError
from ingestion.load.memory import DUCKDB_MEMORY_LIMIT
from ingestion.source.batches import REDSHIFT_LIMITS, RowLimits
from ingestion.source.resources import ItemFormat

S3_LAYOUT = "{table_name}/load_date={YYYY}-{MM}-{DD}/{load_id}.{file_id}.{ext}"


@dataclass(frozen=True)
class ResolvedDestination:
    destination: Any
    staging: Any
    dataset: str
    item_format: ItemFormat
    loader_file_format: str
    limits: RowLimits | None  # what a row may hold; over it, a document is quarantined before COPY
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
        try:
            import duckdb  # noqa: F401  (dlt's DuckDB configuration imports it only when it connects)
        except ImportError:
            raise ConfigError("destination 'local' needs DuckDB: pip install 'atlas-redshift-analytics[local]'") from None
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
        writable_directory(config.warehouse.parent, "--warehouse")

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
            writable_directory(Path(url), "--bucket-url")
            url = Path(url).resolve().as_uri()
        item_format: ItemFormat = "jsonl" if config.file_format == "jsonl" else "arrow"
        return ResolvedDestination(_filesystem(url), None, database, item_format, config.file_format, None, is_sql=False)
    staging_url = f"{bucket}/{config.prefix}" if config.prefix else bucket
    destination = AtomicReplaceRedshift(
        credentials=_redshift_credentials(),
        staging_iam_role=os.environ.get("REDSHIFT_IAM_ROLE") or None,
    )
    return ResolvedDestination(destination, _filesystem(staging_url), config.dataset, "jsonl", "jsonl", REDSHIFT_LIMITS)


def warehouse_reader(config: DestinationConfig) -> Any:
    """The dlt destination to query a warehouse that runs loaded (its run history): the DuckDB
    file or the Redshift cluster, without the staging bucket a load needs."""
    if config.name == "local":
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        return dlt.destinations.duckdb(DuckDbCredentials(str(config.warehouse.resolve())))
    if config.name == "redshift":
        return AtomicReplaceRedshift(credentials=_redshift_credentials())
    raise ConfigError(f"destination '{config.name}' is not a warehouse: choose local or redshift")
