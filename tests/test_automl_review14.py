"""Regression tests for review 14's findings on AutoML (issue 14): ensembles on an int64 target
with explainability on (F2), forecasting's short series handling and unseen series (F5),
forecasting's explainability (F6), and the MLflow model's signature with optional columns (F4)."""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

MLTABLE = ('paths:\n  - file: ./data.csv\ntransformations:\n  - read_delimited:\n      delimiter: ","\n'
           '      encoding: utf8\n      header: all_files_same_headers\n')
TITANIC = Path(__file__).resolve().parents[1] / "examples" / "titanic" / "data" / "titanic.csv"


def _mltable(folder: Path, df: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "data.csv", index=False)
    (folder / "MLTable").write_text(MLTABLE)
    return folder


def _trial(folder: Path, settings: dict[str, Any], data: Path, members: list[str] | None = None) -> Any:
    """Run one trial in-process in ``folder`` (its ./outputs there); what it logged (a Collector)."""
    from openaml.automl import _trial

    folder.mkdir(parents=True, exist_ok=True)
    here = os.getcwd()
    _trial._SINK = _trial.Collector()
    try:
        os.chdir(folder)
        _trial.run_trial(settings, argparse.Namespace(training_data=str(data), validation_data=None, test_data=None,
                                                      member=members or []))
        return _trial._SINK
    finally:
        _trial._SINK = None
        os.chdir(here)


# ---------------------------------------------------------------------------------- F2
@pytest.mark.parametrize("labels", ["int64", "strings"])
def test_ensembles_on_titanic_keep_the_label_dtype_and_log_their_metrics(tmp_path: Path, labels: str) -> None:
    """Review 14 F2: the trial models' ``classes_`` were an object array for an int64 target, so the
    ensembles' ``predict`` answered object dtype, scikit-learn's metrics read it as "unknown" and both
    ensembles failed (explainability on) before logging a metric. Now the labels keep the target's
    dtype through trials and ensembles: int64 ``Survived`` predicts int64 0/1, strings predict the strings."""
    import mlflow.pyfunc

    df = pd.read_csv(TITANIC).head(300)
    if labels == "strings":
        df["Survived"] = np.where(df["Survived"] == 1, "yes", "no")
    data = _mltable(tmp_path / "data", df)
    base = {"task": "classification", "target": "Survived", "metric": "AUC_weighted", "n_cross_validations": 3,
            "explain": True, "n_jobs": 1}
    members = []
    for algorithm, learner, config in [("LightGBM", "lgbm", {"n_estimators": 20, "num_leaves": 4}),
                                       ("RandomForest", "rf", {"n_estimators": 20})]:
        logged = _trial(tmp_path / algorithm, {**base, "algorithm": algorithm, "flaml_learner": learner,
                                               "config": config}, data)
        assert logged.metrics["AUC_weighted"] > 0.6
        members.append(str(tmp_path / algorithm / "outputs"))
    rows = df.drop(columns=["Survived"]).head(5)
    expected = {"int64": {0, 1}, "strings": {"yes", "no"}}[labels]
    with open(tmp_path / "LightGBM" / "outputs" / "model.pkl", "rb") as f:
        member = pickle.load(f)
    pred = member.predict(rows)
    assert set(pred.tolist()) <= expected
    assert pred.dtype == (np.int64 if labels == "int64" else object)
    for kind in ("vote_ensemble", "stack_ensemble"):
        logged = _trial(tmp_path / kind, {**base, "algorithm": kind, "learner": kind, "members": ["m0", "m1"]}, data,
                        members)
        assert logged.metrics["AUC_weighted"] > 0.6 and "accuracy" in logged.metrics
        importance = (tmp_path / kind / "outputs" / "explanation" / "global_importance.json")
        assert importance.is_file() and "automl_feature_importance" in logged.tags
        with open(tmp_path / kind / "outputs" / "model.pkl", "rb") as f:
            ensemble = pickle.load(f)
        pred = ensemble.predict(rows)
        assert pred.dtype == (np.int64 if labels == "int64" else object) and set(pred.tolist()) <= expected
        served = mlflow.pyfunc.load_model(str(tmp_path / kind / "outputs" / "mlflow-model")).predict(rows)
        assert set(np.asarray(served).tolist()) <= expected


