"""CDC: snapshot then change stream, deletes, kills at random points, lost tokens, large events."""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import duckdb
import pytest
from bson import ObjectId
from pymongo import MongoClient

from ingestion.local.server import LocalServer
from ingestion.mongo.bson_types import id_to_text
from ingestion.naming import table_name
from tests.conftest import BIN, REPO, free_port, run_cli, s3_client, spy_on_source_counts

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def cdc(uri, work, database, *extra, collections="items"):
    return run_cli("run", "--uri", uri, "--database", database, "--collections", collections, "--mode", "cdc",
                   "--warehouse", str(work / "w.duckdb"), "--pipelines-dir", str(work / "p"), "--json", *extra)


def cdc_ok(uri, work, database, *extra, collections="items"):
    r = cdc(uri, work, database, *extra, collections=collections)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)["tables"][0]


def make_doc(rng: random.Random, _id) -> dict:
    return {"_id": _id, "v": rng.randint(0, 10**6), "s": rng.choice(["a", "b", "é", ""]),
            "nested": {"k": rng.random(), "list": [rng.randint(0, 9) for _ in range(rng.randint(0, 3))]},
            "seen": T0 + timedelta(seconds=rng.randint(0, 10**6))}


def source_state(coll) -> dict[str, tuple]:
    aware = lambda t: t and t.replace(tzinfo=timezone.utc)  # noqa: E731
    return {id_to_text(d["_id"]): (d.get("v"), d.get("s"), d.get("nested"), aware(d.get("seen"))) for d in coll.find()}


def warehouse_state(path, table="items", where="true") -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.sql(f"select _id, v, s, nested, seen from raw_atlas.{table} where {where}").fetchall()
    return [(r[0], (r[1], r[2], json.loads(r[3]) if r[3] is not None else None, r[4])) for r in rows]


def assert_equal_to_source(coll, path):
    rows = warehouse_state(path, table=table_name(coll.name))
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate _id rows in the warehouse"
    source = source_state(coll)
    assert set(ids) == set(source), (set(ids) ^ set(source))
    for _id, values in rows:
        assert values == source[_id], _id


def random_ops(coll, rng: random.Random, n: int) -> None:
    """Inserts, updates, replaces and deletes in random order, on mixed `_id` types."""
    for _ in range(n):
        op = rng.random()
        if op < 0.3:
            _id = rng.choice([ObjectId(), rng.randint(10**6, 10**7), f"k{rng.randint(0, 10**6)}"])
            coll.update_one({"_id": _id}, {"$setOnInsert": make_doc(rng, _id)}, upsert=True)
            continue
        picked = list(coll.aggregate([{"$sample": {"size": 1}}]))
        if not picked:
            continue
        _id = picked[0]["_id"]
        if op < 0.6:
            coll.update_one({"_id": _id}, {"$set": {"v": rng.randint(0, 10**6), "nested.k": rng.random()}})
        elif op < 0.8:
            coll.replace_one({"_id": _id}, make_doc(rng, _id))
        else:
            coll.delete_one({"_id": _id})


@pytest.fixture()
def items(mongo_client, request):
    coll = mongo_client["cdc"][request.node.name[:40].replace("[", "_").replace("]", "")]
    coll.drop()
    rng = random.Random(5)
    ids = [ObjectId() for _ in range(150)] + list(range(40)) + [f"s{i}" for i in range(10)]
    coll.insert_many([make_doc(rng, i) for i in ids])
    return coll


def test_snapshot_then_changes_with_hard_deletes(mongo_server, items, tmp_path):
    first = cdc_ok(mongo_server.uri, tmp_path, "cdc", "--checkpoint-docs", "60", collections=items.name)
    assert first["snapshot_docs"] == 200 and first["events"] == 0
    assert_equal_to_source(items, tmp_path / "w.duckdb")
    rng = random.Random(1)
    items.insert_one(make_doc(rng, "new"))
    items.update_one({"_id": 1}, {"$set": {"v": -1}})
    items.replace_one({"_id": 2}, make_doc(rng, 2))
    items.delete_one({"_id": 3})
    items.insert_one(make_doc(rng, "gone"))
    items.delete_one({"_id": "gone"})  # inserted and deleted between two runs: never lands
    second = cdc_ok(mongo_server.uri, tmp_path, "cdc", collections=items.name)
    assert second["snapshot_docs"] == 0 and second["events"] == 6 and second["deletes"] == 2
    rows = dict(warehouse_state(tmp_path / "w.duckdb", table=table_name(items.name)))
    assert id_to_text(3) not in rows and "gone" not in rows and rows[id_to_text(1)][0] == -1
    assert_equal_to_source(items, tmp_path / "w.duckdb")
    third = cdc_ok(mongo_server.uri, tmp_path, "cdc", collections=items.name)
    assert third["events"] == 0 and third["rows_loaded"] == 0


