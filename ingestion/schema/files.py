"""Schema files: one reviewable YAML file per collection, `<schema dir>/<database>/<collection>.yml`,
rewritten by every run and kept in version control beside the dbt project.

A file holds every path discovery has seen (a path or a type once seen stays, so the file only
grows when the data does), how often the latest sample held it, and for top-level fields the
warehouse column it lands in, with that column's type and variant columns: the map from
source field to column. A run reports what is new against the file it found: new fields, new types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingestion.errors import ConfigError
from ingestion.schema.discovery import CollectionSchema, escape_key, split_path

FORMAT_VERSION = 1
HEADER = """\
# Schema of {database}.{collection}, discovered by atlas-ingest from a sample of {sampled} documents.
# Rewritten by every `atlas-ingest run`; review its changes like code. Paths: `.` between object
# levels, `[]` for array elements, `*` for the keys of objects keyed by data (ids, dates).
"""


@dataclass
class SchemaChange:
    """What a run's discovery saw that the collection's schema file did not hold."""

    new_fields: list[str] = field(default_factory=list)
    new_types: list[str] = field(default_factory=list)  # "path: type"

    def __bool__(self) -> bool:
        return bool(self.new_fields or self.new_types)

    def describe(self) -> str:
        parts = []
        if self.new_fields:
            parts.append(f"new fields {', '.join(self.new_fields[:10])}{' ...' if len(self.new_fields) > 10 else ''}")
        if self.new_types:
            parts.append(f"new types {', '.join(self.new_types[:10])}{' ...' if len(self.new_types) > 10 else ''}")
        return "; ".join(parts)


def schema_path(directory: Path, database: str, collection: str) -> Path:
    return directory / database / f"{collection}.yml"


def read_schema_file(path: Path) -> dict[str, Any] | None:
    """The file's content, None when there is none; ConfigError when it is not a schema file."""
    if not path.exists():
        return None
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"schema file {path} is not valid YAML ({str(exc).splitlines()[0]}): fix or delete it") from None
    if not isinstance(content, dict) or not isinstance(content.get("fields"), list):
        raise ConfigError(f"schema file {path} has no 'fields' list: fix or delete it (the next run writes it again)")
    return content


def merge_schema(
    previous: dict[str, Any] | None, schema: CollectionSchema, table: str, columns: dict[str, dict[str, Any]],
) -> tuple[dict[str, Any], SchemaChange]:
    """The new file content and what changed since `previous`. `columns` maps each top-level
    field to what the warehouse holds for it: `column`, `column_type` and `variant_columns`."""
    old = {f["path"]: f for f in (previous or {}).get("fields", []) if isinstance(f, dict) and "path" in f}
    change = SchemaChange()
    entries: dict[str, dict[str, Any]] = {}
    for profile in schema.fields:
        entry: dict[str, Any] = {"path": profile.path}
        before = old.get(profile.path)
        seen_types = list(profile.types)
        if before is None:
            if previous is not None:
                change.new_fields.append(profile.path)
        else:
            known = list(before.get("types") or [])
            change.new_types += [f"{profile.path}: {t}" for t in seen_types if t not in known and t != "null"]
            seen_types = known + [t for t in seen_types if t not in known]
        entry["types"] = seen_types
        entry["presence"] = round(profile.presence, 2)
        if profile.keyed_by_data:
            entry.update(keyed_by_data=True, distinct_keys=profile.distinct_keys, key_examples=list(profile.key_examples))
        if profile.top_level:
            entry.update({k: v for k, v in columns.get(profile.field, {}).items() if v})
        entries[profile.path] = entry
    for path, before in old.items():  # kept: a field absent from this sample is not gone
        if path not in entries:
            entries[path] = {**before, "presence": 0.0}
    for source_field, column in columns.items():  # seen by the load but not by the sample
        path = escape_key(source_field)
        if path not in entries:
            entries[path] = {"path": path, "types": [], "presence": 0.0, **{k: v for k, v in column.items() if v}}
            if previous is not None:
                change.new_fields.append(path)
    content = {
        "version": FORMAT_VERSION,
        "database": schema.database,
        "collection": schema.collection,
        "table": table,
        "sampled_documents": schema.sampled,
        "fields": _ordered(list(entries.values())),
    }
    return content, change


def _ordered(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`_id` first, then top-level fields in first-seen order, each followed by its nested paths."""
    roots: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        root = split_path(entry["path"])[0]
        roots.setdefault(root, []).append(entry)
    order = (["_id"] if "_id" in roots else []) + [r for r in roots if r != "_id"]
    return [entry for root in order for entry in roots[root]]


def write_schema_file(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = HEADER.format(database=content["database"], collection=content["collection"], sampled=content["sampled_documents"])
    body = yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=120, default_flow_style=None)
    tmp = path.with_suffix(".yml.tmp")
    tmp.write_text(header + body)
    tmp.replace(path)
