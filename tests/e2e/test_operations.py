"""Operations: run history, reconciliation in dbt, the run lock, and failures that explain themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

import duckdb
import pytest
from pymongo import MongoClient

from ingestion.local.seed import seed_collection
from tests.conftest import BIN, REPO, dbt_env, free_port, run_cli, run_dbt, spy_on_source_counts


def test_demo_records_the_run_and_dbt_fails_on_a_divergence(tmp_path):
    """`make demo`, then a row deleted in the warehouse: `dbt build` fails naming the collection."""
    warehouse = tmp_path / "warehouse.duckdb"
    env = {**dbt_env(warehouse, tmp_path / "target"), "DEMO_DOCS": "1500", "ATLAS_LOCAL_HOME": str(tmp_path / "mongo"),
           "ATLAS_LOCAL_PORT": str(free_port()), "ATLAS_PIPELINES_DIR": str(tmp_path / "pipelines")}
    try:
        demo = subprocess.run([sys.executable, "-m", "ingestion.local.demo"], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=600)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        assert "run history" in demo.stdout
    finally:
        subprocess.run([str(BIN / "atlas-ingest"), "local", "--home", str(tmp_path / "mongo"), "--port", env["ATLAS_LOCAL_PORT"],
                        "stop"], cwd=REPO, capture_output=True)
    with duckdb.connect(str(warehouse)) as con:
        runs = con.sql("select collection, status, documents_read, source_count, warehouse_count, reconciliation "
                       "from raw_atlas._atlas_runs").fetchall()
        assert runs == [("customer_activity", "succeeded", 1500, 1500, 1500, "match")]
        con.sql("delete from raw_atlas.customer_activity where _id = (select min(_id) from raw_atlas.customer_activity)")
    build = run_dbt("build", "--select", "source:atlas", warehouse=warehouse, target_path=tmp_path / "target2")
    assert build.returncode != 0
    assert "Failure in test reconciled_with_source_customer_activity" in build.stdout, build.stdout[-3000:]


def assert_one_line_error(result, code: int, *fragments: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr[-3000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("atlas-ingest: error:") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def loaded_tables_and_runs(warehouse):
    """Raw tables other than the run history, and the recorded runs (status, error)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {t for (t,) in con.sql("select table_name from information_schema.tables where table_schema = 'raw_atlas'").fetchall()}
        runs = con.sql("select status, error from raw_atlas._atlas_runs order by started_at").fetchall()
    return {t for t in tables if not t.startswith("_dlt") and t != "_atlas_runs"}, runs


def pipeline_state(pipelines_dir, name):
    """What dlt kept for a pipeline: (its state, whether a load is pending); None if never created."""
    import dlt

    if not (pipelines_dir / name).exists():
        return None
    p = dlt.attach(pipeline_name=name, pipelines_dir=str(pipelines_dir))
    return p.state.get("sources", {}), p.has_pending_data


def start_run(uri, work, database, *extra):
    args = [str(BIN / "atlas-ingest"), "run", "--uri", uri, "--database", database, "--collections", "customer_activity",
            "--warehouse", str(work / "w.duckdb"), "--pipelines-dir", str(work / "p"), *extra]
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"})


def wait_for_lock(work, name, proc, timeout=60):
    lock = work / "p" / f"{name}.lock"
    deadline = time.monotonic() + timeout
    while not (lock.exists() and lock.read_text().strip()):
        assert proc.poll() is None and time.monotonic() < deadline, "the first run never took the lock"
        time.sleep(0.05)
    return json.loads(lock.read_text())


