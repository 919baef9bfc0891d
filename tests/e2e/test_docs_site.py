"""`make docs`: the generated dbt docs site, opened in headless Chromium."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from tests.conftest import REPO, run_dbt

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=15000",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Debian chromium is not installed: `make test` installs it (apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def docs_site(mongo_server, tmp_path_factory):
    """`dbt docs generate` over a built warehouse, served over HTTP on a free port."""
    from pymongo import MongoClient

    from ingestion.local.seed import seed_collection
    from tests.conftest import run_cli

    work = tmp_path_factory.mktemp("docs")
    with MongoClient(mongo_server.uri) as client:
        seed_collection(client, 200, seed=2, database="docsdb")
    assert run_cli("run", "--uri", mongo_server.uri, "--database", "docsdb", "--collections", "customer_activity",
                   "--warehouse", str(work / "w.duckdb"), "--pipelines-dir", str(work / "p")).returncode == 0
    assert run_dbt("build", warehouse=work / "w.duckdb", target_path=work / "target").returncode == 0
    generated = run_dbt("docs", "generate", warehouse=work / "w.duckdb", target_path=work / "target")
    assert generated.returncode == 0, generated.stdout[-2000:]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(work / "target"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", work
    server.shutdown()


def render(url: str, profile: Path, screenshot: Path | None = None) -> str:
    args = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1000"]
    if screenshot:
        subprocess.run([*args, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True)
    return subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout


def test_model_list_renders(docs_site, tmp_path):
    url, _ = docs_site
    dom = render(f"{url}/index.html#!/overview", tmp_path / "profile")
    for model in ("customer_activity", "dim_customers", "fct_service_calls", "stg_atlas__customer_activity",
                  "int_customer_activity__service_calls_unnested", "agg_churn_by_state_plan"):
        assert model in dom, f"{model} missing from the rendered docs site"


def test_model_page_renders(docs_site, tmp_path):
    url, _ = docs_site
    screenshot = REPO / "target" / "docs_fct_service_calls.png"
    screenshot.parent.mkdir(exist_ok=True)
    dom = render(f"{url}/index.html#!/model/model.atlas_analytics.fct_service_calls", tmp_path / "profile", screenshot)
    assert "One row per customer-service call" in dom  # the model's description
    for column in ("service_call_id", "customer_activity_id", "opened_at"):
        assert column in dom
    assert screenshot.stat().st_size > 20_000


def test_lineage_graph_renders(docs_site, tmp_path):
    url, _ = docs_site
    screenshot = REPO / "target" / "docs_lineage.png"
    screenshot.parent.mkdir(exist_ok=True)
    dom = render(f"{url}/index.html#!/model/model.atlas_analytics.fct_service_calls?g_v=1", tmp_path / "profile", screenshot)
    assert "Lineage Graph" in dom
    assert "<canvas" in dom  # cytoscape draws the DAG into canvas elements
    assert screenshot.stat().st_size > 20_000
