import json
from datetime import datetime, timezone

import pyarrow as pa
import pytest
from bson import Decimal128, Int64, ObjectId

from ingestion.arrow_batches import EXTRACTED_AT, ColumnRegistry, documents_to_table, json_columns


def test_scalars_are_typed_and_nested_values_are_json():
    oid = ObjectId("5c2aad80002a000000000000")
    when = datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    docs = [{"_id": oid, "n": 1, "x": 1.5, "b": True, "s": "a", "t": when, "o": {"k": [1, {"d": when}]}, "big": Int64(2**62 + 1)}]
    reg = ColumnRegistry()
    table = documents_to_table(docs, reg)
    assert table.column_names == ["_id", "n", "x", "b", "s", "t", "o", "big", EXTRACTED_AT]
    assert table.schema.field("_id").type == pa.string()
    assert table.schema.field("n").type == pa.int64()
    assert table.schema.field("x").type == pa.float64()
    assert table.schema.field("b").type == pa.bool_()
    assert table.schema.field("t").type == pa.timestamp("us", tz="UTC")
    row = table.to_pylist()[0]
    assert row["_id"] == "5c2aad80002a000000000000"
    assert row["big"] == 2**62 + 1
    assert row["t"] == when
    assert json.loads(row["o"]) == {"k": [1, {"d": "2020-01-02T03:04:05+00:00"}]}
    assert json_columns(reg) == {"o": {"data_type": "json"}}


def test_decimal_is_exact_text():
    table = documents_to_table([{"_id": 1, "d": Decimal128("12345678901234567890.123456789")}], ColumnRegistry())
    assert table.to_pylist()[0]["d"] == "12345678901234567890.123456789"


def test_missing_fields_are_null_and_column_order_is_first_seen():
    table = documents_to_table([{"_id": "a", "x": 1}, {"_id": "b", "y": "z"}], ColumnRegistry())
    rows = table.to_pylist()
    assert [r["x"] for r in rows] == [1, None]
    assert [r["y"] for r in rows] == [None, "z"]


def test_type_change_goes_to_variant_column_and_is_reported():
    reg = ColumnRegistry()
    documents_to_table([{"_id": "a", "v": 1}], reg)
    table = documents_to_table([{"_id": "b", "v": "one"}, {"_id": "c", "v": 2}], reg)
    rows = table.to_pylist()
    assert [(r["v"], r["v__v_text"]) for r in rows] == [(None, "one"), (2, None)]
    assert reg.variant_columns == ["v__v_text"]
    assert reg.new_columns == ["v"]


def test_known_kinds_from_the_warehouse_are_respected():
    reg = ColumnRegistry(kinds={"v": "text"})
    table = documents_to_table([{"_id": "a", "v": 5}], reg)
    assert table.column_names[:2] == ["_id", "v__v_bigint"]


def test_document_without_id_is_refused():
    with pytest.raises(ValueError, match="_id"):
        documents_to_table([{"x": 1}], ColumnRegistry())
