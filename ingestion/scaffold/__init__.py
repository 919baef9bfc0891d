"""`atlas-ingest scaffold`: tested, documented dbt models for a database's collections, from the
schema files `atlas-ingest run` writes. `layout` decides the models and columns, `render` writes
their text, `merge` writes the files without losing a user's edits."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ingestion.errors import ConfigError
from ingestion.naming import validate_name
from ingestion.scaffold.layout import DEFAULT_MAX_DEPTH, CollectionLayout, plan_collection
from ingestion.scaffold.merge import STATE_DIR, WriteResult, write_generated
from ingestion.scaffold.render import model_sql, models_yml, sources_yml, sqlfluff_config
from ingestion.schema.files import read_schema_file, schema_path

__all__ = ["DEFAULT_MAX_DEPTH", "ScaffoldReport", "scaffold"]


@dataclass
class ScaffoldReport:
    database: str
    collections: list[str]
    files: list[WriteResult] = field(default_factory=list)
    new_columns: dict[str, list[str]] = field(default_factory=dict)  # model -> columns new since the last scaffold
    gone_columns: dict[str, list[str]] = field(default_factory=dict)  # model -> columns no longer generated
    kept_in_json: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "database": self.database,
            "collections": self.collections,
            "files": [{"path": str(f.path), "action": f.action} for f in self.files],
            "new_columns": self.new_columns,
            "gone_columns": self.gone_columns,
            "kept_in_json": self.kept_in_json,
        }

    def lines(self) -> list[str]:
        out = [f"scaffold {self.database}: {', '.join(self.collections)}"]
        for f in self.files:
            if f.action == "conflict":
                out.append(f"  conflict  {f.path}: your edits and the new columns touch the same lines; the file is "
                           f"left as you have it, the generated text is in {STATE_DIR}/…/{f.path.name}.new")
            elif f.action == "not-generated":
                out.append(f"  skipped   {f.path}: exists and was not written by scaffold; left alone")
            elif f.action != "unchanged":
                out.append(f"  {f.action:<9} {f.path}")
        for model, columns in self.new_columns.items():
            out.append(f"  new columns in {model}: {', '.join(columns)}")
        for model, columns in self.gone_columns.items():
            out.append(f"  no longer generated in {model}: {', '.join(columns)} (the collection no longer shows them)")
        for note in self.kept_in_json:
            out.append(f"  kept in JSON: {note}")
        return out


def scaffold(database: str, schema_dir: Path, project_dir: Path, collections: list[str] | None = None,
             max_depth: int = DEFAULT_MAX_DEPTH) -> ScaffoldReport:
    """Write (or update) the models of `collections` of `database` (default: every collection
    with a schema file) into the dbt project at `project_dir`."""
    validate_name(database)
    if max_depth < 1:
        raise ConfigError(f"--max-depth must be 1 or more, got {max_depth}")
    if not (project_dir / "dbt_project.yml").exists():
        raise ConfigError(f"{project_dir} holds no dbt_project.yml: pass --project-dir with the dbt project")
    folder = schema_dir / database
    available = sorted(p.stem for p in folder.glob("*.yml")) if folder.is_dir() else []
    wanted = [validate_name(c) for c in collections] if collections else available
    if not wanted:
        raise ConfigError(f"no schema files under {folder}: run `atlas-ingest run --database {database}` first "
                          "(it writes one per collection), or pass --schema-dir")
    state = _State(project_dir)
    known = state.collections(database)
    names = sorted(set(known) | set(wanted))
    layouts = [_layout(schema_dir, database, name, max_depth) for name in names]
    report = ScaffoldReport(database, names)

    source_name = layouts[0].source_name
    relative_dir = Path("models") / "staging" / source_name
    schema_files = [_shown(schema_path(schema_dir, database, name)) for name in names]
    previous = _generated_columns(project_dir / STATE_DIR / relative_dir / f"_{source_name}__models.yml")
    outputs: dict[Path, str] = {}
    for layout in layouts:
        report.kept_in_json += [f"{layout.collection}.{note}" for note in layout.skipped]
        for model in layout.models:
            outputs[relative_dir / f"{model.name}.sql"] = model_sql(model, layout)
    outputs[relative_dir / f"_{source_name}__sources.yml"] = sources_yml(layouts, schema_files)
    models_text = outputs[relative_dir / f"_{source_name}__models.yml"] = models_yml(layouts, schema_files)
    outputs[relative_dir / ".sqlfluff"] = sqlfluff_config(layouts)
    for relative, text in outputs.items():
        result = write_generated(project_dir, relative, text)
        report.files.append(result)
        if result.action == "conflict":  # the generated text, for merging by hand
            (project_dir / STATE_DIR / relative).with_name(relative.name + ".new").write_text(text)
    current = _generated_columns_text(models_text)
    if previous:
        for model, columns in current.items():
            added = [c for c in columns if c not in previous.get(model, [])]
            if added and model in previous:
                report.new_columns[model] = added
            elif model not in previous:
                report.new_columns[model] = ["(new model)"]
        for model, columns in previous.items():
            gone = [c for c in columns if c not in current.get(model, [])]
            if gone:
                report.gone_columns[model] = gone
    state.record(database, names)
    return report


def _layout(schema_dir: Path, database: str, collection: str, max_depth: int) -> CollectionLayout:
    path = schema_path(schema_dir, database, collection)
    content = read_schema_file(path)
    if content is None:
        raise ConfigError(f"no schema file {path}: run `atlas-ingest run --database {database} --collections "
                          f"{collection}` first")
    if not any(isinstance(f, dict) and f.get("column") for f in content["fields"]):
        raise ConfigError(f"schema file {path} names no warehouse columns yet: load the collection once "
                          "(`atlas-ingest run`), then scaffold")
    return plan_collection(content, max_depth)


def _shown(path: Path) -> str:
    """A schema file's path as the generated files name it: relative to here when it is below."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _generated_columns(path: Path) -> dict[str, list[str]]:
    return _generated_columns_text(path.read_text()) if path.exists() else {}


def _generated_columns_text(text: str) -> dict[str, list[str]]:
    content = yaml.safe_load(text) or {}
    return {m["name"]: [c["name"] for c in m.get("columns") or []] for m in content.get("models") or []}


class _State:
    """Which collections of each database were scaffolded (`.scaffold/collections.json`)."""

    def __init__(self, project_dir: Path) -> None:
        self.path = project_dir / STATE_DIR / "collections.json"

    def collections(self, database: str) -> list[str]:
        if not self.path.exists():
            return []
        return list(json.loads(self.path.read_text()).get(database, []))

    def record(self, database: str, collections: list[str]) -> None:
        content = json.loads(self.path.read_text()) if self.path.exists() else {}
        content[database] = sorted(collections)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
