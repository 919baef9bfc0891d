"""`atlas-ingest scaffold` on data this project did not make: MongoDB's public sample collections
go through run → scaffold → dbt build, and figures computed with pymongo on the source equal the
same figures computed by dbt models over the generated ones; the generated files lint, are
documented and compile for Redshift; a collection of awkward shape is scaffolded, changed and
scaffolded again, keeping a user's edit."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml
from bson import Decimal128, Int64
from pymongo import MongoClient

from tests.conftest import BIN, copy_dbt_project, dbt_env, duckdb_extension_directory, run_cli, s3_client
from tests.e2e.test_reference_data import import_sample


def ingest(uri: str, database: str, work: Path, *args: str):
    r = run_cli("run", "--uri", uri, "--database", database, "--warehouse", str(work / "w.duckdb"),
                "--pipelines-dir", str(work / "pipelines"), "--schema-dir", str(work / "schemas"), "--no-progress", *args)
    assert r.returncode == 0, r.stderr
    return r


def scaffold(database: str, work: Path, *args: str):
    return run_cli("scaffold", "--database", database, "--schema-dir", str(work / "schemas"),
                   "--project-dir", str(work / "project"), *args)


def dbt(work: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**dbt_env(work / "w.duckdb", work / "target"), **(env or {})}
    return subprocess.run([str(BIN / "dbt"), *args, "--project-dir", str(work / "project")], cwd=work / "project",
                          capture_output=True, text=True, env=env, timeout=600)


def landing_connection(warehouse: Path, s3_server: dict[str, str]) -> duckdb.DuckDBPyConnection:
    """A connection whose views over the landing zone read S3: DuckDB's S3 reader, pointed at the local server."""
    con = duckdb.connect(str(warehouse), read_only=True)
    con.sql(f"set extension_directory = '{duckdb_extension_directory()}'; load httpfs; "
            f"create secret (type s3, key_id 'testing', secret 'testing', region 'us-east-1', "
            f"endpoint '{s3_server['AWS_ENDPOINT_URL'].split('://')[1]}', url_style 'path', use_ssl false)")
    return con


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()


# Figures a user would build on the generated models, as models of their own.
SALES_BY_STORE = """
select
    sales.store_location,
    sum(items.price * items.quantity) as revenue,
    sum(items.quantity) as quantity
from {{ ref('stg_sample_supplies__sales__items') }} as items
inner join {{ ref('stg_sample_supplies__sales') }} as sales on items.sale_id = sales.sale_id
group by sales.store_location
"""
PRODUCTS_PER_ACCOUNT = """
select
    accounts.account_document_id,
    count(products.product_index) as products
from {{ ref('stg_sample_analytics__accounts') }} as accounts
left join {{ ref('stg_sample_analytics__accounts__products') }} as products
    on accounts.account_document_id = products.account_document_id
group by accounts.account_document_id
"""
FIGURES_YML = """
version: 2
models:
  - name: sales_by_store
    description: Revenue and quantity per store, from the unnested items.
    columns:
      - {name: store_location, description: Store., data_tests: [unique, not_null]}
      - {name: revenue, description: Sum of price times quantity.}
      - {name: quantity, description: Items sold.}
  - name: products_per_account
    description: Products per account.
    columns:
      - {name: account_document_id, description: Account document., data_tests: [unique, not_null]}
      - {name: products, description: Products the account holds.}
"""


@pytest.fixture(scope="module")
def samples(mongo_server, tmp_path_factory):
    work = tmp_path_factory.mktemp("scaffold")
    copy_dbt_project(work / "project")
    with MongoClient(mongo_server.uri) as client:
        sales = import_sample(client, "sample_supplies", "sales")
        accounts = import_sample(client, "sample_analytics", "accounts")
    reports = {}
    for database in ("sample_supplies", "sample_analytics"):
        ingest(mongo_server.uri, database, work)  # no --collections: every collection of the database
        r = scaffold(database, work)
        assert r.returncode == 0, r.stderr
        reports[database] = r.stdout
    figures = work / "project" / "models" / "figures"
    figures.mkdir()
    (figures / "sales_by_store.sql").write_text(SALES_BY_STORE)
    (figures / "products_per_account.sql").write_text(PRODUCTS_PER_ACCOUNT)
    (figures / "_figures__models.yml").write_text(FIGURES_YML)
    built = dbt(work, "build")
    assert built.returncode == 0, built.stdout[-5000:]
    return {"work": work, "sales": sales, "accounts": accounts, "reports": reports}


