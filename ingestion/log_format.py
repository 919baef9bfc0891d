"""Logging for the CLI: readable text, or one JSON object per line for schedulers. Either way,
URIs and secrets are redacted from every message."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from ingestion.redact import redact_uri

LOG_FORMATS = ("text", "json")


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_uri(record.getMessage())
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, default=str)


class _OwnFormatHandler(logging.StreamHandler):
    """dlt puts its own formatter on the first handler of its logger each time a pipeline starts;
    this handler keeps the one it was given."""

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        if self.formatter is None:
            super().setFormatter(fmt)


class DltJobErrors(logging.Filter):
    """A failed load job's exception (with traceback) is raised again by the pipeline step and
    reported as the run's one-line error: dlt's own record of it shows only at debug level."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None


def _handler(log_format: str) -> logging.Handler:
    handler = _OwnFormatHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter("atlas-ingest: %(levelname)s %(message)s"))
    return handler


def configure(log_format: str, level: str) -> None:
    """Our logger to stderr, in `log_format`, at `level`. dlt's records go through the same
    format and redaction: its errors always, the rest (which is verbose) only at debug level."""
    logger = logging.getLogger("atlas_ingest")
    logger.handlers[:] = [_handler(log_format)]
    logger.propagate = False
    logger.setLevel(level.upper())
    dlt_handler = _handler(log_format)
    if level.upper() == "DEBUG":
        dlt_handler.setLevel(logging.INFO)
    else:
        dlt_handler.setLevel(logging.ERROR)  # dlt sets its logger's level itself; the handler's stays
        dlt_handler.addFilter(DltJobErrors())
    dlt_logger = logging.getLogger("dlt")
    dlt_logger.handlers[:] = [dlt_handler]
    dlt_logger.propagate = False
