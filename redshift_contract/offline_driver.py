"""An offline stand-in for Redshift's drivers: it accepts every statement, answers with empty
results (and one all-clear row for dbt tests), and turns bound parameters into literals so the
statements it records are complete. Shared by the dbt compile and the dlt load recorder."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Sequence

_TEST_RESULT_COLUMNS = (("failures", 23), ("should_warn", 16), ("should_error", 16))


class OfflineCursor:
    """Answers like redshift_connector's cursor: empty results, one all-clear row for tests."""

    def __init__(self) -> None:
        self.description: list[tuple[Any, ...]] | None = None
        self.rowcount = -1
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, args: Any = None, **_: Any) -> "OfflineCursor":
        if re.search(r"\bas\s+failures\b", sql, re.IGNORECASE):
            self.description = [(name, code, None, None, None, None, None) for name, code in _TEST_RESULT_COLUMNS]
            self._rows = [(0, False, False)]
        else:
            self.description, self._rows = None, []
        self.rowcount = len(self._rows)
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows, []
        return rows

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.pop(0) if self._rows else None

    def close(self) -> None:
        pass

    def __enter__(self) -> "OfflineCursor":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


class OfflineConnection:
    autocommit = True

    def cursor(self) -> OfflineCursor:
        return OfflineCursor()

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


def _literal(value: Any) -> str:
    """A binding as a SQL literal, so recorded statements are complete (seed inserts)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return repr(value) if not isinstance(value, Decimal) else str(value)
    if isinstance(value, (date, datetime)):
        return f"'{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def bind_parameters(sql: str, bindings: Sequence[Any] | None) -> str:
    if not bindings:
        return sql
    values = iter(bindings)
    return re.sub(r"%s", lambda _: _literal(next(values)), sql)
