"""Scheduling definitions that cannot rot: the Dagster code location loads, links ingestion upstream
of dbt and runs end to end; the GitHub workflow and the crontab only use flags, targets and
variables that exist."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from croniter import croniter
from pymongo import MongoClient

from ingestion.cli import _parser
from ingestion.config import DestinationConfig, RunConfig
from ingestion.local.seed import seed_collection
from orchestration import definitions as orch
from tests.conftest import BIN, REPO

WORKFLOW = REPO / ".github" / "workflows" / "scheduled-ingest.yml"
CRONTAB = REPO / "deploy" / "crontab.example"
DOCS = 300
DATABASE = "scheduling"
COLLECTION = "customer_activity"

# Values standing in for ${{ secrets.X }} / $X when a command line is parsed.
SAMPLE_VALUES = {
    "ATLAS_DATABASE": "operations",
    "ATLAS_COLLECTIONS": "customer_activity",
    "ATLAS_BUCKET_URL": "s3://example-bucket/atlas",
    "ATLAS_URI": "mongodb://user:secret@db.example.com:27017",
    "ATLAS_HOME": "/opt/atlas-redshift-analytics",
}
SHELL_OPERATORS = {"&&", "||", ";", "|", ">", ">>", "<", "&", ">&", "(", ")"}


# ---------------------------------------------------------------------------------------------
# Dagster


@pytest.fixture(scope="module")
def local_env(mongo_server, tmp_path_factory):
    """The environment a local deployment of the code location would have: a seeded MongoDB-wire
    server, a fresh DuckDB file, its own dbt profile, target folder and dlt pipeline state."""
    work = tmp_path_factory.mktemp("scheduling")
    with MongoClient(mongo_server.uri) as client:
        seed_collection(client, DOCS, seed=11, database=DATABASE, collection=COLLECTION)
    env = {
        "ATLAS_URI": mongo_server.uri,
        "ATLAS_DATABASE": DATABASE,
        "ATLAS_COLLECTIONS": COLLECTION,
        "ATLAS_PIPELINES_DIR": str(work / "pipelines"),
        "DBT_DUCKDB_PATH": str(work / "warehouse.duckdb"),
        "DBT_PROFILES_DIR": str(work / "profiles"),
        "ATLAS_DBT_TARGET_PATH": str(work / "dbt_target"),
        "DBT_USE_COLORS": "false",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name in ("ATLAS_DESTINATION", "DBT_TARGET", "ATLAS_BUCKET_URL", "ATLAS_SCHEDULE_CRON"):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        yield work


@pytest.fixture(scope="module")
def defs(local_env) -> dg.Definitions:
    started = time.monotonic()
    d = orch.build_definitions()  # settings from the environment, as `dagster dev` loads it
    # The manifest was parsed for this load (fresh target folder): the graph is the models on disk.
    assert (local_env / "dbt_target" / "manifest.json").exists()
    assert (local_env / "profiles" / "profiles.yml").read_text() == (REPO / "profiles.yml.example").read_text()
    assert time.monotonic() - started < 120
    return d


def _ancestors(graph, key: dg.AssetKey) -> set[dg.AssetKey]:
    seen: set[dg.AssetKey] = set()
    todo = [key]
    while todo:
        for parent in graph.get(todo.pop()).parent_keys:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def test_definitions_validate(defs):
    dg.Definitions.validate_loadable(defs)


def test_code_location_loads_with_the_dagster_cli(defs, local_env):
    """What `dagster dev -m orchestration.definitions` loads, through Dagster's own loader."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DAGSTER_HOME": str(local_env)}
    done = subprocess.run(
        [str(BIN / "dagster"), "asset", "list", "-m", "orchestration.definitions"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    listed = set(done.stdout.split())
    assert {"raw_atlas/customer_activity", "staging/stg_atlas__customer_activity", "customer_activity"} <= listed


def test_ingestion_asset_is_upstream_of_staging_and_marts(defs):
    graph = defs.resolve_asset_graph()
    raw = orch.raw_table_key(COLLECTION)
    assert raw in graph.get_all_asset_keys()
    # The raw table is produced by the ingestion asset (not an external dbt source asset).
    assert graph.get(raw).is_materializable
    assert defs.resolve_assets_def(raw).node_def.name == "atlas_ingest"

    by_name = {k.path[-1]: k for k in graph.get_all_asset_keys() if k != raw}
    stg = by_name["stg_atlas__customer_activity"]
    assert raw in graph.get(stg).parent_keys
    for model in ("customer_activity", "dim_customers", "fct_service_calls", "agg_daily_usage",
                  "agg_churn_by_state_plan", "int_customer_activity__service_calls_unnested", "ml_churn_features"):
        assert raw in _ancestors(graph, by_name[model]), f"{model} does not depend on the ingestion asset"
    # No dbt source of `atlas` is left as an unmaterializable external asset: each one is a
    # collection the ingestion asset loads.
    external = [k for k in graph.get_all_asset_keys() if not graph.get(k).is_materializable]
    assert all(k.path[0] != orch.RAW_KEY_PREFIX for k in external), external


def test_job_covers_ingestion_and_dbt(defs):
    job = defs.resolve_job_def(orch.JOB_NAME)
    keys = job.asset_layer.selected_asset_keys
    names = {k.path[-1] for k in keys}
    assert orch.raw_table_key(COLLECTION) in keys
    assert {"stg_atlas__customer_activity", "customer_activity", "dim_customers", "fct_service_calls"} <= names


def test_schedule_is_hourly_and_skips_while_a_run_is_in_flight(defs):
    schedule = defs.resolve_schedule_def(orch.SCHEDULE_NAME)
    assert schedule.job_name == orch.JOB_NAME
    assert croniter.is_valid(schedule.cron_schedule)
    it = croniter(schedule.cron_schedule, datetime(2026, 1, 1, tzinfo=timezone.utc))
    ticks = [it.get_next(datetime) for _ in range(25)]
    assert {b - a for a, b in zip(ticks, ticks[1:])} == {ticks[1] - ticks[0]}
    assert (ticks[1] - ticks[0]).total_seconds() == 3600
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING

    with dg.instance_for_test() as instance:
        result = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
        assert len(result.run_requests) == 1 and not result.skip_message
        from dagster._core.storage.dagster_run import DagsterRun

        instance.add_run(DagsterRun(job_name=orch.JOB_NAME, run_id="a" * 36, status=dg.DagsterRunStatus.STARTED))
        result = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
        assert not result.run_requests
        assert "still in progress" in result.skip_message


def test_schedule_cron_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("ATLAS_SCHEDULE_CRON", "5 */2 * * *")
    monkeypatch.setenv("ATLAS_DESTINATION", "redshift")
    monkeypatch.delenv("DBT_TARGET", raising=False)
    settings = orch.Settings.from_env()
    assert settings.cron == "5 */2 * * *"
    assert settings.dbt_target == "redshift"


def test_warehouse_mismatch_is_refused(local_env, tmp_path):
    settings = orch.Settings.from_env()
    other = orch.Settings(**{**settings.__dict__, "warehouse": tmp_path / "other.duckdb"})
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="DBT_DUCKDB_PATH"):
        orch.build_definitions(other)


def test_job_ingests_then_builds_dbt_in_process(defs, local_env):
    started = time.monotonic()
    raw = orch.raw_table_key(COLLECTION)
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def(orch.JOB_NAME).execute_in_process(instance=instance)
        elapsed = time.monotonic() - started
        assert result.success
        keys = {e.asset_key for e in result.get_asset_materialization_events()}
        meta = instance.get_latest_materialization_event(raw).asset_materialization.metadata
        assert meta["documents_read"].value == DOCS
        assert meta["rows_loaded"].value == DOCS
        ingested_at = instance.get_latest_materialization_event(raw).timestamp
        names = {k.path[-1]: k for k in keys if k != raw}
        for model in ("stg_atlas__customer_activity", "customer_activity", "dim_customers", "fct_service_calls"):
            assert model in names, f"{model} was not materialized"
            # dbt ran after the ingestion finished.
            assert instance.get_latest_materialization_event(names[model]).timestamp > ingested_at
    # run_results.json of the run, in the deployment's dbt target folder.
    results = local_env / "dbt_target" / "runs" / result.run_id / "run_results.json"
    statuses = {r["status"] for r in json.loads(results.read_text())["results"]}
    assert statuses <= {"success", "pass"}, statuses
    with duckdb.connect(os.environ["DBT_DUCKDB_PATH"], read_only=True) as con:
        assert con.sql(f"select count(*) from raw_atlas.{COLLECTION}").fetchone() == (DOCS,)
        assert con.sql("select count(*) from analytics.customer_activity").fetchone() == (DOCS,)
    assert elapsed < 180, f"in-process run took {elapsed:.0f} s"


def test_collections_must_cover_the_dbt_sources(local_env):
    settings = orch.Settings(**{**orch.Settings.from_env().__dict__, "collections": ("other_collection",)})
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="reads customer_activity"):
        orch.build_definitions(settings)


