"""The whole local flow: generated documents -> real MongoDB-wire server -> dlt -> DuckDB -> dbt build."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import duckdb
import pytest
from pymongo import MongoClient

from ingestion.local.seed import seed_collection
from tests.conftest import REPO, run_cli, run_dbt

DOCS = 2_000
CONTRACT = [
    ("state", "VARCHAR"), ("account_length", "INTEGER"), ("area_code", "INTEGER"), ("phone", "VARCHAR"),
    ("intl_plan", "VARCHAR"), ("vmail_plan", "VARCHAR"), ("vmail_message", "INTEGER"), ("day_mins", "DOUBLE"),
    ("day_calls", "INTEGER"), ("day_charge", "DOUBLE"), ("total_charge", "DOUBLE"), ("eve_mins", "DOUBLE"),
    ("eve_calls", "INTEGER"), ("eve_charge", "DOUBLE"), ("night_mins", "DOUBLE"), ("night_calls", "INTEGER"),
    ("night_charge", "DOUBLE"), ("intl_mins", "DOUBLE"), ("intl_calls", "INTEGER"), ("intl_charge", "DOUBLE"),
    ("cust_serv_calls", "INTEGER"), ("churn", "VARCHAR"), ("record_date", "DATE"),
]


@pytest.fixture(scope="module")
def built(mongo_server, tmp_path_factory):
    """Seed, ingest with the CLI, and `dbt build` into a fresh warehouse; returns (warehouse, dbt result)."""
    work = tmp_path_factory.mktemp("flow")
    warehouse = work / "warehouse.duckdb"
    with MongoClient(mongo_server.uri) as client:
        seed_collection(client, DOCS, seed=5, database="flowdb")
    ingest = run_cli(
        "run", "--uri", mongo_server.uri, "--database", "flowdb", "--collections", "customer_activity",
        "--warehouse", str(warehouse), "--pipelines-dir", str(work / "pipelines"), "--json",
    )
    assert ingest.returncode == 0, ingest.stderr
    summary = json.loads(ingest.stdout)
    assert summary["tables"][0]["documents_read"] == DOCS
    assert summary["tables"][0]["rows_loaded"] == DOCS
    build = run_dbt("build", warehouse=warehouse, target_path=work / "target")
    return warehouse, build


def test_dbt_build_passes_on_a_fresh_warehouse(built):
    _, build = built
    assert build.returncode == 0, build.stdout[-3000:]
    assert "ERROR=0" in build.stdout and "PASS=" in build.stdout


def test_raw_table_keeps_nested_json_and_string_ids(built):
    warehouse, _ = built
    with duckdb.connect(str(warehouse), read_only=True) as con:
        types = dict(con.sql(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw_atlas' and table_name = 'customer_activity'"
        ).fetchall())
        assert types["_id"] == "VARCHAR"
        for nested in ("customer", "plans", "usage", "billing", "service_calls"):
            assert types[nested] == "JSON"
        assert types["churned"] == "BOOLEAN"
        assert types["record_date"] == "TIMESTAMP WITH TIME ZONE"
        assert con.sql("select min(length(_id)), max(length(_id)) from raw_atlas.customer_activity").fetchone() == (24, 24)


def test_mart_has_the_contract_columns_in_order(built):
    warehouse, _ = built
    with duckdb.connect(str(warehouse), read_only=True) as con:
        columns = con.sql(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'analytics' and table_name = 'customer_activity' order by ordinal_position"
        ).fetchall()
        assert columns == CONTRACT
        # Same names and order as the tutorial's published rows (loaded as a seed).
        sample = con.sql(
            "select column_name from information_schema.columns "
            "where table_name = 'customer_activity_tutorial_sample' order by ordinal_position"
        ).fetchall()
        assert [c for (c,) in sample] == [c for c, _ in CONTRACT]
        lengths = con.sql(
            "select max(length(state)), max(length(phone)), max(length(intl_plan)), max(length(churn)) "
            "from analytics.customer_activity"
        ).fetchone()
        assert lengths[0] <= 2 and lengths[1] <= 8 and lengths[2] <= 3 and lengths[3] <= 6


def test_mart_rows_equal_the_source_documents(built, mongo_server):
    warehouse, _ = built
    with MongoClient(mongo_server.uri) as client:
        docs = list(client["flowdb"]["customer_activity"].find())
        source_count = client["flowdb"]["customer_activity"].count_documents({})
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.sql("select count(*) from analytics.customer_activity").fetchone()[0] == source_count == DOCS
        names = [c for c, _ in CONTRACT]
        rows = {r[3]: dict(zip(names, r)) for r in con.sql("select * from analytics.customer_activity").fetchall()}
    for doc in random.Random(0).sample(docs, 100):
        expected = expected_row(doc)
        actual = rows[expected["phone"]]
        for name, value in expected.items():
            if isinstance(value, float):
                assert math.isclose(actual[name], value, rel_tol=0, abs_tol=1e-9), name
            else:
                assert actual[name] == value, name


def expected_row(doc: dict) -> dict:
    """The flat row for one nested document, computed independently of the SQL."""
    u, p, c = doc["usage"], doc["plans"], doc["customer"]
    return {
        "state": c["state"], "account_length": c["account_length_days"], "area_code": c["area_code"],
        "phone": c["phone"], "intl_plan": "yes" if p["international"]["enrolled"] else "no",
        "vmail_plan": "yes" if p["voice_mail"]["enrolled"] else "no", "vmail_message": p["voice_mail"]["messages"],
        "day_mins": u["day"]["minutes"], "day_calls": u["day"]["calls"], "day_charge": u["day"]["charge"],
        "total_charge": doc["billing"]["total_charge"],
        "eve_mins": u["evening"]["minutes"], "eve_calls": u["evening"]["calls"], "eve_charge": u["evening"]["charge"],
        "night_mins": u["night"]["minutes"], "night_calls": u["night"]["calls"], "night_charge": u["night"]["charge"],
        "intl_mins": u["international"]["minutes"], "intl_calls": u["international"]["calls"],
        "intl_charge": u["international"]["charge"], "cust_serv_calls": len(doc["service_calls"]),
        "churn": "True." if doc["churned"] else "False.", "record_date": doc["record_date"].date(),
    }


def test_second_ingest_replaces_rather_than_duplicates(built, mongo_server, tmp_path):
    warehouse, _ = built
    pipelines = Path(warehouse).parent / "pipelines"
    with MongoClient(mongo_server.uri) as client:
        client["flowdb"]["customer_activity"].delete_many({"customer.state": "TX"})
        remaining = client["flowdb"]["customer_activity"].count_documents({})
    assert remaining < DOCS
    again = run_cli(
        "run", "--uri", mongo_server.uri, "--database", "flowdb", "--collections", "customer_activity",
        "--warehouse", str(warehouse), "--pipelines-dir", str(pipelines),
    )
    assert again.returncode == 0, again.stderr
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.sql("select count(*), count(distinct _id) from raw_atlas.customer_activity").fetchone() == (remaining, remaining)


def test_makefile_and_ci_use_the_readme_commands():
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()
