"""`atlas-ingest status` on a warehouse whose collections' last runs succeeded, failed and diverged."""

from __future__ import annotations

import json
import os

import duckdb
from pymongo import MongoClient

from tests.conftest import run_cli


def test_status_shows_the_last_run_of_each_collection(mongo_server, tmp_path):
    warehouse, pipelines = tmp_path / "w.duckdb", tmp_path / "p"
    common = ("--uri", mongo_server.uri, "--warehouse", str(warehouse), "--pipelines-dir", str(pipelines))
    with MongoClient(mongo_server.uri) as client:
        db = client["status_db"]
        db["healthy"].insert_many([{"_id": i, "n": i} for i in range(30)])
        db["drifting"].insert_many([{"_id": f"d{i}", "n": i} for i in range(20)])
    assert run_cli("run", *common, "--database", "status_db", "--collections", "healthy").returncode == 0
    incremental = ("--mode", "incremental", "--cursor-field", "n")
    assert run_cli("run", *common, "--database", "status_db", "--collections", "drifting", *incremental).returncode == 0
    with duckdb.connect(str(warehouse)) as con:  # rows lost in the warehouse behind the pipeline's back
        con.sql("delete from raw_atlas.drifting where _id in ('d1', 'd2', 'd3')")
    diverged = run_cli("run", *common, "--database", "status_db", "--collections", "drifting", *incremental)
    assert diverged.returncode == 0 and "diverged" in diverged.stderr + diverged.stdout
    failed = run_cli("run", *common, "--database", "status_db", "--collections", "missing")
    assert failed.returncode == 3

    r = run_cli("status", "--warehouse", str(warehouse), "--json")
    assert r.returncode == 0, r.stderr
    rows = {s["collection"]: s for s in json.loads(r.stdout)}
    assert set(rows) == {"healthy", "drifting", "missing"}
    assert (rows["healthy"]["status"], rows["healthy"]["rows_loaded"], rows["healthy"]["reconciliation"]) == ("succeeded", 30, "match")
    assert (rows["drifting"]["mode"], rows["drifting"]["reconciliation"]) == ("incremental", "diverged")
    assert rows["missing"]["status"] == "failed" and "'missing' not found" in rows["missing"]["error"]
    assert all(0 <= s["age_s"] < 600 for s in rows.values())

    text = run_cli("status", "--warehouse", str(warehouse))
    lines = text.stdout.splitlines()
    assert lines[0].split()[:4] == ["collection", "mode", "status", "ended"] and len(lines) == 4
    assert any(line.startswith("healthy ") and " 30 " in line and "match" in line for line in lines)
    assert run_cli("status", "--warehouse", str(warehouse), "--check").returncode == 8
    assert run_cli("status", "--warehouse", str(warehouse), "--database", "status_db", "--json").returncode == 0


def test_status_without_a_warehouse_is_one_line(tmp_path):
    r = run_cli("status", "--warehouse", str(tmp_path / "none.duckdb"))
    assert r.returncode == 2 and r.stderr.startswith("atlas-ingest: error: no warehouse at ") and len(r.stderr.splitlines()) == 1


def test_status_on_redshift_needs_no_staging_bucket():
    """On Redshift the same query reads _atlas_runs (offline driver: the statement is recorded, no rows
    come back); a load's staging bucket is not asked for."""
    from unittest import mock

    from ingestion.config import DestinationConfig
    from ingestion.ops.status import last_runs
    from redshift_contract.offline_load import OFFLINE_ENV, recording

    log: list[str] = []
    with mock.patch.dict(os.environ, OFFLINE_ENV), recording(log):
        os.environ.pop("ATLAS_BUCKET_URL", None)
        assert last_runs(DestinationConfig(name="redshift")) == []
    [query] = [q for q in log if "_atlas_runs" in q]
    assert 'from "raw_atlas"."_atlas_runs"' in query and "row_number() over (partition by collection, source_database" in query


def test_status_refuses_the_landing_zone():
    r = run_cli("status", "--destination", "s3")
    assert r.returncode == 2 and "is not a warehouse" in r.stderr
