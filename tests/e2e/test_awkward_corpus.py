"""A corpus of awkward documents: every one is loaded, or quarantined with a reason; counts reconcile."""

from __future__ import annotations

import json

import duckdb
import pytest
from bson import Decimal128, ObjectId

from ingestion.source.batches import REDSHIFT_LIMITS, ColumnRegistry, convert_documents
from tests.conftest import run_cli


def nested(depth: int) -> dict:
    doc: dict = {"leaf": depth}
    for level in range(depth - 1):
        doc = {"level": level, "child": doc}
    return doc


def corpus() -> list[dict]:
    docs: list[dict] = [
        {"_id": ObjectId(), "amount": 1},
        {"_id": ObjectId(), "amount": "one"},
        {"_id": ObjectId(), "amount": 1.5},
        {"_id": ObjectId(), "amount": {"value": 1}},
        {"_id": ObjectId(), "amount": [1, 2]},
        {"_id": ObjectId(), "amount": Decimal128("1.25")},
        {"_id": ObjectId(), "amount": None},
        {"_id": ObjectId(), "deep": nested(99)},
        {"_id": ObjectId(), "big": "x" * (15 * 1024 * 1024)},
        {"_id": ObjectId(), "obj": {"a.b": 1, "$c": 2, "d": {"e.f": {"$g": 3}}}},
        {"_id": ObjectId(), "empty_obj": {}, "empty_arr": [], "arr_of_empty": [{}, []]},
        {"_id": 12, "kind": "int id"},
        {"_id": "12", "kind": "string id"},
        {"_id": {"tenant": 1, "n": 2}, "kind": "compound id"},
        {"_id": 3.5, "kind": "double id"},
        {"_id": "long-" + "i" * 600, "kind": "too long id"},  # over 512 characters: quarantined
    ]
    return docs


@pytest.fixture(scope="module")
def loaded(mongo_server, tmp_path_factory):
    from pymongo import MongoClient

    work = tmp_path_factory.mktemp("awkward")
    docs = corpus()
    with MongoClient(mongo_server.uri) as client:
        coll = client["awkward"]["corpus"]
        coll.drop()
        for doc in docs:  # one by one: a 15 MB document fills a batch alone
            coll.insert_one(doc)
        assert coll.count_documents({}) == len(docs)
    r = run_cli("run", "--uri", mongo_server.uri, "--database", "awkward", "--collections", "corpus", "--batch-docs", "4",
                "--warehouse", str(work / "w.duckdb"), "--pipelines-dir", str(work / "p"), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["tables"][0], work / "w.duckdb", len(docs)


def test_every_document_is_loaded_or_quarantined(loaded):
    summary, warehouse, total = loaded
    assert summary["documents_read"] == total
    assert summary["rows_loaded"] + summary["quarantined"] == total
    assert summary["quarantined"] == 1
    with duckdb.connect(str(warehouse), read_only=True) as con:
        loaded_ids = {i for (i,) in con.sql("select _id from raw_atlas.corpus").fetchall()}
        quarantine = con.sql("select document_id, reason, document from raw_atlas._atlas_quarantine").fetchall()
    assert len(loaded_ids) == summary["rows_loaded"]
    reasons = {doc_id[:10]: reason for doc_id, reason, _ in quarantine}
    assert any("over the 512-character column" in r for r in reasons.values())
    assert all(document for _, _, document in quarantine)
    assert {'{"$numberInt": "12"}', "12", '{"tenant": {"$numberInt": "1"}, "n": {"$numberInt": "2"}}',
            '{"$numberDouble": "3.5"}'} <= loaded_ids


def test_mixed_types_land_in_variant_columns_and_numbers_share_one(loaded):
    summary, warehouse, _ = loaded
    assert set(summary["variant_columns"]) >= {"amount__v_text", "amount__v_json", "amount__v_decimal"}
    assert "amount__v_double" not in summary["variant_columns"]  # 1 and 1.5 share the double column
    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.sql("select count(amount), count(amount__v_text), count(amount__v_json), "
                      "count(amount__v_decimal) from raw_atlas.corpus").fetchone()
        numbers = sorted(v for (v,) in con.sql("select amount from raw_atlas.corpus where amount is not null").fetchall())
    assert row == (2, 1, 2, 1)
    assert numbers == [1.0, 1.5]


def test_deep_large_and_odd_keys_survive(loaded):
    _, warehouse, _ = loaded
    with duckdb.connect(str(warehouse), read_only=True) as con:
        deep = json.loads(con.sql("select deep from raw_atlas.corpus where deep is not null").fetchone()[0])
        big = con.sql("select length(big) from raw_atlas.corpus where big is not null").fetchone()[0]
        obj = json.loads(con.sql("select obj from raw_atlas.corpus where obj is not null").fetchone()[0])
        empty = con.sql("select empty_obj, empty_arr, arr_of_empty from raw_atlas.corpus where empty_obj is not null").fetchone()
    depth = 0
    while "child" in deep:
        deep, depth = deep["child"], depth + 1
    assert depth == 98 and deep == {"leaf": 99}
    assert big == 15 * 1024 * 1024
    assert obj == {"a.b": 1, "$c": 2, "d": {"e.f": {"$g": 3}}}
    assert [json.loads(v) for v in empty] == [{}, [], [{}, []]]


def test_rows_over_the_redshift_copy_limit_are_quarantined(tmp_path):
    docs = [{"_id": "small", "x": ["a"]}, {"_id": "huge", "x": ["y" * 60_000] * 80}]  # each string under 64 KB
    batch = convert_documents(docs, ColumnRegistry(), limits=REDSHIFT_LIMITS)
    written = batch.write_jsonl(tmp_path / "b.jsonl.gz", limits=REDSHIFT_LIMITS)
    assert written == 1
    assert [(q.document_id, "over the 4,194,304-byte limit" in q.reason) for q in batch.quarantined] == [("huge", True)]
