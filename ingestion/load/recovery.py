"""A load that a previous, interrupted run left pending: loaded now, or discarded."""

from __future__ import annotations

import logging

import dlt
from dlt.pipeline.exceptions import PipelineStepFailed
from pymongo.errors import PyMongoError

from ingestion.config import DestinationConfig
from ingestion.errors import IngestError
from ingestion.load.failures import step_error
from ingestion.mongo.connect import source_failure
from ingestion.redact import redact

log = logging.getLogger("atlas_ingest")


def finish_or_discard_pending(pipeline: dlt.Pipeline, is_sql: bool) -> None:
    """Load what a previous, interrupted run extracted; if that can no longer load (a kill can
    leave dlt's schema bookkeeping and the staging tables out of step), discard it with dlt's
    scratch staging dataset. Safe either way: the cursor in a package only counts once the
    package is loaded, so this run reads again whatever was discarded."""
    if not pipeline.has_pending_data:
        return
    try:
        pipeline.normalize()
        pipeline.load()
    except PipelineStepFailed as exc:
        log.warning(
            "a previous run left a load that cannot complete (%s): discarding it; this run reads again from "
            "the last loaded state", redact(str(exc.exception)).splitlines()[0][:200],
        )
        pipeline.abort_packages()
        if is_sql:
            with pipeline.sql_client() as client, client.with_staging_dataset():
                if client.has_dataset():
                    client.drop_dataset()


def discard_failed_load(pipeline: dlt.Pipeline, exc: IngestError | PipelineStepFailed | PyMongoError,
                        destination: DestinationConfig, collection: str | None = None) -> IngestError:
    """Abort what a failed load left pending (dlt restores the state it had before it, so no
    cursor, checkpoint or token moves past rows that are not in the warehouse) and return the
    error the failure stands for (a pymongo error raised outside a pipeline step: MongoDB's)."""
    if pipeline.has_pending_data:
        pipeline.abort_packages()
    if isinstance(exc, PipelineStepFailed):
        return step_error(exc, destination, collection, pipeline.working_dir)
    if isinstance(exc, PyMongoError):
        error = source_failure(exc, f"reading '{collection}'" if collection else "reading")
        assert error is not None  # a pymongo error always stands for one
        return error
    return exc
