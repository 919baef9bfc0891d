"""Dagster code location: every hour, ingest the Atlas collections, then `dbt build` what depends on them.

    dagster dev -m orchestration.definitions          # UI + scheduler, from the repository root

Asset graph:  raw_atlas/<table> (one asset per collection, `ingestion.ops.run.run`)
              -> dbt source atlas.<table> -> stg_atlas__* -> int_* -> marts -> ml   (dagster-dbt)

Settings come from the environment, the same variables as the CLI, the dbt profile and the
GitHub workflow (docs/scheduling.md):

    ATLAS_URI            MongoDB URI, read only when a run starts (never shown in the UI)
    ATLAS_DATABASE       default operations
    ATLAS_COLLECTIONS    comma-separated, default customer_activity (one asset each)
    ATLAS_DESTINATION    local (DuckDB, default) or redshift
    ATLAS_BUCKET_URL     s3://... staging location, for redshift
    ATLAS_PIPELINES_DIR  where dlt keeps pipeline state (default: dlt's)
    DBT_DUCKDB_PATH      DuckDB file for local (ingestion writes it, dbt reads it)
    DBT_TARGET           dbt target (default: redshift when ATLAS_DESTINATION=redshift, else local)
    DBT_PROFILES_DIR     default .dbt-profiles/ (made from profiles.yml.example when missing)
    ATLAS_DBT_TARGET_PATH  where dbt writes manifest.json and run results (default target/dagster)
    ATLAS_SCHEDULE_CRON  default "0 * * * *" (UTC)
    REDSHIFT_*, AWS_*    as for `atlas-ingest run --destination redshift` and `dbt --target redshift`

Why not dagster-dlt: `@dlt_assets` wraps a plain `dlt.pipeline(...).run(source)`. Our ingestion does
more around that run (it finishes or discards a load an interrupted run left behind, replaces
tables atomically through a staging dataset, quarantines unloadable documents and reconciles
documents read against rows loaded), so the asset calls our `ingestion.ops.run.run()`, the same
function `atlas-ingest run` calls.
"""

import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from ingestion.ops.run_history import RUNS_TABLE

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # no network calls from dlt

RAW_KEY_PREFIX = "raw_atlas"
DBT_SOURCE = "atlas"  # models/staging/atlas/_atlas__sources.yml: the raw tables ingestion loads
JOB_NAME = "atlas_ingest_and_build"
SCHEDULE_NAME = "atlas_hourly"
IN_FLIGHT = (
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING,
)
KEEP_DBT_RUNS = 48  # dbt target folders (run_results.json) kept under <ATLAS_DBT_TARGET_PATH>/runs
DBT_FILES = {".sql", ".yml", ".yaml", ".csv", ".md"}  # a change to one of these re-parses the manifest


