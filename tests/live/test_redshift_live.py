"""The whole flow against a real Atlas cluster, S3 bucket and Redshift (`make test-redshift`).

Runs only when the variables in tests/live/preflight.py are set; never part of `make test`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live.preflight import missing

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DATABASE = os.environ.get("ATLAS_DATABASE", "operations")
COLLECTION = os.environ.get("ATLAS_COLLECTION", "customer_activity")

pytestmark = pytest.mark.skipif(bool(missing()), reason="live Redshift variables are not set")


def cli(*args: str) -> dict:
    r = subprocess.run([str(BIN / "atlas-ingest"), "run", "--uri", os.environ["ATLAS_URI"], "--database", DATABASE,
                        "--collections", COLLECTION, "--json", *args], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def redshift_query(sql: str) -> list[tuple]:
    import redshift_connector

    with redshift_connector.connect(
        host=os.environ["REDSHIFT_HOST"], port=int(os.environ.get("REDSHIFT_PORT", "5439")),
        database=os.environ.get("REDSHIFT_DATABASE", "dev"), user=os.environ["REDSHIFT_USER"],
        password=os.environ["REDSHIFT_PASSWORD"],
    ) as con:
        cur = con.cursor()
        cur.execute(sql)
        return list(cur.fetchall())


def source_count() -> int:
    from pymongo import MongoClient

    with MongoClient(os.environ["ATLAS_URI"]) as client:
        return client[DATABASE][COLLECTION].count_documents({})


def test_s3_landing_zone():
    summary = cli("--destination", "s3", "--bucket-url", os.environ["ATLAS_BUCKET_URL"])
    table = summary["tables"][0]
    assert table["documents_read"] == table["rows_loaded"] + table["quarantined"]


def test_redshift_raw_tables_and_dbt_build():
    summary = cli("--destination", "redshift", "--bucket-url", os.environ["ATLAS_BUCKET_URL"])
    table = summary["tables"][0]
    count = redshift_query(f"select count(*) from raw_atlas.{table['table']}")[0][0]
    assert count == table["rows_loaded"]
    # SUPER holds objects, not JSON strings: navigation reaches a nested field.
    assert redshift_query(f"select count(*) from raw_atlas.{table['table']} where customer.state is not null")[0][0] > 0
    env = {**os.environ, "DBT_TARGET": "redshift", "DBT_PROFILES_DIR": str(REPO / ".dbt-profiles")}
    build = subprocess.run([str(BIN / "dbt"), "build", "--target", "redshift"], cwd=REPO, env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-4000:]
    mart = redshift_query(f"select count(*) from {os.environ.get('REDSHIFT_SCHEMA', 'analytics')}.customer_activity")[0][0]
    assert mart == source_count() - table["quarantined"]