@pytest.mark.slow
def test_ensembles_complete_and_compete_in_a_titanic_job(ml_client: Any, tmp_path: Path) -> None:
    """Review 14 F2 end to end: a short Titanic AutoML job (int64 target, explainability on, the
    default) whose vote and stack ensembles complete with the primary metric and compete for best."""
    from openaml import Input, automl

    data = _mltable(tmp_path / "titanic", pd.read_csv(TITANIC))
    job = automl.classification(training_data=Input(type="mltable", path=str(data)), target_column_name="Survived",
                                primary_metric="accuracy", n_cross_validations=3, enable_model_explainability=True,
                                experiment_name="automl-review14")
    job.set_limits(timeout_minutes=6, trial_timeout_minutes=3, max_trials=2, max_concurrent_trials=1)
    job.set_training(allowed_training_algorithms=["LightGBM", "LogisticRegression"])
    job = ml_client.jobs.create_or_update(job)
    done = ml_client.jobs.wait(job.name, timeout=900)
    raw = ml_client.jobs.get_raw(job.name)
    assert done.status == "Completed", raw.get("error")
    trials = {t["algorithm"]: t for t in raw["trials"]}
    for algorithm in ("VotingEnsemble", "StackEnsemble"):
        assert trials[algorithm]["status"] == "Completed", trials[algorithm]["error"]
        assert trials[algorithm]["metric"] is not None and trials[algorithm]["metric"] > 0.7
    best = max(t["metric"] for t in raw["trials"] if t["metric"] is not None)
    assert raw["best_score"] == pytest.approx(best)  # the ensembles compete for best


# ---------------------------------------------------------------------------------- F5
def _stores(short_rows: int = 20, long_rows: int = 200, longs: tuple[str, ...] = ("s1", "s2")) -> pd.DataFrame:
    """Daily sales of stores: ``longs`` with ``long_rows`` rows, s3 with its last ``short_rows`` only."""
    t = pd.date_range("2020-01-01", periods=long_rows, freq="D")
    frames = []
    for k, s in enumerate([*longs, "s3"]):
        n = short_rows if s == "s3" else long_rows
        y = 50 + 10 * k + 5 * np.sin(2 * np.pi * np.arange(long_rows) / 7)
        frames.append(pd.DataFrame({"date": t.astype(str), "store": s, "sales": y, "price": 1.5 + k,
                                    "promo": k % 2 == 0, "region": "north"}).tail(n))
    return pd.concat(frames, ignore_index=True)


FC = {"time_column_name": "date", "time_series_id_column_names": ["store"], "forecast_horizon": 14}


def _fc_settings(handling: str | None, algorithm: str = "SeasonalNaive", learner: str = "SeasonalNaive") -> dict[str, Any]:
    return {"task": "forecasting", "target": "sales", "metric": "normalized_root_mean_squared_error",
            "algorithm": algorithm, "flaml_learner": learner, "n_jobs": 1, "n_cross_validations": 2,
            "config": {"n_estimators": 20, "num_leaves": 4, "min_child_samples": 5} if learner == "lgbm" else {},
            "forecasting": {**FC, "short_series_handling_config": handling}}


def _future(df: pd.DataFrame, store: str, days: int = 14) -> pd.DataFrame:
    last = pd.to_datetime(df["date"]).max()
    t = pd.date_range(last + pd.Timedelta(days=1), periods=days, freq="D")
    return pd.DataFrame({"date": t.astype(str), "store": store, "price": 1.5, "promo": False, "region": "north"})


def test_drop_leaves_short_series_out_and_refuses_to_forecast_them(tmp_path: Path) -> None:
    """Review 14 F5: with ``drop`` the short series s3 was still trained on and forecast. Now it is
    left out of training (the guardrail says so) and forecasting it is refused naming it; a series
    never seen in training is refused too (it was forecast silently)."""
    from openaml.automl._forecast import forecast_guardrails

    df = _stores()
    g = {x["name"]: x for x in forecast_guardrails(df, {**FC, "short_series_handling_config": "drop"})}
    details = g["Short series handling"]["details"]
    assert g["Short series handling"]["status"] == "alerted" and "s3" in details
    assert "shorter than 29 rows" in details and "dropped from training" in details
    data = _mltable(tmp_path / "data", df)
    for algorithm, learner in [("SeasonalNaive", "SeasonalNaive"), ("LightGBM", "lgbm")]:
        logged = _trial(tmp_path / algorithm, _fc_settings("drop", algorithm, learner), data)
        assert "normalized_root_mean_squared_error" in logged.metrics
        with open(tmp_path / algorithm / "outputs" / "model.pkl", "rb") as f:
            model = pickle.load(f)
        assert set(model.history) == {"s1", "s2"}
        out = model.forecast(_future(df, "s1"))
        assert len(out) == 14 and out["sales_forecast"].notna().all()
        with pytest.raises(ValueError, match=r"series s3 were dropped from training as short series \(fewer than 29"):
            model.forecast(_future(df, "s3"))
        with pytest.raises(ValueError, match=r"series s9 were never seen in training.*\(s1, s2\)"):
            model.forecast(pd.concat([_future(df, "s1"), _future(df, "s9")]))