def test_generated_files_are_the_ones_a_collection_needs(samples):
    folder = samples["work"] / "project" / "models" / "staging"
    assert sorted(p.name for p in (folder / "sample_supplies").iterdir()) == [
        ".sqlfluff", "_sample_supplies__models.yml", "_sample_supplies__sources.yml", "stg_sample_supplies__sales.sql",
        "stg_sample_supplies__sales__items.sql", "stg_sample_supplies__sales__items__tags.sql"]
    staging = (folder / "sample_supplies" / "stg_sample_supplies__sales.sql").read_text()
    assert "{{ json_value('source.customer', ['satisfaction'], 'bigint') }} as customer__satisfaction," in staging
    assert "{{ utc_timestamp('source.sale_date') }} as sale_date," in staging
    assert "created" in samples["reports"]["sample_supplies"]
    sources = yaml.safe_load((folder / "sample_supplies" / "_sample_supplies__sources.yml").read_text())
    table = sources["sources"][0]["tables"][0]
    assert table["name"] == "sales" and table["data_tests"] == [{"reconciled_with_source": {"arguments": {"collection": "sales"}}}]
    assert {c["name"]: c.get("data_tests") for c in table["columns"]}["_id"] == ["unique", "not_null"]


def test_revenue_and_quantity_per_store_equal_the_source(samples, mongo_server):
    with MongoClient(mongo_server.uri) as client:
        expected = {
            row["_id"]: (row["revenue"].to_decimal(), row["quantity"])
            for row in client["sample_supplies"]["sales"].aggregate([
                {"$unwind": "$items"},
                {"$group": {"_id": "$storeLocation",
                            "revenue": {"$sum": {"$multiply": ["$items.price", "$items.quantity"]}},
                            "quantity": {"$sum": "$items.quantity"}}},
            ])
        }
    got = {store: (Decimal(revenue), quantity) for store, revenue, quantity in
           query(samples["work"] / "w.duckdb", "select store_location, revenue, quantity from analytics.sales_by_store")}
    assert len(expected) >= 5 and got.keys() == expected.keys()
    for store, (revenue, quantity) in expected.items():
        assert got[store][1] == quantity, store
        assert got[store][0] == revenue.quantize(Decimal("0.000000001")) or abs(got[store][0] - revenue) < Decimal("0.0001"), store


def test_products_per_account_equal_the_source(samples, mongo_server):
    with MongoClient(mongo_server.uri) as client:
        # per account document: the sample holds one account_id twice
        expected = {str(row["_id"]): row["products"] for row in client["sample_analytics"]["accounts"].aggregate(
            [{"$project": {"products": {"$size": {"$ifNull": ["$products", []]}}}}])}
    got = dict(query(samples["work"] / "w.duckdb", "select account_document_id, products from analytics.products_per_account"))
    assert len(expected) == len(samples["accounts"]) and got == expected


def test_generated_models_are_documented_and_lint_clean(samples):
    work = samples["work"]
    manifest = __import__("json").loads((work / "target" / "manifest.json").read_text())
    generated = {n["name"]: n for n in manifest["nodes"].values()
                 if n["resource_type"] == "model" and "/staging/sample_" in n["original_file_path"]}
    assert len(generated) == 5
    gaps = [f"{n['name']}.{c}" for n in generated.values() for c, col in n["columns"].items() if not col["description"].strip()]
    assert not gaps
    with duckdb.connect(str(work / "w.duckdb"), read_only=True) as con:
        for node in generated.values():  # documented columns are the real ones, in order
            actual = [c for (c,) in con.sql("select column_name from information_schema.columns where table_schema = ? "
                                            "and table_name = ? order by ordinal_position",
                                            params=[node["schema"], node["alias"]]).fetchall()]
            assert actual == list(node["columns"]), node["name"]
    env = dbt_env(work / "w.duckdb", work / "lint")
    lint = subprocess.run([str(Path(sys.executable).with_name("sqlfluff")), "lint", "models/staging/sample_supplies",
                           "models/staging/sample_analytics", "--templater", "dbt", "--disable-progress-bar"],
                          cwd=work / "project", capture_output=True, text=True, env=env, timeout=600)
    assert lint.returncode == 0, lint.stdout[-4000:] + lint.stderr[-2000:]


