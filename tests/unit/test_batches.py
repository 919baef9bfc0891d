import gzip
import json
from datetime import datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pytest
from bson import Decimal128, Int64, ObjectId

from ingestion.naming import NameCollision
from ingestion.source.batches import EXTRACTED_AT, ColumnRegistry, convert_documents


def documents_to_table(docs, registry):
    return convert_documents(docs, registry).to_arrow()


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
    assert {n: c["data_type"] for n, c in reg.dlt_columns().items() if c["data_type"] == "json"} == {"o": "json"}


def test_decimal_is_exact_decimal_and_too_precise_ones_exact_text():
    reg = ColumnRegistry()
    table = documents_to_table([
        {"_id": 1, "d": Decimal128("12345678901234567890.123456789")},
        {"_id": 2, "d": Decimal128("0.1234567891")},
    ], reg)
    rows = table.to_pylist()
    assert table.schema.field("d").type == pa.decimal128(38, 9)
    assert rows[0]["d"] == Decimal("12345678901234567890.123456789")
    assert rows[1]["d__v_text"] == "0.1234567891"
    assert reg.variant_columns == ["d__v_text"]


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


def test_document_without_id_is_quarantined():
    batch = convert_documents([{"x": 1}, {"_id": "a", "x": 2}], ColumnRegistry())
    assert batch.size == 1 and batch.columns["_id"] == ["a"]
    assert [(q.document_id, q.reason) for q in batch.quarantined] == [("", "document has no _id")]


def test_fields_colliding_on_one_column_stop_the_load_naming_both():
    reg = ColumnRegistry()
    with pytest.raises(NameCollision, match="fields 'userName' and 'user_name' both map to column 'user_name'"):
        convert_documents([{"_id": "a", "userName": 1}, {"_id": "b", "user_name": 2}], reg)


def test_a_field_name_over_the_identifier_limit_quarantines_its_documents():
    reg = ColumnRegistry()
    batch = convert_documents([{"_id": "a", "a" * 128: 1, "b": 1}, {"_id": "b", "b": 2}], reg)
    assert batch.columns == {"_id": ["b"], "b": [2]} and "a" * 128 not in reg.kinds
    [(document_id, reason)] = [(q.document_id, q.reason) for q in batch.quarantined]
    assert document_id == "a" and "over the 127-byte limit of Redshift identifiers" in reason


def test_ints_and_doubles_of_one_field_share_one_double_column():
    reg = ColumnRegistry()
    batch = convert_documents([{"_id": "a", "m": 1}, {"_id": "b", "m": 2.5}, {"_id": "c", "m": Int64(3)}], reg)
    assert batch.columns["m"] == [1.0, 2.5, 3.0]
    assert reg.kinds["m"] == "double" and not reg.variant_columns
    # a later batch of the same run widens a column the warehouse does not have yet: it is
    # written wider, nothing to widen in the warehouse or to report
    reg = ColumnRegistry()
    convert_documents([{"_id": "a", "n": 1}], reg)
    convert_documents([{"_id": "b", "n": 2.5}], reg)
    assert reg.kinds["n"] == "double" and reg.take_widenings() == {} and reg.widened == []


def test_a_column_widens_across_batches_and_records_the_stored_widening():
    reg = ColumnRegistry()
    reg.seed({"m": "bigint"})
    first = convert_documents([{"_id": "a", "m": Int64(2**40)}], reg)
    assert first.columns["m"] == [2**40] and reg.take_widenings() == {}
    second = convert_documents([{"_id": "b", "m": 0.5}, {"_id": "c", "m": "n/a"}], reg)
    assert second.columns["m"] == [0.5, None]
    assert second.columns["m__v_text"] == [None, "n/a"]
    assert reg.take_widenings() == {"m": "double"} and reg.take_widenings() == {}
    assert reg.variant_columns == ["m__v_text"] and reg.widened == ["m"]


def test_a_planned_kind_names_the_column_whatever_arrives_first():
    reg = ColumnRegistry(planned={"m": "double"})
    batch = convert_documents([{"_id": "a", "m": 1}], reg)
    assert batch.columns["m"] == [1.0] and reg.kinds["m"] == "double"


def test_ids_of_other_types_stay_distinct_from_strings():
    batch = convert_documents([{"_id": 5}, {"_id": "5"}, {"_id": {"k": 1}}], ColumnRegistry())
    assert batch.columns["_id"] == ['{"$numberInt": "5"}', "5", '{"k": {"$numberInt": "1"}}']


def test_every_id_has_its_own_text_and_reads_back_from_it():
    """A string that looks like an ObjectId's hex or like extended JSON is quoted, so no two
    `_id`s of different types share a text, and the text gives the `_id` back (the reconciliation
    looks the source up by it)."""
    from ingestion.mongo.bson_types import id_from_text, id_to_text

    oid = ObjectId("5f0c1b2a3d4e5f6a7b8c9d0e")
    ids = [oid, str(oid), 8, '{"$numberInt": "8"}', True, "true", "null", '"quoted"', "plain", str(oid).upper(),
           Int64(8), 8.0, {"k": 1}, "{k", datetime(2024, 1, 2, tzinfo=timezone.utc), Decimal128("8")]
    texts = convert_documents([{"_id": i} for i in ids], ColumnRegistry()).columns["_id"]
    assert len(set(texts)) == len(ids)
    assert texts[:4] == [str(oid), f'"{oid}"', '{"$numberInt": "8"}', '"{\\"$numberInt\\": \\"8\\"}"']
    assert texts[8:10] == ["plain", str(oid).upper()]  # strings no other type produces stay as they are
    assert [(type(id_from_text(t)), id_from_text(t)) for t in texts] == [(type(i), i) for i in ids]


def test_decimals_in_json_lines_are_plain_digits_at_the_columns_scale(tmp_path):
    """COPY into numeric(38, 9) reads the digits: no exponent, whatever the Decimal128 looked like."""
    batch = convert_documents([{"_id": 1, "d": Decimal128("0E+6111")}, {"_id": 2, "d": Decimal128("1E+28")},
                               {"_id": 3, "d": Decimal128("10.50")}], ColumnRegistry())
    batch.write_jsonl(tmp_path / "rows.jsonl.gz")
    values = [json.loads(line)["d"] for line in gzip.decompress((tmp_path / "rows.jsonl.gz").read_bytes()).splitlines()]
    assert values == ["0.000000000", "10000000000000000000000000000.000000000", "10.500000000"]
