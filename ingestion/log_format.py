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


def configure(log_format: str, level: str) -> None:
    """Our logger to stderr, in `log_format`, at `level` (dlt keeps its own warnings' format)."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter("atlas-ingest: %(levelname)s %(message)s"))
    logger = logging.getLogger("atlas_ingest")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(level.upper())
