"""Every SQL statement the project sends to Redshift, produced without a cluster.

`python -m redshift_contract.compile` (part of `make compile-redshift`) runs `dbt build` and the project's
`run-operation` entry points for the `redshift` target with the Redshift driver replaced by an
offline stand-in: introspective queries get empty, well-formed answers, tests report zero
failures, and every statement dbt sends is recorded against the node that sent it. Each node's
statements are written to `target/redshift_sql/<resource path>.sql`, with an index of what was
written. No network is used.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

from redshift_contract.offline_driver import OfflineConnection, bind_parameters
from redshift_contract.offline_load import record_redshift_load

REPO = Path(__file__).resolve().parents[1]
PROJECT = "atlas_analytics"

# Placeholder credentials: the offline driver never connects, dbt only needs a complete profile.
OFFLINE_ENV = {
    "REDSHIFT_HOST": "offline.invalid",
    "REDSHIFT_USER": "offline",
    "REDSHIFT_PASSWORD": "offline",
    "REDSHIFT_DATABASE": "dev",
    "REDSHIFT_SCHEMA": "analytics",
    "DBT_TARGET": "redshift",
}

# `dbt run-operation` entry points and the arguments they are compiled with, under a label (the
# output file): CREATE MODEL in both forms of its grammar.
OPERATIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("create_churn_model", "create_churn_model", {
        "model_name": "churn_model", "feature_set": "extended", "cutoff": "2020-01-01", "iam_role": "default",
        "model_type": "xgboost", "problem_type": "binary_classification", "objective": "AUC",
        "s3_bucket": "offline-ml-bucket", "max_runtime": 5400, "max_cells": 1000000,
    }),
    ("create_churn_model__auto_off", "create_churn_model", {
        "model_name": "churn_model", "feature_set": "extended", "cutoff": "2020-01-01", "iam_role": "default",
        "auto": False, "model_type": "xgboost", "objective": "binary:logistic",
        "hyperparameters": {"num_round": "100", "max_depth": "6", "eta": "0.2"},
        "s3_bucket": "offline-ml-bucket", "max_runtime": 5400,
    }),
    ("churn_model_status", "churn_model_status", {"model_name": "churn_model"}),
    ("register_churn_model", "register_churn_model", {
        "model_name": "churn_model", "function_name": "predict_churn_model", "feature_set": "extended",
        "cutoff": "2020-01-01", "model_kind": "redshift_ml", "training_seconds": 1800.0, "trained_at": "2026-01-01T00:00:00",
    }),
    ("drop_churn_model", "drop_churn_model", {"model_name": "churn_model"}),
    ("stage_external_sources", "stage_external_sources", {"load_dates": ["2026-01-01", "2026-01-02", "2026-01-03"]}),
]
# The churn models build only for a named, trained model: compile them for one.
BUILD_VARS = {"churn_model_name": "churn_model", "churn_feature_set": "extended"}
SPECTRUM_VARS = {**BUILD_VARS, "atlas_source": "spectrum"}
STAGE_ARGS = {"load_dates": ["2026-01-01", "2026-01-02", "2026-01-03"]}

# dbt-redshift's own catalog queries (not the project's SQL; some use Redshift-only table
# functions sqlfluff cannot parse).
_ADAPTER_INTROSPECTION = re.compile(r"pg_get_late_binding_view_cols\(\)|information_schema\.|\bsvv_tables\b|pg_catalog\.", re.I)

@dataclass
class Statement:
    connection: str
    sql: str


@dataclass
class Recorder:
    statements: list[Statement] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, connection: str, sql: str) -> None:
        with self.lock:
            self.statements.append(Statement(connection, sql))


@contextmanager
def offline_redshift(recorder: Recorder) -> Iterator[None]:
    """Patch the Redshift driver and record every statement with the dbt connection that sent it."""
    from dbt.adapters.sql.connections import SQLConnectionManager

    original_add_query = SQLConnectionManager.add_query

    def recording_add_query(self: Any, sql: str, auto_begin: bool = True, bindings: Any = None, **kwargs: Any) -> Any:
        connection = self.get_thread_connection()
        if not _ADAPTER_INTROSPECTION.search(sql):
            recorder.add(connection.name or "", bind_parameters(sql, bindings))
        return original_add_query(self, sql, auto_begin, bindings=bindings, **kwargs)

    with mock.patch("redshift_connector.connect", lambda **_: OfflineConnection()), mock.patch.object(
        SQLConnectionManager, "add_query", recording_add_query
    ), mock.patch.dict(os.environ, {**OFFLINE_ENV, **{k: v for k, v in os.environ.items() if k in OFFLINE_ENV and k != "DBT_TARGET"}}):
        yield


@contextmanager
def existing_relations(manifest: dict[str, Any], kinds: tuple[str, ...] = ("model", "seed", "source")) -> Iterator[None]:
    """Make every node of `kinds` look built, with its documented columns: sources, so that models
    that read the raw table's columns compile what a loaded warehouse gives them; models, so that
    a second `dbt run` compiles the incremental branches (merge, post-hooks) for Redshift."""
    from dbt.adapters.base.column import Column
    from dbt.adapters.base.impl import BaseAdapter
    from dbt.adapters.sql.impl import SQLAdapter

    known: dict[tuple[str, str], tuple[str, list[Any]]] = {}
    for node in [*manifest["nodes"].values(), *manifest["sources"].values()]:
        if node["resource_type"] not in kinds:
            continue
        name = node.get("alias") or node.get("identifier") or node["name"]
        kind = "view" if node.get("config", {}).get("materialized") == "view" else "table"
        columns = [Column(c["name"], c.get("data_type") or "varchar") for c in node["columns"].values()]
        known[(node["schema"].lower(), name.lower())] = (kind, columns)

    def key(schema: Any, identifier: Any) -> tuple[str, str]:
        return ((schema or "").lower(), (identifier or "").lower())

    def get_relation(self: Any, database: str, schema: str, identifier: str) -> Any:
        found = known.get(key(schema, identifier))
        if found is None:
            return None
        return self.Relation.create(database=database, schema=schema, identifier=identifier, type=found[0])

    def get_columns_in_relation(self: Any, relation: Any) -> list[Any]:
        return list(known.get(key(relation.schema, relation.identifier), ("table", []))[1])

    with mock.patch.object(BaseAdapter, "get_relation", get_relation), mock.patch.object(
        SQLAdapter, "get_columns_in_relation", get_columns_in_relation
    ):
        yield


def _dbt(args: list[str]) -> Any:
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(args)
    if not result.success:
        raise RuntimeError(f"dbt {' '.join(args[:2])} failed offline for redshift: {result.exception or 'see the log above'}")
    return result


def _node_path(node: dict[str, Any]) -> str:
    """`<resource path>` of a node: models/marts/customer_activity, tests/<name>, seeds/<name>."""
    kind = node["resource_type"]
    if kind in ("model", "seed", "snapshot", "analysis"):
        return str(Path(node["original_file_path"]).with_suffix(""))
    return f"tests/{node['name']}" if kind == "test" else f"{kind}s/{node['name']}"


def _format(statements: list[str]) -> str:
    return "\n\n".join(s.strip().rstrip(";") + ";" for s in statements if s.strip()) + "\n"


def compile_redshift(project_dir: Path = REPO, output: Path | None = None, include_ingestion: bool = True) -> dict[str, Any]:
    """Write every statement for the redshift target under `output`; returns the index."""
    output = output or project_dir / "target" / "redshift_sql"
    profiles_dir = Path(os.environ.get("DBT_PROFILES_DIR", project_dir / ".dbt-profiles"))
    target_path = project_dir / "target" / "redshift_offline"
    common = ["--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir), "--target", "redshift"]
    recorder = Recorder()
    with offline_redshift(recorder):
        os.environ["DBT_TARGET_PATH"] = str(target_path)
        try:
            # The raw tables exist, with their documented columns, as ingestion leaves them. Unit tests
            # run on DuckDB: the stand-in driver has no rows to compare.
            _dbt(["parse", *common, "--vars", json.dumps(BUILD_VARS)])
            with existing_relations(json.loads((target_path / "manifest.json").read_text()), kinds=("source",)):
                _dbt(["build", *common, "--full-refresh", "--threads", "1", "--exclude-resource-type", "unit_test",
                      "--vars", json.dumps(BUILD_VARS)])
            manifest = json.loads((target_path / "manifest.json").read_text())
            nodes = {uid: n for uid, n in manifest["nodes"].items() if n["package_name"] == PROJECT}
            with existing_relations(manifest):
                _dbt(["run", *common, "--threads", "1", "--select", "config.materialized:incremental",
                      "--vars", json.dumps(BUILD_VARS)])
            # The landing-zone path: its staging models (and the landing-zone query of generated
            # ones, which land in the same file as their loaded query) with atlas_source: spectrum.
            # Its on-run-start stages the external tables for the recent load dates (operation
            # spectrum_run_start: the statements outside the models).
            operations: list[tuple[str, int]] = [("spectrum_run_start", len(recorder.statements))]
            _dbt(["run", *common, "--threads", "1", "--select", "path:models/staging",
                  "--vars", json.dumps(SPECTRUM_VARS)])
            spectrum_manifest = json.loads((target_path / "manifest.json").read_text())
            nodes.update({uid: n for uid, n in spectrum_manifest["nodes"].items()
                          if n["package_name"] == PROJECT and n["original_file_path"].startswith("models/staging/")})
            for label, name, op_args in OPERATIONS:
                start = len(recorder.statements)
                _dbt(["run-operation", name, "--args", json.dumps(op_args), *common, "--vars", json.dumps(BUILD_VARS)])
                operations.append((label, start))
            # Staging again once the external table exists: partitions are added, nothing recreated.
            start = len(recorder.statements)
            with existing_relations(spectrum_manifest):
                _dbt(["run-operation", "stage_external_sources", "--args", json.dumps(STAGE_ARGS), *common,
                      "--vars", json.dumps(BUILD_VARS)])
            operations.append(("stage_external_sources__table_exists", start))
        finally:
            os.environ.pop("DBT_TARGET_PATH", None)

    by_node: dict[str, list[str]] = {}
    for st in recorder.statements:
        if st.connection in nodes:
            by_node.setdefault(st.connection, []).append(st.sql)

    if output.exists():
        shutil.rmtree(output)
    # Functions the project creates on Redshift: CREATE MODEL's prediction function and its twin.
    function = f"predict_{BUILD_VARS['churn_model_name']}"
    index: dict[str, Any] = {"nodes": {}, "operations": {}, "functions": [function, f"{function}_probabilities"]}
    for uid, statements in by_node.items():
        rel = _node_path(nodes[uid]) + ".sql"
        path = output / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_format(statements))
        index["nodes"][uid] = rel
    bounds = [start for _, start in operations] + [len(recorder.statements)]
    for (name, start), end in zip(operations, bounds[1:]):
        rel = f"operations/{name}.sql"
        sql = [s.sql for s in recorder.statements[start:end] if s.connection not in nodes]
        (output / rel).parent.mkdir(parents=True, exist_ok=True)
        (output / rel).write_text(_format(sql))
        index["operations"][name] = rel
    index["ingestion"] = {}
    if include_ingestion:
        for name, statements in record_redshift_load().items():
            rel = f"ingestion/dlt_redshift_{name}.sql"
            (output / rel).parent.mkdir(parents=True, exist_ok=True)
            (output / rel).write_text(_format(statements))
            index["ingestion"][name] = rel
    (output / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m redshift_contract.compile", description=__doc__.split("\n")[0])
    parser.add_argument("--project-dir", type=Path, default=REPO)
    parser.add_argument("--output", type=Path, help="default: <project-dir>/target/redshift_sql")
    parser.add_argument("--models-only", action="store_true", help="skip the ingestion (dlt) statements")
    args = parser.parse_args(argv)
    output = args.output or args.project_dir / "target" / "redshift_sql"
    index = compile_redshift(args.project_dir, output, include_ingestion=not args.models_only)
    print(
        f"wrote Redshift SQL for {len(index['nodes'])} nodes, {len(index['operations'])} operations "
        f"and {len(index['ingestion'])} ingestion runs to {output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
