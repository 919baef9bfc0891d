"""After a collection loaded: its schema file (`<schema dir>/<database>/<collection>.yml`)
rewritten with what discovery sampled and the columns the load wrote, and what changed noted
in the collection's summary."""

from __future__ import annotations

from typing import Any

from ingestion.ops.plan import Plan
from ingestion.ops.summary import TableSummary
from ingestion.schema.discovery import CollectionSchema
from ingestion.schema.files import merge_schema, read_schema_file, schema_path, write_schema_file
from ingestion.source.batches import ColumnRegistry


def column_map(registry: ColumnRegistry) -> dict[str, dict[str, Any]]:
    """Top-level source field -> the column it lands in, that column's type and its variant columns."""
    out: dict[str, dict[str, Any]] = {}
    for column, source_field in registry.fields.items():
        variants = sorted(v for v in registry.kinds if v.startswith(f"{column}__v_"))
        out[source_field] = {"column": column, "column_type": registry.kinds.get(column), "variant_columns": variants}
    return out


def update_schema_file(plan: Plan, summary: TableSummary, schema: CollectionSchema | None, registry: ColumnRegistry) -> None:
    directory = plan.config.schema_dir
    if directory is None:
        return
    if schema is None:  # no sample taken (--sample-size 0): the file still maps fields to columns
        schema = CollectionSchema(plan.config.database, summary.collection, 0, [])
    path = schema_path(directory, plan.config.database, summary.collection)
    content, change = merge_schema(read_schema_file(path), schema, summary.table, column_map(registry))
    write_schema_file(path, content)
    summary.schema_file = str(path)
    if change:
        summary.schema_changes = change.describe()
