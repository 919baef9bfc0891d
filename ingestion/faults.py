"""Deterministic fault points for crash tests: `ATLAS_FAULT_POINT` names a point of a run at which
the process kills itself with SIGKILL, as a crash, an OOM kill or a lost machine would, leaving
whatever that point leaves on disk and in the warehouse. Unset (always, outside tests), every point
is a no-op.

Points, in the order a run reaches them for each load:
- `after-extract`: the load package is extracted, not normalized;
- `after-normalize`: the package is normalized and checked, nothing loaded;
- `mid-load`: the first load job has completed, the others (and a replace's swap) have not;
- `after-load`: the package (rows and state) is loaded; the run's own work after it is not done;
- `cdc-flush`: a CDC flush has emitted its first batch of changes, its load has not started.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from dlt.common.runtime.collector import NullCollector

from ingestion.errors import ConfigError

FAULT_POINT_ENV = "ATLAS_FAULT_POINT"
POINTS = ("after-extract", "after-normalize", "mid-load", "after-load", "cdc-flush")


def check_fault_point() -> None:
    """An unknown point is a mistake in a test, refused before the run starts."""
    point = os.environ.get(FAULT_POINT_ENV)
    if point and point not in POINTS:
        raise ConfigError(f"{FAULT_POINT_ENV}='{point}' is not a fault point: choose one of {', '.join(POINTS)}")


def reached(point: str) -> None:
    if os.environ.get(FAULT_POINT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


class _MidLoad(NullCollector):
    """dlt reports each finished load job to its progress collector: the first one is mid-load."""

    def __init__(self) -> None:
        super().__init__()
        self.step: str | None = None

    def _start(self, step: str) -> None:
        self.step = step

    def update(self, name: str, inc: int = 1, *args: Any, **kwargs: Any) -> None:
        if name == "Jobs" and inc and self.step and "load" in self.step.lower():
            reached("mid-load")


def progress_collector() -> Any:
    """The collector for dlt.pipeline(progress=...): dlt's default unless `mid-load` is armed."""
    return _MidLoad() if os.environ.get(FAULT_POINT_ENV) == "mid-load" else NullCollector()
