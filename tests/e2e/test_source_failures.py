"""MongoDB going away in the middle of a run: exit 3 with one line that says so, nothing partial
committed, and the run recorded as what it was (failed, or loaded and not reconciled). Each test
stops a server of its own at a chosen point of the run."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from pymongo import MongoClient

from ingestion import cli, progress
from ingestion.local.server import LocalServer
from tests.conftest import free_port


@pytest.fixture()
def doomed_server(tmp_path: Path):
    server = LocalServer(home=tmp_path / "mongo", port=free_port())
    server.start()
    with MongoClient(server.uri) as client:
        client["going"]["away"].insert_many([{"_id": i, "n": i} for i in range(2_000)])
    yield server
    server.stop()


def _run_cli(server: LocalServer, tmp_path: Path, *extra: str) -> int:
    uri = server.uri + ("&" if "?" in server.uri else "?") + "serverSelectionTimeoutMS=500"
    return cli.main(["run", "--uri", uri, "--database", "going", "--collections", "away", "--warehouse",
                     str(tmp_path / "w.duckdb"), "--pipelines-dir", str(tmp_path / "p"), "--batch-docs", "200", *extra])


def _runs(tmp_path: Path) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        return con.sql("select status, rows_loaded, reconciliation, source_count, error from raw_atlas._atlas_runs").fetchall()


def _table_rows(tmp_path: Path) -> int | None:
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        try:
            return con.sql("select count(*) from raw_atlas.away").fetchone()[0]
        except duckdb.CatalogException:
            return None


def test_mongodb_going_away_mid_extract_is_exit_3_and_commits_nothing(doomed_server, tmp_path, monkeypatch, capsys):
    report = progress.report

    def stop_after_the_first_batch(*args, **kwargs):
        doomed_server.stop()
        monkeypatch.setattr(progress, "report", report)

    monkeypatch.setattr(progress, "report", stop_after_the_first_batch)
    code = _run_cli(doomed_server, tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3, err
    assert len(err) == 1 and err[0].startswith("atlas-ingest: error: lost the connection to MongoDB while reading 'away'"), err
    assert _table_rows(tmp_path) is None  # the batches read before are not committed
    [(status, rows, _, _, error)] = _runs(tmp_path)
    assert status == "failed" and rows is None and "lost the connection to MongoDB" in error


@pytest.mark.parametrize("mode", ["full", "incremental"])
def test_mongodb_going_away_before_the_reconciliation_records_the_load(mode, doomed_server, tmp_path, monkeypatch, capsys):
    from ingestion.ops import run as run_module

    reconcile_table = run_module.reconcile_table

    def stop_first(*args, **kwargs):
        doomed_server.stop()
        return reconcile_table(*args, **kwargs)

    monkeypatch.setattr(run_module, "reconcile_table", stop_first)
    extra = ("--mode", "incremental", "--cursor-field", "n") if mode == "incremental" else ()
    code = _run_cli(doomed_server, tmp_path, *extra)
    out, err = capsys.readouterr()
    assert code == 3, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]  # after the warnings of the run, one error line
    assert last.startswith("atlas-ingest: error: loaded and recorded in raw_atlas._atlas_runs, but not reconciled (away): "
                           "lost the connection to MongoDB while counting 'away'"), err
    assert "2000 rows loaded" in out and "reconciliation: not checked: lost the connection" in out  # the summary comes first
    assert _table_rows(tmp_path) == 2_000
    [(status, rows, reconciliation, source_count, error)] = _runs(tmp_path)
    assert (status, rows, reconciliation, source_count) == ("succeeded", 2_000, "not checked", None)
    assert "lost the connection to MongoDB" in error
