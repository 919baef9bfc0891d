"""The files a run writes on this machine: a read-only place or a full disk is one line naming the
path, exit 4, nothing committed. Each case runs the CLI in a mount namespace of its own (unshare),
with a read-only bind mount or a tiny tmpfs where the run writes; the rest of the machine is as it is."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.conftest import BIN


def run_in_namespace(setup: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`atlas-ingest *args` after `setup` (mount commands) in a user and mount namespace: works as
    root and as a user, and the mounts vanish with the process."""
    command = f"{setup} && exec {shlex.quote(str(BIN / 'atlas-ingest'))} {shlex.join(args)}"
    return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", command],
                          capture_output=True, text=True, timeout=300, env=os.environ)


def assert_one_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 4, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("atlas-ingest: error:") and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def files_db(mongo_server) -> str:
    from pymongo import MongoClient

    with MongoClient(mongo_server.uri) as client:
        client["local_files"]["small"].insert_one({"_id": 1})
        # random text: extract files that do not compress below a small disk
        client["local_files"]["big"].insert_many([{"_id": i, "s": os.urandom(200).hex()} for i in range(6_000)])
    return mongo_server.uri


@pytest.mark.parametrize("flag, where, shown", [
    ("--pipelines-dir", "sub/p", "--pipelines-dir {ro}/sub/p (at {ro}/sub)"),  # a missing subdirectory
    ("--pipelines-dir", "", "--pipelines-dir {ro}:"),  # the pipelines dir itself
    ("--warehouse", "sub/w.duckdb", "--warehouse {ro}/sub"),
    ("--schema-dir", "schemas", "--schema-dir {ro}/schemas"),
])
def test_a_read_only_place_is_refused_before_reading(flag, where, shown, files_db, tmp_path):
    ro = tmp_path / "read_only"
    ro.mkdir()
    paths = {"--pipelines-dir": str(tmp_path / "p"), "--warehouse": str(tmp_path / "w.duckdb"), "--schema-dir": str(tmp_path / "s")}
    paths[flag] = str(ro / where) if where else str(ro)
    mount = f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro}"
    r = run_in_namespace(mount, "run", "--uri", files_db, "--database", "local_files", "--collections", "small",
                         *[a for pair in paths.items() for a in pair])
    assert_one_line(r, shown.format(ro=ro), "read-only file system")
    assert not (tmp_path / "w.duckdb").exists() or flag == "--warehouse"  # refused before anything was written


@pytest.mark.parametrize("full", ["pipelines", "warehouse"])
def test_a_full_disk_names_the_path_and_commits_nothing(full, files_db, tmp_path):
    small = tmp_path / "small_disk"
    small.mkdir()
    pipelines = small / "p" if full == "pipelines" else tmp_path / "p"
    warehouse = small / "w.duckdb" if full == "warehouse" else tmp_path / "w.duckdb"
    r = run_in_namespace(f"mount -t tmpfs -o size=512k tmpfs {small}", "run", "--uri", files_db, "--database", "local_files",
                         "--collections", "big", "--pipelines-dir", str(pipelines), "--warehouse", str(warehouse),
                         "--schema-dir", str(tmp_path / "s"))
    assert_one_line(r, f"no space left on device writing {small}/", "nothing of this load was committed")
    if full == "pipelines":  # the warehouse, on a disk with room, holds no row of the failed load
        with duckdb.connect(str(warehouse), read_only=True) as con:
            tables = {t for (t,) in con.sql("select table_name from information_schema.tables").fetchall()}
        assert "big" not in tables