@pytest.mark.parametrize(("handling", "longs", "action"), [
    ("pad", ("s1", "s2"), "pad"), ("auto", ("s1", "s2"), "drop"), (None, ("s1", "s2"), "drop"),
    ("auto", (), "pad"), ("none", ("s1", "s2"), "none")])
def test_pad_auto_and_none_do_what_the_guardrail_says(handling: str | None, longs: tuple[str, ...],
                                                     action: str) -> None:
    """``pad`` pads short series at their start to the minimum length (Azure's values: the target
    white noise of mean 0 and standard deviation 1, numeric columns 0, boolean False, other columns
    empty); ``auto`` (and null) pads when every series is short, else drops; ``none`` trains them as
    they are. The guardrail reports what was done."""
    from openaml.automl._forecast import _prepare, forecast_guardrails

    df = _stores(longs=longs, short_rows=20)
    fc = {**FC, "short_series_handling_config": handling}
    settings = {"target": "sales", "algorithm": "Naive", "flaml_learner": "Naive", "forecasting": fc}
    frame, st = _prepare(df, settings)
    assert st["short_series"] == {"action": action, "min_rows": 29, "series": ["s3"]}
    s3 = frame[frame["store"] == "s3"]
    details = forecast_guardrails(df, fc)[0]["details"]
    if action == "pad":
        assert len(s3) == 29 and "padded at their start to 29 rows" in details
        pad = s3.head(9)
        assert pad["date"].max() < pd.Timestamp(df.loc[df["store"] == "s3", "date"].min())
        assert (pad["price"] == 0).all() and (~pad["promo"].astype(bool)).all() and pad["region"].isna().all()
        assert abs(pad["sales"].mean()) < 1.5 and pad["sales"].std() < 2.5  # white noise, not the series' ~70
        assert pd.infer_freq(pd.DatetimeIndex(s3["date"])) == "D"
    elif action == "drop":
        assert s3.empty and "dropped from training" in details
    else:
        assert len(s3) == 20 and "trained as they are" in details
    if longs:
        assert len(frame[frame["store"] == "s1"]) == 200  # long series untouched


def test_drop_with_every_series_short_is_refused_before_anything_runs() -> None:
    from openaml.automl._data import data_problems

    df = _stores(longs=(), short_rows=20)
    p = data_problems(df, task="forecasting", target="sales",
                      forecasting={**FC, "short_series_handling_config": "drop"})
    assert any("short_series_handling_config" in x and "every series is shorter than 29 rows" in x and "s3" in x
               for x in p), p
    assert not data_problems(df, task="forecasting", target="sales", forecasting={**FC, "short_series_handling_config": "pad"})


# ---------------------------------------------------------------------------------- F6
def test_forecasting_explains_lag_feature_models_and_says_when_it_cannot(tmp_path: Path) -> None:
    """Review 14 F6: forecasting with ``enable_model_explainability`` was silently skipped. A
    regression learner on lag features now logs the importance of the raw columns and the derived
    lag/rolling features; a statistical model (no features) says why it has none."""
    import json

    df = _stores(short_rows=200)
    data = _mltable(tmp_path / "data", df)
    settings = {**_fc_settings("auto", "LightGBM", "lgbm"), "explain": True}
    logged = _trial(tmp_path / "lgbm", settings, data)
    importance = json.loads(logged.tags["automl_feature_importance"])
    names = {d["feature"] for d in importance}
    assert {"date", "store", "price", "sales_lag1", "sales_lag7", "sales_rolling_mean7"} <= names
    assert abs(sum(d["importance"] for d in importance) - 1) < 1e-3
    assert importance[0]["feature"] in ("sales_lag7", "sales_lag1", "date", "store", "sales_rolling_mean7")
    saved = json.loads((tmp_path / "lgbm" / "outputs" / "explanation" / "global_importance.json").read_text())
    assert saved[0] == importance[0]
    logged = _trial(tmp_path / "naive", {**_fc_settings("auto"), "explain": True}, data)
    assert "automl_feature_importance" not in logged.tags
    assert "no features to explain" in logged.tags["automl_explanation_skipped"]


