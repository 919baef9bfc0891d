"""dbt on DuckDB: incremental runs equal a full refresh; every model and column is documented."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import duckdb
import pytest
from pymongo import MongoClient

from ingestion.local.seed import seed_collection
from tests.conftest import run_cli, run_dbt

MARTS = ["customer_activity", "dim_customers", "fct_service_calls", "agg_daily_usage", "agg_churn_by_state_plan"]


def ingest(uri, work, *mode):
    r = run_cli("run", "--uri", uri, "--database", "dbtinc", "--collections", "customer_activity",
                "--warehouse", str(work / "w.duckdb"), "--pipelines-dir", str(work / "p"), *mode)
    assert r.returncode == 0, r.stderr


def snapshot(warehouse) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        out = {}
        for table in MARTS:
            cols = [c for (c,) in con.sql(
                f"select column_name from information_schema.columns where table_schema = 'analytics' "
                f"and table_name = '{table}' and column_name <> 'extracted_at' order by ordinal_position").fetchall()]
            rows = con.sql(f"select {', '.join(cols)} from analytics.{table}").fetchall()
            # Averages summed in another row order differ in the last bits: compare to 9 places.
            out[table] = sorted((tuple(round(v, 9) if isinstance(v, float) else v for v in r) for r in rows), key=repr)
        return out


@pytest.fixture(scope="module")
def incremental_then_full(mongo_server, tmp_path_factory):
    work = tmp_path_factory.mktemp("dbtinc")
    incremental = ["--mode", "incremental", "--cursor-field", "updated_at"]
    rng = random.Random(11)
    with MongoClient(mongo_server.uri) as client:
        seed_collection(client, 1_500, seed=21, database="dbtinc")
        coll = client["dbtinc"]["customer_activity"]
        ingest(mongo_server.uri, work, *incremental)
        first = run_dbt("build", warehouse=work / "w.duckdb", target_path=work / "target")
        assert first.returncode == 0, first.stdout[-3000:]
        first_built = built_at(work / "w.duckdb")

        now = datetime.now(timezone.utc)
        docs = list(coll.find())
        rng.shuffle(docs)
        call = {"opened_at": now - timedelta(days=1), "reason": "billing", "channel": "chat", "resolved": True}
        for i, doc in enumerate(docs[:10]):  # arrays shrink to nothing
            coll.update_one({"_id": doc["_id"]}, {"$set": {"service_calls": [], "updated_at": now + timedelta(seconds=i)}})
        for i, doc in enumerate(docs[10:20]):  # arrays grow
            coll.update_one({"_id": doc["_id"]}, {"$push": {"service_calls": {"$each": [call, call]}},
                                                  "$set": {"updated_at": now + timedelta(seconds=i)}})
        for i, doc in enumerate(docs[20:30]):  # other fields change
            coll.update_one({"_id": doc["_id"]}, {"$set": {"churned": not doc["churned"], "customer.state": "ZZ",
                                                           "updated_at": now + timedelta(seconds=i)}})
        for i, doc in enumerate(docs[30:35]):  # soft deletes by the application
            coll.update_one({"_id": doc["_id"]}, {"$set": {"_deleted_at": now, "updated_at": now + timedelta(seconds=i)}})
        seed_ids = [d["_id"] for d in docs[35:40]]
        coll.delete_many({"_id": {"$in": seed_ids}})  # hard deletes: removed by delete detection
        # an incremental ingest only: the raw table changes in the changed documents' rows alone
        ingest(mongo_server.uri, work, *incremental, "--detect-deletes")
        live = coll.count_documents({"_deleted_at": {"$exists": False}})
        changed = {str(d["_id"]) for d in docs[:30]}

    second = run_dbt("build", warehouse=work / "w.duckdb", target_path=work / "target")
    assert second.returncode == 0, second.stdout[-3000:]
    after_incremental = snapshot(work / "w.duckdb")
    # what the second build ran for each incremental model (dbt keeps the last run's SQL)
    ran = {m: "".join((work / "target" / kind / "atlas_analytics" / "models" / "marts" / f"{m}.sql").read_text()
                      for kind in ("compiled", "run"))
           for m in ("dim_customers", "fct_service_calls")}
    with duckdb.connect(str(work / "w.duckdb"), read_only=True) as con:
        processed = {
            "dim_customers": {i for (i,) in con.sql("select customer_activity_id from analytics.dim_customers "
                                                     "where extracted_at > ?", params=[first_built]).fetchall()},
            "fct_service_calls": {i for (i,) in con.sql("select distinct customer_activity_id from analytics.fct_service_calls "
                                                         "where extracted_at > ?", params=[first_built]).fetchall()},
            "raw": {i for (i,) in con.sql("select _id from raw_atlas.customer_activity where _atlas_extracted_at > ? "
                                          "and _deleted_at is null", params=[first_built]).fetchall()},
            "dim_rows": con.sql("select count(*) from analytics.dim_customers").fetchone()[0],
        }
    full = run_dbt("build", "--full-refresh", warehouse=work / "w.duckdb", target_path=work / "target")
    assert full.returncode == 0, full.stdout[-3000:]
    return {
        "incremental": after_incremental, "full": snapshot(work / "w.duckdb"), "live": live, "log": second.stdout,
        "processed": processed, "changed": changed, "ran": ran,
        "manifest": json.loads((work / "target" / "manifest.json").read_text()), "warehouse": work / "w.duckdb",
    }


def built_at(warehouse) -> datetime:
    """The newest extraction time the incremental models hold."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql("select max(extracted_at) from analytics.dim_customers").fetchone()[0]


