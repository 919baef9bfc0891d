"""Destination failures as one line naming the cause and the fix.

The cause is found by exception type wherever dlt keeps the exception (extract and normalize
steps, connections opened in the main thread). A load job, though, runs in a worker thread and
dlt keeps only its message; for those the message is matched, with the patterns below, each of
which tests/unit/test_destination_failures.py covers.
"""

from __future__ import annotations

import os
import re

from dlt.pipeline.exceptions import PipelineStepFailed

from ingestion.config import DestinationConfig
from ingestion.disk import file_error
from ingestion.errors import DestinationError, IngestError, exception_chain
from ingestion.load.memory import DUCKDB_MAX_MEMORY_LIMIT, is_out_of_memory
from ingestion.load.warehouse_lock import lock_conflict
from ingestion.mongo.connect import source_failure
from ingestion.redact import redact

_UNREACHABLE = re.compile(r"connection refused|could not connect|timeout expired|timed out|could not translate host name|"
                          r"name or service not known|no route to host|network is unreachable", re.IGNORECASE)
_DENIED = re.compile(
    r"access ?denied|forbidden|\b403\b|invalidaccesskeyid|signaturedoesnotmatch|not authorized|"
    r"access key id you provided does not exist|security token included in the request is invalid|"
    r"signature we calculated does not match", re.IGNORECASE)
_NO_SUCH_BUCKET = re.compile(r"no\s*such\s*bucket|specified bucket does not exist", re.IGNORECASE)
# S3 error codes (botocore ClientError) that mean the credentials may not do what the load needs
_DENIED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "403", "Forbidden"}


def _s3_error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)  # botocore.exceptions.ClientError
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or "") or None
    return None


def _is_unreachable(chain: list[BaseException], detail: str) -> bool:
    # psycopg2 raises one OperationalError for a refused or timed-out connection and for a refused
    # login alike, and a load job keeps only the message: the message tells them apart.
    return any(isinstance(e, (ConnectionError, TimeoutError)) for e in chain) or bool(_UNREACHABLE.search(detail))


def _is_denied(chain: list[BaseException], detail: str) -> bool:
    if any(isinstance(e, PermissionError) or _s3_error_code(e) in _DENIED_CODES for e in chain):
        return True
    return bool(_DENIED.search(detail))


def _is_missing_bucket(chain: list[BaseException], detail: str) -> bool:
    return any(_s3_error_code(e) == "NoSuchBucket" for e in chain) or bool(_NO_SUCH_BUCKET.search(detail))


def destination_error(exc: BaseException, destination: DestinationConfig, folder: str | None = None) -> DestinationError:
    """One line naming the cause and the fix, for the failures users meet most: of a pipeline step
    that failed, or of a query the run makes itself (the run history read before loading)."""
    name = destination.name
    cause, step = (exc.exception, exc.step) if isinstance(exc, PipelineStepFailed) else (exc, "connect")
    chain = exception_chain(cause)
    detail = " ".join(redact(str(cause)).split())
    # `folder`: what a full disk that names no file filled (the pipeline's working folder)
    local = file_error(cause, folder) or (lock_conflict(cause) if name == "local" else None)
    if local is not None:
        return local
    if name == "redshift" and _is_unreachable(chain, detail):
        host = os.environ.get("REDSHIFT_HOST", "the configured host")
        port = os.environ.get("REDSHIFT_PORT", "5439")
        return DestinationError(
            f"cannot reach Redshift at {host}:{port}: check REDSHIFT_HOST and REDSHIFT_PORT, and that the cluster accepts "
            f"connections from this machine (security group, publicly accessible); nothing was loaded ({detail[:200]})"
        )
    if name in ("s3", "redshift") and _is_missing_bucket(chain, detail):
        return DestinationError(f"bucket {destination.resolved_bucket_url()} does not exist: create it or fix --bucket-url")
    if name in ("s3", "redshift") and _is_denied(chain, detail):
        bucket = destination.resolved_bucket_url()
        return DestinationError(
            f"S3 access denied for {bucket}: check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID or the instance "
            f"role) and that they may list, read and write {bucket}/{destination.prefix}; nothing was loaded ({detail[:200]})"
        )
    if name == "local" and is_out_of_memory(cause):
        return DestinationError(
            f"DuckDB ran out of memory loading {destination.warehouse}, with its memory_limit raised up to "
            f"{DUCKDB_MAX_MEMORY_LIMIT}: raise ATLAS_DUCKDB_MAX_MEMORY_LIMIT (or start higher with ATLAS_DUCKDB_MEMORY_LIMIT) "
            f"and rerun; this load was discarded ({detail[:200]})"
        )
    return DestinationError(f"{step} step failed for destination '{name}': {detail[:500]}")


def step_error(exc: PipelineStepFailed, destination: DestinationConfig, collection: str | None = None,
               folder: str | None = None) -> IngestError:
    """The error a failed pipeline step stands for: ours when extraction raised one (a name
    collision), MongoDB's when a pymongo error caused it (the server went away mid-read: exit 3),
    else the destination's failure as `destination_error` names it."""
    ours = next((e for e in exception_chain(exc.exception) if isinstance(e, IngestError)), None)
    if ours is not None:
        return ours
    doing = f"reading '{collection}'" if collection else f"the {exc.step} step"
    return source_failure(exc.exception, doing) or destination_error(exc, destination, folder)