def test_two_concurrent_runs_cannot_both_load_and_a_dead_holder_frees_the_lock(mongo_server, tmp_path):
    with MongoClient(mongo_server.uri) as client:
        seed_collection(client, 20_000, seed=3, database="lockdb")
    first = start_run(mongo_server.uri, tmp_path, "lockdb")
    holder = wait_for_lock(tmp_path, "atlas_lockdb_local", first)
    assert holder["pid"] == first.pid
    second = run_cli("run", "--uri", mongo_server.uri, "--database", "lockdb", "--collections", "customer_activity",
                     "--warehouse", str(tmp_path / "w.duckdb"), "--pipelines-dir", str(tmp_path / "p"))
    assert first.poll() is None, "the first run ended before the second started: make the collection larger"
    assert_one_line_error(second, 7, "another run of pipeline 'atlas_lockdb_local' is in progress", f"pid {first.pid}")
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    # the refused run is recorded too, by the run that held the lock (a DuckDB file has one writer)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        rows = con.sql("select status, run_id, collection, error from raw_atlas._atlas_runs order by status").fetchall()
    assert [(status, collection) for status, _, collection, _ in rows] == [("refused", "customer_activity"),
                                                                          ("succeeded", "customer_activity")]
    assert rows[0][1] != rows[1][1] and "another run of pipeline 'atlas_lockdb_local' is in progress" in rows[0][3]
    assert not list((tmp_path / "p").glob("*.refused.jsonl*"))  # the note is gone once recorded

    # A run killed while holding the lock: the next one takes it over.
    killed = start_run(mongo_server.uri, tmp_path, "lockdb")
    wait_for_lock(tmp_path, "atlas_lockdb_local", killed)
    killed.kill()
    killed.wait(timeout=60)
    after = run_cli("run", "--uri", mongo_server.uri, "--database", "lockdb", "--collections", "customer_activity",
                    "--warehouse", str(tmp_path / "w.duckdb"), "--pipelines-dir", str(tmp_path / "p"))
    assert after.returncode == 0, after.stderr[-3000:]


@pytest.fixture()
def auth_server(tmp_path_factory):
    """A server that requires SCRAM authentication, with user `ingest` / password `right-password`."""
    from ingestion.local.server import LocalServer

    server = LocalServer(home=tmp_path_factory.mktemp("auth"), port=free_port())
    server.start()
    with MongoClient(server.uri) as client:
        client.admin.command("createUser", "ingest", pwd="right-password", roles=["root"])
        client["authdb"]["customer_activity"].insert_one({"_id": 1})
    server.stop()
    server.start(extra_args=("--auth",))
    yield server
    server.stop()


def test_wrong_atlas_credentials(auth_server, tmp_path):
    uri = f"mongodb://ingest:wrong-password@127.0.0.1:{auth_server.port}/?directConnection=true&authSource=admin"
    r = run_cli("run", "--uri", uri, "--database", "authdb", "--collections", "customer_activity",
                "--warehouse", str(tmp_path / "w.duckdb"), "--pipelines-dir", str(tmp_path / "p"))
    assert_one_line_error(r, 3, "authentication failed", "***@127.0.0.1", "check the user and password")
    assert "wrong-password" not in r.stderr + r.stdout
    tables, runs = loaded_tables_and_runs(tmp_path / "w.duckdb")
    assert not tables and runs == [("failed", runs[0][1])] and "authentication failed" in runs[0][1] and "wrong-password" not in runs[0][1]
    assert pipeline_state(tmp_path / "p", "atlas_authdb_local") is None
    good = uri.replace("wrong-password", "right-password")
    ok = run_cli("run", "--uri", good, "--database", "authdb", "--collections", "customer_activity",
                 "--warehouse", str(tmp_path / "w.duckdb"), "--pipelines-dir", str(tmp_path / "p"))
    assert ok.returncode == 0, ok.stderr


def test_unreachable_atlas_leaves_nothing(tmp_path):
    port = free_port()
    r = run_cli("run", "--uri", f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=500", "--database", "d",
                "--collections", "c", "--mode", "cdc", "--warehouse", str(tmp_path / "w.duckdb"),
                "--pipelines-dir", str(tmp_path / "p"))
    assert_one_line_error(r, 3, "cannot reach MongoDB", "check the URI")
    tables, runs = loaded_tables_and_runs(tmp_path / "w.duckdb")
    assert not tables and len(runs) == 1 and runs[0][0] == "failed" and "cannot reach MongoDB" in runs[0][1]
    assert pipeline_state(tmp_path / "p", "atlas_d_local") is None


def test_invalid_config_file_names_the_setting(mongo_server, tmp_path):
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text('[sources.atlas.collections.customer_activity]\nmode = "nightly"\n')
    r = run_cli("run", "--uri", mongo_server.uri, "--database", "d", "--collections", "customer_activity",
                "--warehouse", str(tmp_path / "w.duckdb"), "--pipelines-dir", str(tmp_path / "p"), cwd=tmp_path)
    assert_one_line_error(r, 2, "collection 'customer_activity'", "unknown mode 'nightly'", "full, incremental, cdc")
    assert not (tmp_path / "w.duckdb").exists()