def test_a_forecasting_job_warns_when_its_best_model_cannot_be_explained(ml_client: Any, cli: Any,
                                                                        tmp_path: Path) -> None:
    """The job's warnings (``job show``) say that the best model has no feature importance and why."""
    from openaml import Input, automl

    data = _mltable(tmp_path / "fc", _stores(short_rows=20))
    job = automl.forecasting(training_data=Input(type="mltable", path=str(data)), target_column_name="sales",
                             primary_metric="normalized_root_mean_squared_error", n_cross_validations=2,
                             enable_model_explainability=True, experiment_name="automl-review14")
    job.set_forecast_settings(time_column_name="date", time_series_id_column_names=["store"], forecast_horizon=14,
                              short_series_handling_config="drop")
    job.set_limits(timeout_minutes=5, trial_timeout_minutes=3, max_trials=1, max_concurrent_trials=1)
    job.set_training(allowed_training_algorithms=["SeasonalNaive"], enable_vote_ensemble=False,
                     enable_stack_ensemble=False)
    job = ml_client.jobs.create_or_update(job)
    assert ml_client.jobs.wait(job.name, timeout=600).status == "Completed", ml_client.jobs.get_raw(job.name)
    shown = cli("job", "show", "--name", job.name, "-o", "json", check=True).json()
    assert any("enable_model_explainability" in w and "SeasonalNaive" in w and "no features to explain" in w
               for w in shown.get("warnings") or []), shown.get("warnings")
    guard = {g["name"]: g for g in shown["guardrails"]}["Short series handling"]
    assert "s3" in guard["details"] and "dropped from training" in guard["details"]


# ---------------------------------------------------------------------------------- F4
def test_the_mlflow_model_takes_rows_with_missing_and_dropped_columns(tmp_path: Path) -> None:
    """Review 14 F4: the MLflow model's signature made every column seen in the first training rows
    required, so the no-code deployment refused a row with a missing column (which the scoring
    file imputes) and required the dropped ID column ``PassengerId``. Now the columns the
    featurization imputes are optional, the dropped ones optional of any type; scored through
    mlflow.pyfunc and through MLflow's scoring server handler (what a no-code deployment runs)."""
    import json

    import mlflow.pyfunc
    from mlflow.pyfunc.scoring_server import invocations

    df = pd.read_csv(TITANIC).head(300)
    data = _mltable(tmp_path / "data", df)
    _trial(tmp_path / "lgbm", {"task": "classification", "target": "Survived", "metric": "accuracy",
                               "n_cross_validations": 2, "explain": False, "n_jobs": 1, "algorithm": "LightGBM",
                               "flaml_learner": "lgbm", "config": {"n_estimators": 20, "num_leaves": 4}}, data)
    pyfunc = mlflow.pyfunc.load_model(str(tmp_path / "lgbm" / "outputs" / "mlflow-model"))
    schema = pyfunc.metadata.get_input_schema()
    specs = {s.name: s for s in schema.inputs}
    assert not any(s.required for s in specs.values())
    assert str(specs["PassengerId"].type) == "Any" and specs["Pclass"].type.name == "long"
    rows = df.drop(columns=["Survived"]).head(2)
    full = pyfunc.predict(rows)
    missing = pyfunc.predict(rows.drop(columns=["Cabin", "Age", "PassengerId"]))
    assert len(missing) == 2 and set(np.asarray(missing).tolist()) <= {0, 1}
    assert np.asarray(full).dtype == np.int64
    with open(tmp_path / "lgbm" / "outputs" / "model.pkl", "rb") as f:  # the scoring file's model: same answers
        pkl = pickle.load(f)
    assert list(pkl.predict(rows.drop(columns=["Cabin", "Age", "PassengerId"]))) == list(np.asarray(missing))
    body = rows.drop(columns=["Cabin", "Age"]).assign(PassengerId=None)
    request = json.dumps({"dataframe_split": json.loads(body.to_json(orient="split", index=False))})
    answer = invocations(request, "application/json", pyfunc, schema)
    assert answer.status == 200, answer.response
    assert json.loads(answer.response)["predictions"] == list(np.asarray(missing))
