"""The seed's own data: the guide's flat `customer_activity` file, imported as MongoDB Compass
would, gives the tutorial's table value for value on the loaded and the landing-zone path; a
warehouse that holds no customer_activity still builds."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import pytest
from bson import json_util

from tests.conftest import run_cli, run_dbt, s3_client
from tests.e2e.test_own_collections import GUIDE_FILE

BUCKET = "landing-guide"
# The tutorial's columns, in its order (models/marts/customer_activity.sql).
COLUMNS = ["state", "account_length", "area_code", "phone", "intl_plan", "vmail_plan", "vmail_message", "day_mins",
           "day_calls", "day_charge", "total_charge", "eve_mins", "eve_calls", "eve_charge", "night_mins",
           "night_calls", "night_charge", "intl_mins", "intl_calls", "intl_charge", "cust_serv_calls", "churn",
           "record_date"]


def guide_documents() -> list[dict]:
    # json_util, as Compass and mongoimport: integral numbers become Int32, the others Double.
    return [json_util.loads(line) for line in GUIDE_FILE.read_text().splitlines() if line.strip()]


def mart_rows(warehouse) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [c for (c,) in con.sql("select column_name from information_schema.columns where table_schema = "
                                       "'analytics' and table_name = 'customer_activity' order by ordinal_position").fetchall()]
        assert names == COLUMNS
        return sorted(con.sql(f"select {', '.join(COLUMNS)} from analytics.customer_activity").fetchall(), key=repr)


@pytest.fixture(scope="module")
def guide_built(mongo_server, s3_server, tmp_path_factory):
    work = tmp_path_factory.mktemp("guide")
    from pymongo import MongoClient
    with MongoClient(mongo_server.uri) as client:
        client.drop_database("guidemart")
        client["guidemart"]["customer_activity"].insert_many(guide_documents())
    s3_client(s3_server).create_bucket(Bucket=BUCKET)
    base = ["run", "--uri", mongo_server.uri, "--database", "guidemart", "--no-progress"]
    loaded = run_cli(*base, "--warehouse", str(work / "loaded.duckdb"), "--pipelines-dir", str(work / "p_local"))
    assert loaded.returncode == 0, loaded.stderr
    landed = run_cli(*base, "--destination", "s3", "--bucket-url", f"s3://{BUCKET}", "--prefix", "atlas",
                     "--pipelines-dir", str(work / "p_s3"), env=s3_server)
    assert landed.returncode == 0, landed.stderr

    built = run_dbt("build", warehouse=work / "loaded.duckdb", target_path=work / "t_loaded")
    assert built.returncode == 0, built.stdout[-4000:]
    spectrum_vars = json.dumps({"atlas_source": "spectrum", "landing_url": f"s3://{BUCKET}/atlas",
                                "landing_database": "guidemart"})
    staged = run_dbt("run-operation", "stage_external_sources", "--vars", spectrum_vars,
                     warehouse=work / "spectrum.duckdb", target_path=work / "t_spectrum", env=s3_server)
    assert staged.returncode == 0, staged.stdout[-3000:]
    built = run_dbt("build", "--vars", spectrum_vars, warehouse=work / "spectrum.duckdb",
                    target_path=work / "t_spectrum", env=s3_server)
    assert built.returncode == 0, built.stdout[-4000:]
    return work


@pytest.mark.parametrize("warehouse", ["loaded.duckdb", "spectrum.duckdb"], ids=["loaded", "landing-zone"])
def test_the_tutorial_table_equals_the_guide_file_value_for_value(guide_built, warehouse):
    expected = sorted(
        (tuple(date.fromisoformat(d[c]) if c == "record_date" else (float(d[c]) if isinstance(d[c], float) else d[c])
               for c in COLUMNS) for d in guide_documents()),
        key=repr,
    )
    rows = mart_rows(guide_built / warehouse)
    assert len(rows) == 11 and len(expected) == 11
    assert all(v is not None for row in rows for v in row)
    assert rows == expected


def test_a_warehouse_without_customer_activity_builds_the_example_layer_empty(mongo_server, tmp_path):
    from pymongo import MongoClient
    with MongoClient(mongo_server.uri) as client:
        client.drop_database("nocustomers")
        client["nocustomers"]["orders"].insert_many([{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}])
    loaded = run_cli("run", "--uri", mongo_server.uri, "--database", "nocustomers", "--no-progress",
                     "--warehouse", str(tmp_path / "w.duckdb"), "--pipelines-dir", str(tmp_path / "p"))
    assert loaded.returncode == 0, loaded.stderr
    built = run_dbt("build", warehouse=tmp_path / "w.duckdb", target_path=tmp_path / "t")
    assert built.returncode == 0, built.stdout[-4000:]
    assert "customer_activity\" does not exist here: stg_atlas__customer_activity builds empty" in (
        tmp_path / "t" / "logs" / "dbt.log").read_text()
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from analytics.customer_activity").fetchone() == (0,)
        assert con.sql("select count(*) from raw_atlas.orders").fetchone() == (2,)
