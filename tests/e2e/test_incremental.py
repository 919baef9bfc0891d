"""Incremental loads by cursor field: server-side filter, boundary documents, merge on _id."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import duckdb
from bson import Decimal128, Int64, Timestamp
import pytest

from ingestion.local.seed import seed_collection
from tests.conftest import run_cli

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def ingest(uri, work, *extra):
    r = run_cli("run", "--uri", uri, "--database", "incr", "--collections", "events", "--mode", "incremental",
                "--cursor-field", "updated_at", "--warehouse", str(work / "w.duckdb"),
                "--pipelines-dir", str(work / "p"), "--json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["tables"][0], r


def warehouse_rows(work):
    with duckdb.connect(str(work / "w.duckdb"), read_only=True) as con:
        return {r[0]: r[1] for r in con.sql("select _id, v from raw_atlas.events").fetchall()}


@pytest.fixture()
def events(mongo_client):
    coll = mongo_client["incr"]["events"]
    coll.drop()
    coll.create_index("updated_at")
    coll.insert_many([{"_id": f"d{i}", "v": i, "updated_at": T0 + timedelta(minutes=i)} for i in range(100)])
    return coll


def test_only_changed_documents_are_read_and_merged(mongo_server, events, tmp_path):
    first, _ = ingest(mongo_server.uri, tmp_path)
    assert first["documents_read"] == 100
    # Change 5 documents, insert 2, and add one at exactly the previous maximum cursor value.
    for i in range(5):
        events.update_one({"_id": f"d{i}"}, {"$set": {"v": -i, "updated_at": T0 + timedelta(days=1, minutes=i)}})
    events.insert_many([{"_id": "new1", "v": 1000, "updated_at": T0 + timedelta(days=2)},
                        {"_id": "new2", "v": 1001, "updated_at": T0 + timedelta(days=2)},
                        {"_id": "same_boundary", "v": 7, "updated_at": T0 + timedelta(minutes=99)}])
    second, _ = ingest(mongo_server.uri, tmp_path)
    # The server returned only documents at or after the last cursor (d99 and same_boundary share
    # it): 5 updated + 2 new + 2 at the boundary. Nothing else crossed the wire.
    assert second["documents_read"] == 9
    rows = warehouse_rows(tmp_path)
    source = {d["_id"]: d["v"] for d in events.find()}
    assert rows == source and len(rows) == 103


def test_a_rerun_without_changes_reads_only_the_boundary(mongo_server, events, tmp_path):
    ingest(mongo_server.uri, tmp_path)
    again, _ = ingest(mongo_server.uri, tmp_path)
    assert again["documents_read"] == 1  # d99, the boundary, is read again and merged, not duplicated
    assert len(warehouse_rows(tmp_path)) == 100


def test_documents_without_a_cursor_value_are_not_lost(mongo_server, events, tmp_path):
    ingest(mongo_server.uri, tmp_path)
    events.insert_one({"_id": "no_cursor", "v": 5})
    events.insert_one({"_id": "null_cursor", "v": 6, "updated_at": None})
    ingest(mongo_server.uri, tmp_path)
    rows = warehouse_rows(tmp_path)
    assert rows["no_cursor"] == 5 and rows["null_cursor"] == 6


def test_missing_index_on_cursor_field_is_warned(mongo_server, mongo_client, tmp_path):
    coll = mongo_client["incr"]["events"]
    coll.drop()
    coll.insert_one({"_id": "a", "v": 1, "updated_at": T0})
    summary, result = ingest(mongo_server.uri, tmp_path)
    assert any("has no index" in w and "createIndex" in w for w in summary["warnings"])
    plain = run_cli("run", "--uri", mongo_server.uri, "--database", "incr", "--collections", "events", "--mode",
                    "incremental", "--cursor-field", "updated_at", "--warehouse", str(tmp_path / "w.duckdb"),
                    "--pipelines-dir", str(tmp_path / "p"))
    assert "warning: cursor field 'updated_at' of 'events' has no index" in plain.stdout


def test_incremental_without_cursor_field_is_a_config_error(mongo_server):
    r = run_cli("run", "--uri", mongo_server.uri, "--database", "incr", "--collections", "events", "--mode", "incremental")
    assert r.returncode == 2 and "needs a cursor field" in r.stderr


def test_collection_settings_come_from_dlt_config(mongo_server, events, tmp_path):
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text(
        '[sources.atlas.collections.events]\nmode = "incremental"\ncursor_field = "updated_at"\n'
        'filter = \'{"v": {"$lt": 50}}\'\nprojection = \'{"v": 1, "updated_at": 1}\'\n'
    )
    r = run_cli("run", "--uri", mongo_server.uri, "--database", "incr", "--collections", "events",
                "--warehouse", str(tmp_path / "w.duckdb"), "--pipelines-dir", str(tmp_path / "p"), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    table = json.loads(r.stdout)["tables"][0]
    assert table["mode"] == "incremental" and table["documents_read"] == 50


def test_seeded_collection_incremental_after_one_percent_change(mongo_server, mongo_client, tmp_path):
    seed_collection(mongo_client, 2_000, seed=3, database="incr", collection="events")
    first, _ = ingest(mongo_server.uri, tmp_path)
    coll = mongo_client["incr"]["events"]
    now = datetime.now(timezone.utc)
    ids = [d["_id"] for d in coll.find({}, {"_id": 1}).limit(20)]
    coll.update_many({"_id": {"$in": ids}}, {"$set": {"updated_at": now, "churned": True}})
    second, _ = ingest(mongo_server.uri, tmp_path)
    # 20 changed + the one document at the previous maximum cursor value
    assert first["documents_read"] == 2_000 and second["documents_read"] == 21
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.sql("select count(*), count(distinct _id) from raw_atlas.events").fetchone() == (2_000, 2_000)
        assert con.sql("select count(*) from raw_atlas.events where churned and updated_at >= ?", params=[now - timedelta(seconds=1)]).fetchone()[0] == 20


def test_drift_is_reported_run_by_run(mongo_server, events, tmp_path):
    first, _ = ingest(mongo_server.uri, tmp_path)
    assert first["first_load"] and first["variant_columns"] == []
    events.insert_one({"_id": "drift", "v": "not a number", "color": "red", "updated_at": T0 + timedelta(days=9)})
    second, plain = ingest(mongo_server.uri, tmp_path)
    assert not second["first_load"]
    assert second["new_columns"] == ["color"] and second["variant_columns"] == ["v__v_text"]
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.sql("select v, v__v_text, color from raw_atlas.events where _id = 'drift'").fetchone() == (None, "not a number", "red")


def test_lookback_rereads_late_writes_with_older_cursor_values(mongo_server, events, tmp_path):
    ingest(mongo_server.uri, tmp_path)
    # A writer with a slow clock commits after the run, stamping a time before the last cursor.
    events.insert_one({"_id": "late", "v": 1, "updated_at": T0 + timedelta(minutes=99) - timedelta(seconds=30)})
    without, _ = ingest(mongo_server.uri, tmp_path)
    assert "late" not in warehouse_rows(tmp_path) and without["documents_read"] == 1
    with_lookback, _ = ingest(mongo_server.uri, tmp_path, "--lookback-seconds", "60")
    # d98 (exactly 60 s before), late, and d99 at the boundary
    assert warehouse_rows(tmp_path)["late"] == 1 and with_lookback["documents_read"] == 3


def stored_cursor(work):
    """The cursor the pipeline state holds for the events resource, decoded."""
    from ingestion.source.cursors import decode_cursors

    state_file = work / "p" / "atlas_incr_local" / "state.json"
    state = json.loads(state_file.read_text())
    return decode_cursors(state["sources"]["atlas_incr_local"]["resources"]["events"])["date"]


def test_a_date_cursor_advances_on_every_run(mongo_server, events, tmp_path):
    ingest(mongo_server.uri, tmp_path)
    previous = stored_cursor(tmp_path)
    assert previous == T0 + timedelta(minutes=99)
    for run in range(1, 4):
        # 10 updates per run, each stamped later than everything before it
        for i in range(10):
            events.update_one({"_id": f"d{run * 10 + i}"}, {"$set": {"v": -run, "updated_at": T0 + timedelta(days=run, minutes=i)}})
        summary, _ = ingest(mongo_server.uri, tmp_path)
        # the 10 changed documents and the one at the previous maximum: never everything since run 1
        assert summary["documents_read"] == 11, (run, summary["documents_read"])
        current = stored_cursor(tmp_path)
        assert current == T0 + timedelta(days=run, minutes=9) and current > previous
        previous = current
    assert warehouse_rows(tmp_path) == {d["_id"]: d["v"] for d in events.find()}


def test_a_camel_case_cursor_reconciles(mongo_server, mongo_client, tmp_path):
    """The warehouse column is `updated_at`; the sample is looked up in the source by `updatedAt`."""
    coll = mongo_client["incr"]["camel"]
    coll.drop()
    coll.create_index("updatedAt")
    coll.insert_many([{"_id": f"c{i}", "v": i, "updatedAt": T0 + timedelta(minutes=i)} for i in range(20)])
    for _ in range(2):
        r = run_cli("run", "--uri", mongo_server.uri, "--database", "incr", "--collections", "camel", "--mode", "incremental",
                    "--cursor-field", "updatedAt", "--warehouse", str(tmp_path / "w.duckdb"),
                    "--pipelines-dir", str(tmp_path / "p"), "--json")
        assert r.returncode == 0, r.stderr
        reconciliation = json.loads(r.stdout)["tables"][0]["reconciliation"]
        assert reconciliation["status"] == "match" and reconciliation["sample_size"] == 20
        assert reconciliation["sample_mismatches"] == 0


def test_a_projection_that_drops_the_id_is_refused_before_reading(mongo_server, events, tmp_path):
    r = run_cli("run", "--uri", mongo_server.uri, "--database", "incr", "--collections", "events",
                "--projection", '{"_id": 0, "v": 1}', "--warehouse", str(tmp_path / "w.duckdb"),
                "--pipelines-dir", str(tmp_path / "p"))
    assert r.returncode == 2 and "the projection drops _id" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "w.duckdb").exists()  # nothing read, nothing written


def test_a_full_load_compares_a_camel_case_updated_at_by_its_source_field(mongo_server, mongo_client, tmp_path):
    """No cursor: the sample compares the `updated_at` column with the `updatedAt` field it came from."""
    coll = mongo_client["incr"]["camel_full"]
    coll.drop()
    coll.insert_many([{"_id": f"c{i}", "updatedAt": T0 + timedelta(minutes=i)} for i in range(20)])
    args = ("run", "--uri", mongo_server.uri, "--database", "incr", "--collections", "camel_full",
            "--warehouse", str(tmp_path / "w.duckdb"), "--pipelines-dir", str(tmp_path / "p"), "--json")
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    reconciliation = json.loads(r.stdout)["tables"][0]["reconciliation"]
    assert (reconciliation["status"], reconciliation["sample_size"], reconciliation["sample_mismatches"]) == ("match", 20, 0)
    # the values are compared, not only the ids: a stale value in the source shows as a mismatch
    import dlt

    from ingestion.config import CollectionConfig, DestinationConfig
    from ingestion.load.destinations import resolve
    from ingestion.ops.reconcile import SourceCount, reconcile

    coll.update_one({"_id": "c3"}, {"$set": {"updatedAt": T0 + timedelta(days=5)}})
    target = resolve(DestinationConfig(warehouse=tmp_path / "w.duckdb"), "incr")
    pipeline = dlt.pipeline(pipeline_name="atlas_incr_local", destination=target.destination, dataset_name=target.dataset,
                            pipelines_dir=str(tmp_path / "p"))
    stale = reconcile(coll, CollectionConfig(name="camel_full"), "camel_full", pipeline, SourceCount(20),
                      datetime.now(timezone.utc), {"updated_at": "updatedAt"})
    assert (stale.sample_size, stale.sample_mismatches) == (20, 1)


def test_a_cursor_of_mixed_bson_types_reads_every_bracket(mongo_server, events, tmp_path):
    """MongoDB's `$gte` on a date matches only dates: integers, strings and documents whose cursor
    turns into an unordered value (a boolean) are read from their own brackets."""
    events.insert_many([{"_id": "n1", "v": 1, "updated_at": 10}, {"_id": "s1", "v": 2, "updated_at": "2024-05-01"}])
    first, _ = ingest(mongo_server.uri, tmp_path)
    assert first["documents_read"] == 102
    events.update_one({"_id": "n1"}, {"$set": {"v": 11, "updated_at": 11.5}})
    events.update_one({"_id": "s1"}, {"$set": {"v": 12, "updated_at": "2024-06-01"}})
    events.update_one({"_id": "d3"}, {"$set": {"v": 13, "updated_at": True}})
    events.insert_many([{"_id": "n2", "v": 14, "updated_at": Int64(20)},
                        {"_id": "dec", "v": 15, "updated_at": Decimal128("30.25")},
                        {"_id": "ts", "v": 16, "updated_at": Timestamp(1_700_000_000, 1)},
                        {"_id": "old_number", "v": 17, "updated_at": 9},  # below the number bracket's maximum
                        # an array matches the date range through an element, and the array query: read once
                        {"_id": "arr", "v": 18, "updated_at": [T0 + timedelta(days=9), None]}])
    second, _ = ingest(mongo_server.uri, tmp_path)
    rows = warehouse_rows(tmp_path)
    assert {k: rows[k] for k in ("n1", "s1", "d3", "n2", "dec", "ts", "arr")} == {
        "n1": 11, "s1": 12, "d3": 13, "n2": 14, "dec": 15, "ts": 16, "arr": 18}
    assert "old_number" not in rows  # a value older than its bracket's cursor is not a change
    # n1, n2 and dec (number), s1 (string), d3 (boolean), ts (timestamp, a new bracket), arr, d99 (date boundary)
    assert second["documents_read"] == 8
    state = json.loads((tmp_path / "p" / "atlas_incr_local" / "state.json").read_text())
    from ingestion.source.cursors import decode_cursors

    cursors = decode_cursors(state["sources"]["atlas_incr_local"]["resources"]["events"])
    assert cursors == {"date": T0 + timedelta(minutes=99), "number": Decimal128("30.25"), "string": "2024-06-01",
                       "timestamp": Timestamp(1_700_000_000, 1)}
    third, _ = ingest(mongo_server.uri, tmp_path)
    assert third["documents_read"] == 6  # each bracket's boundary (date, number, string, timestamp), the boolean, the array


def test_a_cursor_stored_as_one_value_keeps_its_bracket(mongo_server, events, tmp_path):
    """A pipeline state written when the cursor was one value continues from it."""
    ingest(mongo_server.uri, tmp_path)
    state_file = tmp_path / "p" / "atlas_incr_local" / "state.json"
    state = json.loads(state_file.read_text())
    resource = state["sources"]["atlas_incr_local"]["resources"]["events"]
    resource["last_cursor"] = resource.pop("last_cursors")["date"]
    state_file.write_text(json.dumps(state))
    events.insert_one({"_id": "n1", "v": 1, "updated_at": 10})
    again, _ = ingest(mongo_server.uri, tmp_path)
    assert again["documents_read"] == 2 and warehouse_rows(tmp_path)["n1"] == 1
    assert stored_cursor(tmp_path) == T0 + timedelta(minutes=99)


def test_detect_deletes_removes_the_rows_of_deleted_documents(mongo_server, events, tmp_path):
    """Incremental runs never read a deleted document again: with --detect-deletes each run reads
    every `_id` of the source and removes the rows whose document is gone."""
    ingest(mongo_server.uri, tmp_path)
    events.delete_many({"_id": {"$in": ["d1", "d2", "d50"]}})
    events.update_one({"_id": "d3"}, {"$set": {"v": -3, "updated_at": T0 + timedelta(days=1)}})
    detected, r = ingest(mongo_server.uri, tmp_path, "--detect-deletes")
    rows = warehouse_rows(tmp_path)
    assert len(rows) == 97 and not {"d1", "d2", "d50"} & set(rows) and rows["d3"] == -3
    assert detected["deletes"] == 3
    assert detected["reconciliation"]["status"] == "match"
    again, _ = ingest(mongo_server.uri, tmp_path, "--detect-deletes")
    assert again["deletes"] == 0 and len(warehouse_rows(tmp_path)) == 97


def test_soft_delete_detection_dates_the_rows(mongo_server, events, tmp_path):
    ingest(mongo_server.uri, tmp_path, "--detect-deletes", "--deletes", "soft")
    events.delete_many({"_id": {"$in": ["d1", "d2"]}})
    events.insert_one({"_id": "d1", "v": 100, "updated_at": T0 + timedelta(days=2)})  # deleted, then back
    detected, _ = ingest(mongo_server.uri, tmp_path, "--detect-deletes", "--deletes", "soft")
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        dated = con.sql("select _id from raw_atlas.events where _deleted_at is not null").fetchall()
        total = con.sql("select count(*) from raw_atlas.events").fetchone()[0]
    assert dated == [("d2",)] and total == 100
    assert detected["deletes"] == 1 and detected["reconciliation"]["status"] == "match"
    assert detected["reconciliation"]["live_rows_only"] is True


def test_without_delete_detection_the_reconciliation_says_deletes_are_unseen(mongo_server, mongo_client, tmp_path):
    """A delete is a documented limit of plain incremental runs: the reconciliation says so and
    the dbt test on the run history passes; fewer rows than the source still fail it."""
    from tests.conftest import run_dbt

    mongo_client.drop_database("incrdel")
    seed_collection(mongo_client, 200, seed=5, database="incrdel")
    activity = mongo_client["incrdel"]["customer_activity"]
    args = ("run", "--uri", mongo_server.uri, "--database", "incrdel", "--collections", "customer_activity",
            "--mode", "incremental", "--cursor-field", "updated_at", "--warehouse", str(tmp_path / "w.duckdb"),
            "--pipelines-dir", str(tmp_path / "p"), "--json")
    assert run_cli(*args).returncode == 0
    activity.delete_many({"_id": {"$in": [d["_id"] for d in activity.find({}, {"_id": 1}).limit(4)]}})
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    reconciliation = json.loads(r.stdout)["tables"][0]["reconciliation"]
    assert reconciliation["status"] == "deletes unseen" and reconciliation["sees_deletes"] is False
    text = run_cli(*args[:-1])  # the summary says what the extra rows are, and the fix
    assert "deletes unseen" in text.stdout and "detect_deletes = true" in text.stdout
    built = run_dbt("test", "--select", "test_name:reconciled_with_source", warehouse=tmp_path / "w.duckdb", target_path=tmp_path / "t")
    assert built.returncode == 0 and "PASS reconciled_with_source_customer_activity" in built.stdout, built.stdout[-3000:]
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.sql("delete from raw_atlas.customer_activity where _id in "
                "(select _id from raw_atlas.customer_activity order by _id limit 10)")
    failed = run_dbt("test", "--select", "test_name:reconciled_with_source", warehouse=tmp_path / "w.duckdb",
                     target_path=tmp_path / "t2")
    assert failed.returncode != 0 and "Failure in test reconciled_with_source_customer_activity" in failed.stdout


def test_detect_deletes_is_refused_where_it_cannot_work(mongo_server, tmp_path):
    base = ("run", "--uri", mongo_server.uri, "--database", "incr", "--collections", "events", "--detect-deletes",
            "--pipelines-dir", str(tmp_path / "p"))
    for extra, message in (
        ((), "detect_deletes is for incremental mode"),
        (("--mode", "incremental", "--cursor-field", "updated_at", "--write-disposition", "append"), "drop write_disposition 'append'"),
        (("--mode", "incremental", "--cursor-field", "updated_at", "--destination", "s3", "--bucket-url", str(tmp_path / "lake")),
         "the landing zone keeps every version"),
    ):
        r = run_cli(*base, *extra)
        assert r.returncode == 2 and message in r.stderr, r.stderr
