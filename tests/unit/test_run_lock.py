"""The run lock: exclusive while held, names its holder, freed when the holder's process dies."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ingestion.errors import LockedError
from ingestion.ops.run_lock import RunLock


def test_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    path = tmp_path / "p.lock"
    with RunLock(path, "pipe"):
        assert json.loads(path.read_text())["pid"] == os.getpid()
        with pytest.raises(LockedError, match=rf"pipeline 'pipe' is in progress \(pid {os.getpid()} on "):
            with RunLock(path, "pipe"):
                pass
    with RunLock(path, "pipe"):  # released on exit: taken again
        pass
    assert path.read_text() == ""


def test_lock_of_a_killed_process_is_recovered(tmp_path):
    path = tmp_path / "p.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from ingestion.ops.run_lock import RunLock\n"
        f"l = RunLock(Path({str(path)!r}), 'pipe').__enter__(); print('held', flush=True); time.sleep(60)"
    )], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(LockedError, match=f"pid {holder.pid}"):
        with RunLock(path, "pipe"):
            pass
    holder.kill()
    holder.wait(timeout=30)
    with RunLock(path, "pipe"):  # the stale file remains, the lock does not
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_redacting_log_filter_hides_credentials(caplog):
    import logging

    from ingestion.logs import JsonFormatter, RedactingFilter

    record = logging.LogRecord("atlas_ingest", logging.WARNING, __file__, 1, "cannot reach %s", ("mongodb://u:secret@h/",), None)
    assert RedactingFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "cannot reach mongodb://***@h/" and line["level"] == "warning"
