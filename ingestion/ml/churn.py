"""`atlas-ingest churn`: train, check and drop the churn model, on Redshift ML or the local twin.

Redshift: the dbt operation `create_churn_model` issues CREATE MODEL (asynchronous, billed), then
this module polls `churn_model_status` until the model is READY, FAILED, or the timeout passes.
Local: a logistic regression (scikit-learn) on the same feature query and cut-off, stored as a
coefficients table that the dbt macro `churn_model_outputs` turns into SQL, and as a JSON artifact.
Both register the model with the dbt operation `register_churn_model`.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ingestion.errors import ConfigError, IngestError

FEATURE_SETS: dict[str, list[str]] = {
    "tutorial": ["state", "account_length", "area_code", "average_daily_spend", "average_daily_cases"],
    "extended": [
        "state", "account_length", "area_code", "average_daily_spend", "average_daily_cases", "intl_plan",
        "vmail_plan", "vmail_message", "cust_serv_calls", "day_mins", "eve_mins", "night_mins", "intl_mins",
        "day_mins_over_200", "intl_mins_over_12",
    ],
}
CATEGORICAL = {"state", "area_code", "intl_plan", "vmail_plan"}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,126}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class TrainingError(IngestError):
    """The model could not be trained (exit 6)."""

    exit_code = 6


@dataclass
class ChurnConfig:
    model_name: str = "churn_model"
    feature_set: str = "extended"
    cutoff: str = "2020-01-01"
    target: str = "local"
    replace: bool = False
    warehouse: Path = Path("data/warehouse.duckdb")
    schema: str = "analytics"
    # Redshift ML
    iam_role: str = "default"
    s3_bucket: str | None = None
    max_runtime: int | None = 5400
    max_cells: int | None = None
    auto: bool = True  # AUTO ON (Autopilot); False: AUTO OFF, XGBoost with the given objective and hyperparameters
    model_type: str | None = None
    problem_type: str | None = None
    objective: str | None = None
    hyperparameters: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 4 * 3600
    poll_s: float = 60

    @property
    def function_name(self) -> str:
        return f"predict_{self.model_name}"

    @property
    def registry_schema(self) -> str:
        return f"{self.schema}_ml"

    def validate(self) -> "ChurnConfig":
        if not _IDENTIFIER.match(self.model_name):
            raise ConfigError(f"invalid model name '{self.model_name}': use lowercase letters, digits and underscores")
        if self.feature_set not in FEATURE_SETS:
            raise ConfigError(f"unknown feature set '{self.feature_set}': choose tutorial or extended")
        if not _DATE.match(self.cutoff):
            raise ConfigError(f"cutoff must be a date YYYY-MM-DD, got '{self.cutoff}'")
        if self.target not in ("local", "redshift"):
            raise ConfigError(f"unknown target '{self.target}': choose local or redshift")
        if not _IDENTIFIER.match(self.schema):
            raise ConfigError(f"invalid schema '{self.schema}'")
        return self

    def validate_redshift_training(self) -> "ChurnConfig":
        """What CREATE MODEL's grammar requires, before dbt compiles it (which checks the rest)."""
        if not self.s3_bucket:
            raise ConfigError("CREATE MODEL needs an S3 bucket Redshift and SageMaker share: --s3-bucket or $REDSHIFT_ML_S3_BUCKET")
        if not self.auto and not (self.objective and self.hyperparameters.get("num_round")):
            raise ConfigError("--auto off trains XGBoost as given: pass --objective binary:logistic (or binary:hinge) and "
                              "--hyperparameter num_round=100")
        if self.auto and self.hyperparameters:
            raise ConfigError("hyperparameters belong to --auto off (XGBoost); AUTO ON tunes them itself")
        return self


