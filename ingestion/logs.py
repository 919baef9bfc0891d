"""Logging for the CLI: readable text, or one JSON object per line for schedulers. Either way,
URIs and secrets are redacted from every message."""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone

from ingestion.redact import redact

LOG_FORMATS = ("text", "json")


# dlt's module that runs load jobs and logs their retries and failures
_DLT_LOAD_MODULE = os.path.join("dlt", "load", "load.py")


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:  # formatted here so that the traceback is redacted too
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["traceback"] = record.exc_text
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, default=str)


class OwnFormatHandler(logging.StreamHandler):
    """Formats with the formatter it was made with: each time a pipeline starts, dlt replaces the
    formatter of the first handler on its logger (by `setFormatter`, or by assignment for its own
    JSON logs)."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self.own_formatter = formatter

    def format(self, record: logging.LogRecord) -> str:
        return self.own_formatter.format(record)


class DltLoadJobRecords(logging.Filter):
    """Drops dlt's records of load jobs (retries, failures, their tracebacks): a job that fails is
    raised again by the pipeline step and reported as the run's one-line error with its cause."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None and not record.pathname.endswith(_DLT_LOAD_MODULE)


def _handler(log_format: str) -> logging.Handler:
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter("atlas-ingest: %(levelname)s %(message)s")
    handler = OwnFormatHandler(formatter)
    handler.addFilter(RedactingFilter())
    return handler


def configure(log_format: str, level: str) -> None:
    """Our logger to stderr, in `log_format`, at `level`. dlt's records go through the same
    format and redaction (their `logger` is "dlt" in JSON): its warnings and errors, and with
    `debug` also its records of load jobs, tracebacks included."""
    logger = logging.getLogger("atlas_ingest")
    logger.handlers[:] = [_handler(log_format)]
    logger.propagate = False
    logger.setLevel(level.upper())
    dlt_handler = _handler(log_format)
    # dlt sets its logger's level itself (`runtime.log_level`); the handler's level stays ours.
    if level.upper() == "DEBUG":
        dlt_handler.setLevel(logging.DEBUG)
    else:
        dlt_handler.setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
        dlt_handler.addFilter(DltLoadJobRecords())
    dlt_logger = logging.getLogger("dlt")
    dlt_logger.handlers[:] = [dlt_handler]
    dlt_logger.propagate = False