def test_unreachable_warehouse_advances_no_state(mongo_server, s3_server, tmp_path):
    """Redshift that does not answer: exit 4 with the host, and the cursor stays where it was."""
    with MongoClient(mongo_server.uri) as client:
        seed_collection(client, 200, seed=3, database="nowarehouse")
    s3 = __import__("tests.conftest", fromlist=["s3_client"]).s3_client(s3_server)
    s3.create_bucket(Bucket="staging-nowarehouse")
    port = free_port()
    env = {**s3_server, "REDSHIFT_HOST": "127.0.0.1", "REDSHIFT_PORT": str(port), "REDSHIFT_USER": "u",
           "REDSHIFT_PASSWORD": "redshift-secret", "REDSHIFT_DATABASE": "dev"}
    r = run_cli("run", "--uri", mongo_server.uri, "--database", "nowarehouse", "--collections", "customer_activity",
                "--destination", "redshift", "--bucket-url", "s3://staging-nowarehouse", "--mode", "incremental",
                "--cursor-field", "updated_at", "--pipelines-dir", str(tmp_path / "p"), env=env)
    assert_one_line_error(r, 4, "Redshift", f"127.0.0.1:{port}")
    assert "redshift-secret" not in r.stderr
    state = pipeline_state(tmp_path / "p", "atlas_nowarehouse_redshift")
    assert state is None or ("last_cursor" not in json.dumps(state[0]) and not state[1]), state


def test_duckdb_memory_cap_is_raised_for_large_documents_up_to_its_ceiling(mongo_server, tmp_path):
    """DuckDB holds large documents in memory together while it loads them: a load that runs out
    is loaded again with twice the cap. Past ATLAS_DUCKDB_MAX_MEMORY_LIMIT the run exits 4 naming
    the setting and advances no state."""
    with MongoClient(mongo_server.uri) as client:
        coll = client["bigdocs"]["items"]
        coll.drop()
        coll.insert_many([{"_id": i, "big": str(i) * (15 * 1024 * 1024), "updated_at": datetime(2024, 1, 1 + i)} for i in range(3)])
        coll.create_index("updated_at")
    args = ["run", "--uri", mongo_server.uri, "--database", "bigdocs", "--collections", "items", "--mode", "incremental",
            "--cursor-field", "updated_at", "--warehouse", str(tmp_path / "w.duckdb"), "--pipelines-dir", str(tmp_path / "p")]
    capped = run_cli(*args, env={"ATLAS_DUCKDB_MEMORY_LIMIT": "16MB", "ATLAS_DUCKDB_MAX_MEMORY_LIMIT": "32MB"})
    *retries, error = capped.stderr.strip().splitlines()
    assert retries == ["atlas-ingest: WARNING DuckDB ran out of memory with memory_limit 16MB: loading again with 30MiB"]
    assert_one_line_error(subprocess.CompletedProcess(capped.args, capped.returncode, "", error), 4,
                          "DuckDB ran out of memory", "up to 32MB", "ATLAS_DUCKDB_MAX_MEMORY_LIMIT")
    state = pipeline_state(tmp_path / "p", "atlas_bigdocs_local")
    assert state is None or ("last_cursor" not in json.dumps(state[0]) and not state[1]), state
    raised = run_cli(*args, "--json", env={"ATLAS_DUCKDB_MEMORY_LIMIT": "16MB"})
    assert raised.returncode == 0, raised.stderr[-3000:]
    assert "DuckDB ran out of memory with memory_limit 16MB: loading again with 30MiB" in raised.stderr
    assert "Traceback" not in raised.stderr
    assert json.loads(raised.stdout)["tables"][0]["rows_loaded"] == 3
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.sql("select count(*), sum(length(big)) from raw_atlas.items").fetchone() == (3, 3 * 15 * 1024 * 1024)


