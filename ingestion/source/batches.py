"""Batches of decoded documents to typed columns, then to Arrow tables or JSON-lines files.

Converting whole columns at once (instead of handing dlt one dict per document) keeps the
per-document Python work to a key lookup, and dlt then writes or imports files without
normalizing rows. A field seen with a second type lands in a variant column
`<column>__v_<kind>` (dlt's own convention), and a document that cannot be converted is
quarantined with the reason: nothing is dropped silently.
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
    id_to_text,
    kind_of,
    non_finite_text,
)
from ingestion.naming import column_name

EXTRACTED_AT = "_atlas_extracted_at"
MAX_ID_CHARS = 512  # `_id` column width; a longer `_id` (as text) is quarantined
LOAD_ID = "_dlt_load_id"


@dataclass
class Quarantined:
    document_id: str
    reason: str
    document: dict[str, Any]


@dataclass
class ColumnRegistry:
    """Columns of one table: kind as first seen (or as stored), and the field each came from.
    Later batches must agree with the kind or go to a variant column."""

    kinds: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    new_columns: list[str] = field(default_factory=list)
    variant_columns: list[str] = field(default_factory=list)

    def column_name(self, key: str) -> str:
        """The warehouse column of a top-level field; raises ValueError when two fields collide."""
        name = column_name(key)
        owner = self.fields.setdefault(name, key)
        if owner != key:
            raise ValueError(f"fields '{owner}' and '{key}' both map to column '{name}'")
        return name

    def column_for(self, name: str, kind: str) -> str:
        known = self.kinds.get(name)
        if known is None:
            self.kinds[name] = kind
            self.new_columns.append(name)
            return name
        if known == kind:
            return name
        variant = f"{name}__v_{kind}"
        if variant not in self.kinds:
            self.kinds[variant] = kind
            self.variant_columns.append(variant)
        return variant

    @classmethod
    def from_schema(cls, schema: Any, table: str) -> "ColumnRegistry":
        """The kinds a table already has in a stored dlt schema, so type drift is seen across runs."""
        registry = cls()
        if schema is not None:
            columns = schema.tables.get(table, {}).get("columns", {})
            registry.kinds.update({
                name: col["data_type"] for name, col in columns.items()
                if "data_type" in col and not name.startswith("_dlt") and not name.startswith("_atlas")
            })
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

    def write_jsonl(self, path: Path, load_id: str | None = None, max_row_bytes: int | None = None) -> int:
        """Rows as gzip JSON lines with nested values as real JSON (so Redshift COPY and the
        OpenX SerDe see objects, not strings). Rows over `max_row_bytes` are quarantined.
        Returns the number of rows written."""
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
                        value = str(value)
                    row[name] = value
                row[EXTRACTED_AT] = stamp
                if load_id is not None:
                    row[LOAD_ID] = load_id
                line = orjson.dumps(row) + b"\n"
                if max_row_bytes is not None and len(line) > max_row_bytes:
                    self.quarantined.append(Quarantined(
                        row["_id"], f"row is {len(line)} bytes as JSON, over the {max_row_bytes}-byte limit of the destination", {}
                    ))
                    continue
                out.write(line)
                written += 1
        return written


def _convert_column(values: list[Any], registry: ColumnRegistry, name: str, failed: dict[int, str]) -> dict[str, list[Any]]:
    """One field's values to one column per kind (usually exactly one)."""
    n = len(values)
    kinds = {kind_of(v) for v in values if v is not None}
    if len(kinds) == 1:
        kind = kinds.pop()
        target = registry.column_for(name, kind)
        convert = CONVERTERS[kind]
        try:
            return {target: [None if v is None else convert(v) for v in values]}
        except Exception:  # find the documents at fault below, value by value
            pass
    out: dict[str, list[Any]] = {}
    for i, value in enumerate(values):
        if value is None:
            continue
        kind = kind_of(value)
        try:
            converted = CONVERTERS[kind](value)
        except Exception as exc:
            failed.setdefault(i, f"field '{name}': {type(exc).__name__}: {exc}")
            continue
        target = registry.column_for(name, kind)
        out.setdefault(target, [None] * n)[i] = converted
    return out


def convert_documents(
    docs: Sequence[dict[str, Any]], registry: ColumnRegistry, extracted_at: datetime | None = None
) -> ConvertedBatch:
    """Typed columns for a batch: `_id` first as text, then fields in first-seen order."""
    n = len(docs)
    by_field: dict[str, list[Any]] = {}
    failed: dict[int, str] = {}
    for i, doc in enumerate(docs):
        for key, value in doc.items():
            values = by_field.get(key)
            if values is None:
                values = by_field[key] = [None] * n
            values[i] = value

    ids = by_field.pop("_id", None) or [None] * n
    id_texts = [None if v is None else id_to_text(v) for v in ids]
    for i, text in enumerate(id_texts):
        if text is None:
            failed[i] = "document has no _id"
        elif len(text) > MAX_ID_CHARS:
            failed[i] = f"_id is {len(text)} characters as text, over the {MAX_ID_CHARS}-character column"
    columns: dict[str, list[Any]] = {"_id": id_texts}
    registry.kinds.setdefault("_id", TEXT)
    registry.fields.setdefault("_id", "_id")

    for key, values in by_field.items():
        try:
            name = registry.column_name(key)
        except ValueError as exc:
            for i, v in enumerate(values):
                if v is not None:
                    failed.setdefault(i, str(exc))
            continue
        for target, column in _convert_column(values, registry, name, failed).items():
            columns[target] = column

    quarantined: list[Quarantined] = []
    if failed:
        keep = [i for i in range(n) if i not in failed]
        quarantined = [Quarantined(id_texts[i] or "", reason, dict(docs[i])) for i, reason in sorted(failed.items())]
        columns = {name: [values[i] for i in keep] for name, values in columns.items()}
        columns = {name: values for name, values in columns.items() if any(v is not None for v in values) or name == "_id"}
        n = len(keep)
    return ConvertedBatch(
        size=n,
        columns=columns,
        kinds={name: registry.kinds[name] for name in columns},
        extracted_at=extracted_at or datetime.now(timezone.utc),
        quarantined=quarantined,
    )


def quarantine_rows(collection: str, items: list[Quarantined], max_document_chars: int = 60_000) -> list[dict[str, Any]]:
    """Rows of the `_atlas_quarantine` table. The document is kept as canonical extended JSON,
    cut at `max_document_chars` (Redshift's varchar limit); the source keeps the whole of it."""
    rows = []
    for q in items:
        text = json_util.dumps(q.document, json_options=json_util.CANONICAL_JSON_OPTIONS) if q.document else ""
        rows.append({
            "collection": collection,
            "document_id": q.document_id,
            "reason": q.reason,
            "document": text[:max_document_chars],
            "document_truncated": len(text) > max_document_chars,
            "quarantined_at": datetime.now(timezone.utc),
        })
    return rows