def test_soft_deletes_keep_the_row_with_deleted_at(mongo_server, items, tmp_path):
    cdc_ok(mongo_server.uri, tmp_path, "cdc", "--deletes", "soft", collections=items.name)
    before = datetime.now(timezone.utc)
    items.delete_many({"_id": {"$in": [1, 2, "s1"]}})
    cdc_ok(mongo_server.uri, tmp_path, "cdc", "--deletes", "soft", collections=items.name)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        table = table_name(items.name)
        deleted = con.sql(f"select _id, _deleted_at from raw_atlas.{table} where _deleted_at is not null").fetchall()
        total = con.sql(f"select count(*) from raw_atlas.{table}").fetchone()[0]
    assert {r[0] for r in deleted} == {id_to_text(1), id_to_text(2), "s1"}
    assert all(r[1] >= before - timedelta(seconds=5) for r in deleted)
    assert total == 200


def test_interrupted_snapshot_resumes_after_its_checkpoint(mongo_server, items, tmp_path, monkeypatch):
    from ingestion.cdc import sync as cdc_module
    from ingestion.config import DestinationConfig, RunConfig
    from ingestion.ops.run import run

    config = RunConfig(uri=mongo_server.uri, database="cdc", collections=[items.name],
                       destination=DestinationConfig(warehouse=tmp_path / "w.duckdb"), pipelines_dir=tmp_path / "p",
                       batch_docs=25, overrides={"mode": "cdc", "checkpoint_docs": 50})
    real_load, loads = cdc_module.CollectionSync._load, []

    def dies_on_third_load(self, *args, **kwargs):
        loads.append(1)
        if len(loads) == 3:
            raise KeyboardInterrupt("killed")
        return real_load(self, *args, **kwargs)

    monkeypatch.setattr(cdc_module.CollectionSync, "_load", dies_on_third_load)
    with pytest.raises(KeyboardInterrupt):
        run(config)
    monkeypatch.setattr(cdc_module.CollectionSync, "_load", real_load)
    items.delete_one({"_id": 0})  # changes made while the snapshot was interrupted are not lost
    items.update_one({"_id": "s9"}, {"$set": {"v": 7}})
    summary = run(config)
    table = summary.tables[0]
    assert table.snapshot_docs == 100, "the snapshot restarted instead of resuming after its checkpoint"
    assert table.events == 2
    assert_equal_to_source(items, tmp_path / "w.duckdb")
    assert dict(warehouse_state(tmp_path / "w.duckdb", table=table_name(items.name)))["s9"][0] == 7


def start_cdc(uri, work, database, collection, *extra) -> subprocess.Popen:
    args = [str(BIN / "atlas-ingest"), "run", "--uri", uri, "--database", database, "--collections", collection,
            "--mode", "cdc", "--warehouse", str(work / "w.duckdb"), "--pipelines-dir", str(work / "p"), *extra]
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"})


