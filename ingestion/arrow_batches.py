"""Batches of decoded documents to Arrow tables, column by column.

Building whole columns at once (instead of handing dlt one dict per document) keeps the
per-document Python work to a key lookup and lets dlt write parquet without normalizing rows.
A field seen with a second type lands in a variant column `<field>__v_<kind>`, dlt's own
convention, so nothing is dropped and every change of type is reported as drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

import pyarrow as pa

from ingestion.bson_types import ARROW_TYPES, CONVERTERS, JSON, id_to_text, kind_of

EXTRACTED_AT = "_atlas_extracted_at"


@dataclass
class ColumnRegistry:
    """Kinds of the columns of one table as first seen; later batches must agree or go to variants."""

    kinds: dict[str, str] = field(default_factory=dict)
    new_columns: list[str] = field(default_factory=list)
    variant_columns: list[str] = field(default_factory=list)

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


def documents_to_table(
    docs: Sequence[dict[str, Any]], registry: ColumnRegistry, extracted_at: datetime | None = None
) -> pa.Table:
    """One Arrow table for a batch; `_id` first, as text, then fields in first-seen order."""
    n = len(docs)
    columns: dict[str, list[Any]] = {}
    for i, doc in enumerate(docs):
        for key, value in doc.items():
            values = columns.get(key)
            if values is None:
                values = columns[key] = [None] * n
            values[i] = value

    arrays: dict[str, pa.Array] = {}
    ids = columns.pop("_id", None)
    if ids is None or any(v is None for v in ids):
        raise ValueError("every document must have an _id")
    arrays["_id"] = pa.array([id_to_text(v) for v in ids], pa.string())
    registry.kinds.setdefault("_id", "text")

    for name, values in columns.items():
        by_column: dict[str, list[Any]] = {}
        kinds = {kind_of(v) for v in values if v is not None}
        if not kinds:
            continue  # all null in this batch: nothing to type yet
        if len(kinds) == 1:
            kind = kinds.pop()
            target = registry.column_for(name, kind)
            convert = CONVERTERS[kind]
            arrays[target] = pa.array([None if v is None else convert(v) for v in values], ARROW_TYPES[kind])
            continue
        for i, value in enumerate(values):
            if value is None:
                continue
            kind = kind_of(value)
            target = registry.column_for(name, kind)
            if target not in by_column:
                by_column[target] = [None] * n
            by_column[target][i] = CONVERTERS[kind](value)
        for target, column_values in by_column.items():
            arrays[target] = pa.array(column_values, ARROW_TYPES[registry.kinds[target]])

    stamp = extracted_at or datetime.now(timezone.utc)
    arrays[EXTRACTED_AT] = pa.array([stamp] * n, pa.timestamp("us", tz="UTC"))
    return pa.table(arrays)


def json_columns(registry: ColumnRegistry) -> dict[str, dict[str, Any]]:
    """dlt column hints for the JSON-typed columns (stored as JSON on DuckDB, SUPER on Redshift)."""
    return {name: {"data_type": "json"} for name, kind in registry.kinds.items() if kind == JSON}
