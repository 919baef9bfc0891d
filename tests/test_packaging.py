"""The wheel: runtime modules only, and runtime dependencies only what ingestion into S3 and
Redshift needs (the local twin, ML and dbt are extras)."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    [path] = out.glob("*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_holds_only_the_runtime_package(wheel):
    names = [n for n in wheel.namelist() if not n.split("/")[0].endswith(".dist-info")]
    assert names and all(n.startswith("ingestion/") and n.endswith(".py") for n in names), names
    modules = {n.removesuffix(".py").replace("/", ".") for n in names}
    # the run, the source, and the local twin (an extra) are there ...
    assert {"ingestion.ops.run", "ingestion.source.atlas", "ingestion.local.server"} <= modules
    # ... tests, benchmarks, the offline Redshift contract and the Dagster code location are not
    assert not any(re.search(r"tests?|bench|redshift_contract|orchestration", n) for n in names), names
    on_disk = {str(p.relative_to(REPO).with_suffix("")).replace("/", ".") for p in (REPO / "ingestion").rglob("*.py")}
    assert modules == on_disk


def test_runtime_dependencies_leave_the_local_twin_ml_and_dbt_to_extras(wheel):
    [metadata] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    requires = [line.removeprefix("Requires-Dist: ") for line in wheel.read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist: ")]
    runtime = {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() for r in requires if "extra ==" not in r}
    assert runtime == {"dlt", "pymongo", "pyarrow", "orjson", "boto3", "pyyaml"}
    extras = {re.search(r"extra == '(\w+)'", r).group(1): r for r in requires if "extra ==" in r}
    assert set(extras) == {"dbt", "local", "ml"}
    by_extra = lambda extra: {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower()  # noqa: E731
                              for r in requires if f"extra == '{extra}'" in r}
    assert {"secantusdb", "duckdb", "dbt-duckdb", "duckdb-ext-httpfs", "duckdb-ext-aws"} <= by_extra("local")
    assert by_extra("ml") == {"scikit-learn"}
    assert {"dbt-core", "dbt-redshift"} <= by_extra("dbt")
    # the Redshift path imports no DuckDB at module level (it comes with the local extra)
    assert not any("duckdb" in r for r in requires if "extra ==" not in r)
