"""A DuckDB file is written by one process at a time: a run that finds the warehouse held by
another process (a `dbt build`, a notebook) waits for it, within a bound, saying who holds it, and
otherwise fails with one line that names the holder."""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

from ingestion.errors import ConfigError, DestinationError, exception_chain
from ingestion.redact import redact

log = logging.getLogger("atlas_ingest")

# How long a run waits for another process to release the warehouse file (ATLAS_DUCKDB_LOCK_WAIT_S).
DEFAULT_WAIT_S = 120.0
POLL_S = 1.0
_LOCK_CONFLICT = re.compile(r"Could not set lock on file \"(?P<file>[^\"]+)\": Conflicting lock is held in "
                            r"(?P<program>\S+)(?: \(PID (?P<pid>\d+)\))?", re.IGNORECASE)


def lock_wait_s() -> float:
    text = os.environ.get("ATLAS_DUCKDB_LOCK_WAIT_S", "")
    if not text:
        return DEFAULT_WAIT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86_400:
        raise ConfigError(f"ATLAS_DUCKDB_LOCK_WAIT_S must be a number of seconds from 0 to 86400 (got '{text}')")
    return value


def holder(pid: str | None, program: str) -> str:
    """'process 123 (dbt build --select ...)': the holder's command line where this machine can read it."""
    if not pid:
        return program
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = ""
    return f"process {pid} ({redact(command)[:120] if command else program})"


def _conflict(exc: BaseException) -> tuple[str, str] | None:
    """(the file, who holds it) when `exc`'s chain or message (a load job keeps only the message)
    is DuckDB's lock conflict."""
    for e in exception_chain(exc):
        found = _LOCK_CONFLICT.search(str(e))
        if found:
            return found["file"], holder(found["pid"], found["program"])
    return None


def lock_conflict(exc: BaseException) -> DestinationError | None:
    """The one-line error for a warehouse file another process holds; None for any other failure."""
    conflict = _conflict(exc)
    if conflict is None:
        return None
    return DestinationError(
        f"the DuckDB file {conflict[0]} is in use by {conflict[1]}: DuckDB lets one process write a file at a time; "
        "run dbt and atlas-ingest one after the other (a run waits ATLAS_DUCKDB_LOCK_WAIT_S seconds for the file "
        "before it starts); nothing of this load was committed")


def wait_for_warehouse(path: Path, wait_s: float | None = None) -> None:
    """Return once this process can open `path` for writing; wait (polling, logged once) while
    another process holds it, up to `wait_s`; then raise the lock conflict's one-line error."""
    import duckdb

    wait_s = lock_wait_s() if wait_s is None else wait_s
    deadline = time.monotonic() + wait_s
    logged = False
    while True:
        try:
            duckdb.connect(str(path)).close()
            return
        except duckdb.IOException as exc:
            conflict = _conflict(exc)
            if conflict is None:
                raise
            if time.monotonic() >= deadline:
                raise lock_conflict(exc) from None
            if not logged:
                log.warning("waiting up to %.0f s for the DuckDB file %s, in use by %s", wait_s, path, conflict[1])
                logged = True
            time.sleep(min(POLL_S, max(deadline - time.monotonic(), 0.0)))
