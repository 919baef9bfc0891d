"""BSON values to warehouse values: the one place that decides how each BSON type lands.

Top-level scalars become typed columns; nested documents and arrays become JSON (JSON on DuckDB,
SUPER on Redshift). The mapping is documented, type by type, in docs/bson_types.md.
"""

from __future__ import annotations

import base64
import decimal
import math
import re
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable

import orjson
import pyarrow as pa
from bson import Binary, Code, DBRef, DatetimeMS, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp, json_util
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions, DatetimeConversion

# tz-aware UTC datetimes; out-of-range dates come back as DatetimeMS instead of raising.
CODEC_OPTIONS: CodecOptions = CodecOptions(
    tz_aware=True,
    tzinfo=timezone.utc,
    uuid_representation=UuidRepresentation.UNSPECIFIED,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)

# Column kinds: the warehouse-facing type of a top-level field, named as dlt's data types so that
# kinds can be read back from a stored dlt schema.
TEXT, BOOL, BIGINT, DOUBLE, TIMESTAMP, DECIMAL, JSON = "text", "bool", "bigint", "double", "timestamp", "decimal", "json"

# Decimal128 lands in decimal(38, 9) when that holds the value exactly; otherwise as exact text.
DECIMAL_PRECISION, DECIMAL_SCALE = 38, 9
_MAX_INTEGER_DIGITS = DECIMAL_PRECISION - DECIMAL_SCALE

ARROW_TYPES: dict[str, pa.DataType] = {
    TEXT: pa.string(),
    BOOL: pa.bool_(),
    BIGINT: pa.int64(),
    DOUBLE: pa.float64(),
    TIMESTAMP: pa.timestamp("us", tz="UTC"),
    DECIMAL: pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE),
    JSON: pa.string(),
}

_KIND_BY_TYPE: dict[type, str] = {
    str: TEXT,
    ObjectId: TEXT,
    uuid.UUID: TEXT,
    Code: TEXT,
    bytes: TEXT,  # BSON binary subtype 0 decodes as bytes
    bool: BOOL,
    int: BIGINT,
    Int64: BIGINT,
    float: DOUBLE,
    datetime: TIMESTAMP,
    dict: JSON,
    list: JSON,
}


def decimal_fits(value: Decimal) -> bool:
    """True when decimal(38, 9) holds the number `value` exactly: finite, at most 29 digits before
    the point and none but zeros after the 9th decimal place. The number decides, not how it is
    written: `0.00123400000` is 0.001234 (fits), every zero fits (`0E+6111`, `-0`), `1E+29` does not."""
    if not value.is_finite():
        return False
    if not value:
        return True
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    significant, exponent = len(digits) - trailing_zeros, exponent + trailing_zeros
    return exponent >= -DECIMAL_SCALE and significant + exponent <= _MAX_INTEGER_DIGITS


def kind_of(value: Any) -> str:
    """Column kind of a non-null BSON value; anything without a scalar column type is JSON."""
    kind = _KIND_BY_TYPE.get(type(value))
    if kind is not None:
        return kind
    if isinstance(value, Decimal128):
        return DECIMAL if decimal_fits(value.to_decimal()) else TEXT
    if isinstance(value, Binary):
        return TEXT
    return JSON


# The byte order of legacy UUIDs (binary subtype 3) depends on the driver that wrote them; the
# connection string says which (`uuidRepresentation=javaLegacy|csharpLegacy|pythonLegacy`), as
# for any MongoDB driver. Other representations (standard, unspecified) leave Python's legacy order.
LEGACY_UUID_ORDERS = (UuidRepresentation.PYTHON_LEGACY, UuidRepresentation.JAVA_LEGACY, UuidRepresentation.CSHARP_LEGACY)
_legacy_uuid_order = UuidRepresentation.PYTHON_LEGACY