def test_s3_access_denied(mongo_server, tmp_path):
    """An S3 server that checks credentials (moto with IAM enforced) refuses ours: exit 4, one line."""
    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        import socket

        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto did not start"
                time.sleep(0.2)
        with MongoClient(mongo_server.uri) as client:
            seed_collection(client, 50, seed=3, database="denied")
        env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "unknown-to-this-server",
               "AWS_SECRET_ACCESS_KEY": "s3-secret-value", "AWS_DEFAULT_REGION": "us-east-1"}
        r = run_cli("run", "--uri", mongo_server.uri, "--database", "denied", "--collections", "customer_activity",
                    "--destination", "s3", "--bucket-url", "s3://landing", "--mode", "incremental", "--cursor-field",
                    "updated_at", "--pipelines-dir", str(tmp_path / "p"), env=env)
        assert_one_line_error(r, 4, "s3://landing", "access denied")
        assert "s3-secret-value" not in r.stderr
        state = pipeline_state(tmp_path / "p", "atlas_denied_s3")
        assert state is None or ("last_cursor" not in json.dumps(state[0]) and not state[1]), state
    finally:
        moto.terminate()
        moto.wait(timeout=30)


def test_progress_on_a_terminal_and_json_logs_for_schedulers(mongo_server, tmp_path):
    import pty

    with MongoClient(mongo_server.uri) as client:
        seed_collection(client, 3_000, seed=3, database="progressdb")
    args = [str(BIN / "atlas-ingest"), "run", "--uri", mongo_server.uri, "--database", "progressdb", "--collections",
            "customer_activity", "--warehouse", str(tmp_path / "w.duckdb"), "--pipelines-dir", str(tmp_path / "p"),
            "--batch-docs", "500"]
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=secondary, text=True)
    os.close(secondary)
    out, _ = proc.communicate(timeout=300)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data.decode())
    os.close(primary)
    terminal = "".join(chunks)
    assert proc.returncode == 0, terminal
    assert "customer_activity: 3,000 / 3,000 documents" in terminal and "/s" in terminal, terminal
    assert "reconciliation: match: source 3000, warehouse 3000" in out

    logged = run_cli(*args[1:], "--log-format", "json", "--uri", mongo_server.uri.replace("127.0.0.1", "user:pw-secret@127.0.0.1"))
    lines = [json.loads(line) for line in logged.stderr.strip().splitlines()]
    assert logged.returncode == 3 and lines[-1]["level"] == "error" and lines[-1]["exit_code"] == 3
    assert "pw-secret" not in logged.stderr and "***@127.0.0.1" in lines[-1]["message"]
    ok = run_cli(*args[1:], "--log-format", "json")
    assert ok.returncode == 0, ok.stderr
    events = [json.loads(line) for line in ok.stderr.strip().splitlines()]
    done = [e for e in events if e.get("status") == "succeeded"]
    assert done and done[0]["collection"] == "customer_activity" and done[0]["rows_loaded"] == 3_000
    assert done[0]["reconciliation"] == "match" and "run_id" in done[0]


def test_reconciliation_sample_catches_stale_and_extra_rows(mongo_server, tmp_path):
    import dlt

    from ingestion.config import DestinationConfig, RunConfig, collection_config
    from ingestion.load.destinations import resolve
    from ingestion.ops.reconcile import DIVERGED, MATCH, SourceCount, reconcile
    from ingestion.ops.run import run

    with MongoClient(mongo_server.uri) as client:
        seed_collection(client, 300, seed=3, database="recdb")
        config = RunConfig(uri=mongo_server.uri, database="recdb", collections=["customer_activity"],
                           destination=DestinationConfig(warehouse=tmp_path / "w.duckdb"), pipelines_dir=tmp_path / "p")
        summary = run(config)
        assert summary.tables[0].reconciliation.status == MATCH
        assert summary.tables[0].reconciliation.sample_size == 100
        with duckdb.connect(str(tmp_path / "w.duckdb")) as con:  # every row stale, count unchanged
            con.sql("update raw_atlas.customer_activity set updated_at = updated_at - interval 1 day")
        target = resolve(config.destination, "recdb")
        pipeline = dlt.pipeline(pipeline_name=config.pipeline_name, destination=target.destination, dataset_name="raw_atlas",
                                pipelines_dir=str(tmp_path / "p"))
        coll = client["recdb"]["customer_activity"]
        cc = collection_config("customer_activity")
        stale = reconcile(coll, cc, "customer_activity", pipeline, SourceCount(300), datetime.now(timezone.utc))
        assert stale.warehouse_count == 300 and stale.sample_mismatches == 100 and stale.status == DIVERGED
        with duckdb.connect(str(tmp_path / "w.duckdb")) as con:  # extra rows the source never had
            con.sql("update raw_atlas.customer_activity set updated_at = updated_at + interval 1 day")
            con.sql("update raw_atlas.customer_activity set _id = 'ghost-' || _id where _id in "
                    "(select _id from raw_atlas.customer_activity limit 150)")
        extra = reconcile(coll, cc, "customer_activity", pipeline, SourceCount(300), datetime.now(timezone.utc))
        assert extra.warehouse_count == 300 and 20 < extra.sample_mismatches < 80 and extra.status == DIVERGED


