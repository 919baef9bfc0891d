"""Destination failures mapped to one line: by exception type where dlt keeps the exception, by
message where a load job left only its message."""

from __future__ import annotations

import types

import pytest
from botocore.exceptions import ClientError
from dlt.pipeline.exceptions import PipelineStepFailed

from ingestion.config import DestinationConfig
from ingestion.load.failures import destination_error

REDSHIFT = DestinationConfig(name="redshift", bucket_url="s3://staging-bucket")
S3 = DestinationConfig(name="s3", bucket_url="s3://landing")
LOCAL = DestinationConfig(name="local")


def failed(exception: BaseException, step: str = "load") -> PipelineStepFailed:
    pipeline = types.SimpleNamespace(pipeline_name="p", has_pending_data=False)
    return PipelineStepFailed(pipeline, step, None, exception)


def wrapped(inner: BaseException) -> Exception:
    """`inner` as dlt raises it: inside an exception of its own, with `inner` as the cause."""
    try:
        try:
            raise inner
        except BaseException as exc:
            raise RuntimeError("job failed") from exc
    except RuntimeError as outer:
        return outer


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "x"}}, "PutObject")


@pytest.mark.parametrize("exception, destination, expected", [
    # by type
    (wrapped(ConnectionRefusedError(111, "refused")), REDSHIFT, "cannot reach Redshift"),
    (wrapped(TimeoutError()), REDSHIFT, "cannot reach Redshift"),
    (wrapped(client_error("AccessDenied")), S3, "S3 access denied for s3://landing"),
    (wrapped(client_error("InvalidAccessKeyId")), REDSHIFT, "S3 access denied for s3://staging-bucket"),
    (wrapped(PermissionError("denied")), S3, "S3 access denied"),
    (wrapped(client_error("NoSuchBucket")), S3, "bucket s3://landing does not exist"),
    # by message: what a load job leaves behind
    (RuntimeError('could not connect to server: Connection refused\n\tIs the server running on host "h"'), REDSHIFT,
     "cannot reach Redshift"),
    (RuntimeError("could not translate host name \"nowhere\" to address"), REDSHIFT, "cannot reach Redshift"),
    (RuntimeError("An error occurred (403) when calling the HeadObject operation: Forbidden"), S3, "S3 access denied"),
    (RuntimeError("The AWS Access Key Id you provided does not exist in our records."), REDSHIFT, "S3 access denied"),
    (RuntimeError("The specified bucket does not exist"), S3, "does not exist: create it or fix --bucket-url"),
    (RuntimeError("Out of Memory Error: failed to allocate data of size 16.0 MiB (32.0 MiB/32.0 MiB used)"), LOCAL,
     "DuckDB ran out of memory"),
])
def test_known_causes_name_the_fix(exception, destination, expected):
    message = str(destination_error(failed(exception), destination))
    assert expected in message and "\n" not in message


def test_duckdb_out_of_memory_by_type():
    import duckdb

    message = str(destination_error(failed(wrapped(duckdb.OutOfMemoryException("no memory"))), LOCAL))
    assert "DuckDB ran out of memory" in message and "ATLAS_DUCKDB_MAX_MEMORY_LIMIT" in message


def test_a_refused_connection_elsewhere_is_not_called_redshift():
    message = str(destination_error(failed(wrapped(ConnectionRefusedError(111, "refused"))), S3))
    assert "cannot reach Redshift" not in message and "load step failed for destination 's3'" in message


def test_anything_else_says_the_step_and_the_destination_without_credentials():
    message = str(destination_error(failed(RuntimeError("boom at s3://user:secret@host/x"), "normalize"), S3))
    assert message.startswith("normalize step failed for destination 's3': boom") and "secret" not in message


def test_a_warehouse_file_another_process_holds_mid_run_names_the_holder():
    """A load job keeps only DuckDB's message: the holder comes from it (no such pid here: its program)."""
    message = ('Job failed: IO Error: Could not set lock on file "/data/w.duckdb": Conflicting lock is held in '
               '/usr/bin/python3.11 (PID 999999999). See also https://duckdb.org/docs/stable/connect/concurrency')
    error = destination_error(failed(RuntimeError(message)), LOCAL)
    assert str(error).startswith("the DuckDB file /data/w.duckdb is in use by process 999999999 (/usr/bin/python3.11): ")
    assert error.exit_code == 4


def test_a_full_disk_in_a_load_job_names_the_file():
    message = 'TransactionContext Error: Failed to commit: Could not write file "/data/w.duckdb.wal": No space left on device'
    error = destination_error(failed(RuntimeError(message)), LOCAL)
    assert str(error).startswith("no space left on device writing /data/w.duckdb.wal: ")
