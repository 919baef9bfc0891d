"""Names: which characters a database, collection or dataset name may hold, and the warehouse
names derived from them (tables, pipelines)."""

from __future__ import annotations

import re

from dlt.common.normalizers.naming.snake_case import NamingConvention

from ingestion.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,119}$")
_NAMING = NamingConvention()


def validate_name(name: str) -> str:
    """A database, collection or dataset name safe to use in a query, a path and an identifier."""
    if not _NAME.match(name):
        raise ConfigError(f"invalid name '{name}': use letters, digits, '_', '-' or '.'")
    return name


def table_name(collection: str) -> str:
    """The warehouse table of a collection: dlt's snake_case naming (`customerEvents` -> `customer_events`)."""
    return _NAMING.normalize_table_identifier(collection)


def column_name(field: str) -> str:
    """The warehouse column of a top-level field: dlt's snake_case naming (`updatedAt` -> `updated_at`)."""
    return _NAMING.normalize_identifier(field)


def pipeline_name(database: str, destination: str) -> str:
    """One dlt pipeline (state, lock, run history) per database and destination."""
    return re.sub(r"[^a-z0-9_]", "_", f"atlas_{database}_{destination}".lower())
