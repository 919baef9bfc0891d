"""Progress of interactive runs on stderr: documents so far, documents per second, and an ETA when
the collection's size is known. Silent unless the CLI turns it on (a terminal, not a scheduler)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

_stream: TextIO | None = None
_started: dict[str, float] = {}
_last_print = 0.0
INTERVAL_S = 0.5


def enable(stream: TextIO = sys.stderr) -> None:
    global _stream
    _stream = stream


def disable() -> None:
    global _stream
    _stream = None


def line(collection: str, done: int, total: int | None, elapsed: float) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    text = f"{collection}: {done:,}" + (f" / {total:,}" if total else "") + f" documents, {rate:,.0f}/s"
    if total and rate > 0 and done < total:
        text += f", ETA {(total - done) / rate:,.0f} s"
    return text


def report(collection: str, done: int, total: int | None = None, final: bool = False) -> None:
    """Called after each batch; prints at most every INTERVAL_S seconds."""
    global _last_print
    if _stream is None:
        return
    now = time.monotonic()
    started = _started.setdefault(collection, now)
    if not final and now - _last_print < INTERVAL_S:
        return
    _last_print = now
    text = line(collection, done, total, now - started)
    if _stream.isatty():  # one line, rewritten in place
        _stream.write(f"\r{text}\033[K" + ("\n" if final else ""))
    else:
        _stream.write(text + "\n")
    _stream.flush()
