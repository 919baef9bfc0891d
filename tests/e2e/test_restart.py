"""Killing an ingestion run at random points and running it again converges to the source."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from datetime import datetime, timezone

import duckdb
import pytest
from pymongo import MongoClient

from ingestion.local.seed import seed_collection
from tests.conftest import BIN, REPO, run_cli

DOCS = 6_000


def start_run(uri: str, work, mode: str) -> subprocess.Popen:
    args = [str(BIN / "atlas-ingest"), "run", "--uri", uri, "--database", "restart", "--collections", "customer_activity",
            "--warehouse", str(work / "w.duckdb"), "--pipelines-dir", str(work / "p"), "--batch-docs", "500"]
    if mode == "incremental":
        args += ["--mode", "incremental", "--cursor-field", "updated_at"]
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"})


def mutate(coll, rng: random.Random, allow_deletes: bool) -> None:
    # Like an application: each write stamps updated_at with the time of the write.
    ids = [d["_id"] for d in coll.aggregate([{"$sample": {"size": 60}}, {"$project": {"_id": 1}}])]
    for _id in ids[:40]:
        coll.update_one({"_id": _id}, {"$set": {"churned": rng.random() < 0.5, "billing.total_charge": rng.random() * 100,
                                                 "updated_at": datetime.now(timezone.utc)}})
    coll.insert_many([{"customer": {"state": "ZZ"}, "n": rng.random(), "updated_at": datetime.now(timezone.utc)} for _ in range(10)])
    if allow_deletes:
        coll.delete_many({"_id": {"$in": ids[40:50]}})


def snapshot_source(coll) -> dict[str, tuple]:
    return {str(d["_id"]): (d.get("churned"), d.get("billing", {}).get("total_charge"), d.get("n")) for d in coll.find()}


def snapshot_warehouse(path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(
            "select _id, churned, json_extract(billing, '$.total_charge')::double, n from raw_atlas.customer_activity"
        ).fetchall()


@pytest.mark.parametrize("mode", ["full", "incremental"])
def test_killed_runs_converge_to_the_source(mode, mongo_server, tmp_path):
    rng = random.Random(2024 if mode == "full" else 7)
    with MongoClient(mongo_server.uri) as client:
        seed_collection(client, DOCS, seed=4, database="restart")
        coll = client["restart"]["customer_activity"]
        if mode == "incremental":  # a first complete run, so that later runs are real increments
            assert run_cli("run", "--uri", mongo_server.uri, "--database", "restart", "--collections", "customer_activity",
                           "--warehouse", str(tmp_path / "w.duckdb"), "--pipelines-dir", str(tmp_path / "p"),
                           "--mode", "incremental", "--cursor-field", "updated_at").returncode == 0
        kills = 0
        for _ in range(5):
            mutate(coll, rng, allow_deletes=mode == "full")
            proc = start_run(mongo_server.uri, tmp_path, mode)
            time.sleep(rng.uniform(0.3, 4.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=60)
        assert kills >= 2, "the runs finished before they could be killed: make the corpus larger"
        final = run_cli("run", "--uri", mongo_server.uri, "--database", "restart", "--collections", "customer_activity",
                        "--warehouse", str(tmp_path / "w.duckdb"), "--pipelines-dir", str(tmp_path / "p"),
                        *(["--mode", "incremental", "--cursor-field", "updated_at"] if mode == "incremental" else []))
        assert final.returncode == 0, final.stderr
        source = snapshot_source(coll)
    rows = snapshot_warehouse(tmp_path / "w.duckdb")
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate _id rows in the warehouse"
    assert set(ids) == set(source)
    for _id, churned, total, n in rows:
        assert (churned, total, n) == source[_id], _id


def test_a_pending_load_that_cannot_complete_is_discarded_and_read_again(mongo_server, tmp_path, monkeypatch, caplog):
    """A kill can leave a load package that dlt can no longer load (here: its file is corrupt).
    The next run discards it and reads again from the last loaded cursor: nothing is lost."""
    import dlt

    from ingestion.config import DestinationConfig, RunConfig
    from ingestion.ops.run import run

    config = RunConfig(uri=mongo_server.uri, database="pending", collections=["customer_activity"],
                       destination=DestinationConfig(warehouse=tmp_path / "w.duckdb"), pipelines_dir=tmp_path / "p",
                       overrides={"mode": "incremental", "cursor_field": "updated_at"})
    with MongoClient(mongo_server.uri) as client:
        seed_collection(client, 300, seed=8, database="pending")
        coll = client["pending"]["customer_activity"]
        run(config)
        ids = [d["_id"] for d in coll.find({}, {"_id": 1}).limit(5)]
        coll.update_many({"_id": {"$in": ids}}, {"$set": {"churned": True, "updated_at": datetime.now(timezone.utc)}})

        def killed(self, *args, **kwargs):
            raise SystemExit("killed during load")

        monkeypatch.setattr(dlt.Pipeline, "load", killed)
        with pytest.raises(SystemExit):
            run(config)
        monkeypatch.undo()
        pending = list((tmp_path / "p").rglob("normalized/*/new_jobs/customer_activity.*.parquet"))
        assert pending, "the interrupted run left no pending package"
        for path in pending:
            path.write_bytes(b"not parquet")

        with caplog.at_level("WARNING", logger="atlas_ingest"):
            summary = run(config)
        assert any("cannot complete" in r.getMessage() for r in caplog.records)
        assert summary.tables[0].documents_read >= 5
        source = {str(d["_id"]): d["churned"] for d in coll.find()}
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        rows = con.sql("select _id, churned from raw_atlas.customer_activity").fetchall()
    assert len(rows) == len({r[0] for r in rows}) == len(source)
    assert dict(rows) == source


FAULT_DOCS = 600
MODE_ARGS = {
    "full": [],
    "incremental": ["--mode", "incremental", "--cursor-field", "updated_at"],
    "cdc": ["--mode", "cdc"],
}


def run_to(uri: str, work, mode: str, point: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"}
    env.pop("ATLAS_FAULT_POINT", None)
    if point:
        env["ATLAS_FAULT_POINT"] = point
    return subprocess.run([str(BIN / "atlas-ingest"), "run", "--uri", uri, "--database", f"faults_{mode}", "--collections",
                           "customer_activity", "--warehouse", str(work / "w.duckdb"), "--pipelines-dir", str(work / "p"),
                           "--batch-docs", "100", *MODE_ARGS[mode]],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize("mode, point", [
    ("full", "after-extract"), ("full", "after-normalize"), ("full", "mid-load"), ("full", "after-load"),
    ("incremental", "mid-load"), ("cdc", "cdc-flush"),
])
def test_a_kill_at_each_fault_point_keeps_the_last_load_and_converges(mode, point, mongo_server, tmp_path):
    """Killed at a named point of the second run: until the kill the warehouse is the first run's
    (a full replace's previous table survives a kill before its swap); run again, it equals the source."""
    rng = random.Random(point)
    with MongoClient(mongo_server.uri) as client:
        coll = client[f"faults_{mode}"]["customer_activity"]
        coll.drop()
        seed_collection(client, FAULT_DOCS, seed=9, database=f"faults_{mode}")
        mutate(coll, rng, allow_deletes=False)  # every column the snapshots read exists from the first run
        first = run_to(mongo_server.uri, tmp_path, mode)
        assert first.returncode == 0, first.stderr
        before = sorted(snapshot_warehouse(tmp_path / "w.duckdb"))
        mutate(coll, rng, allow_deletes=mode != "incremental")
        killed = run_to(mongo_server.uri, tmp_path, mode, point)
        assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
        if point != "after-load":  # nothing of the killed load is visible
            assert sorted(snapshot_warehouse(tmp_path / "w.duckdb")) == before
        final = run_to(mongo_server.uri, tmp_path, mode)
        assert final.returncode == 0, final.stderr
        source = snapshot_source(coll)
    rows = snapshot_warehouse(tmp_path / "w.duckdb")
    assert len(rows) == len({r[0] for r in rows}), "duplicate _id rows in the warehouse"
    assert {r[0]: r[1:] for r in rows} == source


def test_an_unknown_fault_point_is_refused():
    r = run_cli("run", "--uri", "mongodb://127.0.0.1:1/", "--database", "d", "--collections", "c",
                env={"ATLAS_FAULT_POINT": "mid-lunch"})
    assert r.returncode == 2 and "is not a fault point" in r.stderr
