"""`atlas_source` in a plain dlt pipeline, as another project (or dagster-dlt) would use it."""

from __future__ import annotations

import dlt
import duckdb
import pytest

from ingestion.config import CollectionConfig
from ingestion.source import atlas_source
from ingestion.source.batches import MAX_ID_CHARS


@pytest.fixture()
def shop(mongo_client):
    db = mongo_client["plain_dlt"]
    for name in db.list_collection_names():
        db.drop_collection(name)
    db["orders"].insert_many([{"_id": "o1", "total": 9.5}, {"_id": "o2", "total": 3.0},
                                 {"_id": "x" * (MAX_ID_CHARS + 1), "total": 1.0}])
    db["customerEvents"].insert_many([{"_id": "c1", "kind": "signup"}, {"_id": "c2", "kind": "login"}])
    return db


def rows(warehouse, sql):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_every_collection_loads_in_a_plain_pipeline(mongo_server, shop, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCES__ATLAS__CONNECTION_URL", mongo_server.uri)  # as in .dlt/secrets.toml
    warehouse = tmp_path / "w.duckdb"
    pipeline = dlt.pipeline("plain_atlas", destination=dlt.destinations.duckdb(str(warehouse)), dataset_name="raw",
                            pipelines_dir=str(tmp_path / "p"))
    for run in (1, 2):
        pipeline.run(atlas_source(database="plain_dlt"))
        # tables named in snake_case, replaced on each full load
        assert rows(warehouse, "select _id, total from raw.orders order by _id") == [("o1", 9.5), ("o2", 3.0)]
        assert rows(warehouse, "select _id, kind from raw.customer_events order by _id") == [("c1", "signup"), ("c2", "login")]
        # the document whose _id is too long is quarantined, with every run's rows kept (appended)
        assert rows(warehouse, "select collection, count(*) from raw._atlas_quarantine group by 1") == [("orders", run)]


def test_named_collections_and_the_client_of_the_caller(mongo_server, mongo_client, shop, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    pipeline = dlt.pipeline("plain_named", destination=dlt.destinations.duckdb(str(warehouse)), dataset_name="raw",
                            pipelines_dir=str(tmp_path / "p"))
    source = atlas_source(database="plain_dlt", collections=["customerEvents"], client=mongo_client)
    assert list(source.resources) == ["customer_events"]
    pipeline.run(source)
    assert rows(warehouse, "select count(*) from raw.customer_events") == [(2,)]


def test_no_uri_says_where_to_put_it(shop, monkeypatch):
    monkeypatch.delenv("SOURCES__ATLAS__CONNECTION_URL", raising=False)
    with pytest.raises(Exception, match="sources.atlas.connection_url"):
        atlas_source(database="plain_dlt")


def test_cdc_collections_are_refused_with_the_way_to_run_them(mongo_client, shop):
    with pytest.raises(Exception, match="CDC runs through `atlas-ingest run`"):
        atlas_source(database="plain_dlt", client=mongo_client,
                     collection_configs=[CollectionConfig(name="orders", mode="cdc")])


def test_a_type_change_between_plain_runs_goes_to_a_variant_column(mongo_client, tmp_path):
    """The resource reads the column kinds the warehouse already has, as `atlas-ingest run` does."""
    db = mongo_client["plain_drift"]
    db.drop_collection("events")
    db["events"].insert_many([{"_id": "e1", "amount": 5}, {"_id": "e2", "amount": 7}])
    warehouse = tmp_path / "w.duckdb"
    pipeline = dlt.pipeline("plain_drift", destination=dlt.destinations.duckdb(str(warehouse)), dataset_name="raw",
                            pipelines_dir=str(tmp_path / "p"))
    pipeline.run(atlas_source(database="plain_drift", client=mongo_client))
    db["events"].update_many({}, {"$set": {"amount": "seven"}})  # every value of the field is text now
    pipeline.run(atlas_source(database="plain_drift", client=mongo_client))
    assert rows(warehouse, "select _id, amount, amount__v_text from raw.events order by _id") == [
        ("e1", None, "seven"), ("e2", None, "seven")]
    assert rows(warehouse, "select data_type from information_schema.columns where table_schema = 'raw' "
                           "and table_name = 'events' and column_name = 'amount'") == [("BIGINT",)]
