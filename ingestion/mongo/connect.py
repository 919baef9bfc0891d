"""A MongoDB client that has answered, and the collections a database holds."""

from __future__ import annotations

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import ConfigurationError, ConnectionFailure, InvalidURI, OperationFailure, PyMongoError

from ingestion.errors import ConfigError, SourceError, exception_chain
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


# OperationFailure codes of a user who may not do what the run asks
_UNAUTHORIZED = {13: "not authorized", 18: "authentication failed"}


def source_failure(exc: BaseException, doing: str) -> SourceError | None:
    """The SourceError (exit 3) a pymongo error anywhere in `exc`'s chain stands for, `doing`
    saying what the run was doing ("reading 'orders'"); None when MongoDB is not the cause. dlt
    wraps what a resource raises in its own step errors: the chain keeps the cause."""
    error = next((e for e in exception_chain(exc) if isinstance(e, PyMongoError)), None)
    if error is None:
        return None
    detail = " ".join(redact(str(error)).split())
    if isinstance(error, ConnectionFailure):
        return SourceError(f"lost the connection to MongoDB while {doing}: check that the server is running and reachable "
                           f"({detail[:200]})")
    if isinstance(error, OperationFailure) and error.code in _UNAUTHORIZED:
        return SourceError(f"MongoDB refused {doing}: {_UNAUTHORIZED[error.code]}; check the user's roles (read on the "
                           f"database) and password")
    message = (error.details or {}).get("errmsg") if isinstance(error, OperationFailure) else None
    return SourceError(f"MongoDB failed while {doing}: {redact(str(message)) if message else detail[:300]}")


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
