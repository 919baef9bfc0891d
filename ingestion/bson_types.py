"""BSON values to warehouse values: the one place that decides how each BSON type lands.

Top-level scalars become typed columns; nested documents and arrays become JSON text (JSON on
DuckDB, SUPER on Redshift). The mapping is documented in docs/bson_types.md.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

import orjson
import pyarrow as pa
from bson import Binary, Code, DatetimeMS, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions, DatetimeConversion

# tz-aware UTC datetimes; out-of-range dates come back as DatetimeMS instead of raising.
CODEC_OPTIONS: CodecOptions = CodecOptions(
    tz_aware=True,
    tzinfo=timezone.utc,
    uuid_representation=UuidRepresentation.UNSPECIFIED,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)

# Column kinds: the warehouse-facing type of a top-level field.
# Named as dlt's data types, so kinds can be read back from a stored dlt schema.
TEXT, BOOL, BIGINT, DOUBLE, TIMESTAMP, JSON = "text", "bool", "bigint", "double", "timestamp", "json"

ARROW_TYPES: dict[str, pa.DataType] = {
    TEXT: pa.string(),
    BOOL: pa.bool_(),
    BIGINT: pa.int64(),
    DOUBLE: pa.float64(),
    TIMESTAMP: pa.timestamp("us", tz="UTC"),
    JSON: pa.string(),
}

_KIND_BY_TYPE: dict[type, str] = {
    str: TEXT,
    ObjectId: TEXT,
    uuid.UUID: TEXT,
    Code: TEXT,
    bool: BOOL,
    int: BIGINT,
    Int64: BIGINT,
    float: DOUBLE,
    datetime: TIMESTAMP,
    Decimal128: TEXT,
    dict: JSON,
    list: JSON,
}


def kind_of(value: Any) -> str:
    """Column kind of a non-null BSON value; anything without a scalar column type is JSON."""
    kind = _KIND_BY_TYPE.get(type(value))
    if kind is not None:
        return kind
    if isinstance(value, Binary):
        return TEXT
    return JSON


def binary_to_text(value: Binary) -> str:
    """UUID subtypes as canonical UUID strings (legacy subtype 3 read as Java/C#/Python-legacy
    is ambiguous, so it is read as the Python legacy layout); any other binary as base64."""
    if value.subtype == 4:
        return str(value.as_uuid(UuidRepresentation.STANDARD))
    if value.subtype == 3:
        return str(value.as_uuid(UuidRepresentation.PYTHON_LEGACY))
    return base64.b64encode(bytes(value)).decode("ascii")


def to_text(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, Binary):
        return binary_to_text(value)
    if isinstance(value, Decimal128):
        return str(value.to_decimal())  # exact digits, never through float
    return str(value)


def _json_default(value: Any) -> Any:
    """orjson hook for BSON types inside nested documents: lossless string or tagged object."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, Decimal128):
        return str(value.to_decimal())
    if isinstance(value, Binary):
        return binary_to_text(value)
    if isinstance(value, DatetimeMS):
        return {"$date": int(value)}
    if isinstance(value, Regex):
        return {"$regex": value.pattern, "$options": value.flags if isinstance(value.flags, str) else ""}
    if isinstance(value, Timestamp):
        return {"$timestamp": {"t": value.time, "i": value.inc}}
    if isinstance(value, MinKey):
        return {"$minKey": 1}
    if isinstance(value, MaxKey):
        return {"$maxKey": 1}
    if isinstance(value, Code):
        return str(value)
    raise TypeError(f"unsupported BSON value of type {type(value).__name__}")


def to_json(value: Any) -> str:
    return orjson.dumps(value, default=_json_default).decode("utf-8")


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    TEXT: to_text,
    BOOL: bool,
    BIGINT: int,
    DOUBLE: float,
    TIMESTAMP: lambda v: v,
    JSON: to_json,
}


def id_to_text(value: Any) -> str:
    """`_id` is always a string: ObjectId as 24-char hex, strings as is, anything else as JSON."""
    if isinstance(value, (ObjectId, str)):
        return str(value)
    return to_json(value)
