"""`make lint`: sqlfluff (dbt templater, lowercase, trailing commas) is clean over every model."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_models_lint_clean(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text((REPO / "profiles.yml.example").read_text())
    env = {**os.environ, "DBT_DUCKDB_PATH": str(tmp_path / "lint.duckdb"), "DBT_PROFILES_DIR": str(profiles)}
    sqlfluff = Path(sys.executable).with_name("sqlfluff")
    result = subprocess.run(
        [str(sqlfluff), "lint", "models", "--templater", "dbt", "--disable-progress-bar"],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "All Finished" in result.stdout
