"""Churn model: the local twin trained and scored through dbt, and the Redshift polling logic."""

from __future__ import annotations

import csv
import json

import duckdb
import pytest
from pymongo import MongoClient

from ingestion.errors import ConfigError
from ingestion.local.generator import SIGNAL
from ingestion.local.seed import seed_collection
from ingestion.ml import churn
from ingestion.ml.churn import ChurnConfig, TrainingError
from tests.conftest import REPO, run_cli, run_dbt

DOCS = 10_000
SHARED_PHONE, SHARED_PHONE_DOCS = "555-0100", 40


@pytest.fixture(scope="module")
def trained(mongo_server, tmp_path_factory):
    """10,000 generated documents, ingested and built; both feature sets trained and scored."""
    work = tmp_path_factory.mktemp("churn")
    warehouse = work / "w.duckdb"
    with MongoClient(mongo_server.uri) as client:
        seed_collection(client, DOCS, seed=42, database="churndb")
        # as in the tutorial's own data, customer records that share a phone
        shared = [doc["_id"] for doc in client["churndb"]["customer_activity"].find({}, {"_id": 1}).limit(SHARED_PHONE_DOCS)]
        client["churndb"]["customer_activity"].update_many({"_id": {"$in": shared}}, {"$set": {"customer.phone": SHARED_PHONE}})
    assert run_cli("run", "--uri", mongo_server.uri, "--database", "churndb", "--collections", "customer_activity",
                   "--warehouse", str(warehouse), "--pipelines-dir", str(work / "p")).returncode == 0
    first = run_dbt("build", warehouse=warehouse, target_path=work / "target")
    assert first.returncode == 0, first.stdout[-3000:]
    assert "churn_predictions" not in first.stdout  # nothing about the model runs on a plain build
    # the production feature model knows nothing of the generator; its evaluation is not built
    with duckdb.connect(str(warehouse), read_only=True) as con:
        production = {
            "feature_columns": {c for (c,) in con.sql("select column_name from information_schema.columns "
                                                      "where table_name = 'ml_churn_features'").fetchall()},
            "tables": {t for (t,) in con.sql("select table_name from information_schema.tables").fetchall()},
        }
    env = {"DBT_PROFILES_DIR": str(work / "target" / "profiles"), "DBT_DUCKDB_PATH": str(warehouse)}
    results = {}
    for name, feature_set in (("churn_extended", "extended"), ("churn_tutorial", "tutorial")):
        r = run_cli("churn", "train", "--model-name", name, "--feature-set", feature_set, "--warehouse", str(warehouse),
                    "--json", env=env)
        assert r.returncode == 0, r.stderr
        results[name] = json.loads(r.stdout)
        # generated data: the evaluation against the planted probabilities is built too
        scored = run_dbt("build", "--select", "+churn_predictions+", "+ml_model_metrics",
                         "--vars", json.dumps({"churn_model_name": name, "churn_evaluation": True}), warehouse=warehouse,
                         target_path=work / "target")
        assert scored.returncode == 0, scored.stdout[-3000:]
    return warehouse, results, env, production


def metrics(warehouse, model):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cols = [c for (c,) in con.sql("select column_name from information_schema.columns where table_name = 'ml_model_metrics' "
                                      "order by ordinal_position").fetchall()]
        row = con.sql("select * from analytics_ml.ml_model_metrics where model_name = ?", params=[model]).fetchone()
    return dict(zip(cols, row))


def test_every_customer_after_the_cutoff_is_scored(trained):
    warehouse, _, _, _ = trained
    with duckdb.connect(str(warehouse), read_only=True) as con:
        held_out = con.sql("select count(*) from analytics.customer_activity where record_date >= date '2020-01-01'").fetchone()[0]
        predictions = con.sql("select count(*), count(distinct customer_activity_id), count(churn_probability), "
                              "min(churn_probability), max(churn_probability) from analytics_ml.churn_predictions").fetchone()
        by_state = con.sql("select sum(scored_customers) from analytics_ml.ml_churn_by_state").fetchone()[0]
    assert held_out > 5_000
    assert predictions[:3] == (held_out, held_out, held_out)
    assert 0 < predictions[3] < predictions[4] < 1
    assert by_state == held_out


def test_predictions_key_on_the_document_not_the_phone(trained):
    warehouse, _, _, production = trained
    with duckdb.connect(str(warehouse), read_only=True) as con:
        shared = con.sql("select count(*), count(distinct customer_activity_id) from analytics_ml.churn_predictions "
                         "where phone = ?", params=[SHARED_PHONE]).fetchone()
        features = con.sql("select count(*) from analytics_ml.ml_churn_features where phone = ?", params=[SHARED_PHONE]).fetchone()[0]
    assert features == SHARED_PHONE_DOCS
    assert shared[0] == shared[1] > 1  # each document that shares the phone is scored once
    assert "customer_activity_id" in production["feature_columns"]
    assert "true_churn_probability" not in production["feature_columns"]
    assert "ml_churn_evaluation" not in production["tables"]


def test_extended_features_reach_97_percent_of_the_bayes_optimal_auc(trained):
    warehouse, results, _, _ = trained
    row = metrics(warehouse, "churn_extended")
    assert row["feature_set"] == "extended" and row["model_kind"] == "local_logistic_regression"
    assert row["scored_rows"] > 5_000 and row["positives"] > 300
    assert row["auc"] >= 0.97 * row["bayes_optimal_auc"], (row["auc"], row["bayes_optimal_auc"])
    for name in ("accuracy", "precision_score", "recall_score", "f1_score"):
        assert 0 < row[name] <= 1
    assert row["training_seconds"] == pytest.approx(results["churn_extended"]["training_seconds"], abs=0.01)


