"""Batches of decoded documents to typed columns, then to Arrow tables or JSON-lines files.

Converting whole columns at once (instead of handing dlt one dict per document) keeps the
per-document Python work to a key lookup, and dlt then writes or imports files without
normalizing rows. A field seen with a second type lands in a variant column
`<column>__v_<kind>` (dlt's own convention), numbers of different BSON types share one column of
their common kind, and a document that cannot be converted is quarantined with the reason:
nothing is dropped silently. Two fields that would share a column stop the load.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import orjson
import pyarrow as pa
from bson import json_util

from ingestion.mongo.bson_types import (
    ARROW_TYPES,
    CONVERTERS,
    DECIMAL,
    DECIMAL_PRECISION,
    DECIMAL_SCALE,
    DOUBLE,
    JSON,
    TEXT,
    common_kind,
    id_to_text,
    kind_of,
    non_finite_text,
)
from ingestion.naming import NameCollision, UnusableName, check_length, checked_column_name, short_name
from ingestion.schema.discovery import CollectionSchema, planned_kind

EXTRACTED_AT = "_atlas_extracted_at"
DELETED_AT = "_deleted_at"  # soft deletes (CDC, and incremental with detect_deletes): when the document went
MAX_ID_CHARS = 512  # `_id` column width; a longer `_id` (as text) is quarantined
LOAD_ID = "_dlt_load_id"


@dataclass(frozen=True)
class RowLimits:
    """What one row may hold in a destination. A document over a limit is quarantined with the
    limit it broke and the rest of its batch loads, instead of a COPY that fails the whole load
    (and every later one, since the document is read again)."""

    destination: str  # named in the quarantine reason
    max_row_bytes: int | None = None  # one row as a JSON object (COPY ... JSON)
    max_string_bytes: int | None = None  # one string, top-level or nested; binary counts as its base64 text
    max_columns: int | None = None  # columns of one table, the project's own among them


# The project's own columns a table may carry besides the document's (`_atlas_extracted_at`,
# `_dlt_load_id`, CDC's `_atlas_snapshot_id`, `_atlas_deleted`, `_deleted_at`, and one spare).
OWN_COLUMNS = 6
# Redshift: 4 MB per JSON object in COPY, 65,535 bytes per VARCHAR (and per string inside SUPER,
# which itself holds at most 16 MB: a row under 4 MB is always under it), 1,600 columns per table.
REDSHIFT_LIMITS = RowLimits("Redshift", max_row_bytes=4 * 1024 * 1024, max_string_bytes=65_535, max_columns=1_600)


@dataclass
class Quarantined:
    document_id: str
    reason: str
    document: dict[str, Any]


@dataclass
class ColumnRegistry:
    """Columns of one table: each column's kind and the field it came from.

    A column's kind is the kind it has in the warehouse (`stored`), else the kind discovery
    planned for its field (`planned`), else the first kind seen. Numbers that widen share the
    column (an int column that receives a double becomes double: `widenings` lists the stored
    columns whose warehouse type must change before the next load, `widened` every one this run
    changed); any other kind goes to a variant column `<column>__v_<kind>`."""

    kinds: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    new_columns: list[str] = field(default_factory=list)
    variant_columns: list[str] = field(default_factory=list)
    stored: set[str] = field(default_factory=set)  # columns the warehouse table has
    planned: dict[str, str] = field(default_factory=dict)
    widened: list[str] = field(default_factory=list)
    widenings: dict[str, str] = field(default_factory=dict)

    def column_name(self, key: str) -> str:
        """The warehouse column of a top-level field; raises NameCollision when two fields
        collide or the name is too long for the warehouse."""
        name = checked_column_name(key)
        owner = self.fields.setdefault(name, key)
        if owner != key:
            raise NameCollision(
                f"fields '{owner}' and '{key}' both map to column '{name}': leave one out with a projection "
                f"(projection = '{{\"{key}\": 0}}' in [sources.atlas.collections.<name>] of .dlt/config.toml)"
            )
        return name

    def column_for(self, name: str, kind: str) -> str:
        known = self.kinds.get(name)
        if known is None:
            # A new column takes the kind discovery planned for its field, whatever comes first.
            self.kinds[name] = self.planned.get(name, kind)
            self.new_columns.append(name)
            return self.column_for(name, kind)
        if known == kind:
            return name
        wider = common_kind({known, kind})
        if wider == known:
            return name
        if wider == kind:
            self.kinds[name] = kind
            if name in self.stored:  # a column only this run has seen is simply written wider
                self.widenings[name] = kind
                if name not in self.widened:
                    self.widened.append(name)
            return name
        variant = f"{name}__v_{kind}"
        if variant not in self.kinds:
            check_length(variant, f"the variant column of '{self.fields.get(name, name)}'")
            self.kinds[variant] = kind
            self.variant_columns.append(variant)
        return variant

    def seed(self, stored: dict[str, str]) -> None:
        """The kinds the warehouse table already has: they win over the first kind seen."""
        for name, kind in stored.items():
            self.kinds.setdefault(name, kind)
            self.stored.add(name)

    def forget(self, names: list[str]) -> None:
        """Columns only quarantined documents had: the table does not get them."""
        for name in names:
            del self.kinds[name]
            if self.fields.get(name) is not None:
                del self.fields[name]
            for listed in (self.new_columns, self.variant_columns):
                if name in listed:
                    listed.remove(name)

    def take_widenings(self) -> dict[str, str]:
        """Stored columns to widen in the warehouse (column -> new kind), once each."""
        pending, self.widenings = self.widenings, {}
        return pending

    @classmethod
    def from_schema(cls, schema: Any, table: str) -> "ColumnRegistry":
        """The kinds a table already has in a stored dlt schema, so type drift is seen across runs."""
        registry = cls()
        registry.seed(stored_kinds(schema, table))
        return registry

    def dlt_columns(self) -> dict[str, dict[str, Any]]:
        """dlt column hints: types of every column, `_id` as the non-null primary key."""
        columns: dict[str, dict[str, Any]] = {}
        for name, kind in self.kinds.items():
            column: dict[str, Any] = {"name": name, "data_type": kind, "nullable": name != "_id"}
            if kind == DECIMAL:
                column.update(precision=DECIMAL_PRECISION, scale=DECIMAL_SCALE)
            columns[name] = column
        # Redshift: DISTKEY on _id (merges join on it), SORTKEY on the extraction time (incremental
        # models read the newest rows). Other destinations ignore both hints.
        columns["_id"].update(primary_key=True, precision=MAX_ID_CHARS, cluster=True)
        columns[EXTRACTED_AT] = {"name": EXTRACTED_AT, "data_type": "timestamp", "nullable": True, "sort": True}
        return columns


def stored_kinds(schema: Any, table: str) -> dict[str, str]:
    """Column kinds of `table` in a dlt schema (none when there is no schema or table)."""
    if schema is None:
        return {}
    columns = schema.tables.get(table, {}).get("columns", {})
    return {
        name: col["data_type"] for name, col in columns.items()
        if "data_type" in col and not name.startswith("_dlt") and not name.startswith("_atlas")
    }


def plan_columns(registry: ColumnRegistry, schema: CollectionSchema) -> None:
    """Column kinds for the top-level fields of a discovered schema, so that, from the first load,
    int and double values of a field share one double column. Raises NameCollision for fields
    that would share a column, before anything is loaded."""
    for profile in schema.top_level():
        try:
            name = registry.column_name(profile.field)
        except UnusableName:  # its documents are quarantined with the reason when they are read
            continue
        kind = planned_kind(profile.types)
        if kind is not None and name != "_id":
            registry.planned[name] = kind


@dataclass
class ConvertedBatch:
    """Typed columns of the documents that converted; the others, quarantined with a reason."""

    size: int
    columns: dict[str, list[Any]]
    kinds: dict[str, str]
    extracted_at: datetime
    quarantined: list[Quarantined]

    def to_arrow(self) -> pa.Table:
        arrays = {name: pa.array(values, ARROW_TYPES[self.kinds[name]]) for name, values in self.columns.items()}
        arrays[EXTRACTED_AT] = pa.array([self.extracted_at] * self.size, pa.timestamp("us", tz="UTC"))
        return pa.table(arrays)

    def write_jsonl(self, path: Path, load_id: str | None = None, limits: RowLimits | None = None) -> int:
        """Rows as gzip JSON lines with nested values as real JSON (so Redshift COPY and the
        OpenX SerDe see objects, not strings). Rows over the limits' `max_row_bytes` are
        quarantined. Returns the number of rows written."""
        max_row_bytes = limits.max_row_bytes if limits else None
        names = list(self.columns)
        kinds = [self.kinds[n] for n in names]
        cols = [self.columns[n] for n in names]
        stamp = self.extracted_at.isoformat()
        written = 0
        with gzip.open(path, "wb", compresslevel=3) as out:
            for i in range(self.size):
                row: dict[str, Any] = {}
                for name, kind, values in zip(names, kinds, cols):
                    value = values[i]
                    if value is None:
                        continue
                    if kind == JSON:
                        value = orjson.Fragment(value)
                    elif kind == DOUBLE and not math.isfinite(value):
                        value = non_finite_text(value)
                    elif kind == DECIMAL:
                        value = format(value, "f")  # plain digits at the column's scale, never 0E-9
                    row[name] = value
                row[EXTRACTED_AT] = stamp
                if load_id is not None:
                    row[LOAD_ID] = load_id
                line = orjson.dumps(row) + b"\n"
                if max_row_bytes is not None and len(line) > max_row_bytes:
                    self.quarantined.append(Quarantined(
                        row["_id"], f"row is {len(line):,} bytes as JSON, over the {max_row_bytes:,}-byte limit of "
                        f"{limits.destination if limits else 'the destination'} rows (COPY of one JSON object)", {}
                    ))
                    continue
                out.write(line)
                written += 1
        return written


def _convert_column(values: list[Any], registry: ColumnRegistry, name: str, failed: dict[int, str]) -> dict[str, list[Any]]:
    """One field's values to one column per kind (usually exactly one: numbers of different
    BSON types share the column of their common kind)."""
    n = len(values)
    kind = common_kind({kind_of(v) for v in values if v is not None})
    if kind is not None:
        target = registry.column_for(name, kind)
        convert = CONVERTERS[registry.kinds[target]]
        try:
            return {target: [None if v is None else convert(v) for v in values]}
        except Exception:  # find the documents at fault below, value by value
            pass
    out: dict[str, list[Any]] = {}
    for i, value in enumerate(values):
        if value is None:
            continue
        target = registry.column_for(name, kind_of(value))
        try:
            converted = CONVERTERS[registry.kinds[target]](value)
        except Exception as exc:
            failed.setdefault(i, _failure_reason(name, exc))
            continue
        out.setdefault(target, [None] * n)[i] = converted
    return out


def convert_documents(
    docs: Sequence[dict[str, Any]], registry: ColumnRegistry, extracted_at: datetime | None = None,
    limits: RowLimits | None = None,
) -> ConvertedBatch:
    """Typed columns for a batch: `_id` first as text, then fields in first-seen order. A document
    with a field whose column name is over the identifier limit, or over one of the destination's
    `limits` (columns of a table, bytes of a string), is quarantined with that limit."""
    n = len(docs)
    by_field: dict[str, list[Any]] = {}
    failed: dict[int, str] = {}
    for i, doc in enumerate(docs):
        for key, value in doc.items():
            values = by_field.get(key)
            if values is None:
                values = by_field[key] = [None] * n
            values[i] = value

    known = set(registry.kinds)
    by_field.pop("_id", None)
    # `_id: null` is a valid `_id` (its text is `null`); a document without one is not
    id_texts = [id_to_text(doc["_id"]) if "_id" in doc else None for doc in docs]
    for i, text in enumerate(id_texts):
        if text is None:
            failed[i] = "document has no _id"
        elif len(text) > MAX_ID_CHARS:
            failed[i] = f"_id is {len(text)} characters as text, over the {MAX_ID_CHARS}-character column"
    columns: dict[str, list[Any]] = {"_id": id_texts}
    registry.kinds.setdefault("_id", TEXT)
    registry.fields.setdefault("_id", "_id")

    room = limits.max_columns - OWN_COLUMNS - len(registry.kinds) if limits and limits.max_columns else None
    for key, values in by_field.items():
        try:
            name = registry.column_name(key)
        except UnusableName as exc:
            _fail_where_present(values, failed, str(exc))
            continue
        if room is not None and name not in registry.kinds:
            if room <= 0:
                assert limits is not None and limits.max_columns
                _fail_where_present(values, failed, f"field '{short_name(key)}' would add a column over the "
                                    f"{limits.max_columns:,}-column limit of {limits.destination} tables")
                continue
            room -= 1
        for target, column in _convert_column(values, registry, name, failed).items():
            columns[target] = column
    if limits and limits.max_string_bytes:
        _fail_long_strings(columns, registry, failed, limits)

    quarantined: list[Quarantined] = []
    if failed:
        keep = [i for i in range(n) if i not in failed]
        quarantined = [Quarantined(id_texts[i] or "", reason, dict(docs[i])) for i, reason in sorted(failed.items())]
        columns = {name: [values[i] for i in keep] for name, values in columns.items()}
        columns = {name: values for name, values in columns.items() if any(v is not None for v in values) or name == "_id"}
        registry.forget([name for name in registry.kinds if name not in known and name not in columns])
        n = len(keep)
    return ConvertedBatch(
        size=n,
        columns=columns,
        kinds={name: registry.kinds[name] for name in columns},
        extracted_at=extracted_at or datetime.now(timezone.utc),
        quarantined=quarantined,
    )


def _fail_where_present(values: list[Any], failed: dict[int, str], reason: str) -> None:
    for i, value in enumerate(values):
        if value is not None:
            failed.setdefault(i, reason)


def _fail_long_strings(columns: dict[str, list[Any]], registry: ColumnRegistry, failed: dict[int, str], limits: RowLimits) -> None:
    """Documents with a string over `limits.max_string_bytes` bytes of UTF-8, in a text column or
    anywhere inside a JSON one (binary counts as its base64 text)."""
    limit = limits.max_string_bytes
    assert limit is not None
    for name, values in columns.items():
        kind = registry.kinds[name]
        if kind not in (TEXT, JSON):
            continue
        # a text of n characters holds at most 4n bytes; a JSON text holds its strings: most
        # columns are cleared here, without looking at a value twice
        widest = max((len(v) for v in values if v is not None), default=0)
        if widest * (4 if kind == TEXT else 1) <= limit:
            continue
        for i, value in enumerate(values):
            if value is None or len(value) * (4 if kind == TEXT else 1) <= limit or i in failed:
                continue
            longest = len(value.encode("utf-8")) if kind == TEXT else _longest_string_bytes(orjson.loads(value))
            if longest > limit:
                where = "" if kind == TEXT else " inside the nested value"
                source = registry.fields.get(name.split("__v_")[0], name)
                failed[i] = (f"field '{short_name(source)}': a string of {longest:,} bytes{where}, over "
                             f"the {limit:,}-byte limit of {limits.destination} strings (binary counts as its base64 text)")


def _longest_string_bytes(value: Any) -> int:
    """Bytes of the longest string (value or key) in a parsed JSON value, without recursion."""
    longest, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            longest = max(longest, len(item.encode("utf-8")))
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return longest


def _failure_reason(name: str, exc: Exception) -> str:
    if "recursion" in str(exc).lower() or isinstance(exc, RecursionError):
        return (f"field '{name}': nested deeper than a JSON column holds ({JSON_MAX_DEPTH} levels; MongoDB itself "
                f"allows {MONGODB_MAX_DEPTH})")
    return f"field '{name}': {type(exc).__name__}: {exc}"


# orjson's limit on nesting, and MongoDB's own on documents.
JSON_MAX_DEPTH = 254
MONGODB_MAX_DEPTH = 100
_CUT = {"$atlasCut": f"nested deeper than {MONGODB_MAX_DEPTH} levels"}


def _shallow(value: Any, cut: list[bool], depth: int = 0) -> Any:
    """`value` with whatever is nested deeper than MongoDB allows replaced by a marker (and
    `cut[0]` set): the quarantine keeps such a document without recursing into all of it."""
    if depth >= MONGODB_MAX_DEPTH and isinstance(value, (dict, list)):
        cut[0] = True
        return _CUT
    if isinstance(value, dict):
        return {k: _shallow(v, cut, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_shallow(v, cut, depth + 1) for v in value]
    return value


def quarantine_rows(collection: str, items: list[Quarantined], max_document_chars: int = 60_000) -> list[dict[str, Any]]:
    """Rows of the `_atlas_quarantine` table. The document is kept as canonical extended JSON,
    cut at `max_document_chars` (Redshift's varchar limit) and below MongoDB's nesting limit;
    the source keeps the whole of it."""
    rows = []
    for q in items:
        cut = [False]
        document = _shallow(q.document, cut)
        text = json_util.dumps(document, json_options=json_util.CANONICAL_JSON_OPTIONS) if q.document else ""
        rows.append({
            "collection": collection,
            "document_id": q.document_id,
            "reason": q.reason,
            "document": text[:max_document_chars],
            "document_truncated": cut[0] or len(text) > max_document_chars,
            "quarantined_at": datetime.now(timezone.utc),
        })
    return rows