def test_generated_models_compile_for_redshift(samples, tmp_path):
    work = samples["work"]
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text((work / "project" / "profiles.yml.example").read_text())
    out = tmp_path / "redshift_sql"
    env = {**os.environ, "DBT_PROFILES_DIR": str(profiles)}
    compiled = subprocess.run([sys.executable, "-m", "redshift_contract.compile", "--project-dir", str(work / "project"),
                               "--output", str(out), "--models-only"], capture_output=True, text=True, env=env, timeout=900,
                              cwd=Path(__file__).resolve().parents[2])
    assert compiled.returncode == 0, compiled.stdout[-3000:] + compiled.stderr[-3000:]
    checked = subprocess.run([sys.executable, "-m", "redshift_contract.check", str(out)], capture_output=True, text=True,
                             env=env, timeout=900, cwd=Path(__file__).resolve().parents[2])
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    items = (out / "models/staging/sample_supplies/stg_sample_supplies__sales__items.sql").read_text()
    assert "parent.items as element at element_index" in items and "cast(element.price as decimal(38, 9))" in items


def test_generated_models_read_the_landing_zone_in_place(samples, mongo_server, s3_server):
    """The generated external table (Spectrum types from discovery; a view over read_json on
    DuckDB) reads every document `--destination s3` landed, and the generated models (and a
    user's model over them) built with atlas_source: spectrum hold the rows the loaded path gives."""
    work = samples["work"]
    sources = yaml.safe_load((work / "project/models/staging/sample_supplies/_sample_supplies__sources.yml").read_text())
    landing = next(s for s in sources["sources"] if s["name"] == "sample_supplies_landing")
    types = {c["name"]: c["data_type"] for c in landing["tables"][0]["columns"]}
    assert types["customer"] == "struct<gender:varchar(65535),age:bigint,email:varchar(65535),satisfaction:bigint>"
    assert types["items"] == ("array<struct<name:varchar(65535),tags:array<varchar(65535)>,price:decimal(38,9),"
                              "quantity:bigint>>")
    assert types["sale_date"] == "varchar(40)" and types["_id"] == "varchar(512)"

    s3_client(s3_server).create_bucket(Bucket="landing-scaffold")
    for database in ("sample_supplies", "sample_analytics"):
        landed = run_cli("run", "--uri", mongo_server.uri, "--database", database, "--destination", "s3",
                         "--bucket-url", "s3://landing-scaffold", "--prefix", "atlas", "--pipelines-dir",
                         str(work / "p_s3"), "--schema-dir", str(work / "schemas_s3"), "--no-progress", env=s3_server)
        assert landed.returncode == 0, landed.stderr
    spectrum_vars = '{"atlas_source": "spectrum", "landing_url": "s3://landing-scaffold/atlas"}'
    spectrum = {**s3_server, "DBT_DUCKDB_PATH": str(work / "spectrum.duckdb")}
    staged = dbt(work, "run-operation", "stage_external_sources", "--args",
                 "{select: 'sample_supplies_landing.sales,sample_analytics_landing.accounts'}", "--vars", spectrum_vars,
                 env=spectrum)
    assert staged.returncode == 0, staged.stdout[-3000:]
    # the generated models and a user's models over them, built from the landing zone alone
    built = dbt(work, "build", "--select", "path:models/staging/sample_supplies+", "path:models/staging/sample_analytics+",
                "--vars", spectrum_vars, env=spectrum)
    assert built.returncode == 0, built.stdout[-5000:]
    con = landing_connection(work / "spectrum.duckdb", s3_server)
    try:
        for relation, key, left_out in (
            ("analytics.sales_by_store", "store_location", ""),
            ("analytics.products_per_account", "account_document_id", ""),
            ("analytics_staging.stg_sample_analytics__accounts__products", "account_document_id, product_index",
             " exclude (extracted_at, deleted_at)"),
            ("analytics_staging.stg_sample_supplies__sales", "sale_id", " exclude (extracted_at, deleted_at, dlt_load_id, items)"),
            ("analytics_staging.stg_sample_supplies__sales__items", "sale_id, item_index", " exclude (extracted_at, deleted_at, tags)"),
            ("analytics_staging.stg_sample_supplies__sales__items__tags", "sale_id, item_index, tag_index",
             " exclude (extracted_at, deleted_at)"),
        ):
            sql = f"select *{left_out} from {relation} order by {key}"
            loaded_rows, landed_rows = query(work / "w.duckdb", sql), con.sql(sql).fetchall()
            assert len(loaded_rows) > 0 and landed_rows == loaded_rows, relation
        rows = {r[0]: r[1:] for r in con.sql(
            "select _id, store_location, sale_date, json_extract_string(customer, '$.email'), "
            "json_array_length(items) from atlas_landing.sample_supplies__sales").fetchall()}
    finally:
        con.close()
    assert len(rows) == len(samples["sales"])
    for doc in samples["sales"]:
        store, sale_date, email, items = rows[str(doc["_id"])]
        assert store == doc["storeLocation"] and email == doc["customer"]["email"] and items == len(doc["items"])
        assert datetime.fromisoformat(sale_date) == doc["saleDate"].replace(tzinfo=timezone.utc)


