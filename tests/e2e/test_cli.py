"""The CLI against a real server: local server management, and bad input as one clear line."""

from __future__ import annotations

import pytest

from tests.conftest import free_port, run_cli


def assert_one_line_error(result, code: int, *fragments: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("atlas-ingest: error:")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_unreachable_uri(tmp_path):
    port = free_port()  # nothing listens there
    r = run_cli("run", "--uri", f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=500", "--database", "d",
                "--collections", "c", "--warehouse", str(tmp_path / "w.duckdb"))
    assert_one_line_error(r, 3, "cannot reach MongoDB", f"127.0.0.1:{port}")


def test_missing_collection_names_it(mongo_server, mongo_client, tmp_path):
    mongo_client["clidb"]["present"].insert_one({"x": 1})
    r = run_cli("run", "--uri", mongo_server.uri, "--database", "clidb", "--collections", "present,absent",
                "--warehouse", str(tmp_path / "w.duckdb"), "--pipelines-dir", str(tmp_path / "p"))
    assert_one_line_error(r, 3, "'absent'", "clidb", "present")
    # Nothing was loaded; the failed run is recorded, with its error.
    import duckdb

    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        tables = {t for (t,) in con.sql("select table_name from information_schema.tables where table_schema = 'raw_atlas'").fetchall()}
        runs = con.sql("select collection, status, error from raw_atlas._atlas_runs order by collection").fetchall()
    assert {t for t in tables if not t.startswith("_dlt")} == {"_atlas_runs"}
    assert [(c, st) for c, st, _ in runs] == [("absent", "failed"), ("present", "failed")] and "'absent' not found" in runs[0][2]


def test_unknown_destination(mongo_server, tmp_path):
    r = run_cli("run", "--uri", mongo_server.uri, "--database", "d", "--collections", "c", "--destination", "oracle")
    assert_one_line_error(r, 2, "unknown destination 'oracle'")


def test_invalid_uri_and_missing_uri():
    assert_one_line_error(run_cli("run", "--uri", "http://nope", "--database", "d", "--collections", "c"), 2, "invalid MongoDB URI")
    r = run_cli("run", "--database", "d", "--collections", "c", env={"ATLAS_URI": ""})
    assert_one_line_error(r, 2, "no MongoDB URI")


def test_the_uri_is_read_where_the_readme_says(mongo_server, tmp_path):
    """--uri, then $ATLAS_URI, then `connection_url` in .dlt/secrets.toml (or its environment
    variable), as the dlt source reads it."""
    import json

    from pymongo import MongoClient

    with MongoClient(mongo_server.uri) as client:
        client["uri_places"]["things"].insert_one({"_id": 1})
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text(f'[sources.atlas]\nconnection_url = "{mongo_server.uri}"\n')
    args = ("run", "--database", "uri_places", "--warehouse", str(tmp_path / "w.duckdb"), "--pipelines-dir",
            str(tmp_path / "p"), "--json")
    from_file = run_cli(*args, cwd=tmp_path, env={"ATLAS_URI": ""})
    assert from_file.returncode == 0, from_file.stderr
    assert json.loads(from_file.stdout)["tables"][0]["rows_loaded"] == 1
    from_env = run_cli(*args, env={"ATLAS_URI": "", "SOURCES__ATLAS__CONNECTION_URL": mongo_server.uri})
    assert from_env.returncode == 0, from_env.stderr
    # --uri wins over the file
    wrong = run_cli(*args, "--uri", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500", cwd=tmp_path, env={"ATLAS_URI": ""})
    assert wrong.returncode != 0


def test_unknown_flag_is_one_line():
    assert_one_line_error(run_cli("run", "--bogus"), 2)


@pytest.mark.parametrize("name", ["bad name", "x;drop", "$cmd"])
def test_invalid_collection_name(name):
    r = run_cli("run", "--uri", "mongodb://127.0.0.1:1/", "--database", "d", "--collections", name)
    assert_one_line_error(r, 2, "invalid name")


def test_password_never_printed():
    port = free_port()
    r = run_cli("run", "--uri", f"mongodb://alice:hunter22@127.0.0.1:{port}/?serverSelectionTimeoutMS=300",
                "--database", "d", "--collections", "c")
    assert r.returncode == 3
    assert "hunter22" not in r.stderr + r.stdout
    assert "***@127.0.0.1" in r.stderr


SECRET = "Sekr1t-9"


@pytest.mark.parametrize("uri_args, code", [
    (("--url", f"mongodb://alice:{SECRET}@HOST/"), 2),  # a mistyped flag: argparse echoes it
    ((f"mongodb://alice:{SECRET}@HOST/",), 2),  # the URI as a positional argument
    (("--uri", f"mongodb://alice:se/{SECRET}@HOST/"), 2),  # an unescaped / (pymongo refuses the URI)
    (("--uri", f"mongodb://alice:p@{SECRET}@HOST/"), 2),  # an unescaped @
    (("--uri", f"mongodb://alice:my {SECRET}@HOST/?serverSelectionTimeoutMS=2000"), 3),  # a space: authentication fails
    (("--uri", f"mongodb://alice:{SECRET}@HOST/?serverSelectionTimeoutMS=2000"), 3),  # authentication fails
], ids=["mistyped-flag", "positional", "slash", "at-sign", "space", "auth-failure"])
def test_the_password_appears_nowhere(uri_args, code, mongo_server, tmp_path, log_format="text"):
    """Not on stdout or stderr, not in the run history, not in dlt's pipeline files, whichever way
    the URI breaks (the local server refuses every user, as Atlas refuses a wrong password)."""
    import duckdb

    host = mongo_server.uri.split("://", 1)[1].split("/", 1)[0]
    args = [a.replace("HOST", host) for a in uri_args]
    r = run_cli("run", *args, "--database", "secrets_db", "--collections", "c", "--warehouse", str(tmp_path / "w.duckdb"),
                "--pipelines-dir", str(tmp_path / "p"), "--log-format", log_format, "--log-level", "debug",
                env={"ATLAS_URI": ""})
    assert r.returncode == code, r.stderr
    assert "***" in r.stderr
    assert SECRET not in r.stdout + r.stderr
    if code != 2:  # runs that got past the flags are recorded
        with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
            errors = [e for (e,) in con.sql("select error from raw_atlas._atlas_runs").fetchall()]
        assert errors and all("***" in e and SECRET not in e for e in errors), errors
    for path in (tmp_path / "p").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_the_password_appears_nowhere_in_json_logs(mongo_server, tmp_path):
    test_the_password_appears_nowhere(("--uri", f"mongodb://alice:p@{SECRET}@HOST/?serverSelectionTimeoutMS=2000"), 2,
                                      mongo_server, tmp_path, log_format="json")
    test_the_password_appears_nowhere(("--uri", f"mongodb://alice:{SECRET}@HOST/?serverSelectionTimeoutMS=2000"), 3,
                                      mongo_server, tmp_path / "auth", log_format="json")


def test_other_known_secrets_are_masked_in_output(mongo_server):
    """A Redshift password or AWS key that shows up in any message is masked (here a mistyped
    flag's value, which argparse echoes)."""
    r = run_cli("run", "--uri", mongo_server.uri, "--database", "d", "--redshift-password", "rs-Pa55word",
                env={"REDSHIFT_PASSWORD": "rs-Pa55word"})
    assert r.returncode == 2, r.stderr
    assert "rs-Pa55word" not in r.stderr and "***" in r.stderr


def test_local_server_start_is_idempotent_and_stop_cleans_up(tmp_path):
    home, port = str(tmp_path / "srv"), str(free_port())
    base = ("local", "--home", home, "--port", port)
    try:
        first = run_cli(*base, "start")
        assert first.returncode == 0 and "started" in first.stdout, first.stderr
        second = run_cli(*base, "start")
        assert second.returncode == 0 and "already running" in second.stdout
        status = run_cli(*base, "status")
        assert status.returncode == 0 and f"127.0.0.1:{port}" in status.stdout
        seeded = run_cli(*base, "seed", "--docs", "25")
        assert seeded.returncode == 0 and "seeded 25 documents" in seeded.stdout
    finally:
        stop = run_cli(*base, "stop")
    assert stop.returncode == 0 and "stopped" in stop.stdout
    after = run_cli(*base, "status")
    assert after.returncode == 1 and "not running" in after.stdout


@pytest.mark.parametrize("setting, value, message", [
    ("workers", '"four"', "workers of 'things' must be a whole number"),
    ("workers", "2.7", "workers of 'things' must be a whole number"),
    ("checkpoint_docs", '"many"', "checkpoint_docs of 'things' must be a whole number"),
    ("lookback_seconds", '"abc"', "lookback_seconds of 'things' must be a number of seconds"),
    ("lookback_seconds", "nan", "lookback_seconds of 'things' must be a number of seconds"),
    ("lookback_seconds", "1e12", "lookback_seconds of 'things' must be a number of seconds"),
])
def test_mistyped_collection_settings_are_one_line_errors(tmp_path, setting, value, message):
    """Settings from .dlt/config.toml are checked before anything connects: one line, exit 2."""
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text(f"[sources.atlas.collections.things]\n{setting} = {value}\n")
    r = run_cli("run", "--uri", "mongodb://127.0.0.1:1/", "--database", "d", "--collections", "things",
                "--pipelines-dir", str(tmp_path / "p"), cwd=tmp_path)
    assert_one_line_error(r, 2, message)


@pytest.mark.parametrize("value", ["nan", "inf", "1e12"])
def test_a_lookback_flag_that_is_not_a_usable_duration_is_refused(value, tmp_path):
    r = run_cli("run", "--uri", "mongodb://127.0.0.1:1/", "--database", "d", "--collections", "things", "--mode",
                "incremental", "--cursor-field", "u", "--lookback-seconds", value, "--pipelines-dir", str(tmp_path / "p"))
    assert_one_line_error(r, 2, "lookback_seconds of 'things' must be a number of seconds")


@pytest.mark.parametrize("extra, message", [
    (("--database", "d.b"), "invalid database name 'd.b'"),
    (("--database", "d", "--filter", '{"$where": "this.a > 1"}'), "the filter uses $where"),
    (("--database", "d", "--filter", '{"a": {"$expr": {"$function": {"body": "x", "args": [], "lang": "js"}}}}'),
     "the filter uses $function"),
    (("--database", "d", "--projection", '{"a": 1, "b": 0}'), "the projection both keeps (a) and drops (b)"),
])
def test_names_filters_and_projections_mongodb_would_refuse_are_one_line_errors(extra, message, tmp_path):
    r = run_cli("run", "--uri", "mongodb://127.0.0.1:1/", "--collections", "things", *extra,
                "--pipelines-dir", str(tmp_path / "p"))
    assert_one_line_error(r, 2, message)


@pytest.mark.parametrize("file_name", ["config.toml", "secrets.toml"])
def test_a_malformed_dlt_file_is_a_one_line_error(file_name, tmp_path):
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / file_name).write_text("[sources.atlas\nconnection_url = 'mongodb://u:secret@h/'\n")
    r = run_cli("run", "--database", "d", "--collections", "things", "--pipelines-dir", str(tmp_path / "p"),
                cwd=tmp_path, env={"ATLAS_URI": ""})
    assert_one_line_error(r, 2, f"cannot read .dlt/{file_name}", "fix the TOML syntax")
    assert "u:secret" not in r.stderr
