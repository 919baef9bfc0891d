"""Paths that used to lose, duplicate or freeze documents while the run exited 0: each test here
reproduces one and checks that every document ends up loaded or quarantined with its reason."""

from __future__ import annotations

from pathlib import Path

import duckdb
from pymongo import MongoClient

from tests.conftest import run_cli


def run(uri: str, database: str, work: Path, *args: str):
    return run_cli("run", "--uri", uri, "--database", database, "--warehouse", str(work / "w.duckdb"),
                   "--pipelines-dir", str(work / "pipelines"), "--no-progress", *args)


def rows(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()


def deep(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels):
        value = {"n": value}
    return value


def test_a_document_nested_too_deep_is_quarantined_and_later_runs_still_load(mongo_server, tmp_path):
    """MongoDB caps nesting at 100 levels, the local server does not: a document nested 900
    levels deep goes to the quarantine with the reason, run after run, and the others load."""
    with MongoClient(mongo_server.uri) as client:
        client.drop_database("deepdb")
        client["deepdb"]["things"].insert_many([{"_id": 1, "ok": True}, {"_id": 2, "tree": deep(900)}])
    for _ in range(2):  # the next full run too
        r = run(mongo_server.uri, "deepdb", tmp_path)
        assert r.returncode == 0, r.stderr
    warehouse = tmp_path / "w.duckdb"
    assert rows(warehouse, "select _id from raw_atlas.things") == [('{"$numberInt": "1"}',)]
    quarantined = rows(warehouse, "select document_id, reason, document_truncated from raw_atlas._atlas_quarantine")
    assert {q[0] for q in quarantined} == {'{"$numberInt": "2"}'}
    assert all("nested deeper than" in q[1] and q[2] for q in quarantined), quarantined


def test_cdc_quarantines_what_it_cannot_load_in_the_snapshot_and_the_stream(mongo_server, tmp_path):
    """The same documents full mode quarantines are quarantined by CDC too, in the snapshot and
    in change events, and the run reconciles: documents read = rows loaded + quarantined."""
    with MongoClient(mongo_server.uri) as client:
        client.drop_database("cdcbad")
        things = client["cdcbad"]["things"]
        things.insert_many([{"_id": 1, "ok": True}, {"_id": "x" * 600, "ok": False}])
        first = run(mongo_server.uri, "cdcbad", tmp_path, "--mode", "cdc", "--json")
        assert first.returncode == 0, first.stderr
        things.insert_many([{"_id": 2, "ok": True}, {"_id": 3, "tree": deep(900)}])
        second = run(mongo_server.uri, "cdcbad", tmp_path, "--mode", "cdc", "--json")
        assert second.returncode == 0, second.stderr
    warehouse = tmp_path / "w.duckdb"
    assert sorted(rows(warehouse, "select _id from raw_atlas.things")) == [('{"$numberInt": "1"}',), ('{"$numberInt": "2"}',)]
    quarantined = dict(rows(warehouse, "select document_id, reason from raw_atlas._atlas_quarantine"))
    assert set(quarantined) == {"x" * 600, '{"$numberInt": "3"}'}, quarantined
    assert "over the 512-character column" in quarantined["x" * 600]
    assert "nested deeper than" in quarantined['{"$numberInt": "3"}']
    runs = rows(warehouse, "select quarantined, reconciliation from raw_atlas._atlas_runs order by started_at")
    assert [r[0] for r in runs] == [1, 1] and all(r[1] != "diverged" for r in runs), runs


def test_a_failed_row_check_loads_nothing_and_keeps_the_cursor(mongo_server, tmp_path, monkeypatch):
    """Documents read = rows + quarantined is checked before the load: when a document goes
    missing on the way (here a converter that drops one), nothing of the run loads and the
    cursor stays, so the next run reads those documents again."""
    from datetime import datetime, timedelta, timezone

    import pytest

    import ingestion.source.resources as resources
    from ingestion.config import DestinationConfig, RunConfig
    from ingestion.errors import IngestError
    from ingestion.ops.run import run as run_in_process

    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    with MongoClient(mongo_server.uri) as client:
        client.drop_database("checkdb")
        events = client["checkdb"]["events"]
        events.insert_many([{"_id": i, "updated_at": start + timedelta(minutes=i)} for i in range(100)])
        config = RunConfig(uri=mongo_server.uri, database="checkdb", collections=["events"],
                           overrides={"mode": "incremental", "cursor_field": "updated_at"},
                           destination=DestinationConfig(warehouse=tmp_path / "w.duckdb"), pipelines_dir=tmp_path / "p")
        assert run_in_process(config).tables[0].rows_loaded == 100
        events.insert_many([{"_id": i, "updated_at": start + timedelta(minutes=i)} for i in range(100, 110)])

        convert = resources.convert_documents
        monkeypatch.setattr(resources, "convert_documents", lambda docs, *a, **k: convert(docs[:-1], *a, **k))
        with pytest.raises(IngestError, match="nothing was loaded"):
            run_in_process(config)
        assert rows(tmp_path / "w.duckdb", "select count(*) from raw_atlas.events") == [(100,)]
        monkeypatch.setattr(resources, "convert_documents", convert)

        again = run_in_process(config).tables[0]
    assert again.documents_read == 11  # the 10 new ones, and the one at the stored cursor ($gte)
    assert rows(tmp_path / "w.duckdb", "select count(*) from raw_atlas.events") == [(110,)]


def test_ids_whose_texts_looked_alike_stay_separate_documents_in_every_mode(mongo_server, tmp_path):
    """A string `_id` equal to an ObjectId's hex, or shaped like extended JSON next to the int it
    spells, is its own row in full, incremental and CDC loads, and each reconciles by its `_id`."""
    import json
    from datetime import datetime, timezone

    from bson import ObjectId

    oid = ObjectId("5f0c1b2a3d4e5f6a7b8c9d0e")
    ids = [oid, str(oid), 8, '{"$numberInt": "8"}', True, "true"]
    stamp = datetime(2024, 1, 1, tzinfo=timezone.utc)
    modes = {"full": (), "incremental": ("--cursor-field", "updated_at"), "cdc": ()}
    with MongoClient(mongo_server.uri) as client:
        for mode, extra in modes.items():
            client.drop_database(f"ids_{mode}")
            things = client[f"ids_{mode}"]["things"]
            things.insert_many([{"_id": i, "n": n, "updated_at": stamp} for n, i in enumerate(ids)])
            work = tmp_path / mode
            first = run(mongo_server.uri, f"ids_{mode}", work, "--mode", mode, "--json", *extra)
            assert first.returncode == 0, first.stderr
            things.update_many({}, {"$inc": {"n": 10}, "$set": {"updated_at": datetime.now(timezone.utc)}})
            second = run(mongo_server.uri, f"ids_{mode}", work, "--mode", mode, "--json", *extra)
            assert second.returncode == 0, second.stderr
            loaded = rows(work / "w.duckdb", "select _id, n from raw_atlas.things")
            assert len({i for i, _ in loaded}) == 6 and sorted(n for _, n in loaded) == list(range(10, 16)), (mode, loaded)
            reconciliation = json.loads(second.stdout)["tables"][0]["reconciliation"]
            assert (reconciliation["status"], reconciliation["sample_mismatches"]) == ("match", 0), (mode, reconciliation)


def test_a_null_id_loads_and_an_empty_field_name_is_quarantined_with_its_reason(mongo_server, tmp_path):
    """`_id: null` is a valid document (its text is `null`, apart from the string "null"); a
    top-level field named "" cannot be a column, and the quarantine says so."""
    import json

    with MongoClient(mongo_server.uri) as client:
        client.drop_database("oddkeys")
        client["oddkeys"]["things"].insert_many([{"_id": None, "v": 1}, {"_id": "null", "v": 2}, {"_id": 3, "": 5, "v": 3},
                                                 {"_id": 4, "nested": {"": 1}, "v": 4}])
    r = run(mongo_server.uri, "oddkeys", tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    warehouse = tmp_path / "w.duckdb"
    assert sorted(rows(warehouse, "select _id, v from raw_atlas.things")) == [
        ('"null"', 2), ("null", 1), ('{"$numberInt": "4"}', 4)]
    [(document_id, reason)] = rows(warehouse, "select document_id, reason from raw_atlas._atlas_quarantine")
    assert document_id == '{"$numberInt": "3"}' and "empty name" in reason
    reconciliation = json.loads(r.stdout)["tables"][0]["reconciliation"]
    assert reconciliation["status"] == "match" and reconciliation["sample_mismatches"] == 0