def test_random_changes_and_kills_converge_to_the_source(mongo_server, mongo_client, tmp_path):
    """Writes interleaved with CDC runs, some killed at random points (in the snapshot, in the
    stream, during loads), some running while the source changes; the last run ends equal."""
    rng = random.Random(20261130)
    coll = mongo_client["cdcrand"]["items"]
    coll.drop()
    coll.insert_many([make_doc(rng, _id) for _id in [ObjectId() for _ in range(2500)] + list(range(500))])
    kills = 0
    for round_ in range(8):
        random_ops(coll, rng, rng.randint(20, 150))
        proc = start_cdc(mongo_server.uri, tmp_path, "cdcrand", "items", "--checkpoint-docs", "400", "--batch-docs", "200")
        writer = threading.Thread(target=random_ops, args=(coll, random.Random(round_), 60))
        if round_ % 2:
            writer.start()  # the source changes while the run snapshots or streams
        time.sleep(rng.uniform(0.5, 5.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=120)
        if writer.is_alive() or round_ % 2:
            writer.join()
    assert kills >= 3, "the runs finished before they could be killed: make the corpus larger"
    final = cdc(mongo_server.uri, tmp_path, "cdcrand", "--checkpoint-docs", "400", collections="items")
    assert final.returncode == 0, final.stderr[-3000:]
    assert_equal_to_source(coll, tmp_path / "w.duckdb")


@pytest.fixture()
def tiny_oplog_server(tmp_path_factory):
    """A server that keeps only the last 50 oplog entries (it prunes every 1000 writes)."""
    server = LocalServer(home=tmp_path_factory.mktemp("tinyoplog"), port=free_port())
    server.start(extra_args=("--oplog-max-entries", "50"))
    yield server
    server.stop()


def churn_the_oplog(coll, rng: random.Random) -> None:
    coll.delete_many({"_id": {"$in": list(range(0, 60, 3))}})  # deletes that fall off the oplog
    coll.insert_many([make_doc(rng, f"bulk{i}") for i in range(600)])
    for i in range(500):
        coll.update_one({"_id": f"bulk{i}"}, {"$set": {"v": i}})


def test_lost_resume_token_resyncs_and_converges(tiny_oplog_server, tmp_path):
    rng = random.Random(3)
    with MongoClient(tiny_oplog_server.uri) as client:
        coll = client["tiny"]["items"]
        coll.insert_many([make_doc(rng, i) for i in range(300)])
        cdc_ok(tiny_oplog_server.uri, tmp_path, "tiny")
        churn_the_oplog(coll, rng)

        failed = cdc(tiny_oplog_server.uri, tmp_path, "tiny", "--on-token-lost", "fail")
        assert failed.returncode == 3 and "no longer in the oplog" in failed.stderr and "--on-token-lost resync" in failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr

        resynced = cdc_ok(tiny_oplog_server.uri, tmp_path, "tiny")
        assert resynced["resyncs"] and "resume token lost" in resynced["resyncs"][0]
        assert resynced["snapshot_docs"] == coll.count_documents({})
        assert_equal_to_source(coll, tmp_path / "w.duckdb")
        coll.update_one({"_id": 1}, {"$set": {"v": -5}})  # and streaming goes on from the new snapshot
        after = cdc_ok(tiny_oplog_server.uri, tmp_path, "tiny")
        assert after["events"] == 1 and not after["resyncs"]
        assert_equal_to_source(coll, tmp_path / "w.duckdb")


def test_large_change_events_are_split_and_put_back_together(mongo_server, mongo_client, tmp_path):
    coll = mongo_client["cdcbig"]["items"]
    coll.drop()
    coll.insert_one({"_id": "big", "a": "x" * (7 * 1024 * 1024), "v": 1})
    cdc_ok(mongo_server.uri, tmp_path, "cdcbig")
    # The update event carries the 14 MB document and the 7 MB change: over 16 MB, so it is split.
    coll.update_one({"_id": "big"}, {"$set": {"b": "y" * (7 * 1024 * 1024), "v": 2}})
    out = cdc_ok(mongo_server.uri, tmp_path, "cdcbig")
    assert out["events"] == 1
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.sql("select length(a), length(b), v from raw_atlas.items").fetchall() == [(7 * 1024 * 1024,) * 2 + (2,)]


def test_dropped_or_renamed_collection_empties_its_table_with_a_message(mongo_server, mongo_client, tmp_path):
    db = mongo_client["cdcdrop"]
    for name in ("items", "renamed", "gone"):
        db[name].drop()
    db["items"].insert_many([{"_id": i, "v": i} for i in range(10)])
    db["gone"].insert_many([{"_id": i, "v": i} for i in range(5)])
    cdc_ok(mongo_server.uri, tmp_path, "cdcdrop", collections="items,gone")
    db["items"].rename("renamed")
    db["gone"].drop()
    r = cdc(mongo_server.uri, tmp_path, "cdcdrop", collections="items,gone")
    assert r.returncode == 0, r.stderr
    tables = {t["collection"]: t for t in json.loads(r.stdout)["tables"]}
    assert "renamed to 'cdcdrop.renamed'" in tables["items"]["resyncs"][0] and "--collections renamed" in tables["items"]["resyncs"][0]
    assert "was dropped" in tables["gone"]["resyncs"][0]
    assert "renamed to 'cdcdrop.renamed'" in r.stderr and "was dropped" in r.stderr  # logged, not only in the summary
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from raw_atlas.items").fetchone() == (0,)
        assert con.sql("select count(*) from raw_atlas.gone").fetchone() == (0,)
    again = cdc_ok(mongo_server.uri, tmp_path, "cdcdrop", collections="items,gone")  # still gone: nothing to do
    assert again["events"] == 0 and not again["resyncs"]
    typo = cdc(mongo_server.uri, tmp_path, "cdcdrop", collections="itemz")
    assert typo.returncode == 3 and "collection 'itemz' not found" in typo.stderr


def test_drop_seen_in_the_stream_resyncs(mongo_server, mongo_client, tmp_path):
    coll = mongo_client["cdcdrop2"]["items"]
    coll.drop()
    coll.insert_many([{"_id": i, "v": i} for i in range(10)])
    cdc_ok(mongo_server.uri, tmp_path, "cdcdrop2")
    coll.drop()
    coll.insert_many([{"_id": i, "v": -i} for i in range(4)])  # dropped and re-created between runs
    r = cdc(mongo_server.uri, tmp_path, "cdcdrop2")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)["tables"][0]
    assert any("was dropped" in reason for reason in out["resyncs"])
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert sorted(con.sql("select _id, v from raw_atlas.items").fetchall()) == sorted(
            (id_to_text(i), -i) for i in range(4))


