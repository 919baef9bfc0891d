"""A MongoDB client that has answered, and the collections a database holds."""

from __future__ import annotations

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import ConfigurationError, InvalidURI, OperationFailure, PyMongoError

from ingestion.errors import ConfigError, SourceError
from ingestion.redact import redact


def connect(uri: str, timeout_ms: int = 5_000) -> MongoClient:
    """A client that has answered `ping`, or a SourceError/ConfigError naming the cause."""
    # A timeout written in the URI wins over the default.
    options = {} if "serverselectiontimeoutms" in uri.lower() else {"serverSelectionTimeoutMS": timeout_ms}
    try:
        client: MongoClient = MongoClient(uri, appname="atlas-ingest", **options)
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        raise ConfigError(f"invalid MongoDB URI {redact(uri)}: {redact(str(exc))}") from None
    try:
        client.admin.command("ping")
    except OperationFailure as exc:
        client.close()
        if exc.code == 18:
            raise SourceError(f"authentication failed for {redact(uri)}: check the user and password") from None
        raise SourceError(f"MongoDB at {redact(uri)} refused ping: {exc.details and exc.details.get('errmsg')}") from None
    except PyMongoError:
        client.close()
        raise SourceError(
            f"cannot reach MongoDB at {redact(uri)}: check the URI and that the server is running and reachable"
        ) from None
    return client


def collection_names(db: Database) -> list[str]:
    """The collections of `db` that hold documents: no views, no `system.*` collections."""
    try:
        infos = list(db.list_collections())
    except PyMongoError as exc:
        raise SourceError(f"cannot list collections of '{db.name}': {redact(str(exc))}") from None
    return sorted(
        info["name"] for info in infos
        if info.get("type", "collection") == "collection" and not info["name"].startswith("system.")
    )
