"""The SQL that `atlas-ingest run --destination redshift` sends, recorded without a cluster.

A real ingestion run (local MongoDB-wire server, S3-compatible server for the staging files)
against the dlt Redshift destination, with psycopg2 replaced by a recorder that answers every
query with an empty result: the schema, table DDL, COPY and merge statements dlt would run on
Redshift for our tables. Used by `make compile-redshift`.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

from redshift_contract.offline_driver import OfflineCursor, bind_parameters

OFFLINE_IAM_ROLE = "arn:aws:iam::123456789012:role/atlas-ingest-offline"


class _RecordingCursor(OfflineCursor):
    """psycopg2's cursor, offline: records each statement; queries answer with no rows."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self._log = log

    def execute(self, query: Any, args: Any = None, **_: Any) -> "_RecordingCursor":
        if not isinstance(query, str):  # psycopg2.sql.Composed made only of SQL parts
            query = "".join(getattr(part, "string", str(part)) for part in getattr(query, "seq", [query]))
        sql = bind_parameters(query, args if isinstance(args, (list, tuple)) or args is None else [args])
        self._log.append(sql)
        # dlt reads "no rows" from an empty description, and "no result set" from None.
        self.description = [] if re.match(r"\s*(select|with|show)\b", sql, re.IGNORECASE) else None
        self._rows = []
        return self


class _RecordingConnection:
    def __init__(self, log: list[str]) -> None:
        self._log = log
        self._autocommit = True

    @property
    def autocommit(self) -> bool:
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        if self._autocommit and not value:
            self._log.append("BEGIN")
        self._autocommit = value

    def cursor(self) -> _RecordingCursor:
        return _RecordingCursor(self._log)

    def commit(self) -> None:
        self._log.append("COMMIT")

    def rollback(self) -> None:
        self._log.append("ROLLBACK")

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _local_stack(work: Path) -> Iterator[tuple[str, str]]:
    """A local MongoDB-wire server with a few generated documents, and an S3-compatible server."""
    import boto3
    from moto.server import ThreadedMotoServer
    from pymongo import MongoClient

    from ingestion.local.seed import seed_collection
    from ingestion.local.server import LocalServer

    server = LocalServer(home=work / "mongo", port=_free_port())
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    s3.start()
    try:
        host, port = s3.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="offline",
                     aws_secret_access_key="offline").create_bucket(Bucket=OFFLINE_BUCKET)
        with MongoClient(server.uri) as client:
            seed_collection(client, 50, seed=1)
        yield server.uri, endpoint
    finally:
        s3.stop()
        server.stop()


OFFLINE_ENV = {
    "AWS_ACCESS_KEY_ID": "offline", "AWS_SECRET_ACCESS_KEY": "offline", "AWS_DEFAULT_REGION": "us-east-1",
    "REDSHIFT_HOST": "offline.invalid", "REDSHIFT_USER": "offline", "REDSHIFT_PASSWORD": "offline",
    "REDSHIFT_DATABASE": "dev", "REDSHIFT_IAM_ROLE": OFFLINE_IAM_ROLE,
}
OFFLINE_BUCKET = "offline-staging"


@contextmanager
def offline_redshift(work: Path) -> Iterator[tuple[str, str]]:
    """The local servers and the environment of a Redshift run: yields the MongoDB URI and the S3
    endpoint (bucket `OFFLINE_BUCKET` holds the staged files). Runs inside `recording`."""
    with _local_stack(work) as (uri, endpoint), mock.patch.dict(os.environ, {**OFFLINE_ENV, "AWS_ENDPOINT_URL": endpoint}):
        yield uri, endpoint


@contextmanager
def recording(log: list[str]) -> Iterator[None]:
    """psycopg2 connections that record each statement into `log` instead of reaching a cluster."""
    with mock.patch("psycopg2.connect", lambda *a, **k: _RecordingConnection(log)):
        yield


def record_redshift_load() -> dict[str, list[str]]:
    """Statements of a full load, an incremental (merge) load, a CDC snapshot (merge with hard
    deletes, then the sweep of rows the snapshot did not see) and a column widened from bigint to
    double precision, keyed by run."""
    from ingestion.config import DestinationConfig, RunConfig
    from ingestion.ops.run import run

    runs: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="redshift-offline-") as tmp:
        work = Path(tmp)
        with offline_redshift(work) as (uri, _):
            for name, overrides in (
                ("full_load", {}),
                ("incremental_merge", {"mode": "incremental", "cursor_field": "updated_at"}),
                ("cdc_merge", {"mode": "cdc"}),
            ):
                log: list[str] = []
                with recording(log):
                    run(RunConfig(
                        uri=uri, database="operations", collections=["customer_activity"],
                        destination=DestinationConfig(name="redshift", bucket_url=f"s3://{OFFLINE_BUCKET}"),
                        pipelines_dir=work / "pipelines" / name, overrides=overrides,
                    ))
                runs[name] = log
            runs["widen_column"] = _record_widening(uri, work)
    return runs


def _record_widening(uri: str, work: Path) -> list[str]:
    """A stored bigint column that receives a double: the second run's statements. The offline
    driver returns no rows, so the warehouse's answer to "what type is the column" is given."""
    from pymongo import MongoClient

    from ingestion.config import DestinationConfig, RunConfig
    from ingestion.ops.run import run

    def load() -> None:
        run(RunConfig(uri=uri, database="operations", collections=["readings"],
                      destination=DestinationConfig(name="redshift", bucket_url=f"s3://{OFFLINE_BUCKET}"),
                      pipelines_dir=work / "pipelines" / "widen_column"))

    with MongoClient(uri) as client:
        readings = client["operations"]["readings"]
        readings.insert_many([{"_id": 1, "value": 1}, {"_id": 2, "value": 2}])
        with recording([]):
            load()
        readings.insert_one({"_id": 3, "value": 2.5})
    log: list[str] = []
    with recording(log), mock.patch("ingestion.source.widen.stored_column_type", lambda *a: "bigint"):
        load()
    return log