def test_follow_streams_changes_until_sigterm(mongo_server, mongo_client, tmp_path):
    coll = mongo_client["cdcfollow"]["items"]
    coll.drop()
    coll.insert_many([{"_id": i, "v": i} for i in range(5)])
    proc = start_cdc(mongo_server.uri, tmp_path, "cdcfollow", "items", "--follow", "--flush-interval", "0.5")
    try:
        deadline = time.monotonic() + 60
        log: list[str] = []
        reader = threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True)
        reader.start()
        while not any("following changes" in line for line in log):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(log)
            time.sleep(0.2)
        coll.insert_many([{"_id": i, "v": i} for i in range(5, 9)])
        coll.delete_one({"_id": 0})
        while not any("applied 5 change events" in line for line in log):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(log)
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, "".join(log)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert sorted(v for (v,) in con.sql("select v from raw_atlas.items").fetchall()) == list(range(1, 9))


def test_s3_lands_raw_change_events(mongo_server, mongo_client, s3_server, tmp_path):
    coll = mongo_client["cdcs3"]["items"]
    coll.drop()
    coll.insert_many([{"_id": i, "v": i} for i in range(5)])
    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket="cdc-landing")
    args = ("--destination", "s3", "--bucket-url", "s3://cdc-landing")
    for _ in range(2):
        r = run_cli("run", "--uri", mongo_server.uri, "--database", "cdcs3", "--collections", "items", "--mode", "cdc",
                    "--pipelines-dir", str(tmp_path / "p"), *args, env=s3_server)
        assert r.returncode == 0, r.stderr
        coll.update_one({"_id": 1}, {"$set": {"v": 10}})
        coll.delete_one({"_id": 2})
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="cdc-landing")["Contents"]]
    event_keys = [k for k in keys if "/items__change_events/load_date=" in k]
    events = [json.loads(line) for k in event_keys
              for line in gzip.decompress(s3.get_object(Bucket="cdc-landing", Key=k)["Body"].read()).splitlines()]
    assert [e["operation"] for e in events] == ["update", "delete"]
    update, delete = events
    assert json.loads(update["full_document"]) == {"_id": {"$numberInt": "1"}, "v": {"$numberInt": "10"}}
    assert json.loads(delete["document_key"]) == {"_id": {"$numberInt": "2"}} and delete["full_document"] is None
    assert update["namespace"] == "cdcs3.items" and update["cluster_time"] > 0 and update["resume_token"]


