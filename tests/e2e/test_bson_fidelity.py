"""Every row of docs/bson_types.md, one BSON type at a time, through a real server into DuckDB."""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import duckdb
import pytest
from bson import Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions

from tests.conftest import run_cli

UID = uuid.UUID("12345678-1234-5678-1234-567812345678")
OID = ObjectId("5f1d7a2b9c8e4d3f2a1b0c9d")
WHEN = datetime(2021, 3, 4, 5, 6, 7, 891000, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def loaded(mongo_server, tmp_path_factory):
    """One document per case, loaded with the CLI; returns a function giving (column type, value)."""
    from pymongo import MongoClient

    work = tmp_path_factory.mktemp("fidelity")
    with MongoClient(mongo_server.uri) as client:
        coll = client["fidelity"].get_collection("types", codec_options=CodecOptions(uuid_representation=UuidRepresentation.UNSPECIFIED))
        coll.drop()
        coll.insert_many([
            {"_id": "objectid", "v": OID},
            {"_id": "decimal", "d": Decimal128("1234567890123456789.123456789")},
            {"_id": "decimal_too_precise", "d": Decimal128("0.12345678901234567890123456789")},
            {"_id": "decimal_nan", "d": Decimal128("NaN")},
            # the number decides where a Decimal128 lands, not how it is written (docs/bson_types.md)
            {"_id": "decimal_trailing_zeros", "d": Decimal128("0.00123400000")},
            {"_id": "decimal_zero_huge_exponent", "d": Decimal128("0E+6111")},
            {"_id": "decimal_negative_zero", "d": Decimal128("-0")},
            {"_id": "decimal_1e28", "d": Decimal128("1E+28")},
            {"_id": "decimal_1e29", "d": Decimal128("1E+29")},
            {"_id": "decimal_10_places", "d": Decimal128("0.0000000011")},
            {"_id": "int64_big", "i": Int64(2**62 + 3)},
            {"_id": "int32", "i": 7},
            {"_id": "datetime", "t": WHEN},
            {"_id": "uuid_standard", "u": Binary.from_uuid(UID, UuidRepresentation.STANDARD)},
            {"_id": "uuid_legacy", "u": Binary.from_uuid(UID, UuidRepresentation.PYTHON_LEGACY)},
            {"_id": "binary", "b": Binary(b"\x00\x01\xfe\xff", 0)},
            {"_id": "regex", "r": Regex("^ab.*c$", "im")},
            {"_id": "timestamp", "ts": Timestamp(1700000000, 7)},
            {"_id": "minkey", "k": MinKey()},
            {"_id": "maxkey", "k": MaxKey()},
            {"_id": "nan", "f": float("nan")},
            {"_id": "inf", "f": float("inf")},
            {"_id": "neg_inf", "f": float("-inf")},
            {"_id": "double", "f": 0.1},
            {"_id": "bool", "flag": True},
            {"_id": "code", "c": Code("function () { return 1; }")},
            {"_id": "code_scope", "c": Code("function () { return x; }", {"x": 1})},
            {"_id": "dbref", "ref": DBRef("other", OID, "otherdb")},
            {"_id": "nested_refs", "o": {"ref": DBRef("other", 5)}},
            {"_id": "nested_code", "o": {"scoped": Code("function () { return x; }", {"x": Int64(2**40), "o": OID}),
                                         "plain": Code("function () { return 1; }")}},
            {"_id": "nested", "o": {"oid": OID, "dec": Decimal128("10.50"), "when": WHEN, "nan": float("nan"),
                                    "big": Int64(2**62 + 3), "arr": [1, "two", {"three": 3}], "empty": {}, "none": []}},
            {"_id": 42, "v": "int id"},
            {"_id": OID, "v": "objectid id"},
        ])
    r = run_cli("run", "--uri", mongo_server.uri, "--database", "fidelity", "--collections", "types",
                "--warehouse", str(work / "w.duckdb"), "--pipelines-dir", str(work / "p"), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)["tables"][0]
    assert (summary["rows_loaded"], summary["quarantined"]) == (33, 0)
    con = duckdb.connect(str(work / "w.duckdb"), read_only=True)
    types = dict(con.sql("select column_name, data_type from information_schema.columns "
                         "where table_schema='raw_atlas' and table_name='types'").fetchall())

    def get(doc_id: str, column: str):
        value = con.sql(f'select "{column}" from raw_atlas.types where _id = ?', params=[doc_id]).fetchone()[0]
        return types[column], value

    yield get
    con.close()


def test_objectid_is_24_char_hex(loaded):
    assert loaded("objectid", "v") == ("VARCHAR", str(OID))


def test_id_of_every_type_is_text(loaded):
    assert loaded(str(OID), "v") == ("VARCHAR", "objectid id")
    assert loaded('{"$numberInt": "42"}', "v") == ("VARCHAR", "int id")


def test_decimal128_is_an_exact_decimal(loaded):
    assert loaded("decimal", "d") == ("DECIMAL(38,9)", Decimal("1234567890123456789.123456789"))


def test_decimal128_beyond_decimal_38_9_is_exact_text(loaded):
    assert loaded("decimal_too_precise", "d__v_text") == ("VARCHAR", "0.12345678901234567890123456789")
    assert loaded("decimal_nan", "d__v_text") == ("VARCHAR", "NaN")


@pytest.mark.parametrize("doc_id, column, value", [
    ("decimal_trailing_zeros", "d", Decimal("0.001234")),
    ("decimal_zero_huge_exponent", "d", Decimal(0)),
    ("decimal_negative_zero", "d", Decimal(0)),
    ("decimal_1e28", "d", Decimal("1E+28")),
    ("decimal_1e29", "d__v_text", "1E+29"),
    ("decimal_10_places", "d__v_text", "1.1E-9"),
])
def test_decimal128_placement_follows_the_number(loaded, doc_id, column, value):
    kind, loaded_value = loaded(doc_id, column)
    assert kind == ("DECIMAL(38,9)" if column == "d" else "VARCHAR")
    assert loaded_value == value
    if column == "d":
        assert loaded(doc_id, "d__v_text")[1] is None


def test_int64_beyond_2_53_is_exact(loaded):
    assert loaded("int64_big", "i") == ("BIGINT", 2**62 + 3)
    assert loaded("int32", "i") == ("BIGINT", 7)


def test_datetime_is_a_utc_timestamp(loaded):
    kind, value = loaded("datetime", "t")
    assert kind == "TIMESTAMP WITH TIME ZONE"
    assert value == WHEN


def test_uuid_standard_and_legacy_are_canonical_strings(loaded):
    assert loaded("uuid_standard", "u") == ("VARCHAR", str(UID))
    assert loaded("uuid_legacy", "u") == ("VARCHAR", str(UID))


def test_binary_is_base64(loaded):
    assert loaded("binary", "b") == ("VARCHAR", "AAH+/w==")


def test_regex_timestamp_minkey_maxkey_are_tagged_json(loaded):
    assert json.loads(loaded("regex", "r")[1]) == {"$regex": "^ab.*c$", "$options": "im"}
    assert json.loads(loaded("timestamp", "ts")[1]) == {"$timestamp": {"t": 1700000000, "i": 7}}
    assert json.loads(loaded("minkey", "k")[1]) == {"$minKey": 1}
    assert json.loads(loaded("maxkey", "k")[1]) == {"$maxKey": 1}
    assert loaded("regex", "r")[0] == "JSON"


def test_nan_and_infinity_stay_doubles(loaded):
    assert loaded("double", "f") == ("DOUBLE", 0.1)
    assert math.isnan(loaded("nan", "f")[1])
    assert loaded("inf", "f")[1] == math.inf
    assert loaded("neg_inf", "f")[1] == -math.inf


def test_bool_and_code(loaded):
    assert loaded("bool", "flag") == ("BOOLEAN", True)
    assert loaded("code", "c") == ("VARCHAR", "function () { return 1; }")


def test_code_with_scope_keeps_its_scope_and_dbrefs_are_their_subdocument(loaded):
    kind, text = loaded("code_scope", "c")
    assert kind == "VARCHAR" and json.loads(text) == {"$code": "function () { return x; }", "$scope": {"x": {"$numberInt": "1"}}}
    kind, text = loaded("dbref", "ref")
    assert kind == "JSON" and json.loads(text) == {"$ref": "other", "$id": str(OID), "$db": "otherdb"}
    kind, text = loaded("nested_refs", "o")
    assert json.loads(text) == {"ref": {"$ref": "other", "$id": 5}}
    kind, text = loaded("nested_code", "o")  # inside a document, the code only (docs/bson_types.md)
    assert json.loads(text) == {"scoped": "function () { return x; }", "plain": "function () { return 1; }"}


def test_nested_values_are_json_with_the_same_rules(loaded):
    kind, text = loaded("nested", "o")
    assert kind == "JSON"
    assert json.loads(text) == {
        "oid": str(OID), "dec": "10.50", "when": "2021-03-04T05:06:07.891000+00:00", "nan": "NaN",
        "big": 2**62 + 3, "arr": [1, "two", {"three": 3}], "empty": {}, "none": [],
    }


@pytest.mark.parametrize("representation, option", [
    (UuidRepresentation.JAVA_LEGACY, "javaLegacy"), (UuidRepresentation.CSHARP_LEGACY, "csharpLegacy"),
    (UuidRepresentation.PYTHON_LEGACY, None),
])
def test_legacy_uuids_are_read_in_the_order_the_uri_names(representation, option, mongo_server, tmp_path):
    """Subtype 3 as the Java or C# driver wrote it: the URI's uuidRepresentation says how to read it."""
    from pymongo import MongoClient

    database = f"uuids_{option or 'default'}"
    with MongoClient(mongo_server.uri) as client:
        coll = client[database].get_collection("ids", codec_options=CodecOptions(uuid_representation=UuidRepresentation.UNSPECIFIED))
        coll.drop()
        coll.insert_one({"_id": 1, "u": Binary.from_uuid(UID, representation)})
    uri = mongo_server.uri + (f"{'&' if '?' in mongo_server.uri else '?'}uuidRepresentation={option}" if option else "")
    r = run_cli("run", "--uri", uri, "--database", database, "--warehouse", str(tmp_path / "w.duckdb"),
                "--pipelines-dir", str(tmp_path / "p"))
    assert r.returncode == 0, r.stderr
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.sql("select u from raw_atlas.ids").fetchone()[0] == str(UID)
    if option:  # read in Python's order, the same bytes spell another UUID
        assert str(Binary.from_uuid(UID, representation).as_uuid(UuidRepresentation.PYTHON_LEGACY)) != str(UID)
