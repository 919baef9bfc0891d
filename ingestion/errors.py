"""Errors the CLI turns into one clear line and a documented exit code."""

from __future__ import annotations


class IngestError(Exception):
    """A failure the user can fix; `exit_code` is what the CLI exits with. `summary`, when set, is
    the RunSummary of what did load (printed before the error line)."""

    exit_code = 1
    summary: object | None = None


class ConfigError(IngestError):
    """Invalid flags or configuration (exit 2)."""

    exit_code = 2


class SourceError(IngestError):
    """MongoDB unreachable, bad credentials, missing database or collection (exit 3)."""

    exit_code = 3


class DestinationError(IngestError):
    """The warehouse or bucket refused the load (exit 4)."""

    exit_code = 4


class LocalServerError(IngestError):
    """The local MongoDB-wire server could not be started or stopped (exit 5)."""

    exit_code = 5


class LockedError(IngestError):
    """Another run of the same pipeline holds the lock (exit 7)."""

    exit_code = 7


class PartialFailure(IngestError):
    """Some collections of the run failed; the others loaded and were recorded (exit 8)."""

    exit_code = 8

    def __init__(self, message: str, summary: object) -> None:
        super().__init__(message)
        self.summary = summary  # the RunSummary of the collections that loaded


class UnreconciledLoad(SourceError):
    """Everything loaded and is recorded, but MongoDB went away before the reconciliation could
    count the source (exit 3: the next run needs the server too)."""

    def __init__(self, message: str, summary: object) -> None:
        super().__init__(message)
        self.summary = summary


def exception_chain(exc: BaseException | None) -> list[BaseException]:
    """`exc` and every exception it was raised from or during, outermost first."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain
