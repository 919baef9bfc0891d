"""Shared fixtures: a real MongoDB-wire server on a free port, and helpers to run the CLI and dbt."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from pymongo import MongoClient

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
# Schema files of every CLI run a test starts (run_cli, Popen, in-process main) go here unless the
# test names its own folder: never into the checkout.
CLI_SCHEMA_DIR = Path(tempfile.mkdtemp(prefix="atlas-schemas-"))
os.environ["ATLAS_SCHEMA_DIR"] = str(CLI_SCHEMA_DIR)

from ingestion.local.server import LocalServer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = LocalServer(home=tmp_path_factory.mktemp("mongo"), port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def mongo_client(mongo_server: LocalServer) -> Iterator[MongoClient]:
    with MongoClient(mongo_server.uri) as client:
        yield client



def run_cli(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "atlas-ingest"), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )


# What a dbt project is made of here: a copy of these builds like the checkout.
PROJECT_FILES = ("dbt_project.yml", "profiles.yml.example", ".sqlfluff", ".sqlfluffignore", "models", "macros", "seeds",
                 "tests/generic", "tests/fixtures")


def copy_dbt_project(destination: Path) -> Path:
    """A copy of the checkout's dbt project at `destination`, for tests that change or add models."""
    for item in PROJECT_FILES:
        src, dst = REPO / item, destination / item
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    return destination


def duckdb_extension_directory() -> str:
    """Where the PyPI packages duckdb-ext-httpfs / duckdb-ext-aws put DuckDB extensions."""
    import importlib.util

    spec = importlib.util.find_spec("duckdb_ext")
    assert spec and spec.submodule_search_locations, "duckdb-ext-httpfs is not installed"
    return str(Path(list(spec.submodule_search_locations)[0]) / "extensions")


def dbt_env(warehouse: Path, target_path: Path) -> dict[str, str]:
    """The environment that points dbt (and `make demo`) at `warehouse`, with output under `target_path`."""
    profiles = target_path / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / "profiles.yml").write_text((REPO / "profiles.yml.example").read_text())
    base = {
        **os.environ,
        "DBT_PROFILES_DIR": str(profiles),
        "DBT_DUCKDB_PATH": str(warehouse),
        "DBT_TARGET_PATH": str(target_path),
        "DBT_LOG_PATH": str(target_path / "logs"),
        "DBT_USE_COLORS": "false",
        "DUCKDB_EXTENSION_DIRECTORY": duckdb_extension_directory(),
    }
    return base


def run_dbt(*args: str, warehouse: Path, target_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`dbt <args>` on the local target against `warehouse`, output kept out of the repo's target/."""
    base = {**dbt_env(warehouse, target_path), **(env or {})}
    return subprocess.run([str(BIN / "dbt"), *args], cwd=REPO, capture_output=True, text=True, env=base, timeout=600)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    """A local S3-compatible server (moto) on a free port; yields the environment that points
    boto3, dlt and the CLI at it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    yield env
    server.stop()


def s3_client(env: dict[str, str]):
    import boto3

    return boto3.client(
        "s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def spy_on_source_counts(monkeypatch: pytest.MonkeyPatch, writes_during_count: list | None = None) -> list[int]:
    """The reconciliation's source counts, recorded in order as runs make them. Each callable in
    `writes_during_count` is taken and called with the collection right after the next count:
    writes the count's scan no longer sees, as on a busy cluster."""
    import ingestion.ops.reconcile

    counts: list[int] = []
    real_count = ingestion.ops.reconcile.source_count

    def counting(collection, config):
        counts.append(real_count(collection, config))
        while writes_during_count:
            writes_during_count.pop(0)(collection)
        return counts[-1]

    monkeypatch.setattr(ingestion.ops.reconcile, "source_count", counting)
    return counts
