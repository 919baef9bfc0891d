"""Every statement the project sends to Redshift, compiled offline and checked with sqlfluff."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from redshift_contract.check import check_directory, check_sql, split_statements
from redshift_contract.compile import OPERATIONS
from tests.conftest import REPO, copy_dbt_project

OUTPUT = REPO / "target" / "redshift_sql"


def compile_offline(project_dir: Path, output: Path, profiles_dir: Path, models_only: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DBT_PROFILES_DIR": str(profiles_dir), "DBT_USE_COLORS": "false"}
    return subprocess.run(
        [sys.executable, "-m", "redshift_contract.compile", "--project-dir", str(project_dir), "--output", str(output),
         *(["--models-only"] if models_only else [])],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=600,
    )


@pytest.fixture(scope="module")
def profiles_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("profiles")
    shutil.copy(REPO / "profiles.yml.example", d / "profiles.yml")
    return d


@pytest.fixture(scope="module")
def compiled(profiles_dir) -> dict:
    """`make compile-redshift` into the repo's target/redshift_sql (no network, no cluster)."""
    result = compile_offline(REPO, OUTPUT, profiles_dir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((OUTPUT / "index.json").read_text())


def test_every_file_parses_and_passes_the_redshift_checks(compiled):
    findings = check_directory(OUTPUT)
    assert not findings, "\n".join(map(str, findings))


def test_every_project_node_has_its_redshift_sql(compiled):
    manifest = json.loads((REPO / "target" / "redshift_offline" / "manifest.json").read_text())
    nodes = {
        uid for uid, n in manifest["nodes"].items()
        if n["package_name"] == "atlas_analytics" and n["resource_type"] in ("model", "seed", "snapshot", "test")
        and n["config"].get("enabled", True)
    }
    assert nodes, "the manifest lists no nodes"
    missing = sorted(nodes - set(compiled["nodes"]))
    assert not missing, f"nodes without compiled Redshift SQL: {missing}"
    for rel in compiled["nodes"].values():
        assert (OUTPUT / rel).read_text().strip(), rel


def test_every_project_macro_is_compiled_through_a_node_or_an_operation(compiled):
    manifest = json.loads((REPO / "target" / "redshift_offline" / "manifest.json").read_text())
    macros = {m["name"]: m for m in manifest["macros"].values() if m["package_name"] == "atlas_analytics"}
    deps = {name: [d.rsplit(".", 1)[-1] for d in m["depends_on"]["macros"]] for name, m in macros.items()}
    seen: set[str] = set()
    # Nodes disabled by default (the landing-zone staging, built with atlas_source: spectrum) count too:
    # make compile-redshift compiles them in their own pass.
    disabled = [n for versions in manifest.get("disabled", {}).values() for n in versions]
    todo = [d.rsplit(".", 1)[-1] for n in [*manifest["nodes"].values(), *disabled] if n["package_name"] == "atlas_analytics"
            for d in n.get("depends_on", {}).get("macros", [])]
    todo += [name for _, name, _ in OPERATIONS]
    # Unit tests do not run offline (the stand-in driver returns no rows to compare), so macros
    # that only unit-test fixtures call are not compiled for Redshift: they are named here, and
    # must stay fixture-only.
    fixture_only = {"json_literal"}
    fixture_text = "".join(p.read_text() for p in (REPO / "tests" / "fixtures").glob("*.sql"))
    for name in fixture_only:
        assert name in fixture_text and not [d for d in todo if d == name], name
        seen.update({name, f"redshift__{name}", f"default__{name}"})
    # Macros only generated models call (atlas-ingest scaffold): compiled for Redshift by
    # tests/e2e/test_scaffold.py on a project with generated models.
    # The macros they call in turn are followed like any others.
    scaffold_only = {"json_child", "unnest_json_object", "landed_value", "landed_array", "landed_object", "landed_key",
                     "landed_entry", "landed_json"}
    scaffold_text = "".join(p.read_text() for p in (REPO / "ingestion" / "scaffold").glob("*.py"))
    for name in scaffold_only:
        assert name in scaffold_text and not [d for d in todo if d == name], name
    todo += sorted(scaffold_only)
    while todo:
        name = todo.pop()
        if name in seen or name not in macros:
            continue
        seen.add(name)
        todo += deps.get(name, [])
        # adapter.dispatch resolves at run time (the redshift/default variants run on Redshift), and
        # project macros called by package-qualified name are found in the macro's text.
        todo += [f"redshift__{name}", f"default__{name}"]
        todo += re.findall(r"atlas_analytics\.(\w+)\(", macros[name]["macro_sql"])
    unreached = sorted(
        name for name in macros
        if name not in seen and not name.startswith("duckdb_")
        and not (name.startswith("default__") and f"redshift__{name[len('default__'):]}" in macros)
    )
    assert not unreached, f"macros whose Redshift SQL is never compiled: {unreached}"


def test_staging_uses_super_navigation_and_late_binding_views(compiled):
    sql = (OUTPUT / "models/staging/atlas/stg_atlas__customer_activity.sql").read_text()
    assert "cast(source.usage.day.minutes as double precision)" in sql
    assert "get_array_length(source.service_calls)" in sql
    assert "convert_timezone('UTC', source.record_date)" in sql
    assert "json_extract" not in sql
    assert re.search(r"\)\s*with no schema binding;", sql)


def test_a_duckdb_only_function_fails_naming_the_model_and_line(profiles_dir, tmp_path):
    project = copy_dbt_project(tmp_path / "project")
    model = project / "models/intermediate/int_customer_activity__tutorial_columns.sql"
    model.write_text(model.read_text().replace(
        "cast(phone as varchar(8)) as phone,", "cast(phone as varchar(8)) as phone,\n        list_sort(list_value(1, 2)) as oops,"
    ))
    out = tmp_path / "redshift_sql"
    result = compile_offline(project, out, profiles_dir, models_only=True)
    assert result.returncode == 0, result.stderr[-2000:]
    findings = check_directory(out)
    hits = [f for f in findings if f.file == "models/intermediate/int_customer_activity__tutorial_columns.sql"]
    assert {"function 'list_sort' is not a Redshift function", "function 'list_value' is not a Redshift function"} <= {f.message for f in hits}
    compiled_lines = (out / "models/intermediate/int_customer_activity__tutorial_columns.sql").read_text().splitlines()
    for f in hits:
        assert "list_sort(list_value(1, 2)) as oops" in compiled_lines[f.line - 1]
    assert all(f.file.startswith("models/intermediate/") for f in findings)


@pytest.mark.parametrize(
    "sql, message",
    [
        ("select json_extract_string(customer, '$.state') from t", "function 'json_extract_string' is not a Redshift function"),
        ("select customer->>'state' from t", "DuckDB-only syntax '->>'"),
        ("select try_cast(x as int) from t", "function 'try_cast' is not a Redshift function"),
        ("create view v as select 1 as x", "view is not late-binding"),
        ("select from where", "unparsable"),
    ],
)
def test_checks_catch_constructs_redshift_rejects(sql, message):
    findings = check_sql("models/x.sql", sql + ";\n")
    assert any(message in f.message for f in findings), findings
    assert all(f.line == 1 for f in findings)


def test_statements_that_need_autocommit_are_refused_inside_a_transaction():
    sql = "BEGIN;\n\ncreate external table spectrum.t (a int) stored as parquet location 's3://b/p/';\n\nCOMMIT;\n"
    findings = check_sql("operations/x.sql", sql)
    assert [(f.line, "cannot run inside a transaction block" in f.message) for f in findings] == [(3, True)]
    assert not [f for f in check_sql("operations/x.sql", sql.replace("BEGIN;\n\n", "")) if "transaction" in f.message]


def test_truncate_inside_a_transaction_is_refused():
    findings = check_sql("x.sql", "TRUNCATE TABLE t;\nINSERT INTO t SELECT * FROM s;\n")
    assert any("TRUNCATE commits" in f.message for f in findings)
    assert not check_sql("x.sql", "DELETE FROM t WHERE 1=1;\nINSERT INTO t SELECT * FROM s;\n")


def test_ingestion_loads_nested_data_as_super_through_copy_json(compiled):
    assert set(compiled["ingestion"]) == {"full_load", "incremental_merge", "cdc_merge", "widen_column"}
    full = (OUTPUT / compiled["ingestion"]["full_load"]).read_text()
    table = re.search(r'CREATE TABLE "raw_atlas_staging"."customer_activity" \((.*?)\);', full, re.DOTALL)
    assert table, "no staging table DDL recorded"
    ddl = table.group(1)
    for nested in ("customer", "plans", "usage", "billing", "service_calls"):
        assert re.search(rf'"{nested}" super', ddl), nested
    assert re.search(r'"_id" varchar\(512\) DISTKEY NOT NULL', ddl)
    assert re.search(r'"_atlas_extracted_at" timestamp with time zone SORTKEY', ddl)
    assert re.search(r'"record_date" timestamp with time zone', ddl)
    copies = re.findall(r"COPY \"raw_atlas_staging\".\"customer_activity\"(.*?)MAXERROR 0", full, re.DOTALL)
    assert copies, "no COPY recorded"
    for copy in copies:
        # JSON 'auto' puts nested objects into SUPER as objects (parquet strings would stay strings).
        assert "FORMAT AS JSON 'auto'" in copy and "GZIP" in copy
        assert "IAM_ROLE 'arn:aws:iam::" in copy and "aws_secret_access_key" not in copy
    # The replace swaps in the staged rows with DELETE, which stays inside the transaction: the
    # DELETE and the INSERT from staging go in one statement string (one line apart, as recorded),
    # which Redshift runs as one transaction, so a failure of either leaves the previous table.
    assert 'DELETE FROM "raw_atlas"."customer_activity"' in full and "TRUNCATE" not in full
    assert re.search(r'DELETE FROM "raw_atlas"\."customer_activity" WHERE 1=1;\nINSERT INTO "raw_atlas"\."customer_activity"\(.*\) '
                     r'SELECT .* FROM "raw_atlas_staging"\."customer_activity";', full), "the replace is not one statement"
    swap = full.index('DELETE FROM "raw_atlas"."customer_activity"')
    staged = full.rindex('COPY "raw_atlas_staging"."customer_activity"', 0, swap)
    assert "COMMIT;" in full[staged:swap] and "BEGIN;" not in full[full.rindex("COMMIT;", 0, swap):swap]
    merge = (OUTPUT / compiled["ingestion"]["incremental_merge"]).read_text()
    assert re.search(r'DELETE FROM "raw_atlas"."customer_activity" WHERE EXISTS .*"_id" = ', merge)


def test_a_bigint_column_is_widened_to_double_precision_in_one_transaction(compiled):
    sql = (OUTPUT / compiled["ingestion"]["widen_column"]).read_text()
    table, new = '"raw_atlas"."readings"', '"value__atlas_widened"'
    steps = [
        f"alter table {table} add column {new} double precision",
        f'update {table} set {new} = "value"',
        f'alter table {table} drop column "value"',
        f'alter table {table} rename column {new} to "value"',
    ]
    positions = [sql.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), positions
    # before the COPY of the rows that need the wider type, and inside one transaction
    assert positions[-1] < sql.find('COPY "raw_atlas_staging"."readings"')
    begin = sql.rfind("BEGIN", 0, positions[0])
    assert begin != -1 and "COMMIT" not in sql[begin:positions[-1]] and "COMMIT" in sql[positions[-1]:]
    assert 'drop table if exists "raw_atlas_staging"."readings"' in sql


def test_cdc_merge_applies_hard_deletes_and_sweeps_by_snapshot(compiled):
    cdc = (OUTPUT / compiled["ingestion"]["cdc_merge"]).read_text()
    assert re.search(r'"_atlas_deleted" boolean', cdc) and re.search(r'"_atlas_snapshot_id" varchar', cdc)
    # Rows flagged deleted remove their target row and are not inserted.
    assert re.search(r'"_atlas_deleted" IS NULL OR "_atlas_deleted" = False', cdc), \
        "merge without the hard-delete condition"
    assert re.search(r'delete from "raw_atlas"."customer_activity" where "_atlas_snapshot_id" is null or "_atlas_snapshot_id" <> \'\d+\.\d+\'', cdc)


def test_no_super_value_is_inserted_without_json_parse(compiled):
    for rel in compiled["ingestion"].values():
        sql = (OUTPUT / rel).read_text()
        super_tables = {m.group(1) for m in re.finditer(r'CREATE TABLE (\S+) \((?:(?!\);).)*? super', sql, re.DOTALL)}
        for table in super_tables:
            for insert in re.findall(rf"INSERT INTO {re.escape(table)}\b[^;]*VALUES[^;]*;", sql):
                assert "json_parse" in insert.lower(), f"{rel}: SUPER value inserted as a string: {insert[:200]}"


def test_string_literals_do_not_trigger_checks():
    assert check_sql("m.sql", "select 'a->>b' as x, 'list_value(1)' as y;\n") == []


def test_statement_lines_are_counted_across_statements():
    sql = "select 1;\n\nselect\n  2;\n\n\nselect 3;\n"
    assert [line for line, _ in split_statements(sql)] == [1, 3, 7]


def test_churn_model_sql_runs_only_as_explicit_operations(compiled):
    assert {"create_churn_model", "churn_model_status", "register_churn_model", "drop_churn_model"} <= set(compiled["operations"])
    create = (OUTPUT / compiled["operations"]["create_churn_model"]).read_text()
    assert re.search(r"create model analytics_ml\.churn_model\s+from \(", create)
    assert "target churn" in create and "function predict_churn_model" in create and "iam_role default" in create
    assert "settings (s3_bucket 'offline-ml-bucket', max_cells 1000000, max_runtime 5400)" in create
    # AUTO ON: Autopilot's objective, no hyperparameters
    assert "problem_type binary_classification" in create and "objective 'AUC'" in create
    assert "hyperparameters" not in create and "auto off" not in create
    assert "show model analytics_ml.churn_model" in create  # checks for an existing model first
    assert "drop model if exists analytics_ml.churn_model" in (OUTPUT / compiled["operations"]["drop_churn_model"]).read_text()
    # `dbt build` never trains: no model, test or seed sends CREATE MODEL.
    for rel in compiled["nodes"].values():
        assert not re.search(r"\bcreate\s+model\b", (OUTPUT / rel).read_text(), re.I), rel


def test_create_model_auto_off_is_xgboost_over_numeric_inputs_and_a_0_1_target(compiled):
    create = (OUTPUT / compiled["operations"]["create_churn_model__auto_off"]).read_text()
    assert "auto off" in create and "model_type xgboost" in create and "objective 'binary:logistic'" in create
    assert "hyperparameters default except (num_round '100', max_depth '6', eta '0.2')" in create
    assert "problem_type" not in create
    assert "case when intl_plan = 'yes' then 1 else 0 end as intl_plan" in create
    assert "case when churn = 'True.' then 1 else 0 end as churn" in create
    assert not re.search(r"^\s*state,", create, re.M)  # text: left out of AUTO OFF's inputs
    assert "settings (s3_bucket 'offline-ml-bucket', max_runtime 5400)" in create


@pytest.mark.parametrize("clauses, problem", [
    ("model_type xgboost objective 'AUC' hyperparameters default except (num_round '100') settings (s3_bucket 'b')",
     "HYPERPARAMETERS belong to AUTO OFF"),
    ("auto off model_type xgboost objective 'AUC' hyperparameters default except (num_round '100') settings (s3_bucket 'b')",
     "AUTO OFF needs an XGBoost OBJECTIVE"),
    ("auto off model_type xgboost objective 'binary:logistic' settings (s3_bucket 'b')", "NUM_ROUND"),
    ("auto off model_type mlp objective 'binary:logistic' hyperparameters default except (num_round '9') settings (s3_bucket 'b')",
     "AUTO OFF needs MODEL_TYPE XGBOOST"),
    ("auto off model_type xgboost problem_type binary_classification objective 'binary:logistic' "
     "hyperparameters default except (num_round '9') settings (s3_bucket 'b')", "AUTO OFF takes no PROBLEM_TYPE"),
    ("problem_type binary_classification objective 'binary:logistic' settings (s3_bucket 'b')", "AUTO ON OBJECTIVE"),
    ("model_type kmeans settings (s3_bucket 'b')", "AUTO ON MODEL_TYPE"),
    ("problem_type binary_classification settings (max_runtime 5400)", "S3_BUCKET"),
])
def test_the_contract_check_rejects_create_model_combinations_the_grammar_does_not_allow(clauses, problem):
    sql = f"create model s.m from (select a, b from t) target b function f iam_role default {clauses};\n"
    assert any(problem in f.message for f in check_sql("op.sql", sql)), check_sql("op.sql", sql)


def test_the_contract_check_accepts_both_documented_forms():
    on = ("create model s.m from (select a, b from t) target b function f iam_role default model_type xgboost "
          "problem_type binary_classification objective 'F1' settings (s3_bucket 'b', max_runtime 5400);\n")
    off = ("create model s.m from (select a, b from t) target b function f iam_role default auto off model_type xgboost "
           "objective 'binary:logistic' hyperparameters default except (num_round '100', eta '0.2') settings (s3_bucket 'b');\n")
    assert [f.message for f in check_sql("on.sql", on) + check_sql("off.sql", off) if "CREATE MODEL" in f.message
            or "AUTO" in f.message or "HYPERPARAMETERS" in f.message] == []


def test_churn_predictions_call_the_prediction_functions(compiled):
    sql = (OUTPUT / "models/ml/churn_predictions.sql").read_text()
    assert "analytics_ml.predict_churn_model(state, account_length" in sql
    assert "analytics_ml.predict_churn_model_probabilities(state, account_length" in sql
    assert "scored.churn_model_output.labels[0]" in sql


def test_external_tables_are_created_once_and_partitions_added_in_batches(compiled):
    first = (OUTPUT / compiled["operations"]["stage_external_sources"]).read_text()
    again = (OUTPUT / compiled["operations"]["stage_external_sources__table_exists"]).read_text()
    assert re.search(r"create external schema if not exists atlas_landing from data catalog database 'atlas_landing' "
                     r"iam_role 'arn:aws:iam::\d{12}:role/[^']+' create external database if not exists", first)
    assert "create external table atlas_landing.customer_activity (" in first
    assert "array<struct<opened_at:varchar(40),reason:varchar(32),channel:varchar(16),resolved:boolean>>" in first
    assert "partitioned by (load_date date)" in first and "row format serde 'org.openx.data.jsonserde.JsonSerDe'" in first
    partitions = re.findall(r"partition \(load_date='(\d{4}-\d{2}-\d{2})'\) location '([^']+)'", again)
    assert [d for d, _ in partitions] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert all(loc.endswith(f"/customer_activity/load_date={d}/") for d, loc in partitions)
    assert again.count("alter table atlas_landing.customer_activity add if not exists") == 1  # one batch
    # Once the table exists, staging again adds partitions and recreates nothing.
    assert "create external table" not in again and "drop table" not in again


def test_malformed_partition_statement_is_caught():
    assert check_sql("x.sql", "alter table s.t add if not exists partition (d='1') location 's3://b/p/';\n") == []
    bad = check_sql("x.sql", "alter table s.t add if not exists partition (d=1) location '/tmp';\n")
    assert [f.message for f in bad] == ["malformed ALTER TABLE ... ADD PARTITION for Spectrum"]


def test_spectrum_staging_reads_the_external_table_with_nested_navigation(compiled):
    sql = (OUTPUT / "models/staging/spectrum/stg_spectrum__customer_activity.sql").read_text()
    assert 'from "dev"."atlas_landing"."customer_activity" as landed' in sql
    assert "cast(landed.usage.day.minutes as double precision)" in sql
    assert "(select count(*) from landed.service_calls as element)" in sql
    calls = (OUTPUT / "models/staging/spectrum/stg_spectrum__customer_activity_service_calls.sql").read_text()
    assert ", landed.service_calls as service_call at service_call_index" in calls


def test_documents_over_redshift_limits_are_quarantined_before_copy(tmp_path):
    """Through the offline Redshift load path (a real run, psycopg2 recording, staged files on the
    S3-compatible server): each document Redshift would refuse is in the quarantine file with the
    limit it broke, the COPY'd file holds every other one, and no column only they had is created."""
    import gzip

    import boto3
    from bson import Binary
    from pymongo import MongoClient

    from ingestion.config import DestinationConfig, RunConfig
    from ingestion.ops.run import run
    from redshift_contract.offline_load import OFFLINE_BUCKET, offline_redshift, recording

    docs = [
        {"_id": "ok", "s": "short", "nested": {"a": "b"}, "blob": Binary(b"\1" * 49_149)},  # 65,532 base64 chars
        {"_id": "at_limit", "s": "z" * 65_535},
        {"_id": "long_text", "s": "é" * 40_000},  # 40,000 characters, 80,000 bytes
        {"_id": "nested_long", "nested": {"deep": [{"k": "x" * 70_000}]}},
        {"_id": "big_binary", "blob": Binary(b"\0" * 50_000)},
        {"_id": "long_name", "k" * 130: 1},
        {"_id": "big_row", "parts": ["y" * 60_000] * 80},
        {"_id": "wide", **{f"f{i}": i for i in range(1_700)}},
    ]
    log: list[str] = []
    with offline_redshift(tmp_path) as (uri, endpoint), recording(log):
        with MongoClient(uri) as client:
            client["operations"]["limits"].insert_many(docs)
        summary = run(RunConfig(uri=uri, database="operations", collections=["limits"],
                                destination=DestinationConfig(name="redshift", bucket_url=f"s3://{OFFLINE_BUCKET}"),
                                pipelines_dir=tmp_path / "pipelines"))
        s3 = boto3.client("s3", endpoint_url=endpoint)

        def staged(table: str) -> list[dict]:
            [copy] = [q for q in log if re.match(rf'\s*COPY "raw_atlas(_staging)?"."{table}"', q)]
            key = re.search(rf"FROM 's3://{OFFLINE_BUCKET}/([^']+)'", copy).group(1)
            body = s3.get_object(Bucket=OFFLINE_BUCKET, Key=key)["Body"].read()
            return [json.loads(line) for line in gzip.decompress(body).splitlines()]

        loaded = staged("limits")
        quarantined = {row["document_id"]: row["reason"] for row in staged("_atlas_quarantine")}
    [table] = summary.tables
    assert (table.documents_read, table.rows_loaded, table.quarantined) == (8, 2, 6)
    assert sorted(row["_id"] for row in loaded) == ["at_limit", "ok"]
    assert "over the 65,535-byte limit of Redshift strings" in quarantined["long_text"] and "80,000 bytes" in quarantined["long_text"]
    assert "inside the nested value" in quarantined["nested_long"]
    assert "66,668 bytes" in quarantined["big_binary"] and "base64" in quarantined["big_binary"]
    assert "over the 127-byte limit of Redshift identifiers" in quarantined["long_name"]
    assert "over the 4,194,304-byte limit of Redshift rows" in quarantined["big_row"]
    assert "over the 1,600-column limit of Redshift tables" in quarantined["wide"]
    creates = [m.group(0) for q in log for m in re.finditer(r'CREATE TABLE "raw_atlas(_staging)?"."limits" \(.*?\);', q, re.DOTALL)]
    assert creates and '"blob"' in creates[0]
    # (a row over 4 MB is only measured as it is written: its columns exist, empty)
    assert not any('"f0"' in q or "kkkk" in q for q in creates)


def test_a_landing_zone_build_registers_the_recent_partitions_itself(compiled):
    """`dbt build --vars '{atlas_source: spectrum}'` stages the external tables for the last 7 load
    dates before the models run, so a scheduled build sees what ingestion landed since."""
    from datetime import datetime, timedelta, timezone

    sql = (OUTPUT / compiled["operations"]["spectrum_run_start"]).read_text()
    today = datetime.now(timezone.utc).date()
    expected = [(today - timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
    statement = re.search(r"alter table atlas_landing\.customer_activity add if not exists (.*?);", sql, re.DOTALL)
    assert statement, sql[:2000]
    assert re.findall(r"partition \(load_date='(\d{4}-\d{2}-\d{2})'\)", statement.group(1)) == expected
