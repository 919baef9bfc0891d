"""The s3 destination against a real S3-compatible server, and parallel reads by _id range."""

from __future__ import annotations

import gzip
import json
import re

import duckdb
import pyarrow.parquet as pq
import pytest
from bson import ObjectId
from pymongo import MongoClient

from ingestion.local.seed import seed_collection
from ingestion.mongo.reads import id_range_filters
from tests.conftest import run_cli, s3_client


@pytest.fixture(scope="module")
def source(mongo_server):
    with MongoClient(mongo_server.uri) as client:
        seed_collection(client, 1_500, seed=9, database="dest")
        docs = {str(d["_id"]): d for d in client["dest"]["customer_activity"].find()}
    return docs


def test_s3_jsonl_layout_and_content(mongo_server, s3_server, source, tmp_path):
    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket="landing-jsonl")
    r = run_cli("run", "--uri", mongo_server.uri, "--database", "dest", "--collections", "customer_activity",
                "--destination", "s3", "--bucket-url", "s3://landing-jsonl", "--prefix", "raw/atlas",
                "--pipelines-dir", str(tmp_path / "p"), "--json", env=s3_server)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["tables"][0]["rows_loaded"] == 1_500
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="landing-jsonl")["Contents"]]
    data = [k for k in keys if "/customer_activity/" in k]
    assert data and all(re.fullmatch(r"raw/atlas/dest/customer_activity/load_date=\d{4}-\d{2}-\d{2}/[\d.]+\.\w+\.jsonl\.gz", k) for k in data), data
    rows = []
    for key in data:
        body = s3.get_object(Bucket="landing-jsonl", Key=key)["Body"].read()
        rows += [json.loads(line) for line in gzip.decompress(body).splitlines()]
    assert len(rows) == 1_500 and {r["_id"] for r in rows} == set(source)
    row = rows[0]
    doc = source[row["_id"]]
    # Nested values are JSON objects and arrays in the file, not strings (Redshift COPY JSON and
    # the OpenX SerDe read them as SUPER / struct).
    assert isinstance(row["customer"], dict) and row["customer"]["phone"] == doc["customer"]["phone"]
    assert isinstance(row["service_calls"], list) and len(row["service_calls"]) == len(doc["service_calls"])
    assert row["_dlt_load_id"] == summary["load_id"]
    # the partitions the run landed, for a flow that registers exactly those
    landed = {re.search(r"load_date=([\d-]+)/", k).group(1) for k in data}
    assert landed <= set(summary["load_dates"]) and len(summary["load_dates"]) <= 2


def test_s3_parquet(mongo_server, s3_server, source, tmp_path):
    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket="landing-parquet")
    r = run_cli("run", "--uri", mongo_server.uri, "--database", "dest", "--collections", "customer_activity",
                "--destination", "s3", "--bucket-url", "s3://landing-parquet", "--file-format", "parquet",
                "--pipelines-dir", str(tmp_path / "p"), env=s3_server)
    assert r.returncode == 0, r.stderr
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="landing-parquet")["Contents"] if "/customer_activity/" in o["Key"]]
    assert keys and all(k.startswith("atlas/dest/customer_activity/load_date=") and k.endswith(".parquet") for k in keys)
    total = 0
    for key in keys:
        local = tmp_path / key.replace("/", "_")
        local.write_bytes(s3.get_object(Bucket="landing-parquet", Key=key)["Body"].read())
        table = pq.read_table(local)
        total += table.num_rows
        assert table.schema.field("_id").type == "string"
    assert total == 1_500


def test_s3_destination_on_a_local_folder(mongo_server, source, tmp_path):
    r = run_cli("run", "--uri", mongo_server.uri, "--database", "dest", "--collections", "customer_activity",
                "--destination", "s3", "--bucket-url", str(tmp_path / "lake"), "--pipelines-dir", str(tmp_path / "p"))
    assert r.returncode == 0, r.stderr
    files = list((tmp_path / "lake" / "atlas" / "dest" / "customer_activity").glob("load_date=*/*.jsonl.gz"))
    assert files
    with duckdb.connect() as con:
        count = con.sql(f"select count(*) from read_json('{tmp_path}/lake/atlas/dest/customer_activity/*/*.jsonl.gz')").fetchone()[0]
    assert count == 1_500


def test_s3_denied_bucket_fails_with_one_line(mongo_server, s3_server, tmp_path):
    r = run_cli("run", "--uri", mongo_server.uri, "--database", "dest", "--collections", "customer_activity",
                "--destination", "s3", "--bucket-url", "s3://no-such-bucket", "--pipelines-dir", str(tmp_path / "p"), env=s3_server)
    assert r.returncode == 4, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "testing" not in r.stderr  # no credentials in the message


def test_parallel_range_reads_give_the_same_table(mongo_server, mongo_client, source, tmp_path):
    coll = mongo_client["dest"]["customer_activity"]
    # Other _id types than ObjectId must still be read exactly once.
    coll.insert_many([{"_id": 7, "v": 1}, {"_id": "text-id", "v": 2}, {"_id": {"compound": 1}, "v": 3}])
    try:
        filters = id_range_filters(coll, {}, 4)
        counts = [coll.count_documents(f) for f in filters]
        assert sum(counts) == 1_503 and len(filters) == 5
        r = run_cli("run", "--uri", mongo_server.uri, "--database", "dest", "--collections", "customer_activity",
                    "--workers", "3", "--batch-docs", "200", "--warehouse", str(tmp_path / "w.duckdb"),
                    "--pipelines-dir", str(tmp_path / "p"), "--json")
        assert r.returncode == 0, r.stderr
        with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
            ids = [i for (i,) in con.sql("select _id from raw_atlas.customer_activity").fetchall()]
        assert len(ids) == len(set(ids)) == 1_503
        assert set(source) | {'{"$numberInt": "7"}', "text-id", '{"compound": {"$numberInt": "1"}}'} == set(ids)
    finally:
        coll.delete_many({"_id": {"$not": {"$type": "objectId"}}})


def test_range_filters_respect_the_user_filter(mongo_client, source):
    coll = mongo_client["dest"]["customer_activity"]
    user = {"customer.state": "CA"}
    filters = id_range_filters(coll, user, 3)
    assert sum(coll.count_documents(f) for f in filters) == coll.count_documents(user)
    assert all(isinstance(ObjectId(i), ObjectId) for i in list(source)[:3])