def _dbt(args: list[str], target: str, extra_env: dict[str, str] | None = None) -> str:
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, "DBT_TARGET": "redshift" if target == "redshift" else "local", **(extra_env or {})}
    result = subprocess.run([str(dbt), *args, "--target", env["DBT_TARGET"]], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        lines = [l for l in result.stdout.splitlines() if "Error" in l or "error" in l] or result.stdout.splitlines()[-3:]
        raise TrainingError(f"dbt {args[0]} {args[1] if len(args) > 1 else ''} failed: {' | '.join(l.strip() for l in lines[-3:])}")
    return result.stdout


def register(config: ChurnConfig, model_kind: str, training_seconds: float) -> None:
    args = {
        "model_name": config.model_name, "function_name": config.function_name, "feature_set": config.feature_set,
        "cutoff": config.cutoff, "model_kind": model_kind, "training_seconds": round(training_seconds, 3),
        "trained_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
    }
    _dbt(["run-operation", "register_churn_model", "--args", json.dumps(args)], config.target,
         {"DBT_DUCKDB_PATH": str(config.warehouse)})


# ---- local twin -------------------------------------------------------------------------------

@dataclass
class LocalModel:
    """A logistic regression on raw feature values: intercept, one coefficient per numeric
    feature, one per (categorical feature, value). Scaling is folded into the coefficients."""

    model_name: str
    feature_set: str
    cutoff: str
    coefficients: list[tuple[str, str | None, float]]
    training_rows: int
    training_seconds: float


def _design(rows: list[dict[str, Any]], features: list[str], categories: dict[str, list[str]]) -> Any:
    import numpy as np

    columns = []
    for f in features:
        if f in CATEGORICAL:
            values = [None if r[f] is None else str(r[f]) for r in rows]
            for c in categories[f]:
                columns.append([1.0 if v == c else 0.0 for v in values])
        else:
            columns.append([0.0 if r[f] is None or (isinstance(r[f], float) and math.isnan(r[f])) else float(r[f]) for r in rows])
    return np.array(columns, dtype=float).T


def train_local(config: ChurnConfig) -> LocalModel:
    try:
        import duckdb
        import numpy as np
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise ConfigError(f"the local churn model needs the local and ml extras ({exc.name} is missing): "
                          "pip install 'atlas-redshift-analytics[local,ml]'") from None

    features = FEATURE_SETS[config.feature_set]
    if not config.warehouse.exists():
        raise ConfigError(f"no warehouse at {config.warehouse}: run ingestion and `dbt build` first")
    with duckdb.connect(str(config.warehouse)) as con:
        try:
            rel = con.sql(
                f"select {', '.join(features)}, churn from {config.registry_schema}.ml_churn_features "
                f"where record_date < cast(? as date)", params=[config.cutoff]
            )
            names = rel.columns
            rows = [dict(zip(names, r)) for r in rel.fetchall()]
        except duckdb.CatalogException:
            raise ConfigError(
                f"{config.registry_schema}.ml_churn_features not found in {config.warehouse}: run `dbt build` first"
            ) from None
        exists = con.sql(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = 'churn_model_coefficients'",
            params=[config.registry_schema],
        ).fetchone()[0] and con.sql(
            f"select count(*) from {config.registry_schema}.churn_model_coefficients where model_name = ?",
            params=[config.model_name],
        ).fetchone()[0]
    if exists and not config.replace:
        raise ConfigError(f"model {config.model_name} already exists: pass --replace to train it again")
    labels = [1 if r["churn"] == "True." else 0 for r in rows]
    if len(set(labels)) < 2:
        raise TrainingError(f"training rows before {config.cutoff} need both churners and non-churners ({len(rows)} rows)")

    started = time.perf_counter()
    categories = {f: sorted({str(r[f]) for r in rows if r[f] is not None}) for f in features if f in CATEGORICAL}
    x = _design(rows, features, categories)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    clf = LogisticRegression(C=1.0, max_iter=5000)
    clf.fit((x - mean) / std, np.array(labels))
    weights = clf.coef_[0] / std
    intercept = float(clf.intercept_[0] - (weights * mean).sum())
    seconds = time.perf_counter() - started

    coefficients: list[tuple[str, str | None, float]] = [("(intercept)", None, intercept)]
    k = 0
    for f in features:
        for c in categories.get(f, [None]):  # type: ignore[list-item]
            coefficients.append((f, c, float(weights[k])))
            k += 1
    return LocalModel(config.model_name, config.feature_set, config.cutoff, coefficients, len(rows), seconds)


def save_local(config: ChurnConfig, model: LocalModel, artifact_dir: Path = Path("data/ml")) -> Path:
    import duckdb

    with duckdb.connect(str(config.warehouse)) as con:
        con.execute(f"create schema if not exists {config.registry_schema}")
        con.execute(
            f"create table if not exists {config.registry_schema}.churn_model_coefficients "
            "(model_name varchar, feature varchar, category varchar, coefficient double)"
        )
        con.execute("begin")
        con.execute(f"delete from {config.registry_schema}.churn_model_coefficients where model_name = ?", [model.model_name])
        con.executemany(
            f"insert into {config.registry_schema}.churn_model_coefficients values (?, ?, ?, ?)",
            [(model.model_name, f, c, w) for f, c, w in model.coefficients],
        )
        con.execute("commit")
    artifact_dir.mkdir(parents=True, exist_ok=True)
    path = artifact_dir / f"{model.model_name}.json"
    path.write_text(json.dumps(asdict(model), indent=2))
    return path


# ---- Redshift ML ------------------------------------------------------------------------------

def redshift_state(config: ChurnConfig) -> str:
    out = _dbt(["run-operation", "churn_model_status", "--args", json.dumps({"model_name": config.model_name})], "redshift")
    for line in out.splitlines():
        match = re.search(r'\{"churn_model".*\}', line)
        if match:
            return json.loads(match.group(0))["state"]
    raise TrainingError("churn_model_status printed no state")


def train_redshift(config: ChurnConfig, sleep: Any = time.sleep) -> float:
    """Submits CREATE MODEL, then polls until READY; returns the training seconds."""
    args = {
        "model_name": config.model_name, "function_name": config.function_name, "feature_set": config.feature_set,
        "cutoff": config.cutoff, "iam_role": config.iam_role, "auto": config.auto, "model_type": config.model_type,
        "problem_type": config.problem_type, "objective": config.objective, "hyperparameters": config.hyperparameters or None, "s3_bucket": config.s3_bucket,
        "max_runtime": config.max_runtime, "max_cells": config.max_cells, "replace": config.replace,
    }
    started = time.monotonic()
    _dbt(["run-operation", "create_churn_model", "--args", json.dumps(args)], "redshift")
    while True:
        state = redshift_state(config)
        if state.upper() == "READY":
            return time.monotonic() - started
        if state.upper() == "FAILED" or state == "MISSING":
            raise TrainingError(f"model {config.model_name} is {state}: see SHOW MODEL {config.registry_schema}.{config.model_name}")
        if time.monotonic() - started > config.timeout_s:
            raise TrainingError(
                f"model {config.model_name} still {state} after {config.timeout_s:.0f} s: it keeps training; "
                "check it later with `atlas-ingest churn status --target redshift`"
            )
        sleep(config.poll_s)


def train(config: ChurnConfig) -> dict[str, Any]:
    config.validate()
    if config.target == "local":
        model = train_local(config)
        artifact = save_local(config, model)
        register(config, "local_logistic_regression", model.training_seconds)
        return {"model_name": model.model_name, "target": "local", "feature_set": model.feature_set,
                "training_rows": model.training_rows, "training_seconds": round(model.training_seconds, 3),
                "artifact": str(artifact)}
    seconds = train_redshift(config.validate_redshift_training())
    register(config, "redshift_ml" if config.auto else "redshift_ml_xgboost", seconds)
    return {"model_name": config.model_name, "target": "redshift", "feature_set": config.feature_set,
            "training_seconds": round(seconds, 1)}


def drop(config: ChurnConfig) -> None:
    config.validate()
    if config.target == "redshift":
        _dbt(["run-operation", "drop_churn_model", "--args", json.dumps({"model_name": config.model_name})], "redshift")
        return
    import duckdb

    with duckdb.connect(str(config.warehouse)) as con:
        for table in ("churn_model_coefficients", "churn_model_registry"):
            try:
                con.execute(f"delete from {config.registry_schema}.{table} where model_name = ?", [config.model_name])
            except duckdb.CatalogException:
                pass