def awkward_documents(first: int, count: int, gift_wrap: bool = False) -> list[dict]:
    docs = []
    for i in range(first, first + count):
        total = [i, i + 0.5, Int64(i), str(i)][i % 4]  # int, double, long, and a string now and then
        doc = {
            "_id": i,
            "orderTotal": total,
            "ship.to": f"city {i % 3}",
            "shipping": {"zip.code": f"{10000 + i}", "geoPoint": {"lat": i / 10, "lng": -i / 10},
                         "weightKg": [i, i + 0.25][i % 2]},
            "scores": {f"2024-01-{d:02d}": {"value": i * d, "weight": Decimal128(f"{d}.5")} for d in range(1, 1 + i % 3)},
            "shipments": [{"carrier": f"c{s}", "parcels": [{"trackingId": f"t{i}-{s}-{p}", "weight": p + 0.5} for p in range(s + 1)]}
                          for s in range(i % 3)],
            "status": "OPEN" if i % 2 else "Closed",
            "placedAt": datetime(2024, 1, 1 + i % 28, tzinfo=timezone.utc),
        }
        if gift_wrap:
            doc["giftWrap"] = bool(i % 2)
        docs.append(doc)
    return docs


def test_an_awkward_collection_scaffolds_changes_and_keeps_a_users_edit(mongo_server, s3_server, tmp_path):
    work = tmp_path
    copy_dbt_project(work / "project")
    with MongoClient(mongo_server.uri) as client:
        client.drop_database("shop")
        orders = client["shop"]["orders"]
        orders.insert_many(awkward_documents(0, 40))
        ingest(mongo_server.uri, "shop", work)
        first = scaffold("shop", work)
        assert first.returncode == 0, first.stderr
        built = dbt(work, "build", "--select", "path:models/staging/shop+")
        assert built.returncode == 0, built.stdout[-5000:]

        folder = work / "project" / "models" / "staging" / "shop"
        assert sorted(p.name for p in folder.glob("*.sql")) == [
            "stg_shop__orders.sql", "stg_shop__orders__scores.sql", "stg_shop__orders__shipments.sql",
            "stg_shop__orders__shipments__parcels.sql"]
        staging = folder / "stg_shop__orders.sql"
        assert "source.status," in staging.read_text() and "landed.status," in staging.read_text()
        staging.write_text(staging.read_text().replace("source.status,", "lower(source.status) as status,")
                           .replace("landed.status,", "lower(landed.status) as status,"))  # both queries

        orders.insert_many(awkward_documents(40, 20, gift_wrap=True))
        ingest(mongo_server.uri, "shop", work)
        second = scaffold("shop", work)
        assert second.returncode == 0, second.stderr
        assert "merged" in second.stdout and "new columns in stg_shop__orders: gift_wrap" in second.stdout, second.stdout
        text = staging.read_text()
        assert "lower(source.status) as status," in text and "source.gift_wrap" in text
        assert "lower(landed.status) as status," in text and "landed.gift_wrap" in text
        built = dbt(work, "build", "--select", "path:models/staging/shop+")
        assert built.returncode == 0, built.stdout[-5000:]
        docs = list(orders.find())

    warehouse = work / "w.duckdb"
    rows = {r[0]: r[1:] for r in query(warehouse, "select order_id, order_total, order_total__v_text, ship_to, "
                                                  "shipping__zip_code, shipping__geo_point__lat, shipping__weight_kg, "
                                                  "status, gift_wrap from analytics_staging.stg_shop__orders")}
    assert len(rows) == 60
    for doc in docs:
        total, total_text, ship_to, zip_code, lat, weight, status, gift_wrap = rows[_id_text(doc["_id"])]
        if isinstance(doc["orderTotal"], str):
            assert total is None and total_text == doc["orderTotal"]
        else:
            assert total == float(doc["orderTotal"]), doc["_id"]  # never NULL where the source has a number
        assert ship_to == doc["ship.to"] and zip_code == doc["shipping"]["zip.code"]
        assert lat == doc["shipping"]["geoPoint"]["lat"] and weight == float(doc["shipping"]["weightKg"])
        assert status == doc["status"].lower()
        assert gift_wrap == doc.get("giftWrap")
    scores = query(warehouse, "select order_id, score_key, value, weight from analytics_staging.stg_shop__orders__scores")
    assert sorted(scores) == sorted((_id_text(d["_id"]), k, v["value"], v["weight"].to_decimal())
                                    for d in docs for k, v in d["scores"].items())
    parcels = query(warehouse, "select order_id, shipment_index, parcel_index, tracking_id, weight "
                               "from analytics_staging.stg_shop__orders__shipments__parcels")
    assert sorted(parcels) == sorted((_id_text(d["_id"]), s, p, parcel["trackingId"], parcel["weight"])
                                     for d in docs for s, shipment in enumerate(d["shipments"])
                                     for p, parcel in enumerate(shipment["parcels"]))

    # The same models over the landing zone: a map of objects, arrays in arrays, camelCase keys.
    s3_client(s3_server).create_bucket(Bucket="landing-shop")
    for _ in range(2):  # every document landed twice: the newest version counts
        landed = run_cli("run", "--uri", mongo_server.uri, "--database", "shop", "--destination", "s3", "--bucket-url",
                         "s3://landing-shop", "--prefix", "atlas", "--pipelines-dir", str(work / "p_s3"), "--schema-dir",
                         str(work / "schemas_s3"), "--no-progress", "--write-disposition", "append", env=s3_server)
        assert landed.returncode == 0, landed.stderr
    spectrum_vars = '{"atlas_source": "spectrum", "landing_url": "s3://landing-shop/atlas"}'
    spectrum = {**s3_server, "DBT_DUCKDB_PATH": str(work / "spectrum.duckdb")}
    staged = dbt(work, "run-operation", "stage_external_sources", "--args", "{select: shop_landing.orders}",
                 "--vars", spectrum_vars, env=spectrum)
    assert staged.returncode == 0, staged.stdout[-3000:]
    built = dbt(work, "build", "--select", "path:models/staging/shop+", "--vars", spectrum_vars, env=spectrum)
    assert built.returncode == 0, built.stdout[-5000:]
    con = landing_connection(work / "spectrum.duckdb", s3_server)
    try:
        for relation, key, left_out in (
            # a key with a dot (`zip.code`) is no Spectrum struct field: null in the landing zone
            ("stg_shop__orders", "order_id", "extracted_at, deleted_at, dlt_load_id, scores, shipments, shipping__zip_code"),
            ("stg_shop__orders__scores", "order_id, score_key", "extracted_at, deleted_at"),
            ("stg_shop__orders__shipments", "order_id, shipment_index", "extracted_at, deleted_at, parcels"),
            ("stg_shop__orders__shipments__parcels", "order_id, shipment_index, parcel_index", "extracted_at, deleted_at"),
        ):
            sql = f"select * exclude ({left_out}) from analytics_staging.{relation} order by {key}"
            loaded_rows, landed_rows = query(warehouse, sql), con.sql(sql).fetchall()
            assert len(loaded_rows) > 0 and landed_rows == loaded_rows, relation
        assert con.sql("select count(shipping__zip_code) from analytics_staging.stg_shop__orders").fetchone() == (0,)
        assert con.sql("select count(*), count(distinct _id) from atlas_landing.shop__orders").fetchone() == (120, 60)
    finally:
        con.close()


def _id_text(value: int) -> str:
    return '{"$numberInt": "%d"}' % value
