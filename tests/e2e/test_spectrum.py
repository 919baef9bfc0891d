"""The landing-zone path: files landed in a local S3-compatible server, read in place by DuckDB
(the twin of Redshift Spectrum external tables), give the same marts as the loaded path."""

from __future__ import annotations

import gzip
import json

import duckdb
import pytest
from pymongo import MongoClient

from ingestion.local.seed import seed_collection
from tests.conftest import duckdb_extension_directory, run_cli, run_dbt, s3_client
from tests.e2e.test_dbt_models import MARTS, snapshot

BUCKET = "landing-spectrum"


@pytest.fixture(scope="module")
def both_paths(mongo_server, s3_server, tmp_path_factory):
    work = tmp_path_factory.mktemp("spectrum")
    s3_client(s3_server).create_bucket(Bucket=BUCKET)
    with MongoClient(mongo_server.uri) as client:
        seed_collection(client, 1_200, seed=31, database="landdb")
    base = ["run", "--uri", mongo_server.uri, "--database", "landdb", "--collections", "customer_activity"]
    landed = run_cli(*base, "--destination", "s3", "--bucket-url", f"s3://{BUCKET}", "--prefix", "atlas",
                     "--pipelines-dir", str(work / "p_s3"), env=s3_server)
    assert landed.returncode == 0, landed.stderr
    loaded = run_cli(*base, "--warehouse", str(work / "loaded.duckdb"), "--pipelines-dir", str(work / "p_local"))
    assert loaded.returncode == 0, loaded.stderr

    built = run_dbt("build", warehouse=work / "loaded.duckdb", target_path=work / "t_loaded")
    assert built.returncode == 0, built.stdout[-3000:]

    spectrum_vars = json.dumps({"atlas_source": "spectrum", "landing_url": f"s3://{BUCKET}/atlas", "landing_database": "landdb"})
    staged = run_dbt("run-operation", "stage_external_sources", "--vars", spectrum_vars,
                     warehouse=work / "spectrum.duckdb", target_path=work / "t_spectrum", env=s3_server)
    assert staged.returncode == 0, staged.stdout[-3000:]
    built_spectrum = run_dbt("build", "--vars", spectrum_vars, warehouse=work / "spectrum.duckdb",
                             target_path=work / "t_spectrum", env=s3_server)
    assert built_spectrum.returncode == 0, built_spectrum.stdout[-3000:]
    return work, spectrum_vars


def test_marts_from_the_landing_zone_equal_marts_from_the_loaded_tables(both_paths):
    work, _ = both_paths
    loaded, spectrum = snapshot(work / "loaded.duckdb"), snapshot(work / "spectrum.duckdb")
    for table in MARTS:
        assert len(loaded[table]) > 0, table
        assert loaded[table] == spectrum[table], table


def test_spectrum_build_reads_no_raw_table(both_paths):
    work, _ = both_paths
    with duckdb.connect(str(work / "spectrum.duckdb"), read_only=True) as con:
        schemas = {s for (s,) in con.sql("select distinct table_schema from information_schema.tables").fetchall()}
        view = con.sql("select sql from duckdb_views() where view_name = 'customer_activity' and schema_name = 'atlas_landing'").fetchone()[0]
    assert "raw_atlas" not in schemas
    assert f"s3://{BUCKET}/atlas/landdb/customer_activity/*/*.jsonl.gz" in view and "hive_partitioning" in view