@pytest.mark.parametrize("deletes", ["hard", "soft"])
def test_dbt_marts_honour_cdc_deletes(deletes, mongo_server, mongo_client, tmp_path):
    from ingestion.local.seed import seed_collection
    from tests.conftest import run_dbt

    database = f"cdcdbt{deletes}"
    seed_collection(mongo_client, 400, seed=8, database=database)
    coll = mongo_client[database]["customer_activity"]
    work, warehouse = tmp_path, tmp_path / "w.duckdb"
    cdc_ok(mongo_server.uri, work, database, "--deletes", deletes, collections="customer_activity")
    first = run_dbt("build", warehouse=warehouse, target_path=work / "target")
    assert first.returncode == 0, first.stdout[-3000:]

    gone = [d["_id"] for d in coll.find({}, {"_id": 1}).limit(7)]
    coll.delete_many({"_id": {"$in": gone}})
    coll.update_one({"_id": {"$nin": gone}}, {"$set": {"churned": True}})
    out = cdc_ok(mongo_server.uri, work, database, "--deletes", deletes, collections="customer_activity")
    assert out["deletes"] == 7
    second = run_dbt("build", warehouse=warehouse, target_path=work / "target")  # incremental models
    assert second.returncode == 0, second.stdout[-3000:]
    gone_ids = {id_to_text(i) for i in gone}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        raw = con.sql("select count(*) from raw_atlas.customer_activity").fetchone()[0]
        assert raw == (400 if deletes == "soft" else 393)
        dims = {r[0] for r in con.sql("select customer_activity_id from analytics.dim_customers").fetchall()}
        calls = {r[0] for r in con.sql("select customer_activity_id from analytics.fct_service_calls").fetchall()}
        flat = con.sql("select count(*) from analytics.customer_activity").fetchone()[0]
    assert dims == {id_to_text(d["_id"]) for d in coll.find({}, {"_id": 1})} and not dims & gone_ids
    assert not calls & gone_ids and calls <= dims
    assert flat == 393


def test_resync_repairs_a_warehouse_that_diverged(mongo_server, items, tmp_path):
    cdc_ok(mongo_server.uri, tmp_path, "cdc", collections=items.name)
    table = table_name(items.name)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:  # damage done outside the pipeline
        con.sql(f"delete from raw_atlas.{table} where _id in (select _id from raw_atlas.{table} limit 3)")
        con.sql(f"insert into raw_atlas.{table} (_id, v, _dlt_load_id) values ('ghost', 1, 'manual')")
    out = cdc_ok(mongo_server.uri, tmp_path, "cdc", "--resync", collections=items.name)
    assert out["resyncs"] == ["requested with --resync"] and out["snapshot_docs"] == 200
    assert_equal_to_source(items, tmp_path / "w.duckdb")


def test_stream_only_runs_count_the_source_once(mongo_server, items, tmp_path, monkeypatch):
    """A run that snapshots counts the source before and after; a run that only reads the stream
    counts once, before it, and the inserts and deletes after that count are its window (updates
    cannot change a count, so they do not widen it)."""
    from ingestion.config import DestinationConfig, RunConfig
    from ingestion.ops.reconcile import DIVERGED, MATCH
    from ingestion.ops.run import run

    writes_during_count: list = []
    counts = spy_on_source_counts(monkeypatch, writes_during_count)
    config = RunConfig(
        uri=mongo_server.uri, database="cdc", collections=[items.name], overrides={"mode": "cdc"},
        destination=DestinationConfig(warehouse=tmp_path / "w.duckdb"), pipelines_dir=tmp_path / "p")
    first = run(config).tables[0]
    assert counts == [200, 200] and first.reconciliation.status == MATCH
    items.update_one({"_id": 1}, {"$set": {"v": -1}})  # before the next count: not in its window
    writes_during_count.append(lambda coll: coll.insert_many([{"_id": f"late{i}", "v": i} for i in range(3)]))
    writes_during_count.append(lambda coll: coll.delete_one({"_id": 5}))
    second = run(config).tables[0]
    r = second.reconciliation
    assert counts == [200, 200, 200] and second.events == 5
    assert (r.source_count, r.warehouse_count, r.changed_during_run, r.status) == (200, 202, 4, MATCH)
    assert_equal_to_source(items, tmp_path / "w.duckdb")

    # A row lost in the warehouse is not hidden by updates made meanwhile.
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.sql(f"delete from raw_atlas.{table_name(items.name)} where _id = '{id_to_text(7)}'")
    writes_during_count.append(lambda coll: [coll.update_one({"_id": i}, {"$set": {"v": -i}}) for i in range(10, 20)])
    third = run(config).tables[0]
    r = third.reconciliation
    assert third.events == 10 and (r.source_count, r.warehouse_count, r.changed_during_run, r.status) == (202, 201, 0, DIVERGED)
