"""A run on a new machine (a scheduled runner, a lost pipelines dir) against an existing warehouse
does what the same run does on the machine that kept its pipeline state: the state and the
stored schema are restored from the warehouse before anything reads them."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.conftest import run_cli

COMPARED = ("documents_read", "rows_loaded", "quarantined", "new_columns", "variant_columns", "widened_columns",
            "first_load", "snapshot_docs", "events", "deletes", "resyncs")


def run(uri: str, database: str, warehouse: Path, pipelines: Path, *args: str) -> dict[str, dict]:
    r = run_cli("run", "--uri", uri, "--database", database, "--warehouse", str(warehouse), "--pipelines-dir",
                str(pipelines), "--schema-dir", str(pipelines.parent / "schemas"), "--no-progress", "--json", *args)
    assert r.returncode == 0, r.stderr[-3000:]
    return {t["collection"]: {k: t[k] for k in COMPARED} | {"status": t["reconciliation"]["status"]}
            for t in json.loads(r.stdout)["tables"]}


def kept_and_fresh(uri: str, database: str, work: Path, *args: str) -> tuple[dict, dict]:
    """The next run twice from one warehouse: on the machine that ran before, and on a new one."""
    shutil.copy(work / "kept" / "w.duckdb", work / "fresh.duckdb")
    shutil.rmtree(work / "new", ignore_errors=True)
    kept = run(uri, database, work / "kept" / "w.duckdb", work / "kept" / "p", *args)
    fresh = run(uri, database, work / "fresh.duckdb", work / "new" / "p", *args)
    return kept, fresh


def test_a_full_run_on_a_new_machine_knows_the_stored_columns(mongo_server, mongo_client, tmp_path):
    mongo_client.drop_database("fresh_full")
    things = mongo_client["fresh_full"]["things"]
    things.insert_many([{"_id": i, "n": i} for i in range(10)])
    run(mongo_server.uri, "fresh_full", tmp_path / "kept" / "w.duckdb", tmp_path / "kept" / "p", "--sample-size", "0")
    things.insert_many([{"_id": 10, "n": 1.5, "added": "x"}, {"_id": 11, "n": "eleven"}])
    kept, fresh = kept_and_fresh(mongo_server.uri, "fresh_full", tmp_path, "--sample-size", "0")
    assert kept["things"]["new_columns"] and kept["things"]["variant_columns"] and kept["things"]["widened_columns"]
    assert fresh == kept


def test_an_incremental_run_on_a_new_machine_continues_from_its_cursor(mongo_server, mongo_client, tmp_path):
    mongo_client.drop_database("fresh_incr")
    events = mongo_client["fresh_incr"]["events"]
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    events.insert_many([{"_id": i, "n": i, "updated_at": start + timedelta(minutes=i)} for i in range(50)])
    args = ("--mode", "incremental", "--cursor-field", "updated_at")
    run(mongo_server.uri, "fresh_incr", tmp_path / "kept" / "w.duckdb", tmp_path / "kept" / "p", *args)
    events.insert_many([{"_id": i, "n": i, "tag": "new", "updated_at": start + timedelta(days=1, minutes=i)}
                        for i in range(50, 55)])  # and the one at the cursor ($gte)
    kept, fresh = kept_and_fresh(mongo_server.uri, "fresh_incr", tmp_path, *args)
    assert kept["events"]["documents_read"] == 6 and kept["events"]["new_columns"] == ["tag"]
    assert fresh == kept


def test_a_cdc_run_on_a_new_machine_resumes_from_its_token_and_sees_a_drop(mongo_server, mongo_client, tmp_path):
    mongo_client.drop_database("fresh_cdc")
    db = mongo_client["fresh_cdc"]
    db["items"].insert_many([{"_id": i, "v": i} for i in range(20)])
    db["gone"].insert_many([{"_id": i, "v": i} for i in range(3)])
    args = ("--mode", "cdc", "--collections", "items,gone")
    run(mongo_server.uri, "fresh_cdc", tmp_path / "kept" / "w.duckdb", tmp_path / "kept" / "p", *args)
    db["items"].update_many({"_id": {"$lt": 4}}, {"$set": {"v": -1}})
    db["items"].delete_one({"_id": 19})
    db["gone"].drop()
    kept, fresh = kept_and_fresh(mongo_server.uri, "fresh_cdc", tmp_path, *args)
    assert (kept["items"]["snapshot_docs"], kept["items"]["events"], kept["items"]["deletes"]) == (0, 5, 1)
    assert "was dropped" in kept["gone"]["resyncs"][0]
    assert fresh == kept


def test_an_incremental_landing_on_a_new_machine_continues_from_its_cursor(mongo_server, mongo_client, s3_server, tmp_path):
    """The landing zone keeps the pipeline state too (dlt's state files in the bucket)."""
    from tests.conftest import s3_client

    s3_client(s3_server).create_bucket(Bucket="fresh-landing")
    mongo_client.drop_database("fresh_land")
    events = mongo_client["fresh_land"]["events"]
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    events.insert_many([{"_id": i, "updated_at": start + timedelta(minutes=i)} for i in range(40)])

    def land(pipelines: Path) -> dict:
        r = run_cli("run", "--uri", mongo_server.uri, "--database", "fresh_land", "--mode", "incremental",
                    "--cursor-field", "updated_at", "--destination", "s3", "--bucket-url", "s3://fresh-landing",
                    "--pipelines-dir", str(pipelines), "--no-progress", "--json", env=s3_server)
        assert r.returncode == 0, r.stderr[-3000:]
        return json.loads(r.stdout)["tables"][0]

    assert land(tmp_path / "first")["documents_read"] == 40
    events.insert_many([{"_id": i, "updated_at": start + timedelta(days=1, minutes=i)} for i in range(40, 45)])
    assert land(tmp_path / "second")["documents_read"] == 6  # the 5 new ones and the one at the cursor