def test_a_new_load_date_appears_without_restaging(both_paths, s3_server):
    work, spectrum_vars = both_paths
    s3 = s3_client(s3_server)
    row = {"_id": "new-partition-doc", "customer": {"state": "ZZ", "phone": "999-0000"}, "service_calls": [],
           "record_date": "2021-01-01T00:00:00+00:00", "updated_at": "2021-01-01T00:00:00+00:00", "churned": False,
           "_atlas_extracted_at": "2031-01-01T00:00:00+00:00", "_dlt_load_id": "1924992000.0"}
    s3.put_object(Bucket=BUCKET, Key="atlas/landdb/customer_activity/load_date=2031-01-01/1924992000.0.extra.jsonl.gz",
                  Body=gzip.compress((json.dumps(row) + "\n").encode()))
    endpoint = s3_server["AWS_ENDPOINT_URL"].split("://")[1]
    with duckdb.connect(str(work / "spectrum.duckdb"), read_only=True) as con:
        con.execute(f"set extension_directory = '{duckdb_extension_directory()}'")
        con.execute("load httpfs")
        con.execute(
            f"create secret (type s3, key_id '{s3_server['AWS_ACCESS_KEY_ID']}', secret '{s3_server['AWS_SECRET_ACCESS_KEY']}', "
            f"region 'us-east-1', endpoint '{endpoint}', url_style 'path', use_ssl false)"
        )
        counts = dict(con.sql("select load_date::varchar, count(*) from atlas_landing.customer_activity group by 1").fetchall())
    # The view staged before the file existed reads the new partition: nothing was recreated.
    assert counts["2031-01-01"] == 1 and sum(counts.values()) == 1_201


def test_marts_from_cdc_landed_files_drop_deleted_and_swept_documents(mongo_server, s3_server, tmp_path):
    """CDC on the landing zone: a delete lands as the document's newest version and a resync lands
    a sweep marker; the marts built from those files equal the marts of a full load of what the
    source holds in the end (no all-NULL row for a deleted document)."""
    bucket = "landing-cdc"
    s3_client(s3_server).create_bucket(Bucket=bucket)
    with MongoClient(mongo_server.uri) as client:
        seed_collection(client, 300, seed=7, database="landcdc")
        activity = client["landcdc"]["customer_activity"]
        ids = [d["_id"] for d in activity.find({}, {"_id": 1}).sort("_id", 1)]
        land = ["run", "--uri", mongo_server.uri, "--database", "landcdc", "--collections", "customer_activity",
                "--mode", "cdc", "--destination", "s3", "--bucket-url", f"s3://{bucket}", "--prefix", "atlas",
                "--pipelines-dir", str(tmp_path / "p_s3"), "--json"]

        def landed(*extra: str) -> dict:
            r = run_cli(*land, *extra, env=s3_server)
            assert r.returncode == 0, r.stderr[-3000:]
            return json.loads(r.stdout)["tables"][0]

        landed()  # the snapshot
        activity.delete_many({"_id": {"$in": ids[:5]}})
        activity.update_many({"_id": {"$in": ids[5:10]}}, {"$set": {"churned": True}})
        streamed = landed()
        assert (streamed["events"], streamed["deletes"]) == (10, 5)
        activity.delete_many({"_id": {"$in": ids[10:13]}})  # before the resync's new snapshot: only the sweep sees it
        resynced = landed("--resync")
        assert resynced["resyncs"] and resynced["deletes"] == 0
        assert activity.count_documents({}) == 292

    loaded = run_cli("run", "--uri", mongo_server.uri, "--database", "landcdc", "--collections", "customer_activity",
                     "--warehouse", str(tmp_path / "loaded.duckdb"), "--pipelines-dir", str(tmp_path / "p_local"))
    assert loaded.returncode == 0, loaded.stderr
    built = run_dbt("build", warehouse=tmp_path / "loaded.duckdb", target_path=tmp_path / "t_loaded")
    assert built.returncode == 0, built.stdout[-3000:]
    spectrum_vars = json.dumps({"atlas_source": "spectrum", "landing_url": f"s3://{bucket}/atlas", "landing_database": "landcdc"})
    for command in (("run-operation", "stage_external_sources"), ("build",)):
        r = run_dbt(*command, "--vars", spectrum_vars, warehouse=tmp_path / "spectrum.duckdb",
                    target_path=tmp_path / "t_spectrum", env=s3_server)
        assert r.returncode == 0, r.stdout[-3000:]

    from_loaded, from_landed = snapshot(tmp_path / "loaded.duckdb"), snapshot(tmp_path / "spectrum.duckdb")
    for table in MARTS:
        assert from_loaded[table] == from_landed[table], table
    assert len(from_landed["customer_activity"]) == 292