def read_legacy_uuids_as(representation: int) -> None:
    """Read subtype-3 UUIDs in `representation`'s byte order from now on in this process (a run
    sets it from its client's `uuidRepresentation`); any other representation means Python's."""
    global _legacy_uuid_order
    _legacy_uuid_order = representation if representation in LEGACY_UUID_ORDERS else UuidRepresentation.PYTHON_LEGACY


def binary_to_text(value: Binary) -> str:
    """UUID subtypes as canonical UUID strings (legacy subtype 3 read in the byte order of
    `read_legacy_uuids_as`); any other binary as base64."""
    if value.subtype == 4:
        return str(value.as_uuid(UuidRepresentation.STANDARD))
    if value.subtype == 3:
        return str(value.as_uuid(_legacy_uuid_order))
    return base64.b64encode(bytes(value)).decode("ascii")


def to_text(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, Binary):
        return binary_to_text(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Decimal128):
        return str(value.to_decimal())  # exact digits, never through float
    if isinstance(value, Code) and value.scope is not None:
        # code with scope: both, as canonical extended JSON (the code alone would lose the scope)
        return json_util.dumps(value, json_options=json_util.CANONICAL_JSON_OPTIONS)
    return str(value)


_DECIMAL_CONTEXT = decimal.Context(prec=DECIMAL_PRECISION)
_DECIMAL_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)


def to_decimal(value: Decimal128 | int) -> Decimal:
    """A value `decimal_fits` placed in a decimal column, written at the column's scale (the same
    number: `0E+6111` as 0.000000000, `0.00123400000` as 0.001234000); an integer sharing the
    column as the same exact number."""
    number = value.to_decimal() if isinstance(value, Decimal128) else Decimal(int(value))
    return number.quantize(_DECIMAL_QUANTUM, context=_DECIMAL_CONTEXT)


_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def non_finite_text(value: float) -> str:
    """JSON has no NaN or Infinity: they travel as these strings."""
    return "NaN" if value != value else _NON_FINITE[value]


_REGEX_FLAGS = ((re.IGNORECASE, "i"), (re.LOCALE, "l"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.UNICODE, "u"), (re.VERBOSE, "x"))


def regex_options(flags: int | str) -> str:
    """MongoDB's option letters, as in `/pattern/options`."""
    if isinstance(flags, str):
        return flags
    return "".join(letter for flag, letter in _REGEX_FLAGS if flags & flag)


def _json_default(value: Any) -> Any:
    """orjson hook for BSON types inside nested documents: the same text as at top level, or a
    tagged object for types without one. orjson writes subclasses of str (Code), int (Int64) and
    dict itself, natively: nested code with scope keeps its code only. Passing them here
    (OPT_PASSTHROUGH_SUBCLASS) would keep the scope at 6x the cost of a document with int64 values
    (21.0 against 3.4 us for 50 of them) and 1.4x for any other, for a type MongoDB deprecated."""
    if isinstance(value, (ObjectId, Decimal128, Binary, bytes, Code)):
        return to_text(value)
    if isinstance(value, DatetimeMS):
        return {"$date": int(value)}
    if isinstance(value, DBRef):  # a {"$ref", "$id"[, "$db"]} subdocument, as MongoDB stores it
        return dict(value.as_doc())
    if isinstance(value, Regex):
        return {"$regex": value.pattern, "$options": regex_options(value.flags)}
    if isinstance(value, Timestamp):
        return {"$timestamp": {"t": value.time, "i": value.inc}}
    if isinstance(value, MinKey):
        return {"$minKey": 1}
    if isinstance(value, MaxKey):
        return {"$maxKey": 1}
    raise TypeError(f"unsupported BSON value of type {type(value).__name__}")


def _replace_non_finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return non_finite_text(value)
    if isinstance(value, dict):
        return {k: _replace_non_finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_non_finite(v) for v in value]
    return value


