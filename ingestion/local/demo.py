"""`make demo`: local server, 10,000 generated documents, ingestion, `dbt build`, and a summary."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import duckdb  # noqa: E402
from pymongo import MongoClient  # noqa: E402

from ingestion.config import DestinationConfig, RunConfig  # noqa: E402
from ingestion.errors import IngestError  # noqa: E402
from ingestion.local.seed import DEFAULT_COLLECTION, DEFAULT_DATABASE, seed_collection  # noqa: E402
from ingestion.local.server import LocalServer  # noqa: E402
from ingestion.ml.churn import ChurnConfig, train  # noqa: E402
from ingestion.ops.run import run  # noqa: E402

DEMO_DOCS = int(os.environ.get("DEMO_DOCS", "10000"))
CHURN_MODEL = "churn_model"
WAREHOUSE = Path(os.environ.get("DBT_DUCKDB_PATH", "data/warehouse.duckdb"))
# Where the local server and the pipeline state live (tests point these at a temporary folder).
SERVER_HOME = Path(os.environ.get("ATLAS_LOCAL_HOME", "data/mongo"))
SERVER_PORT = int(os.environ.get("ATLAS_LOCAL_PORT", "27027"))
PIPELINES_DIR = Path(os.environ["ATLAS_PIPELINES_DIR"]) if os.environ.get("ATLAS_PIPELINES_DIR") else None


def _dbt(*args: str) -> None:
    dbt = Path(sys.executable).with_name("dbt")
    subprocess.run([str(dbt), *args], check=True)


def main() -> int:
    started = time.monotonic()
    server = LocalServer(home=SERVER_HOME, port=SERVER_PORT)
    try:
        server.start()
        with MongoClient(server.uri) as client:
            seeded = seed_collection(client, DEMO_DOCS)
        print(f"seeded {seeded} documents into {DEFAULT_DATABASE}.{DEFAULT_COLLECTION} at {server.uri}")
        summary = run(RunConfig(
            uri=server.uri, database=DEFAULT_DATABASE, collections=[DEFAULT_COLLECTION],
            destination=DestinationConfig(warehouse=WAREHOUSE), pipelines_dir=PIPELINES_DIR,
        ))
    except IngestError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        _dbt("build")
        model = train(ChurnConfig(model_name=CHURN_MODEL, warehouse=WAREHOUSE, replace=True))
        print(f"trained local churn model {model['model_name']} on {model['training_rows']} records in {model['training_seconds']} s")
        _dbt("build", "--select", "+churn_predictions+", "+ml_model_metrics", "--vars", f"{{churn_model_name: {CHURN_MODEL}, churn_evaluation: true}}")
    except subprocess.CalledProcessError as exc:
        print(f"demo: error: dbt build failed with exit code {exc.returncode}", file=sys.stderr)
        return exc.returncode
    except IngestError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return exc.exit_code

    with duckdb.connect(str(WAREHOUSE), read_only=True) as con:
        counts = con.sql(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema in ('raw_atlas', 'analytics', 'analytics_staging', 'analytics_intermediate', 'analytics_ml') and table_name not like '\\_dlt%' escape '\\' "
            "order by 1"
        ).fetchall()
        print("\n== summary")
        for t in summary.tables:
            print(f"documents read from {DEFAULT_DATABASE}.{t.collection}: {t.documents_read}")
        for (name,) in counts:
            print(f"rows in {name}: {con.sql(f'select count(*) from {name}').fetchone()[0]}")
        print(f"elapsed: {time.monotonic() - started:.1f} s (ingestion {summary.elapsed_s:.1f} s)")
        print("\n== run history (raw_atlas._atlas_runs, newest first)")
        con.sql(
            "select run_id, collection, mode, status, documents_read, rows_loaded, source_count, warehouse_count, "
            "reconciliation, ended_at from raw_atlas._atlas_runs order by ended_at desc limit 5"
        ).show(max_width=200)
        print("\n== first rows of analytics.customer_activity")
        con.sql("select * from analytics.customer_activity order by phone limit 5").show(max_width=200)
        print("\n== churn model metrics (held-out records on or after the training cut-off)")
        con.sql(
            "select model_name, feature_set, scored_rows, round(auc, 4) as auc, round(bayes_optimal_auc, 4) as bayes_optimal_auc, "
            "round(f1_score, 4) as f1, round(accuracy, 4) as accuracy, round(precision_score, 4) as precision, "
            "round(recall_score, 4) as recall, round(training_seconds, 2) as training_s from analytics_ml.ml_model_metrics"
        ).show(max_width=200)
    print(f"the local server keeps running at {server.uri}; stop it with: .venv/bin/atlas-ingest local stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