def test_incremental_models_processed_exactly_the_changed_documents(incremental_then_full):
    """After an incremental ingest alone, the incremental models rebuilt the rows of the documents
    that changed (the 30 edited, and any the cursor's boundary re-read), and no other row."""
    processed, changed = incremental_then_full["processed"], incremental_then_full["changed"]
    for model, sql in incremental_then_full["ran"].items():  # the incremental path: only newer rows, merged by key
        assert "extracted_at > (select coalesce(max(extracted_at)" in sql and "delete from" in sql.lower(), model
    assert changed <= processed["raw"] and len(processed["raw"]) <= len(changed) + 5, len(processed["raw"])
    assert processed["dim_customers"] == processed["raw"]
    assert processed["fct_service_calls"] <= processed["raw"] and processed["fct_service_calls"]
    assert processed["dim_rows"] - len(processed["dim_customers"]) > 1_400  # the rest kept their rows


def test_incremental_equals_full_refresh(incremental_then_full):
    for table in MARTS:
        assert incremental_then_full["incremental"][table] == incremental_then_full["full"][table], table


def test_deletes_are_honoured(incremental_then_full):
    incremental, live = incremental_then_full["incremental"], incremental_then_full["live"]
    assert len(incremental["dim_customers"]) == live == 1_500 - 10
    assert len(incremental["customer_activity"]) == live


def test_every_model_and_column_is_documented_and_tested(incremental_then_full):
    manifest = incremental_then_full["manifest"]
    models = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    gaps = [n["name"] for n in models.values() if not n["description"].strip()]
    gaps += [f"{n['name']}.{c}" for n in models.values() for c, col in n["columns"].items() if not col["description"].strip()]
    sources = manifest["sources"].values()
    gaps += [f"source {s['name']}.{c}" for s in sources for c, col in s["columns"].items() if not col["description"].strip()]
    assert not gaps, f"undocumented: {gaps}"
    tested = {dep for t in manifest["nodes"].values() if t["resource_type"] == "test" for dep in t["depends_on"]["nodes"]}
    assert not [n["name"] for uid, n in models.items() if uid not in tested], "models without a data test"


def test_documented_columns_are_the_real_columns(incremental_then_full):
    manifest = incremental_then_full["manifest"]
    with duckdb.connect(str(incremental_then_full["warehouse"]), read_only=True) as con:
        for node in manifest["nodes"].values():
            if node["resource_type"] != "model":
                continue
            actual = [c for (c,) in con.sql(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                "order by ordinal_position", params=[node["schema"], node["alias"]]).fetchall()]
            assert actual == list(node["columns"]), node["name"]
