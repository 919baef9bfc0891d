"""The files a run writes on this machine (pipeline state, the DuckDB warehouse, schema files, a
local landing folder): checked before anything is read, and their failures named by path."""

from __future__ import annotations

import errno
import re
import tempfile
from pathlib import Path

from ingestion.errors import DestinationError, exception_chain

_NOT_WRITABLE = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied", errno.EPERM: "not permitted"}
_FULL = {errno.ENOSPC, errno.EDQUOT}
# DuckDB and dlt's load jobs keep only a message: 'Could not write file "/x/w.duckdb.wal": No space left on device'
_FULL_MESSAGE = re.compile(r"no space left on device|disk quota exceeded", re.IGNORECASE)
_QUOTED_PATH = re.compile(r"file \"(?P<path>[^\"]+)\"|'(?P<path2>/[^']+)'")


def writable_directory(path: Path, what: str) -> Path:
    """`path`, created if missing, after a test write: a read-only or full disk is refused before the
    run reads anything, with the path and the flag or setting that chose it (`what`)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = _NOT_WRITABLE.get(exc.errno or 0) or exc.strerror or str(exc)
        # a missing folder above `path` that could not be created
        at = f" (at {exc.filename})" if exc.filename and Path(exc.filename) in path.parents else ""
        raise _error(f"{path}{at}", exc.errno in _FULL, reason, what) from None
    return path


def file_error(exc: BaseException, unnamed: str | Path | None = None) -> DestinationError | None:
    """The one-line error for a full disk or a file that may not be written, found anywhere in
    `exc`'s chain (dlt wraps it in its step errors; a load job keeps only its message); None when
    no local file is the cause. `unnamed` is the folder to name when the error names no file (a
    write that filled the disk names none)."""
    fallback = str(unnamed) if unnamed else "a local file"
    for e in exception_chain(exc):
        if isinstance(e, OSError) and (e.errno in _FULL or e.errno in _NOT_WRITABLE):
            return _error(e.filename or fallback, e.errno in _FULL, _NOT_WRITABLE.get(e.errno or 0, ""), None)
    message = " ".join(str(e) for e in exception_chain(exc))
    if _FULL_MESSAGE.search(message):
        found = _QUOTED_PATH.search(message)
        return _error(found and (found["path"] or found["path2"]) or fallback, True, "", None)
    return None


def _error(path: str, full: bool, reason: str, what: str | None) -> DestinationError:
    where = f"{what} {path}" if what else str(path)
    if full:
        return DestinationError(f"no space left on device writing {where}: free space there or choose another place "
                                "(--pipelines-dir, --warehouse, --schema-dir); nothing of this load was committed")
    return DestinationError(f"cannot write {where}: {reason}; choose a writable place (--pipelines-dir, --warehouse, "
                            "--schema-dir) or fix its permissions")
