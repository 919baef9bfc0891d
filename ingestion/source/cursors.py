"""Incremental cursors: how cursor values are stored in dlt state, which documents stored values
select, and how a batch moves them.

A cursor field may hold values of several BSON types (dates in old documents, integers in new
ones). MongoDB compares values only within a type bracket (`{$gte: <date>}` never matches a
number), so one stored value would leave every other bracket unread. The cursor is therefore
kept per bracket: each bracket seen so far is read from its own maximum, and documents whose
cursor is of a bracket not seen yet, or of a type no range can order (booleans, objects,
arrays, binary data), are read on every run (and merged on `_id`), like documents without a
cursor value.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from bson import Decimal128, Int64, ObjectId, Timestamp, json_util
from bson.datetime_ms import DatetimeMS

# Decoded as documents are read (tz-aware UTC): a naive stored date would not compare with the
# documents' dates, and the cursor would never move past its first value.
_CURSOR_JSON_OPTIONS = json_util.CANONICAL_JSON_OPTIONS.with_options(tz_aware=True, tzinfo=timezone.utc)

# The comparison brackets a cursor range can follow, with the `$type` names each one holds.
BRACKET_TYPES: dict[str, tuple[str, ...]] = {
    "number": ("double", "int", "long", "decimal"),
    "string": ("string", "symbol"),
    "objectId": ("objectId",),
    "date": ("date",),
    "timestamp": ("timestamp",),
}
# Every other non-null `$type`: documents with such a cursor value are read on every run.
_UNORDERED_TYPES = ("object", "array", "binData", "undefined", "bool", "regex", "dbPointer", "javascript",
                    "javascriptWithScope", "minKey", "maxKey")

Cursors = dict[str, Any]  # bracket -> the largest cursor value of that bracket loaded so far


def encode_cursor(value: Any) -> str:
    """Cursor values are kept in dlt state as canonical extended JSON: exact for every BSON type."""
    return json_util.dumps({"v": value}, json_options=_CURSOR_JSON_OPTIONS)


def decode_cursor(text: str) -> Any:
    return json_util.loads(text, json_options=_CURSOR_JSON_OPTIONS)["v"]


def decode_cursors(state: dict[str, Any]) -> Cursors | None:
    """The cursors a resource's state holds, or None before its first incremental load. A state
    written before cursors were kept per bracket holds one `last_cursor`: its own bracket."""
    if "last_cursors" in state:
        return {bracket: decode_cursor(text) for bracket, text in state["last_cursors"].items()}
    if "last_cursor" in state:
        value = decode_cursor(state["last_cursor"])
        bracket = bracket_of(value)
        return {bracket: value} if bracket else {}
    return None


def store_cursors(state: dict[str, Any], cursors: Cursors) -> None:
    state["last_cursors"] = {bracket: encode_cursor(value) for bracket, value in cursors.items()}
    state.pop("last_cursor", None)


def bracket_of(value: Any) -> str | None:
    """The bracket a cursor value is ordered in, or None for a value no range can order."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Int64, float, Decimal128)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, ObjectId):
        return "objectId"
    if isinstance(value, (datetime, DatetimeMS)):
        return "date"
    if isinstance(value, Timestamp):
        return "timestamp"
    return None


def _order_key(bracket: str, value: Any) -> Any:
    """A key that orders `value` within its bracket as MongoDB does, or None for NaN (which
    sorts below every number, so never a maximum)."""
    if bracket == "number":
        number = value.to_decimal() if isinstance(value, Decimal128) else value
        if (isinstance(number, Decimal) and number.is_nan()) or (isinstance(number, float) and math.isnan(number)):
            return None
        return number
    if bracket == "date":
        return int(value) if isinstance(value, DatetimeMS) else int(DatetimeMS(value))
    return value


def incremental_filters(user_filter: dict[str, Any], cursor_field: str, cursors: Cursors,
                        lookback_seconds: float | None = None) -> list[dict[str, Any]]:
    """Disjoint queries, evaluated by the server, that together read every document changed since
    `cursors`: per bracket seen, its values at or after the bracket's maximum (`$gte`: documents
    sharing the boundary value are read again and merged on `_id`, never lost), with dates read
    `lookback_seconds` earlier; documents without a cursor value, which no range can reach; and
    documents whose value is of another type. Several queries rather than one `$or`, so that each
    uses the cursor index on every server. The last query reads arrays on every run; a range or the
    null query may match one through its elements too (`without_repeated_arrays` drops the second
    read), which costs less than excluding arrays from every range (`$not` keeps servers from using
    the index)."""
    windows: list[dict[str, Any]] = []
    for bracket, value in cursors.items():
        if bracket == "date" and lookback_seconds and isinstance(value, datetime):
            value = value - timedelta(seconds=lookback_seconds)
        windows.append({cursor_field: {"$gte": value}})
    windows.append({cursor_field: None})
    others = [t for bracket, types in BRACKET_TYPES.items() if bracket not in cursors for t in types]
    windows.append({cursor_field: {"$type": [*others, *_UNORDERED_TYPES]}})
    return [{"$and": [user_filter, w]} if user_filter else w for w in windows]


def _cursor_value(doc: dict[str, Any], keys: list[str]) -> Any:
    value: Any = doc
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def without_repeated_arrays(docs: list[dict[str, Any]], path: str, seen: set[Any]) -> list[dict[str, Any]]:
    """`docs` less those whose cursor is an array and whose `_id` is in `seen` (read by another of
    the `incremental_filters` already); adds the others' `_id`s to `seen`."""
    keys = path.split(".")
    kept = []
    for doc in docs:
        if isinstance(_cursor_value(doc, keys), list):
            key = repr(doc.get("_id"))  # any BSON type, hashable
            if key in seen:
                continue
            seen.add(key)
        kept.append(doc)
    return kept


def max_cursors(docs: list[dict[str, Any]], path: str, current: Cursors) -> Cursors:
    """`current` moved to the largest cursor value of each bracket among `docs`."""
    keys = path.split(".")
    best = dict(current)
    for doc in docs:
        value = _cursor_value(doc, keys)
        bracket = bracket_of(value)
        if bracket is None:
            continue
        key = _order_key(bracket, value)
        if key is None:
            continue
        if bracket not in best or key > _order_key(bracket, best[bracket]):
            best[bracket] = value
    return best
