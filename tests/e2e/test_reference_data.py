"""Data this project did not generate: MongoDB's public sample collections (mongoexport extended
JSON, ../shared/reference/atlas_samples/), loaded through `atlas_source` in a plain dlt pipeline."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import dlt
import duckdb
import pytest
from bson import json_util

from ingestion.source import atlas_source
from tests.conftest import REPO

SAMPLES = REPO.parent / "shared" / "reference" / "atlas_samples"


def import_sample(client, database: str, collection: str) -> list[dict]:
    """The file as mongoimport would load it; returns the documents as the server holds them."""
    path = SAMPLES / f"{database}.{collection}.json.gz"
    if not path.exists():
        pytest.fail(f"reference file {path} is missing (../shared/reference/ comes with the checkout's workspace)")
    with gzip.open(path, "rt") as f:
        docs = [json_util.loads(line) for line in f if line.strip()]
    client.drop_database(database)
    client[database][collection].insert_many(docs)
    return list(client[database][collection].find())


def load(database: str, warehouse: Path, pipelines: Path, client) -> None:
    pipeline = dlt.pipeline(f"ref_{database}", destination=dlt.destinations.duckdb(str(warehouse)), dataset_name="raw",
                            pipelines_dir=str(pipelines))
    pipeline.run(atlas_source(database=database, client=client))  # every collection of the database


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()


def columns(warehouse: Path, table: str) -> set[str]:
    return {r[0] for r in query(warehouse, f"select column_name from information_schema.columns where table_name = '{table}'")}


def test_sample_supplies_sales_exact(mongo_client, tmp_path):
    source = import_sample(mongo_client, "sample_supplies", "sales")
    warehouse = tmp_path / "w.duckdb"
    load("sample_supplies", warehouse, tmp_path / "p", mongo_client)
    # every document is one row, and nothing went to a variant column or the quarantine
    assert query(warehouse, "select count(*), count(distinct _id) from raw.sales") == [(5000, 5000)]
    assert not [c for c in columns(warehouse, "sales") if "__v_" in c]
    assert "_atlas_quarantine" not in {r[0] for r in query(warehouse, "select table_name from information_schema.tables")}
    # top-level values exact, document by document
    rows = {r[0]: r[1:] for r in query(warehouse, "select _id, sale_date, store_location, coupon_used, purchase_method from raw.sales")}
    for doc in source:
        sale_date, store, coupon, method = rows[str(doc["_id"])]
        assert (sale_date.replace(tzinfo=None), store, coupon, method) == (
            doc["saleDate"].replace(tzinfo=None), doc["storeLocation"], doc["couponUsed"], doc["purchaseMethod"])
    # revenue and quantity per store from the nested items (Decimal128 prices, int32 quantities),
    # computed by the server and from the warehouse's JSON
    expected = {
        r["_id"]: (r["revenue"].to_decimal(), r["quantity"])
        for r in mongo_client["sample_supplies"]["sales"].aggregate([
            {"$unwind": "$items"},
            {"$group": {"_id": "$storeLocation", "revenue": {"$sum": {"$multiply": ["$items.price", "$items.quantity"]}},
                        "quantity": {"$sum": "$items.quantity"}}},
        ])
    }
    got: dict[str, tuple[Decimal, int]] = {}
    for store, items in query(warehouse, "select store_location, items from raw.sales"):
        revenue, quantity = got.get(store, (Decimal(0), 0))
        for item in json.loads(items):
            revenue += Decimal(item["price"]) * item["quantity"]
            quantity += item["quantity"]
        got[store] = (revenue, quantity)
    assert got == expected and len(expected) == 6


def test_sample_analytics_accounts_exact(mongo_client, tmp_path):
    source = import_sample(mongo_client, "sample_analytics", "accounts")
    warehouse = tmp_path / "w.duckdb"
    load("sample_analytics", warehouse, tmp_path / "p", mongo_client)
    rows = {r[0]: r[1:] for r in query(warehouse, "select _id, account_id, \"limit\", products from raw.accounts")}
    assert len(rows) == len(source) == 1746
    assert not [c for c in columns(warehouse, "accounts") if "__v_" in c]
    for doc in source:
        account_id, limit, products = rows[str(doc["_id"])]
        assert (account_id, limit, json.loads(products)) == (doc["account_id"], doc["limit"], doc["products"])
    # products per account, from the server and from the warehouse
    per_account = {r["_id"]: r["n"] for r in mongo_client["sample_analytics"]["accounts"].aggregate(
        [{"$project": {"n": {"$size": "$products"}}}])}
    assert {k: len(json.loads(v[2])) for k, v in rows.items()} == {str(k): n for k, n in per_account.items()}


def test_sample_documents_fit_redshift_limits_unchanged(mongo_client):
    """The limits quarantine only what Redshift would refuse: MongoDB's sample documents convert
    to the same columns and values with REDSHIFT_LIMITS as without."""
    from ingestion.source.batches import REDSHIFT_LIMITS, ColumnRegistry, convert_documents

    for database, collection in (("sample_supplies", "sales"), ("sample_analytics", "accounts")):
        docs = import_sample(mongo_client, database, collection)
        plain = convert_documents(docs, ColumnRegistry())
        limited = convert_documents(docs, ColumnRegistry(), limits=REDSHIFT_LIMITS)
        assert limited.quarantined == [] and limited.columns == plain.columns, collection


def test_sample_sales_incremental_by_a_camel_case_date_with_delete_detection(mongo_server, mongo_client, tmp_path):
    """sample_supplies.sales, incremental on `saleDate`: a run after updates and deletes reads the
    changed documents, removes the deleted ones' rows and reconciles by the camelCase field."""
    from datetime import datetime, timezone

    from tests.conftest import run_cli

    source = import_sample(mongo_client, "sample_supplies", "sales")
    sales = mongo_client["sample_supplies"]["sales"]
    args = ("run", "--uri", mongo_server.uri, "--database", "sample_supplies", "--collections", "sales", "--mode",
            "incremental", "--cursor-field", "saleDate", "--detect-deletes", "--warehouse", str(tmp_path / "w.duckdb"),
            "--pipelines-dir", str(tmp_path / "p"), "--json")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["tables"][0]["rows_loaded"] == 5000
    later = datetime(2030, 1, 1, tzinfo=timezone.utc)
    sales.update_many({"_id": {"$in": [d["_id"] for d in source[:3]]}}, {"$set": {"saleDate": later, "couponUsed": True}})
    sales.delete_many({"_id": {"$in": [d["_id"] for d in source[3:7]]}})
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    table = json.loads(second.stdout)["tables"][0]
    assert (table["documents_read"], table["deletes"]) == (4, 4)  # the 3 changed and the one at the stored cursor
    assert table["reconciliation"]["status"] == "match" and table["reconciliation"]["sample_mismatches"] == 0
    warehouse = tmp_path / "w.duckdb"
    assert query(warehouse, "select count(*) from raw_atlas.sales") == [(4996,)]
    assert query(warehouse, "select count(*) from raw_atlas.sales where coupon_used and sale_date >= '2030-01-01'") == [(3,)]
