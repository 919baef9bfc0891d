"""DuckDB's memory on the local destination: a small cap by default, raised for a load that runs out."""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Callable

import dlt
from dlt.pipeline.exceptions import PipelineStepFailed

from ingestion.errors import exception_chain

# DuckDB caches the table it writes up to this cap (its default is 80% of RAM), so without a small
# cap the memory of a full load grows with the collection (docs/benchmarks.md). Large documents
# need more, and how much varies from run to run (the awkward corpus, with one 15 MB document,
# loaded under 128MB and failed once under 256MB): see DUCKDB_MAX_MEMORY_LIMIT.
DUCKDB_MEMORY_LIMIT = os.environ.get("ATLAS_DUCKDB_MEMORY_LIMIT", "256MB")
# How much memory DuckDB needs also depends on the documents: it holds values of several MB in
# memory together while it loads them. A load that runs out is loaded again with twice the cap,
# up to this (default: half of the machine's memory).
DUCKDB_MAX_MEMORY_LIMIT = os.environ.get("ATLAS_DUCKDB_MAX_MEMORY_LIMIT") or (
    f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2 // 2**20}MiB")
_MEMORY_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)
_MEMORY_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
                 "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
log = logging.getLogger("atlas_ingest")


def is_out_of_memory(exc: BaseException) -> bool:
    """DuckDB ran out of memory. Raised in dlt's main thread it is DuckDB's own exception type;
    a load job, though, runs in a worker thread and dlt keeps only its message, so the message is
    the only trace of the cause there (DuckDB's "Out of Memory Error: ...")."""
    try:
        from duckdb import OutOfMemoryException
    except ImportError:  # no DuckDB installed: no local destination either
        return False
    return any(isinstance(e, OutOfMemoryException) or "Out of Memory Error" in str(e) for e in exception_chain(exc))


def memory_bytes(text: str) -> int | None:
    """Bytes in a DuckDB memory size such as "256MB" or "2GiB"; None if it is not one."""
    match = _MEMORY_SIZE.match(text)
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()]) if match else None


def load_within_memory(pipeline: dlt.Pipeline, duckdb_credentials: Any, run: Callable[[], Any]) -> None:
    """`run()` (a pipeline run). On the local destination, a load step that runs out of memory is
    loaded again, its package as it is, with twice DuckDB's cap, up to DUCKDB_MAX_MEMORY_LIMIT.
    The cap stays raised for the rest of the run."""
    try:
        run()
        return
    except PipelineStepFailed as exc:
        failure = exc
    credentials = duckdb_credentials
    ceiling = memory_bytes(DUCKDB_MAX_MEMORY_LIMIT) or 0
    while credentials is not None and failure.step == "load" and is_out_of_memory(failure.exception):
        current = memory_bytes(credentials.global_config["memory_limit"]) or ceiling
        raised = min(current * 2, ceiling) // 2**20  # whole MiB
        if raised * 2**20 <= current:
            break  # at the ceiling
        log.warning("DuckDB ran out of memory with memory_limit %s: loading again with %dMiB",
                    credentials.global_config["memory_limit"], raised)
        credentials.global_config["memory_limit"] = f"{raised}MiB"
        try:
            pipeline.load()
            return
        except PipelineStepFailed as exc:
            failure = exc
    raise failure
