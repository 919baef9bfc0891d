"""One run at a time per pipeline: an exclusive lock on a file next to the pipeline's state.

The lock is an OS file lock (`flock`), held for the life of the process: when a run dies, however
it dies, the kernel releases it, so a stale lock never blocks the next run. The file also records
who holds it, for the message the second run prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import IO

from ingestion.errors import LockedError


class RunLock:
    def __init__(self, path: Path, pipeline: str) -> None:
        self.path = path
        self.pipeline = pipeline
        self._file: IO[str] | None = None

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _describe(handle.read())
            handle.close()
            raise LockedError(
                f"another run of pipeline '{self.pipeline}' is in progress{holder}: let it finish (or stop it) and "
                "run again; two runs of one pipeline never load at the same time"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._file is not None:
            # The file stays: removing it would let a third run lock a new file while a second
            # still waits on the old one.
            self._file.truncate(0)
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _describe(text: str) -> str:
    try:
        holder = json.loads(text)
        return f" (pid {holder['pid']} on {holder['host']}, started {holder['started_at']})"
    except (ValueError, KeyError, TypeError):
        return ""
