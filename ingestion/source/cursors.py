"""Incremental cursors: how a cursor value is stored in dlt state, which documents a stored value
selects, and how a batch moves it."""

from __future__ import annotations

from datetime import timezone
from typing import Any

from bson import json_util

# Decoded as documents are read (tz-aware UTC): a naive stored date would not compare with the
# documents' dates, and the cursor would never move past its first value.
_CURSOR_JSON_OPTIONS = json_util.CANONICAL_JSON_OPTIONS.with_options(tz_aware=True, tzinfo=timezone.utc)


def encode_cursor(value: Any) -> str:
    """Cursor values are kept in dlt state as canonical extended JSON: exact for every BSON type."""
    return json_util.dumps({"v": value}, json_options=_CURSOR_JSON_OPTIONS)


def decode_cursor(text: str) -> Any:
    return json_util.loads(text, json_options=_CURSOR_JSON_OPTIONS)["v"]


def incremental_filters(user_filter: dict[str, Any], cursor_field: str, last_value: Any) -> list[dict[str, Any]]:
    """Documents at or after the last cursor value, evaluated by the server (`$gte`: documents
    sharing the boundary value are read again and merged on `_id`, never lost), and documents
    without a cursor value, which no range can reach. Two disjoint queries rather than one `$or`,
    so that each uses the cursor index on every server."""
    windows = [{cursor_field: {"$gte": last_value}}, {cursor_field: None}]
    return [{"$and": [user_filter, w]} if user_filter else w for w in windows]


def max_cursor(docs: list[dict[str, Any]], path: str, current: Any) -> Any:
    """The largest cursor value among `docs` and `current`."""
    keys = path.split(".")
    best = current
    for doc in docs:
        value: Any = doc
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        if best is None:
            best = value
        else:
            try:
                if value > best:
                    best = value
            except TypeError:
                pass  # a value of another BSON type than the cursor's: it cannot move the cursor
    return best
