"""A user's own database, as `atlas-ingest run --database DB` sees it with no `--collections`:
every collection loaded, schema files written, numbers of mixed BSON types in one column,
columns widened across runs, one failing collection leaving the others loaded, and names that
would collide refused before anything loads."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import yaml
from bson import Int64, json_util

from tests.conftest import REPO, run_cli
from tests.e2e.test_reference_data import import_sample

GUIDE_FILE = REPO.parent / "shared" / "reference" / "customer_activity_sample.jsonl"


def ingest(uri: str, database: str, work: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli("run", "--uri", uri, "--database", database, "--warehouse", str(work / "w.duckdb"),
                   "--pipelines-dir", str(work / "pipelines"), "--schema-dir", str(work / "schemas"), "--no-progress",
                   "--json", *args, env=env)


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()


def column_types(warehouse: Path, table: str) -> dict[str, str]:
    return dict(query(warehouse, "select column_name, data_type from information_schema.columns "
                                 f"where table_schema = 'raw_atlas' and table_name = '{table}'"))


def tables_of(warehouse: Path) -> set[str]:
    return {t for (t,) in query(warehouse, "select table_name from information_schema.tables where table_schema = 'raw_atlas'")}


def test_every_collection_of_a_database_loads_with_schema_files(mongo_server, mongo_client, tmp_path):
    sales = import_sample(mongo_client, "sample_supplies", "sales")
    with_accounts = import_sample(mongo_client, "sample_analytics", "accounts")
    mongo_client.drop_database("own_db")
    db = mongo_client["own_db"]
    db["sales"].insert_many(sales)
    db["accounts"].insert_many(with_accounts)
    db["tmp_scratch"].insert_one({"_id": 1, "note": "excluded by pattern"})
    db.command("create", "big_sales", viewOn="sales", pipeline=[{"$match": {"customer.age": {"$gt": 60}}}])

    r = ingest(mongo_server.uri, "own_db", tmp_path, env={"SOURCES__ATLAS__EXCLUDE": "tmp_*"})
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert sorted(t["collection"] for t in summary["tables"]) == ["accounts", "sales"]  # no view, no excluded
    warehouse = tmp_path / "w.duckdb"
    assert {"accounts", "sales"} <= tables_of(warehouse) and not {"tmp_scratch", "big_sales"} & tables_of(warehouse)
    for table, docs in [("sales", sales), ("accounts", with_accounts)]:
        assert query(warehouse, f"select count(*) from raw_atlas.{table}") == [(len(docs),)]
        assert not [c for c in column_types(warehouse, table) if "__v_" in c], f"{table} has variant columns"
    # numbers exact: every account's limit, every sale's coupon flag and date
    source_limits = sorted((str(d["_id"]), d["limit"]) for d in with_accounts)
    assert sorted(query(warehouse, "select _id, \"limit\" from raw_atlas.accounts")) == source_limits
    assert sorted(query(warehouse, "select _id, coupon_used from raw_atlas.sales")) == sorted((str(d["_id"]), d["couponUsed"]) for d in sales)

    schema_file = tmp_path / "schemas" / "own_db" / "sales.yml"
    content = yaml.safe_load(schema_file.read_text())
    fields = {f["path"]: f for f in content["fields"]}
    assert content["collection"] == "sales" and content["table"] == "sales"
    assert fields["saleDate"]["column"] == "sale_date" and fields["saleDate"]["types"] == ["date"]
    assert fields["couponUsed"]["column"] == "coupon_used"
    assert "items[].price" in fields and "customer.age" in fields
    assert (tmp_path / "schemas" / "own_db" / "accounts.yml").exists()


@pytest.mark.parametrize("mode_args", [("--mode", "full", "--batch-docs", "1"),
                                       ("--mode", "full", "--batch-docs", "1", "--sample-size", "0"),
                                       ("--mode", "cdc", "--checkpoint-docs", "1", "--batch-docs", "1")],
                         ids=["full-in-batches-of-1", "full-unsampled", "cdc-in-loads-of-1"])
def test_guide_file_numbers_land_in_one_double_column(mongo_server, mongo_client, tmp_path, mode_args):
    # As Compass imports it: integral JSON numbers become Int32, others Double.
    docs = [json_util.loads(line) for line in GUIDE_FILE.read_text().splitlines() if line.strip()]
    mongo_client.drop_database("guide")
    # The document with an integral intl_mins first (inserted first, so read first in `_id` order):
    # one document per batch or load, the first one alone would make the column bigint.
    docs.sort(key=lambda d: not isinstance(d["intl_mins"], int))
    assert isinstance(docs[0]["intl_mins"], int) and {type(d["intl_mins"]) for d in docs} == {int, float}
    mongo_client["guide"]["customer_activity"].insert_many(docs)

    r = ingest(mongo_server.uri, "guide", tmp_path, *mode_args)
    assert r.returncode == 0, r.stderr
    # planned as double from the sample, or (unsampled) widened within the run before any table existed
    assert json.loads(r.stdout)["tables"][0]["widened_columns"] == []
    warehouse = tmp_path / "w.duckdb"
    types = column_types(warehouse, "customer_activity")
    for name in ("intl_mins", "day_mins", "eve_mins"):
        assert types[name] == "DOUBLE", (name, types[name])
        assert not [c for c in types if c.startswith(f"{name}__v_")]
        values = sorted(query(warehouse, f"select phone, {name} from raw_atlas.customer_activity"))
        assert values == sorted((d["phone"], float(d[name])) for d in docs)


def test_a_stored_int_column_widens_to_double_and_a_string_goes_to_a_variant(mongo_server, mongo_client, tmp_path):
    mongo_client.drop_database("widen")
    coll = mongo_client["widen"]["readings"]
    coll.insert_many([{"_id": 1, "m": 1}, {"_id": 2, "m": Int64(2**40)}])
    first = ingest(mongo_server.uri, "widen", tmp_path)
    assert first.returncode == 0, first.stderr
    warehouse = tmp_path / "w.duckdb"
    assert column_types(warehouse, "readings")["m"] == "BIGINT"

    coll.insert_many([{"_id": 3, "m": 2.5}, {"_id": 4, "m": "n/a"}])
    second = ingest(mongo_server.uri, "widen", tmp_path)
    assert second.returncode == 0, second.stderr
    table = json.loads(second.stdout)["tables"][0]
    assert table["widened_columns"] == ["m"]
    assert table["variant_columns"] == ["m__v_text"]
    assert "new types m: double" in table["schema_changes"]
    assert column_types(warehouse, "readings")["m"] == "DOUBLE"
    rows = query(warehouse, "select _id, m, m__v_text from raw_atlas.readings order by _id")
    assert rows == [('{"$numberInt": "1"}', 1.0, None), ('{"$numberInt": "2"}', float(2**40), None),
                    ('{"$numberInt": "3"}', 2.5, None), ('{"$numberInt": "4"}', None, "n/a")]
    history = query(warehouse, "select widened_columns from raw_atlas._atlas_runs where status = 'succeeded' order by started_at")
    assert history == [(None,), ("m",)]


def test_one_failing_collection_leaves_the_others_loaded_and_recorded(mongo_server, mongo_client, tmp_path):
    mongo_client.drop_database("partly")
    mongo_client["partly"]["good"].insert_many([{"_id": i, "n": i} for i in range(5)])
    mongo_client["partly"]["broken"].insert_many([{"_id": i, "n": i} for i in range(3)])
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:  # the warehouse refuses the table: a view holds its name
        con.sql("create schema raw_atlas; create view raw_atlas.broken as select 1 as x")

    r = ingest(mongo_server.uri, "partly", tmp_path)
    assert r.returncode == 8, (r.returncode, r.stderr)
    assert "1 of 2 collections failed ('broken'" in r.stderr.strip().splitlines()[-1]  # the error line comes last
    summary = json.loads(r.stdout)
    assert [t["collection"] for t in summary["tables"]] == ["good"] and list(summary["failed"]) == ["broken"]
    assert query(warehouse, "select count(*) from raw_atlas.good") == [(5,)]
    runs = dict(query(warehouse, "select collection, status from raw_atlas._atlas_runs"))
    assert runs == {"good": "succeeded", "broken": "failed"}


def test_one_failing_cdc_collection_leaves_the_others_synced_and_recorded(mongo_server, mongo_client, tmp_path):
    mongo_client.drop_database("partlycdc")
    mongo_client["partlycdc"]["good"].insert_many([{"_id": i, "n": i if i < 4 else i + 0.5} for i in range(5)])
    mongo_client["partlycdc"]["broken"].insert_many([{"_id": i, "n": i} for i in range(3)])
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.sql("create schema raw_atlas; create view raw_atlas.broken as select 1 as x")

    # a snapshot in loads of two documents: the double comes in the third load
    r = ingest(mongo_server.uri, "partlycdc", tmp_path, "--mode", "cdc", "--checkpoint-docs", "2", "--batch-docs", "2")
    assert r.returncode == 8, (r.returncode, r.stderr)
    summary = json.loads(r.stdout)
    assert [t["collection"] for t in summary["tables"]] == ["good"] and list(summary["failed"]) == ["broken"]
    # discovery planned the column before the snapshot: no bigint column to widen later
    assert column_types(warehouse, "good")["n"] == "DOUBLE" and summary["tables"][0]["widened_columns"] == []
    assert query(warehouse, "select sum(n) from raw_atlas.good") == [(10.5,)]
    assert (tmp_path / "schemas" / "partlycdc" / "good.yml").exists()
    runs = dict(query(warehouse, "select collection, status from raw_atlas._atlas_runs"))
    assert runs == {"good": "succeeded", "broken": "failed"}

    # the cause removed, the next run brings the failed collection up and leaves the other one as it was
    with duckdb.connect(str(warehouse)) as con:
        con.sql("drop view raw_atlas.broken")
    mongo_client["partlycdc"]["good"].delete_one({"_id": 0})
    r = ingest(mongo_server.uri, "partlycdc", tmp_path, "--mode", "cdc")
    assert r.returncode == 0, r.stderr
    assert query(warehouse, "select count(*) from raw_atlas.broken") == [(3,)]
    assert query(warehouse, "select count(*) from raw_atlas.good") == [(4,)]

    # with no sample, the bigint column the first loads stored is widened when the double arrives
    r = ingest(mongo_server.uri, "partlycdc", tmp_path / "unsampled", "--mode", "cdc", "--collections", "good",
               "--checkpoint-docs", "2", "--batch-docs", "2", "--sample-size", "0")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tables"][0]["widened_columns"] == ["n"]
    unsampled = tmp_path / "unsampled" / "w.duckdb"
    assert column_types(unsampled, "good")["n"] == "DOUBLE"
    assert query(unsampled, "select sum(n) from raw_atlas.good") == [(10.5,)]


def test_names_that_collide_are_refused_before_anything_loads(mongo_server, mongo_client, tmp_path):
    mongo_client.drop_database("clash")
    mongo_client["clash"]["listingsAndReviews"].insert_one({"_id": 1})
    mongo_client["clash"]["listings_and_reviews"].insert_one({"_id": 1})
    r = ingest(mongo_server.uri, "clash", tmp_path / "tables")
    assert r.returncode == 2
    assert "collections 'listingsAndReviews' and 'listings_and_reviews' of database 'clash' both map to table " \
           "'listings_and_reviews'" in r.stderr

    mongo_client.drop_database("clash")
    mongo_client["clash"]["Name"].insert_one({"_id": 1})
    mongo_client["clash"]["name"].insert_one({"_id": 2})
    r = ingest(mongo_server.uri, "clash", tmp_path / "case", "--collections", "Name,name")
    assert r.returncode == 2 and "collections 'Name' and 'name' of database 'clash' both map to table 'name'" in r.stderr

    mongo_client.drop_database("clash")
    mongo_client["clash"]["users"].insert_many([{"_id": 1, "userName": "a"}, {"_id": 2, "user_name": "b"}])
    r = ingest(mongo_server.uri, "clash", tmp_path / "fields")
    assert r.returncode == 2
    assert "fields 'userName' and 'user_name' both map to column 'user_name'" in r.stderr

    mongo_client.drop_database("clash")
    mongo_client["clash"]["users"].insert_many([{"_id": 1, "a" * 128: 1}, {"_id": 2, "a": 1}])
    r = ingest(mongo_server.uri, "clash", tmp_path / "long")  # that document is quarantined, the others load
    assert r.returncode == 0, r.stderr
    assert query(tmp_path / "long" / "w.duckdb", "select _id from raw_atlas.users") == [('{"$numberInt": "2"}',)]
    assert "over the 127-byte limit" in query(tmp_path / "long" / "w.duckdb", "select reason from raw_atlas._atlas_quarantine")[0][0]

    for work in ("tables", "case", "fields"):
        warehouse = tmp_path / work / "w.duckdb"
        assert not warehouse.exists() or not {"users", "listings_and_reviews", "name"} & tables_of(warehouse)


def test_a_same_named_collection_of_another_database_is_refused_in_one_dataset(mongo_server, mongo_client, tmp_path):
    for database, n in (("east", 3), ("west", 2)):
        mongo_client.drop_database(database)
        mongo_client[database]["orders"].insert_many([{"_id": i, "region": database} for i in range(n)])
    assert ingest(mongo_server.uri, "east", tmp_path).returncode == 0
    r = ingest(mongo_server.uri, "west", tmp_path)
    assert r.returncode == 2
    assert "table 'raw_atlas.orders' already holds a collection of 'east' (another database)" in r.stderr
    assert "--dataset raw_west" in r.stderr
    warehouse = tmp_path / "w.duckdb"
    assert query(warehouse, "select region, count(*) from raw_atlas.orders group by region") == [("east", 3)]
    r = ingest(mongo_server.uri, "west", tmp_path, "--dataset", "raw_west")
    assert r.returncode == 0, r.stderr
    assert query(warehouse, "select region, count(*) from raw_west.orders group by region") == [("west", 2)]


def test_databases_whose_names_differ_only_in_case_have_a_pipeline_each(mongo_server, mongo_client, tmp_path):
    """`Shop` and `shop` never share a pipeline (state, lock, history): in one dataset the second
    is refused before it touches the first one's table, and in a dataset of its own each one's
    incremental cursor sees only its own documents."""
    from datetime import datetime, timedelta, timezone

    from ingestion.naming import pipeline_name

    stamp = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for database in ("Shop", "shop"):
        mongo_client.drop_database(database)
        mongo_client[database]["orders"].insert_many(
            [{"_id": i, "shop": database, "updated_at": stamp + timedelta(minutes=i)} for i in range(3)])
    incremental = ("--mode", "incremental", "--cursor-field", "updated_at")
    assert ingest(mongo_server.uri, "Shop", tmp_path, *incremental).returncode == 0
    r = ingest(mongo_server.uri, "shop", tmp_path, *incremental)
    assert r.returncode == 2 and "table 'raw_atlas.orders' already holds a collection of 'Shop' (another database)" in r.stderr
    warehouse = tmp_path / "w.duckdb"
    assert query(warehouse, "select shop, count(*) from raw_atlas.orders group by shop") == [("Shop", 3)]

    r = ingest(mongo_server.uri, "shop", tmp_path, *incremental, "--dataset", "raw_lower")
    assert r.returncode == 0, r.stderr
    # a newer document in shop does not move Shop's cursor: Shop's older new document still loads
    mongo_client["shop"]["orders"].insert_one({"_id": 10, "shop": "shop", "updated_at": stamp + timedelta(days=9)})
    assert ingest(mongo_server.uri, "shop", tmp_path, *incremental, "--dataset", "raw_lower").returncode == 0
    mongo_client["Shop"]["orders"].insert_one({"_id": 10, "shop": "Shop", "updated_at": stamp + timedelta(days=1)})
    assert ingest(mongo_server.uri, "Shop", tmp_path, *incremental).returncode == 0
    assert query(warehouse, "select shop, count(*) from raw_atlas.orders group by shop") == [("Shop", 4)]
    assert query(warehouse, "select shop, count(*) from raw_lower.orders group by shop") == [("shop", 4)]
    names = query(warehouse, "select distinct pipeline_name, source_database, status from raw_atlas._atlas_runs order by status")
    assert names == [("atlas_shop_local", "shop", "failed"), (pipeline_name("Shop", "local"), "Shop", "succeeded")]
    assert pipeline_name("Shop", "local") != "atlas_shop_local"
