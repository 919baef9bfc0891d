"""`atlas-ingest`: run ingestion, and manage the local MongoDB-wire server for development."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, NoReturn, Sequence

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # no network calls from dlt

from ingestion import progress  # noqa: E402
from ingestion.errors import ConfigError, IngestError  # noqa: E402
from ingestion.redact import RedactingStream, redact, remember_dlt_secrets, remember_known_secrets, remember_uri  # noqa: E402

if TYPE_CHECKING:
    from ingestion.ops.summary import RunSummary

EXIT_CODES = """exit codes: 0 ok, 1 unexpected error, 2 invalid flags or config, 3 MongoDB unreachable (also
mid-run), refused the credentials or collection missing, 4 destination failed, 5 local server failed, 6 churn model training failed,
7 another run of the same pipeline is in progress, 8 some collections failed (the others loaded and are recorded)"""


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as a single line (and exit 2), like every other error of the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"atlas-ingest: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="atlas-ingest", description=__doc__, epilog=EXIT_CODES)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)

    run = sub.add_parser("run", help="load collections into the warehouse", epilog=EXIT_CODES)
    run.add_argument("--uri", default=os.environ.get("ATLAS_URI"), help="MongoDB URI (default: $ATLAS_URI)")
    run.add_argument("--database", required=True)
    run.add_argument("--collections", help="comma-separated collection names (default: every collection of the database, "
                     "no views or system.*, as include / exclude in [sources.atlas] select)")
    _warehouse_arguments(run, "local (DuckDB), s3 (files) or redshift")
    run.add_argument("--bucket-url", help="s3://bucket or a folder (s3); the S3 staging location (redshift); default $ATLAS_BUCKET_URL")
    run.add_argument("--prefix", default="atlas", help="key prefix under the bucket (default: atlas)")
    run.add_argument("--file-format", default="jsonl", help="jsonl (gzip) or parquet, for --destination s3")
    per = run.add_argument_group("per-collection settings (override [sources.atlas.collections.<name>] in .dlt/config.toml)")
    per.add_argument("--mode", help="full (replace), incremental (merge on _id by cursor field) or cdc (snapshot, then change stream)")
    per.add_argument("--cursor-field", help="incremental cursor, e.g. updated_at")
    per.add_argument("--filter", help="a MongoDB query as JSON, applied on the server")
    per.add_argument("--projection", help="a MongoDB projection as JSON")
    per.add_argument("--write-disposition", help="replace, merge or append (default: by mode)")
    per.add_argument("--workers", type=int, help="parallel readers over _id ranges (default 1)")
    per.add_argument("--lookback-seconds", type=float, help="incremental: re-read this long before the last cursor value")
    per.add_argument("--deletes", help="cdc and --detect-deletes: hard (delete the row, default) or soft (keep it with _deleted_at)")
    per.add_argument("--detect-deletes", action="store_true", default=None,
                     help="incremental: after the load, remove the rows whose document is gone (reads only _id)")
    per.add_argument("--on-token-lost", help="cdc: resync (new snapshot, default) or fail, when the resume token left the oplog")
    per.add_argument("--checkpoint-docs", type=int, help="cdc: documents or change events per checkpointed load (default 50000)")
    run.add_argument("--follow", action="store_true", help="cdc: keep streaming changes after catching up (stop with SIGTERM)")
    run.add_argument("--resync", action="store_true", help="cdc: take a new snapshot now and remove the rows it does not see")
    run.add_argument("--flush-interval", type=float, default=5.0, help="--follow: seconds between loads (default 5)")
    run.add_argument("--pipelines-dir", type=Path, help="where dlt keeps pipeline state (default: dlt's)")
    run.add_argument("--batch-docs", type=int, default=10_000, help="documents per batch")
    run.add_argument("--sample-size", type=int, default=1000, help="documents sampled per collection for schema discovery (0: none)")
    run.add_argument("--schema-dir", type=Path, default=Path(os.environ.get("ATLAS_SCHEMA_DIR", "schemas")),
                     help="where schema files go, one per collection: <dir>/<database>/<collection>.yml (default: $ATLAS_SCHEMA_DIR or schemas)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--log-format", default="text", help="text or json (one object per line, for schedulers)")
    run.add_argument("--log-level", default=None, help="debug, info, warning (default) or error; info with --follow")
    run.add_argument("--no-progress", action="store_true", help="no progress lines, even on a terminal")

    status = sub.add_parser("status", help="the last run of each collection, from the run history _atlas_runs",
                            epilog=EXIT_CODES)
    _warehouse_arguments(status, "local (DuckDB) or redshift")
    status.add_argument("--database", help="only the collections of this source database")
    status.add_argument("--json", action="store_true", help="one JSON object per collection, in a list")
    status.add_argument("--check", action="store_true", help="exit 8 when the last run of a collection failed or diverged")

    scaffold = sub.add_parser("scaffold", help="write tested, documented dbt models for a database's collections "
                              "from the schema files `run` writes", epilog=EXIT_CODES)
    scaffold.add_argument("--database", required=True)
    scaffold.add_argument("--collections", help="comma-separated collection names (default: every collection with a schema file)")
    scaffold.add_argument("--schema-dir", type=Path, default=Path(os.environ.get("ATLAS_SCHEMA_DIR", "schemas")),
                          help="where `run` wrote the schema files (default: $ATLAS_SCHEMA_DIR or schemas)")
    scaffold.add_argument("--project-dir", type=Path, default=Path("."), help="the dbt project (default: .)")
    scaffold.add_argument("--max-depth", type=int, default=3,
                          help="object levels flattened into columns below a top-level field (default 3); deeper stays JSON")
    scaffold.add_argument("--json", action="store_true", help="print the report as JSON")

    churn = sub.add_parser("churn", help="train, check or drop the churn model (Redshift ML or the local twin)", epilog=EXIT_CODES)
    churn.add_argument("action", choices=["train", "status", "drop"])
    churn.add_argument("--target", default="local", help="local (scikit-learn twin on DuckDB) or redshift (CREATE MODEL)")
    churn.add_argument("--model-name", default="churn_model")
    churn.add_argument("--feature-set", default="extended", help="tutorial or extended")
    churn.add_argument("--cutoff", default="2020-01-01", help="train on record_date before this date")
    churn.add_argument("--replace", action="store_true", help="drop and train again an existing model (billed on Redshift)")
    churn.add_argument("--warehouse", type=Path, default=Path(os.environ.get("DBT_DUCKDB_PATH", "data/warehouse.duckdb")))
    churn.add_argument("--schema", help="dbt target schema (default: $REDSHIFT_SCHEMA on redshift, else analytics)")
    churn.add_argument("--iam-role", default=os.environ.get("REDSHIFT_ML_IAM_ROLE", "default"))
    churn.add_argument("--s3-bucket", default=os.environ.get("REDSHIFT_ML_S3_BUCKET"))
    churn.add_argument("--max-runtime", type=int, default=5400, help="seconds of SageMaker training at most")
    churn.add_argument("--auto", choices=["on", "off"], default="on",
                       help="redshift: on (Autopilot picks and tunes the model) or off (XGBoost as given: --objective, --hyperparameter)")
    churn.add_argument("--model-type", help="redshift: xgboost, mlp or linear_learner (AUTO ON); xgboost (AUTO OFF)")
    churn.add_argument("--problem-type", help="redshift, AUTO ON: binary_classification (the default)")
    churn.add_argument("--objective", help="redshift: Accuracy, F1 or AUC (AUTO ON); binary:logistic or binary:hinge (AUTO OFF)")
    churn.add_argument("--hyperparameter", action="append", default=[], metavar="KEY=VALUE",
                       help="redshift, AUTO OFF: an XGBoost hyperparameter, e.g. num_round=100 (repeatable)")
    churn.add_argument("--timeout", type=float, default=4 * 3600, help="seconds to wait for READY")
    churn.add_argument("--poll", type=float, default=60, help="seconds between status checks")
    churn.add_argument("--json", action="store_true")

    local = sub.add_parser("local", help="the local MongoDB-wire server")
    local.add_argument("--home", type=Path, default=Path("data/mongo"), help="data, pid and log folder")
    local.add_argument("--port", type=int, default=27027)
    lsub = local.add_subparsers(dest="action", required=True, parser_class=_OneLineParser)
    lsub.add_parser("start", help="start in the background (no-op if running)")
    lsub.add_parser("stop", help="stop it")
    lsub.add_parser("status", help="say whether it runs, and its URI")
    seed = lsub.add_parser("seed", help="fill operations.customer_activity with generated documents")
    seed.add_argument("--docs", type=int, default=10_000)
    seed.add_argument("--seed", type=int, default=42)
    seed.add_argument("--database", default="operations")
    seed.add_argument("--collection", default="customer_activity")
    return p


def _warehouse_arguments(parser: argparse.ArgumentParser, destinations: str) -> None:
    parser.add_argument("--destination", default="local", help=destinations)
    parser.add_argument("--warehouse", type=Path, default=Path("data/warehouse.duckdb"), help="DuckDB file for --destination local")
    parser.add_argument("--dataset", default="raw_atlas", help="schema of the raw tables and _atlas_runs (local, redshift)")


def _cmd_run(args: argparse.Namespace) -> int:
    from ingestion.config import DestinationConfig, RunConfig, mongodb_uri
    from ingestion.ops.run import run

    remember_dlt_secrets()
    uri = mongodb_uri(args.uri)
    remember_uri(uri)
    config = RunConfig(
        uri=uri,
        database=args.database,
        collections=None if args.collections is None else [c.strip() for c in args.collections.split(",") if c.strip()],
        destination=DestinationConfig(
            name=args.destination, warehouse=args.warehouse, dataset=args.dataset,
            bucket_url=args.bucket_url, prefix=args.prefix, file_format=args.file_format,
        ),
        pipelines_dir=args.pipelines_dir,
        batch_docs=args.batch_docs,
        sample_size=args.sample_size,
        schema_dir=args.schema_dir,
        follow=args.follow,
        resync=args.resync,
        flush_interval_s=args.flush_interval,
        overrides={
            "mode": args.mode, "cursor_field": args.cursor_field, "filter": args.filter,
            "projection": args.projection, "write_disposition": args.write_disposition, "workers": args.workers,
            "lookback_seconds": args.lookback_seconds, "deletes": args.deletes, "detect_deletes": args.detect_deletes, "on_token_lost": args.on_token_lost,
            "checkpoint_docs": args.checkpoint_docs,
        },
    )
    if sys.stderr.isatty() and not (args.no_progress or args.json or args.log_format == "json"):
        progress.enable(sys.stderr)
    try:
        summary = run(config)
    except IngestError as exc:
        if exc.summary is not None:
            _print_summary(exc.summary, args.json)  # what loaded, then the error line
        raise
    _print_summary(summary, args.json)
    return 0


def _print_summary(summary: "RunSummary", as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary.as_dict(), default=str))
        return
    print(f"pipeline {summary.pipeline}: loaded into {summary.destination} dataset {summary.dataset} in {summary.elapsed_s:.2f} s "
          f"(run {summary.run_id}, recorded in {summary.dataset}._atlas_runs)")
    for t in summary.tables:
        notes = [f"{t.quarantined} quarantined (see {summary.dataset}._atlas_quarantine)"] if t.quarantined else []
        if t.new_columns and not t.first_load:
            notes.append(f"new columns {', '.join(t.new_columns)}")
        if t.variant_columns:
            notes.append(f"type drift into {', '.join(t.variant_columns)}")
        if t.widened_columns:
            notes.append(f"widened {', '.join(t.widened_columns)}")
        if t.schema_changes:
            notes.append(f"schema: {t.schema_changes}")
        if t.mode == "cdc":
            read = f"{t.snapshot_docs} snapshot documents, {t.events} change events ({t.deletes} deletes)"
            for reason in t.resyncs:
                notes.append(f"RESYNC: {reason}")
        else:
            read = f"{t.documents_read} documents read"
            if t.deletes:
                notes.append(f"{t.deletes} deleted documents detected")
        extra = f" ({'; '.join(notes)})" if notes else ""
        print(f"  {t.collection} -> {summary.dataset}.{t.table} [{t.mode}]: {read}, {t.rows_loaded} rows loaded{extra}")
        if t.reconciliation is not None:
            print(f"    reconciliation: {t.reconciliation.status}: {t.reconciliation.describe()}")
        for w in t.warnings:
            print(f"  warning: {w}")
    for collection, error in summary.failed.items():
        print(f"  {collection}: FAILED: {error}")


def _cmd_status(args: argparse.Namespace) -> int:
    from ingestion.config import DestinationConfig
    from ingestion.ops.status import last_runs, table

    remember_dlt_secrets()
    statuses = last_runs(DestinationConfig(name=args.destination, warehouse=args.warehouse, dataset=args.dataset), args.database)
    if args.json:
        print(json.dumps([s.as_dict() for s in statuses]))
    elif not statuses:
        print(f"no runs recorded in {args.dataset}._atlas_runs")
    else:
        print("\n".join(table(statuses)))
    unhealthy = any(s.status == "failed" or s.reconciliation == "diverged" for s in statuses)
    return 8 if args.check and unhealthy else 0


def _cmd_scaffold(args: argparse.Namespace) -> int:
    from ingestion.scaffold import scaffold

    collections = [c.strip() for c in args.collections.split(",") if c.strip()] if args.collections else None
    report = scaffold(args.database, args.schema_dir, args.project_dir, collections, args.max_depth)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 0


def _cmd_churn(args: argparse.Namespace) -> int:
    from ingestion.ml.churn import ChurnConfig, drop, redshift_state, train

    remember_dlt_secrets()
    config = ChurnConfig(
        model_name=args.model_name, feature_set=args.feature_set, cutoff=args.cutoff, target=args.target,
        replace=args.replace, warehouse=args.warehouse,
        schema=args.schema or (os.environ.get("REDSHIFT_SCHEMA", "analytics") if args.target == "redshift" else "analytics"),
        iam_role=args.iam_role,
        s3_bucket=args.s3_bucket, max_runtime=args.max_runtime, timeout_s=args.timeout, poll_s=args.poll,
        auto=args.auto == "on", model_type=args.model_type, problem_type=args.problem_type, objective=args.objective,
        hyperparameters=_key_values(args.hyperparameter, "--hyperparameter"),
    ).validate()
    if args.action == "train":
        result = train(config)
        print(json.dumps(result) if args.json else
              f"trained churn model {result['model_name']} ({result['feature_set']} features, {result['target']}) "
              f"in {result['training_seconds']} s; score it with: "
              f"dbt build --select +churn_predictions+ +ml_model_metrics --vars '{{churn_model_name: {result['model_name']}}}'")
    elif args.action == "drop":
        drop(config)
        print(f"dropped churn model {config.model_name} ({config.target})")
    elif args.target == "redshift":
        print(f"churn model {config.model_name}: {redshift_state(config)}")
    else:
        import duckdb

        with duckdb.connect(str(config.warehouse), read_only=True) as con:
            try:
                rows = con.sql(f"select * from {config.registry_schema}.churn_model_registry where model_name = ?",
                               params=[config.model_name]).fetchall()
            except duckdb.CatalogException:
                rows = []
        print(f"churn model {config.model_name}: {'READY' if rows else 'MISSING'} (local)")
        return 0 if rows else 1
    return 0


def _key_values(items: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise ConfigError(f"{flag} takes KEY=VALUE, got '{item}'")
        pairs[key.strip().lower()] = value.strip()
    return pairs


def _cmd_local(args: argparse.Namespace) -> int:
    from ingestion.local.server import LocalServer

    server = LocalServer(home=args.home, port=args.port)
    if args.action == "start":
        started = server.start()
        print(f"local server {'started' if started else 'already running'} at {server.uri}")
    elif args.action == "stop":
        print("local server stopped" if server.stop() else "local server was not running")
    elif args.action == "status":
        pid = server.running_pid()
        if pid is None:
            print("local server is not running")
            return 1
        print(f"local server running (pid {pid}) at {server.uri}")
    elif args.action == "seed":
        from pymongo import MongoClient

        from ingestion.local.seed import seed_collection

        if args.docs < 0:
            raise ConfigError("--docs must be zero or more")
        if server.running_pid() is None:
            raise ConfigError("local server is not running: run 'atlas-ingest local start' first")
        with MongoClient(server.uri) as client:
            n = seed_collection(client, args.docs, args.seed, args.database, args.collection)
        print(f"seeded {n} documents into {args.database}.{args.collection} (seed {args.seed})")
    return 0


def _configure_logging(args: argparse.Namespace) -> None:
    from ingestion.logs import LOG_FORMATS, configure

    log_format = getattr(args, "log_format", "text")
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"unknown --log-format '{log_format}': choose one of {', '.join(LOG_FORMATS)}")
    level = getattr(args, "log_level", None) or ("info" if getattr(args, "follow", False) or log_format == "json" else "warning")
    if level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"unknown --log-level '{level}': choose debug, info, warning or error")
    configure(log_format, level)


def _error_line(args: argparse.Namespace, message: str, exit_code: int) -> str:
    if getattr(args, "log_format", "text") == "json":
        return json.dumps({"level": "error", "message": message, "exit_code": exit_code})
    return f"atlas-ingest: error: {message}"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    remember_known_secrets(extra=arguments)  # before parsing: argparse echoes arguments in its errors
    with _redacted_output():
        return _main(arguments)


@contextmanager
def _redacted_output() -> Iterator[None]:
    """stdout and stderr redacted while a command runs: usage errors, summaries, logs, progress and
    tracebacks."""
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(streams[0]), RedactingStream(streams[1])
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        _configure_logging(args)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "churn":
            return _cmd_churn(args)
        if args.command == "scaffold":
            return _cmd_scaffold(args)
        if args.command == "status":
            return _cmd_status(args)
        return _cmd_local(args)
    except IngestError as exc:
        print(_error_line(args, redact(str(exc)), exc.exit_code), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("atlas-ingest: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        unreadable = _unreadable_toml(exc)
        if unreadable is None:
            traceback.print_exc(file=sys.stderr)  # through the redacting stream
            return 1
        print(_error_line(args, unreadable, ConfigError.exit_code), file=sys.stderr)
        return ConfigError.exit_code


def _unreadable_toml(exc: Exception) -> str | None:
    """The one-line error for a .dlt/config.toml or secrets.toml that is not valid TOML (dlt raises
    it from wherever the file is first read), else None."""
    from dlt.common.configuration.providers.toml import TomlProviderReadException

    if not isinstance(exc, TomlProviderReadException):
        return None
    detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
    return f"cannot read .dlt/{exc.file_name}: {redact(detail)}; fix the TOML syntax there"


if __name__ == "__main__":
    sys.exit(main())
