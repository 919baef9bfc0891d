"""The CLI's logging: dlt's own records in our format, redacted, without load-job noise."""

from __future__ import annotations

import json
import logging

import dlt
import pytest

from ingestion.logs import configure


@pytest.fixture()
def restore_loggers():
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level, logging.getLogger(name).propagate)
             for name in ("dlt", "atlas_ingest")}
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.propagate = handlers, propagate
        logger.setLevel(level)


def _dlt_record(level: int, message: str, pathname: str = "dlt/pipeline/pipeline.py", exc_info=None) -> None:
    logger = logging.getLogger("dlt")
    logger.handle(logger.makeRecord("dlt", level, pathname, 1, message, None, exc_info))


def _lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_dlt_records_take_our_json_format_redacted_and_without_load_job_noise(tmp_path, capsys, restore_loggers):
    configure("json", "warning")
    # A pipeline (re)initialises dlt's logger and sets its own formatter on the first handler.
    dlt.pipeline(pipeline_name="log_format_test", destination="duckdb", pipelines_dir=str(tmp_path))
    from dlt.common import logger as dlt_logger

    dlt_logger.warning("could not reach mongodb://reader:pw-secret@db.example.net/ops")
    _dlt_record(logging.INFO, "an info record")
    _dlt_record(logging.WARNING, "Job for x retried in load y", pathname="/site-packages/dlt/load/load.py")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        _dlt_record(logging.ERROR, "Transient exception in job", exc_info=__import__("sys").exc_info())
    lines = _lines(capsys)
    assert len(lines) == 1, lines
    assert lines[0]["logger"] == "dlt" and lines[0]["level"] == "warning"
    assert "pw-secret" not in lines[0]["message"] and "***@db.example.net" in lines[0]["message"]


def test_debug_shows_load_job_records_with_a_redacted_traceback(tmp_path, capsys, restore_loggers):
    configure("json", "debug")
    dlt.pipeline(pipeline_name="log_format_test", destination="duckdb", pipelines_dir=str(tmp_path))
    try:
        raise RuntimeError("cannot connect to mongodb://reader:pw-secret@db.example.net/ops")
    except RuntimeError:
        _dlt_record(logging.ERROR, "Transient exception in job", pathname="/site-packages/dlt/load/load.py",
                    exc_info=__import__("sys").exc_info())
    lines = _lines(capsys)
    assert len(lines) == 1, lines
    assert "RuntimeError" in lines[0]["traceback"] and "pw-secret" not in lines[0]["traceback"]


def test_text_format_survives_dlt_replacing_the_formatter(tmp_path, capsys, restore_loggers):
    configure("text", "warning")
    dlt.pipeline(pipeline_name="log_format_test", destination="duckdb", pipelines_dir=str(tmp_path))
    logging.getLogger("dlt").handlers[0].formatter = logging.Formatter("%(message)s")  # as dlt's JSON logging does
    _dlt_record(logging.WARNING, "schema warning")
    assert capsys.readouterr().err == "atlas-ingest: WARNING schema warning\n"