def test_failed_ingestion_skips_dbt(local_env):
    collections = (COLLECTION, "no_such_collection")
    settings = orch.Settings(**{**orch.Settings.from_env().__dict__, "collections": collections})
    d = orch.build_definitions(settings)  # the manifest is fresh: no parse
    with dg.DagsterInstance.ephemeral() as instance:
        result = d.resolve_job_def(orch.JOB_NAME).execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["atlas_ingest"]
    message = failures[0].step_failure_data.error.message
    assert "collection 'no_such_collection' not found" in message
    assert mongo_uri_not_in(message)
    assert not result.get_asset_materialization_events()
    # The dbt step never started.
    assert [e.step_key for e in result.all_events if e.is_step_start] == ["atlas_ingest"]


def mongo_uri_not_in(text: str) -> bool:
    return os.environ["ATLAS_URI"] not in text


# ---------------------------------------------------------------------------------------------
# Command lines in the workflow and the crontab


def _substitute(text: str) -> str:
    """`${{ ... }}`, `${NAME}` and `$NAME` replaced by sample values (shell quoting kept)."""
    text = re.sub(r"\$\{\{[^}]*\}\}", "placeholder", text)
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: SAMPLE_VALUES.get(m.group(1), "placeholder"), text)


def _invocations(script: str, program: str) -> list[list[str]]:
    """Arguments of every `<...>/program ...` command in a shell script, up to the first operator."""
    found = []
    for line in script.splitlines():
        if line.lstrip().startswith("#"):
            continue
        lexer = shlex.shlex(_substitute(line), posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        for i, token in enumerate(tokens):
            if token == program or token.endswith("/" + program):
                args = []
                for t in tokens[i + 1:]:
                    if t in SHELL_OPERATORS or set(t) <= set("&|;<>()"):
                        break
                    args.append(t)
                found.append(args)
    return found


def _check_atlas_ingest(args: list[str]) -> None:
    try:
        parsed = _parser().parse_args(args)
    except SystemExit as exc:  # argparse: unknown flag or missing required one
        pytest.fail(f"atlas-ingest {' '.join(args)}: rejected by the CLI parser (exit {exc.code})")
    assert parsed.command == "run"
    assert parsed.destination == "redshift"
    RunConfig(
        uri=SAMPLE_VALUES["ATLAS_URI"], database=parsed.database,
        collections=[c for c in parsed.collections.split(",") if c],
        destination=DestinationConfig(name=parsed.destination, bucket_url=parsed.bucket_url, prefix=parsed.prefix),
    ).validate()


def _check_dbt(args: list[str], profiles_dir: Path) -> None:
    from dbt.cli.main import cli

    ctx = cli.make_context("dbt", list(args))
    command = cli.get_command(ctx, args[0])
    assert command is not None, f"dbt has no command {args[0]}"
    sub = command.make_context(args[0], [*args[1:], "--profiles-dir", str(profiles_dir)], parent=ctx)
    outputs = yaml.safe_load((REPO / "profiles.yml.example").read_text())["atlas_analytics"]["outputs"]
    assert sub.params["target"] in outputs, f"dbt target {sub.params['target']} is not in profiles.yml.example"


def _variables_read_by_the_project() -> set[str]:
    """Environment variable names the CLI, the dbt profile, macros and models read."""
    names: set[str] = set()
    for path in [*(REPO / "ingestion").glob("*.py"), REPO / "profiles.yml.example",
                 *(REPO / "macros").rglob("*.sql"), *(REPO / "models").rglob("*.yml")]:
        text = path.read_text()
        names |= set(re.findall(r"environ(?:\.get\(|\[)\s*[\"']([A-Z0-9_]+)[\"']", text))
        names |= set(re.findall(r"env_var\(\s*[\"']([A-Z0-9_]+)[\"']", text))
    return names


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_workflow_triggers_and_concurrency(workflow):
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "workflow_dispatch" in on
    crons = [entry["cron"] for entry in on["schedule"]]
    assert crons
    for cron in crons:
        assert len(cron.split()) == 5 and croniter.is_valid(cron), cron
        it = croniter(cron, datetime(2026, 1, 1, tzinfo=timezone.utc))
        first, second = it.get_next(datetime), it.get_next(datetime)
        assert (second - first).total_seconds() == 3600, f"{cron} is not hourly"
    assert workflow["concurrency"]["group"]
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_workflow_steps_use_real_commands_flags_and_variables(workflow, tmp_path):
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    scripts = [s["run"] for s in steps if "run" in s]
    uses = [s["uses"].split("@")[0] for s in steps if "uses" in s]
    assert "actions/checkout" in uses

    makefile = (REPO / "Makefile").read_text()
    for script in scripts:
        for target in re.findall(r"^\s*make\s+([\w-]+)", script, flags=re.M):
            assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), f"no make target {target}"

    ingests = [a for s in scripts for a in _invocations(s, "atlas-ingest")]
    assert len(ingests) == 1
    for args in ingests:
        _check_atlas_ingest(args)
    dbts = [a for s in scripts for a in _invocations(s, "dbt")]
    assert dbts == [["build", "--target", "redshift"]]
    for args in dbts:
        _check_dbt(args, tmp_path)

    # dbt comes after the ingestion, in a later step (a failed step stops the job).
    order = [i for i, s in enumerate(steps) if "atlas-ingest" in s.get("run", "")] + \
            [i for i, s in enumerate(steps) if "dbt build" in s.get("run", "")]
    assert order[0] < order[1]
    assert "if" not in steps[order[1]], "dbt build must not run after a failed ingestion"

    # Secrets and settings reach the process under the names the project reads.
    env = {**workflow.get("env", {}), **job.get("env", {}), **{k: v for s in steps for k, v in s.get("env", {}).items()}}
    used_by_steps = {m for script in scripts for m in re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", script)}
    read = _variables_read_by_the_project() | used_by_steps | {"DBT_PROFILES_DIR", "RUNTIME__DLTHUB_TELEMETRY"}
    unknown = sorted(set(env) - read)
    assert not unknown, f"workflow sets variables nothing reads: {unknown}"
    for required in ("ATLAS_URI", "REDSHIFT_HOST", "REDSHIFT_USER", "REDSHIFT_PASSWORD", "REDSHIFT_IAM_ROLE"):
        assert re.fullmatch(r"\$\{\{\s*secrets\.\w+\s*\}\}", str(env.get(required, ""))), f"{required} not from secrets"
    # Every variable the redshift profile requires (env_var without a default) is set.
    profile = (REPO / "profiles.yml.example").read_text()
    for name in re.findall(r"env_var\('([A-Z_]+)'\)", profile):
        assert name in env, f"the redshift profile needs {name}"

    upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert len(upload) == 1 and upload[0]["if"] == "always()"
    assert "target/run_results.json" in upload[0]["with"]["path"]
    # dbt writes run_results.json where the project says.
    assert yaml.safe_load((REPO / "dbt_project.yml").read_text())["target-path"] == "target"


def _crontab_entries() -> list[tuple[list[str], str]]:
    entries = []
    for line in CRONTAB.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", stripped):
            continue
        fields = stripped.split(None, 5)
        entries.append((fields[:5], fields[5]))
    return entries


def test_crontab_entry_is_valid_and_uses_real_flags(tmp_path):
    entries = _crontab_entries()
    assert len(entries) == 1
    for fields, command in entries:
        cron = " ".join(fields)
        assert croniter.is_valid(cron), cron
        it = croniter(cron, datetime(2026, 1, 1, tzinfo=timezone.utc))
        first, second = it.get_next(datetime), it.get_next(datetime)
        assert (second - first).total_seconds() == 3600, f"{cron} is not hourly"
        # cron turns an unescaped % into a newline
        assert not re.search(r"(?<!\\)%", command)
        ingests = _invocations(command, "atlas-ingest")
        assert len(ingests) == 1
        _check_atlas_ingest(ingests[0])
        dbts = _invocations(command, "dbt")
        assert dbts == [["build", "--target", "redshift"]]
        _check_dbt(dbts[0], tmp_path)
        # dbt build only after a successful ingestion: joined by && in one chain, both logged.
        between = command[command.index("atlas-ingest"):command.index("dbt build")]
        assert "&&" in between and ";" not in between and "||" not in between
        assert between.count(">> logs/") == 1
    variables = dict(
        line.split("=", 1) for line in CRONTAB.read_text().splitlines() if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", line)
    )
    assert variables["SHELL"] == "/bin/bash"  # `set -a`, `.` and `$(...)` in the command