def test_incremental_runs_count_the_source_once(mongo_server, tmp_path, monkeypatch):
    """Full loads count the source before and after (the count's change is their window);
    incremental runs count once, after loading (their cursor bounds what changed)."""
    from datetime import timedelta

    from ingestion.config import DestinationConfig, RunConfig
    from ingestion.ops.reconcile import MATCH
    from ingestion.ops.run import run

    counts = spy_on_source_counts(monkeypatch)
    with MongoClient(mongo_server.uri) as client:
        seed_collection(client, 500, seed=4, database="incdb")
        config = RunConfig(
            uri=mongo_server.uri, database="incdb", collections=["customer_activity"],
            overrides={"mode": "full", "cursor_field": "updated_at"},
            destination=DestinationConfig(warehouse=tmp_path / "w.duckdb"), pipelines_dir=tmp_path / "p")
        first = run(config).tables[0]
        assert counts == [500, 500] and first.reconciliation.status == MATCH
        coll = client["incdb"]["customer_activity"]
        later = datetime.now(timezone.utc) + timedelta(seconds=1)
        coll.update_many({"_id": {"$in": [d["_id"] for d in coll.find({}, {"_id": 1}).limit(7)]}}, {"$set": {"updated_at": later}})
        coll.insert_one({"customer": {"state": "ZZ"}, "updated_at": later})
        config.overrides["mode"] = "incremental"
        second = run(config).tables[0]
    r = second.reconciliation
    assert counts == [500, 500, 501] and second.documents_read >= 8
    assert (r.source_count, r.warehouse_count, r.status) == (501, 501, MATCH)


def hold_duckdb_file(path, seconds):
    """Another process (as a dbt build would) holding the DuckDB file open for writing."""
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(float(sys.argv[2]))", str(path), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_warehouse_file_another_process_holds_is_waited_for_then_named(mongo_server, tmp_path):
    with MongoClient(mongo_server.uri) as client:
        client["duck_lock"]["things"].insert_many([{"_id": i} for i in range(10)])
    warehouse = tmp_path / "w.duckdb"
    args = ("run", "--uri", mongo_server.uri, "--database", "duck_lock", "--warehouse", str(warehouse),
            "--pipelines-dir", str(tmp_path / "p"))
    # held for 3 s: the run waits, says for whom, then loads
    holder = hold_duckdb_file(warehouse, 3)
    waited = run_cli(*args, env={"ATLAS_DUCKDB_LOCK_WAIT_S": "60"})
    holder.wait(timeout=60)
    assert waited.returncode == 0, waited.stderr
    assert f"waiting up to 60 s for the DuckDB file {warehouse}, in use by process {holder.pid} (" in waited.stderr
    # held longer than the wait: one line that names the holder, nothing loaded
    holder = hold_duckdb_file(warehouse, 60)
    try:
        refused = run_cli(*args, env={"ATLAS_DUCKDB_LOCK_WAIT_S": "1"})
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert refused.returncode == 4, refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith(f"atlas-ingest: error: the DuckDB file {warehouse} is in use by process {holder.pid} (")
    assert "import duckdb" in last and "Traceback" not in refused.stderr  # the holder's command line
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.sql("select count(*) from raw_atlas._atlas_runs").fetchone()[0] == 1  # the first run only
    bad = run_cli(*args, env={"ATLAS_DUCKDB_LOCK_WAIT_S": "soon"})
    assert bad.returncode == 2 and "ATLAS_DUCKDB_LOCK_WAIT_S must be a number of seconds" in bad.stderr
