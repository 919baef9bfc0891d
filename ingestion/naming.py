"""Names: which characters a database, collection or dataset name may hold, and the warehouse
names derived from them (tables, pipelines)."""

from __future__ import annotations

import hashlib
import re

from dlt.common.normalizers.naming.snake_case import NamingConvention

from ingestion.errors import ConfigError

# Redshift's identifier limit, in bytes of UTF-8; kept on every destination so models stay portable.
MAX_IDENTIFIER_BYTES = 127
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


class NameCollision(ConfigError):
    """Two source names map to one warehouse name, or a name does not fit the warehouse."""


class UnusableName(NameCollision):
    """A field name no column can have: its documents are quarantined with this reason."""


class NameTooLong(UnusableName):
    """A name over the warehouse's identifier limit."""


def checked_column_name(field: str) -> str:
    """`column_name(field)`, or UnusableName when no column can be named after it (empty, or
    longer than the warehouse allows)."""
    if field == "":
        raise UnusableName("the document has a top-level field with an empty name, which no column can have: "
                           "keep it inside a parent object (nested keys stay in the JSON)")
    return check_length(column_name(field), f"field '{short_name(field)}'")


def short_name(name: str) -> str:
    """A source name cut to 60 characters for a message."""
    return name if len(name) <= 60 else name[:57] + "..."


def check_length(name: str, source: str) -> str:
    """`name` if it fits a warehouse identifier; NameCollision naming `source` otherwise."""
    size = len(name.encode("utf-8"))
    if size > MAX_IDENTIFIER_BYTES:
        raise NameTooLong(
            f"{source} maps to a name of {size} bytes, over the {MAX_IDENTIFIER_BYTES}-byte limit of Redshift "
            "identifiers: leave it out with a projection, or keep it inside a parent object (nested keys stay in the JSON)"
        )
    return name


def check_table_names(database: str, collections: list[str]) -> dict[str, str]:
    """Collection -> table for `collections` of `database`; NameCollision when two collections
    map to one table (`listingsAndReviews` and `listings_and_reviews`)."""
    tables: dict[str, str] = {}
    owners: dict[str, str] = {}
    for collection in collections:
        table = check_length(table_name(collection), f"collection '{collection}'")
        owner = owners.setdefault(table, collection)
        if owner != collection:
            raise NameCollision(
                f"collections '{owner}' and '{collection}' of database '{database}' both map to table '{table}': "
                "load one of them per dataset (--collections, or exclude = [...] in [sources.atlas] of .dlt/config.toml)"
            )
        tables[collection] = table
    return tables


def database_key(database: str) -> str:
    """A database's name in pipeline and dataset names: snake_case, and for a name snake_case
    changes (`Shop`, `my-db`) a short hash of the exact name too, so `Shop` and `shop` differ."""
    key = _snake(database)
    return key if key == database else f"{key}_{hashlib.sha1(database.encode()).hexdigest()[:8]}"


def pipeline_name(database: str, destination: str) -> str:
    """One dlt pipeline (state, lock, run history) per database and destination."""
    return f"atlas_{database_key(database)}_{_snake(destination)}"


def legacy_pipeline_name(database: str, destination: str) -> str:
    """The pipeline name earlier versions gave a database (the same as `pipeline_name` for
    snake_case names): tables that pipeline loaded still belong to this database."""
    return f"atlas_{_snake(database)}_{_snake(destination)}"


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", name.lower())