def to_json(value: Any) -> str:
    out = orjson.dumps(value, default=_json_default)
    # orjson writes NaN/Infinity as null; only when a null appears can one have been rewritten.
    if b"null" in out:
        fixed = _replace_non_finite(value)
        out = orjson.dumps(fixed, default=_json_default)
    return out.decode("utf-8")


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    TEXT: to_text,
    BOOL: bool,
    BIGINT: int,
    DOUBLE: float,
    TIMESTAMP: lambda v: v,
    DECIMAL: to_decimal,
    JSON: to_json,
}


# Numbers of different BSON types in one field share one column of the widest kind that holds
# them: integers (int32, int64) widen to double or to decimal. Doubles and decimals have no
# common exact type, so that one mix keeps a variant column.
_WIDER_NUMBER: dict[frozenset[str], str] = {
    frozenset({BIGINT, DOUBLE}): DOUBLE,
    frozenset({BIGINT, DECIMAL}): DECIMAL,
}


def common_kind(kinds: set[str] | frozenset[str]) -> str | None:
    """The one column kind that holds values of all `kinds` (one kind, or numbers that widen);
    None when they need more than one column."""
    if len(kinds) == 1:
        return next(iter(kinds))
    return _WIDER_NUMBER.get(frozenset(kinds))


# MongoDB's names for BSON types (the aliases `$type` takes), for schema discovery.
_BSON_TYPE_NAMES: dict[type, str] = {
    float: "double", str: "string", dict: "object", list: "array", Binary: "binData", bytes: "binData",
    uuid.UUID: "binData", ObjectId: "objectId", bool: "bool", datetime: "date", DatetimeMS: "date",
    type(None): "null", Regex: "regex", re.Pattern: "regex", Code: "javascript", Int64: "long",
    Timestamp: "timestamp", Decimal128: "decimal", MinKey: "minKey", MaxKey: "maxKey",
    DBRef: "object",  # pymongo decodes a {"$ref", "$id"} subdocument as a DBRef
}
_INT32 = range(-(2**31), 2**31)


def bson_type_name(value: Any) -> str:
    """MongoDB's name of a decoded value's BSON type (`int` for int32, `long` for int64)."""
    if type(value) is int:
        return "int" if value in _INT32 else "long"
    name = _BSON_TYPE_NAMES.get(type(value))
    if name is None:
        name = next((n for t, n in _BSON_TYPE_NAMES.items() if isinstance(value, t)), "unknown")
    return name


# Texts another `_id` type produces: an ObjectId's hex, and canonical extended JSON (`{...}` for
# most types, `null`/`true`/`false`). A string `_id` of either shape, or starting with a quote, is
# stored JSON-quoted, so that every text names exactly one `_id`.
_OBJECT_ID_HEX = re.compile(r"[0-9a-f]{24}")
_JSON_SHAPED = re.compile(r'[{"].*|null|true|false', re.DOTALL)
_ID_JSON_OPTIONS = json_util.CANONICAL_JSON_OPTIONS.with_options(tz_aware=True, tzinfo=timezone.utc)


def id_to_text(value: Any) -> str:
    """`_id` is always text, one text per `_id`: ObjectId as 24-char hex, strings as they are;
    any other type as canonical extended JSON (`{"$numberInt": "5"}`), so the int 5 and the string
    "5" stay distinct. A string that would read as one of the other forms is stored JSON-quoted
    (`"5f0c..."`, `"{\"$numberInt\": \"8\"}"`)."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, str):
        return orjson.dumps(value).decode() if _OBJECT_ID_HEX.fullmatch(value) or _JSON_SHAPED.fullmatch(value) else value
    return json_util.dumps(value, json_options=json_util.CANONICAL_JSON_OPTIONS)


def id_from_text(text: str) -> Any:
    """The `_id` whose text (`id_to_text`) is `text`. A JSON-shaped text that does not parse (not
    written by `id_to_text`) is taken as the string it is."""
    if _OBJECT_ID_HEX.fullmatch(text):
        return ObjectId(text)
    if _JSON_SHAPED.fullmatch(text):
        try:
            return json_util.loads(text, json_options=_ID_JSON_OPTIONS)
        except ValueError:
            return text
    return text
