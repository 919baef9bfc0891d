"""The CDC snapshot resumes after any `_id`, whatever its BSON type, and reads each document once."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from bson import Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Timestamp
from pymongo.errors import OperationFailure

from ingestion.errors import ConfigError, SourceError
from ingestion.mongo.bson_types import id_to_text
from ingestion.mongo.change_stream import _stream_error, id_bracket, read_snapshot, snapshot_filters

IDS = [
    MinKey(), None, -5, 2.5, Int64(2**60), Decimal128("3.25"), "", "abc", {"a": 1}, {"b": [1]},
    Binary(b"\x01\x02", 0), ObjectId("000000000000000000000001"), ObjectId(), False, True,
    datetime(2020, 1, 1, tzinfo=timezone.utc), Timestamp(5, 1), MaxKey(),
]


def test_resuming_after_every_id_reads_exactly_the_rest(mongo_client):
    coll = mongo_client["snaporder"]["ids"]
    coll.drop()
    coll.insert_many([{"_id": i, "n": n} for n, i in enumerate(IDS)])
    full = [d["_id"] for batch in read_snapshot(coll, None, False, None, 4) for d in batch]
    assert len(full) == len(IDS) and [id_bracket(i) for i in full] == sorted(id_bracket(i) for i in full)
    for k, after in enumerate(full):
        rest = [d["_id"] for batch in read_snapshot(coll, after, True, None, 3) for d in batch]
        assert [id_to_text(i) for i in rest] == [id_to_text(i) for i in full[k + 1:]], f"after {after!r}"


def test_filters_take_the_rest_of_the_bracket_then_every_later_type():
    assert snapshot_filters(None, False) == [{}]
    numbers = snapshot_filters(7, True)
    assert numbers[0] == {"_id": {"$gt": 7}} and "string" in numbers[1]["_id"]["$type"] and "int" not in numbers[1]["_id"]["$type"]
    assert snapshot_filters(MaxKey(), True) == []
    after_null = snapshot_filters(None, True)
    assert len(after_null) == 1 and after_null[0]["_id"]["$type"][0] == "int"


def test_stream_errors_name_the_cause_and_the_fix():
    lost = _stream_error(OperationFailure("gone", code=286, details={"errmsg": "resume point gone"}), "db.c", True)
    assert type(lost).__name__ == "HistoryLost" and "resume point gone" in str(lost)
    big = _stream_error(OperationFailure("too big", code=10334, details={"errmsg": "BSONObjectTooLarge"}), "db.c", False)
    assert isinstance(big, SourceError) and "6.0.9" in str(big) and "--mode incremental" in str(big)
    other = _stream_error(OperationFailure("x", code=13, details={"errmsg": "not authorized"}), "db.c", True)
    assert isinstance(other, SourceError) and "not authorized" in str(other)


@pytest.mark.parametrize("settings, message", [
    ({"mode": "cdc", "filter": '{"a": 1}'}, "drop the filter"),
    ({"mode": "cdc", "projection": '{"a": 1}'}, "exclusion projections only"),
    ({"mode": "cdc", "workers": 4}, "one reader"),
    ({"mode": "cdc", "deletes": "archive"}, "unknown deletes"),
    ({"mode": "cdc", "on_token_lost": "skip"}, "unknown on_token_lost"),
    ({"mode": "cdc", "write_disposition": "append"}, "merges on _id"),
])
def test_invalid_cdc_settings_are_refused(settings, message):
    from ingestion.config import collection_config

    with pytest.raises(ConfigError, match=message):
        collection_config("c", settings)