def test_each_trained_model_keeps_its_metrics_row(trained):
    warehouse, _, _, _ = trained
    tutorial, extended = metrics(warehouse, "churn_tutorial"), metrics(warehouse, "churn_extended")
    assert tutorial["feature_set"] == "tutorial"
    assert tutorial["bayes_optimal_auc"] == pytest.approx(extended["bayes_optimal_auc"])
    assert 0.5 < tutorial["auc"] < extended["auc"]


def test_local_artifact_and_refusal_to_overwrite(trained, tmp_path):
    warehouse, results, env, _ = trained
    artifact = json.loads((REPO / results["churn_extended"]["artifact"]).read_text())
    assert artifact["feature_set"] == "extended" and artifact["coefficients"][0][0] == "(intercept)"
    again = run_cli("churn", "train", "--model-name", "churn_extended", "--warehouse", str(warehouse), env=env)
    assert again.returncode == 2 and "already exists: pass --replace" in again.stderr


def test_bad_names_are_refused_before_sql():
    with pytest.raises(ConfigError, match="invalid model name"):
        ChurnConfig(model_name="x; drop table t").validate()
    with pytest.raises(ConfigError, match="cutoff"):
        ChurnConfig(cutoff="2020-01-01' or '1'='1").validate()


def test_generator_and_churn_signal_seed_agree():
    with open(REPO / "seeds" / "churn_signal.csv") as f:
        seed = {r["term"]: float(r["coefficient"]) for r in csv.DictReader(f)}
    assert seed == {
        "intercept": SIGNAL.intercept, "cust_serv_calls": SIGNAL.per_service_call, "intl_plan_yes": SIGNAL.intl_plan,
        "vmail_plan_yes": SIGNAL.vmail_plan, "day_mins_over_200": SIGNAL.per_day_minute_over_200,
        "intl_mins_over_12": SIGNAL.per_intl_minute_over_12,
    }


# Redshift ML itself cannot run here: the dbt operations are replaced by a scripted sequence of
# SHOW MODEL states to test the polling (the operations' SQL is checked by make compile-redshift).

def scripted(monkeypatch, states):
    calls, sleeps = [], []

    def fake_dbt(args, target, extra_env=None):
        calls.append(args[1])
        if args[1] == "churn_model_status":
            return json.dumps({"churn_model": "m", "state": states.pop(0)})
        return ""

    monkeypatch.setattr(churn, "_dbt", fake_dbt)
    return calls, sleeps


def test_redshift_training_polls_until_ready(monkeypatch):
    calls, sleeps = scripted(monkeypatch, ["TRAINING", "TRAINING", "READY"])
    config = ChurnConfig(model_name="m", target="redshift", poll_s=30).validate()
    churn.train_redshift(config, sleep=sleeps.append)
    assert calls == ["create_churn_model", "churn_model_status", "churn_model_status", "churn_model_status"]
    assert sleeps == [30, 30]


def test_redshift_training_failure_is_one_clear_error(monkeypatch):
    scripted(monkeypatch, ["TRAINING", "FAILED"])
    with pytest.raises(TrainingError, match="is FAILED: see SHOW MODEL analytics_ml.m"):
        churn.train_redshift(ChurnConfig(model_name="m", target="redshift").validate(), sleep=lambda s: None)


def test_redshift_training_times_out_without_dropping_the_model(monkeypatch):
    calls, _ = scripted(monkeypatch, ["TRAINING"] * 5)
    config = ChurnConfig(model_name="m", target="redshift", timeout_s=0.0).validate()
    with pytest.raises(TrainingError, match="still TRAINING after 0 s"):
        churn.train_redshift(config, sleep=lambda s: None)
    assert "drop_churn_model" not in calls


@pytest.mark.parametrize("args, message", [
    ({"hyperparameters": {"num_round": "100"}, "objective": "AUC"}, "hyperparameters belong to AUTO OFF"),
    ({"auto": False, "objective": "AUC", "hyperparameters": {"num_round": "100"}}, "AUTO OFF needs an XGBoost objective"),
    ({"auto": False, "objective": "binary:logistic"}, "AUTO OFF needs hyperparameters with num_round"),
    ({"objective": "F1", "s3_bucket": None}, "CREATE MODEL needs s3_bucket"),
])
def test_create_churn_model_refuses_what_the_grammar_does_not_allow(args, message, tmp_path):
    """Checked while the statement is compiled, before any warehouse is asked (here: the local target)."""
    op_args = {"model_name": "m", "s3_bucket": "ml-bucket", **args}
    r = run_dbt("run-operation", "create_churn_model", "--args", json.dumps(op_args), warehouse=tmp_path / "w.duckdb",
                target_path=tmp_path / "target")
    assert r.returncode != 0 and message in r.stdout, r.stdout[-2000:]


def test_redshift_training_settings_are_checked_before_dbt_runs(monkeypatch):
    calls, _ = scripted(monkeypatch, ["READY"])
    for config, message in [
        (ChurnConfig(model_name="m", target="redshift"), "needs an S3 bucket"),
        (ChurnConfig(model_name="m", target="redshift", s3_bucket="b", auto=False, objective="binary:logistic"), "num_round"),
        (ChurnConfig(model_name="m", target="redshift", s3_bucket="b", hyperparameters={"eta": "0.1"}), "belong to --auto off"),
    ]:
        with pytest.raises(ConfigError, match=message):
            churn.train(config)
    assert calls == []