def _prune(runs: Path, keep: int) -> None:
    """Keep the target folders of the newest `keep` dbt runs."""
    folders = sorted((p for p in runs.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in folders[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def raw_table_key(table: str) -> dg.AssetKey:
    """The key of a raw table: produced by the ingestion asset, read by the dbt source `atlas.<table>`."""
    return dg.AssetKey([RAW_KEY_PREFIX, table])


def _table_name(collection: str) -> str:
    from ingestion.naming import table_name

    return table_name(collection)


@dataclass(frozen=True)
class Settings:
    database: str = "operations"
    collections: tuple[str, ...] = ("customer_activity",)
    destination: str = "local"
    bucket_url: str | None = None
    warehouse: Path = REPO / "data" / "warehouse.duckdb"
    dataset: str = "raw_atlas"
    pipelines_dir: Path | None = None
    dbt_target: str = "local"
    profiles_dir: Path = REPO / ".dbt-profiles"
    dbt_target_path: Path = REPO / "target" / "dagster"
    cron: str = "0 * * * *"
    uri: str | None = None  # None: $ATLAS_URI, resolved when a run starts

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        destination = env.get("ATLAS_DESTINATION", "local")
        pipelines_dir = env.get("ATLAS_PIPELINES_DIR")
        return cls(
            database=env.get("ATLAS_DATABASE", "operations"),
            collections=tuple(c.strip() for c in env.get("ATLAS_COLLECTIONS", "customer_activity").split(",") if c.strip()),
            destination=destination,
            bucket_url=env.get("ATLAS_BUCKET_URL") or None,
            warehouse=REPO / env.get("DBT_DUCKDB_PATH", "data/warehouse.duckdb"),
            pipelines_dir=Path(pipelines_dir) if pipelines_dir else None,
            dbt_target=env.get("DBT_TARGET", "redshift" if destination == "redshift" else "local"),
            profiles_dir=REPO / env.get("DBT_PROFILES_DIR", ".dbt-profiles"),
            dbt_target_path=REPO / env.get("ATLAS_DBT_TARGET_PATH", "target/dagster"),
            cron=env.get("ATLAS_SCHEDULE_CRON", "0 * * * *"),
        )


class AtlasIngestion(dg.ConfigurableResource):
    """`ingestion.ops.run.run()` with the settings of one deployment."""

    uri: str
    database: str
    destination: str = "local"
    warehouse: str = str(REPO / "data" / "warehouse.duckdb")
    dataset: str = "raw_atlas"
    bucket_url: str | None = None
    pipelines_dir: str | None = None

    def run(self, collections: Sequence[str]) -> Any:
        from ingestion.config import DestinationConfig, RunConfig
        from ingestion.errors import IngestError
        from ingestion.ops.run import run
        from ingestion.redact import redact, remember_dlt_secrets, remember_known_secrets, remember_uri

        remember_known_secrets()  # for the run history and dlt's log records, as the CLI does
        remember_dlt_secrets()
        remember_uri(self.uri)
        config = RunConfig(
            uri=self.uri,
            database=self.database,
            collections=list(collections),
            destination=DestinationConfig(
                name=self.destination, warehouse=Path(self.warehouse), dataset=self.dataset, bucket_url=self.bucket_url,
            ),
            pipelines_dir=Path(self.pipelines_dir) if self.pipelines_dir else None,
        )
        try:
            return run(config)
        except IngestError as exc:
            # Same message and exit code as `atlas-ingest run`, URI redacted; downstream dbt assets are skipped.
            raise dg.Failure(
                description=f"atlas-ingest: error: {redact(str(exc))}", metadata={"exit_code": exc.exit_code},
            ) from None


class AtlasDbtTranslator(DagsterDbtTranslator):
    """dbt source `atlas.<table>` is the asset the ingestion produces, so dbt models hang under it."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source" and props["source_name"] == DBT_SOURCE:
            return spec.replace_attributes(key=raw_table_key(props["name"]))
        return spec


def _ensure_profiles(settings: Settings) -> None:
    """Like `make install`: the dbt profile is a copy of profiles.yml.example unless one exists."""
    profile = settings.profiles_dir / "profiles.yml"
    if not profile.exists():
        settings.profiles_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / "profiles.yml.example", profile)


def _duckdb_extension_directory() -> None:
    """dbt on DuckDB loads httpfs/aws from the PyPI packages (as the Makefile sets it)."""
    import importlib.util

    spec = importlib.util.find_spec("duckdb_ext")
    if spec and spec.submodule_search_locations:
        os.environ.setdefault("DUCKDB_EXTENSION_DIRECTORY", str(Path(list(spec.submodule_search_locations)[0]) / "extensions"))


def dbt_executable() -> str:
    """dbt from PATH, else the one beside this Python (a venv that is not activated)."""
    beside = Path(sys.executable).parent / "dbt"
    return shutil.which("dbt") or str(beside)


def _manifest_is_stale(project: DbtProject) -> bool:
    """A manifest older than any model, macro, seed, test or dbt_project.yml is parsed again."""
    if not project.manifest_path.exists():
        return True
    built = project.manifest_path.stat().st_mtime
    sources = [
        REPO / "dbt_project.yml",
        *(p for d in ("models", "macros", "seeds", "tests") for p in (REPO / d).rglob("*") if p.suffix in DBT_FILES),
    ]
    return any(p.stat().st_mtime > built for p in sources)


def dbt_project(settings: Settings) -> DbtProject:
    """The dbt project with an up-to-date manifest.json (`dbt parse` when missing or stale), so the
    asset graph always matches the models on disk."""
    _ensure_profiles(settings)
    project = DbtProject(
        project_dir=REPO, profiles_dir=settings.profiles_dir, target=settings.dbt_target,
        target_path=settings.dbt_target_path,
    )
    if _manifest_is_stale(project):
        DbtCliResource(project_dir=project, dbt_executable=dbt_executable()).cli(
            ["parse", "--quiet"], target_path=project.target_path,
        ).wait()
    return project


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    dbt_reads = REPO / os.environ.get("DBT_DUCKDB_PATH", "data/warehouse.duckdb")
    if settings.destination == "local" and settings.dbt_target == "local" and settings.warehouse.resolve() != dbt_reads.resolve():
        # The dbt profile reads $DBT_DUCKDB_PATH: ingestion must write the file dbt builds from.
        raise dg.DagsterInvalidDefinitionError(
            f"ingestion would write {settings.warehouse} but dbt reads {dbt_reads}: set DBT_DUCKDB_PATH for both"
        )
    project = dbt_project(settings)
    tables = {_table_name(c): c for c in settings.collections}
    manifest = json.loads(project.manifest_path.read_text())
    # `_atlas_runs` (run history, reconciliation) is written by every ingestion run, not by a collection.
    read_by_dbt = {s["name"] for s in manifest["sources"].values() if s["source_name"] == DBT_SOURCE} - {RUNS_TABLE}
    if read_by_dbt - set(tables):
        # Without its ingestion asset a raw table is an external input, and dbt would no longer
        # wait for (or follow) the load.
        raise dg.DagsterInvalidDefinitionError(
            f"dbt source '{DBT_SOURCE}' reads {', '.join(sorted(read_by_dbt - set(tables)))}, which ATLAS_COLLECTIONS "
            f"({', '.join(settings.collections)}) does not load"
        )

    @dg.multi_asset(
        name="atlas_ingest",
        specs=[
            dg.AssetSpec(
                raw_table_key(table), group_name="ingestion", kinds={"mongodb", "dlt"},
                description=f"MongoDB collection {settings.database}.{collection}, loaded by atlas-ingest into "
                            f"{settings.dataset}.{table} ({settings.destination}).",
                metadata={"collection": collection, "database": settings.database},
            )
            for table, collection in tables.items()
        ] + [
            dg.AssetSpec(
                raw_table_key(RUNS_TABLE), group_name="ingestion", kinds={"dlt"},
                description=f"Run history and reconciliation written by every atlas-ingest run into {settings.dataset}.{RUNS_TABLE}.",
            )
        ],
        can_subset=True,
    )
    def atlas_ingest(context: dg.AssetExecutionContext, atlas: AtlasIngestion) -> Iterator[dg.MaterializeResult]:
        selected = [c for t, c in tables.items() if raw_table_key(t) in context.selected_asset_keys] or list(tables.values())
        summary = atlas.run(selected)
        context.log.info(f"pipeline {summary.pipeline}: load {summary.load_id} in {summary.elapsed_s:.2f} s")
        for t in summary.tables:
            for warning in t.warnings:
                context.log.warning(warning)
            yield dg.MaterializeResult(
                asset_key=raw_table_key(t.table),
                metadata={
                    "mode": t.mode, "documents_read": t.documents_read, "rows_loaded": t.rows_loaded,
                    "quarantined": t.quarantined, "new_columns": t.new_columns, "variant_columns": t.variant_columns,
                    "load_id": summary.load_id or "", "dlt_pipeline": summary.pipeline,
                    "reconciliation": t.reconciliation.status if t.reconciliation else "not checked",
                },
            )
        if raw_table_key(RUNS_TABLE) in context.selected_asset_keys:
            yield dg.MaterializeResult(asset_key=raw_table_key(RUNS_TABLE), metadata={"run_id": summary.run_id or ""})

    @dbt_assets(manifest=project.manifest_path, project=project, dagster_dbt_translator=AtlasDbtTranslator(), name="atlas_dbt")
    def atlas_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        # The selected models and their tests (dagster-dbt passes --select). Each run writes its
        # own target folder, run_results.json included, under <dbt target path>/runs/<run id>.
        runs = settings.dbt_target_path / "runs"
        run_target = runs / context.run_id
        parsed = settings.dbt_target_path / "partial_parse.msgpack"
        if parsed.exists():
            run_target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(parsed, run_target / parsed.name)  # dbt reuses the load-time parse
        yield from dbt.cli(["build"], context=context, target_path=run_target).stream()
        context.log.info(f"dbt run results: {run_target / 'run_results.json'}")
        _prune(runs, keep=KEEP_DBT_RUNS)

    job = dg.define_asset_job(
        JOB_NAME, selection=dg.AssetSelection.assets(atlas_ingest, atlas_dbt),
        description="Ingest every configured collection, then dbt build (dbt runs only after ingestion succeeded).",
    )

    @dg.schedule(
        cron_schedule=settings.cron, job=job, name=SCHEDULE_NAME, execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def atlas_hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        # Two runs never overlap: a tick while the previous run is still going is skipped
        # (the next tick catches up, since every run reads from the saved cursor).
        running = context.instance.get_run_records(
            dg.RunsFilter(job_name=JOB_NAME, statuses=list(IN_FLIGHT)), limit=1,
        )
        if running:
            return dg.SkipReason(f"run {running[0].dagster_run.run_id} of {JOB_NAME} is still in progress")
        return dg.RunRequest()

    ingestion = AtlasIngestion(
        uri=settings.uri if settings.uri is not None else dg.EnvVar("ATLAS_URI"),
        database=settings.database,
        destination=settings.destination,
        warehouse=str(settings.warehouse),
        dataset=settings.dataset,
        bucket_url=settings.bucket_url,
        pipelines_dir=str(settings.pipelines_dir) if settings.pipelines_dir else None,
    )
    return dg.Definitions(
        assets=[atlas_ingest, atlas_dbt],
        jobs=[job],
        schedules=[atlas_hourly],
        resources={
            "atlas": ingestion,
            "dbt": DbtCliResource(
                project_dir=project, profiles_dir=str(settings.profiles_dir), target=settings.dbt_target,
                dbt_executable=dbt_executable(),
            ),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded by `dagster dev -m orchestration.definitions` (and the code server) when it starts."""
    # dlt reads .dlt/config.toml (per-collection modes, cursors) from the repository, wherever
    # Dagster was started; dbt on DuckDB finds httpfs/aws where the Makefile points it.
    os.environ.setdefault("DLT_PROJECT_DIR", str(REPO))
    _duckdb_extension_directory()
    return build_definitions()
