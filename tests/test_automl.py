"""AutoML jobs (issue 14): the job definition (YAML and SDK), the checks before anything runs, the
featurized model on raw rows, the search, and real AutoML jobs on a real server whose trials are
child jobs with Azure's model artifacts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from openaml.errors import ValidationError

MLTABLE = ('paths:\n  - file: ./data.csv\ntransformations:\n  - read_delimited:\n      delimiter: ","\n'
           '      encoding: utf8\n      header: all_files_same_headers\n')


def _frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """A small table with what AutoML featurizes: numbers with missing values, a category, a
    high-cardinality string, a date, free text, an ID column and a constant column."""
    rs = np.random.RandomState(seed)
    x1 = rs.normal(size=n)
    cat = rs.choice(["red", "green", "blue"], size=n)
    y = ((x1 + (cat == "red") * 1.5 + rs.normal(scale=0.5, size=n)) > 0.5).astype(int)
    words = np.array(["good", "bad", "fast", "slow", "cheap", "dear", "new", "old"])
    hint = np.where(rs.rand(n) < 0.7, y, 1 - y)  # the text says the label 70 % of the time
    text = [" ".join(rs.choice(words, 5)) + (" great value" if v else " poor") for v in hint]
    df = pd.DataFrame({
        "Id": np.arange(n), "x1": np.where(rs.rand(n) < 0.1, np.nan, x1), "x2": rs.randint(0, 5, n),
        "colour": cat, "code": [f"c{rs.randint(0, 400)}" for _ in range(n)],
        "when": pd.date_range("2024-01-01", periods=n, freq="D").astype(str), "review": text,
        "constant": 1, "label": np.where(y == 1, "yes", "no"),
    })
    return df


def _mltable(folder: Path, df: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "data.csv", index=False)
    (folder / "MLTable").write_text(MLTABLE)
    return folder


# ---------------------------------------------------------------------------------- definition
def test_yaml_and_sdk_build_the_same_job(tmp_path: Path) -> None:
    from openaml import Input, automl, load_job

    _mltable(tmp_path / "data", _frame())
    (tmp_path / "job.yml").write_text(
        "type: automl\ntask: classification\nprimary_metric: AUC_weighted\ntarget_column_name: label\n"
        "training_data: {type: mltable, path: ./data}\nn_cross_validations: auto\npositive_label: 'yes'\n"
        "limits: {timeout_minutes: 5, trial_timeout_minutes: 2, max_trials: 4, max_concurrent_trials: 2,"
        " max_cores_per_trial: 1, enable_early_termination: true, exit_score: 0.99}\n"
        "training: {enable_model_explainability: true, blocked_training_algorithms: [KNN, xg_boost_classifier],"
        " enable_stack_ensemble: false, stack_ensemble_settings: {stack_meta_learner_type: LogisticRegression}}\n"
        "featurization: {mode: custom, column_name_and_types: {x2: Categorical},"
        " transformer_params: {imputer: [{fields: [x1], parameters: {strategy: mean}}]},"
        " blocked_transformers: [WordEmbedding]}\n")
    job = load_job(tmp_path / "job.yml")
    assert job.type == "automl" and job.task == "classification" and job.limits.max_trials == 4
    sdk = automl.classification(training_data=Input(type="mltable", path="./data"), target_column_name="label",
                                primary_metric=automl.ClassificationPrimaryMetrics.AUC_WEIGHTED,
                                n_cross_validations="auto", positive_label="yes")
    sdk.set_limits(timeout_minutes=5, trial_timeout_minutes=2, max_trials=4, max_concurrent_trials=2,
                   max_cores_per_trial=1, enable_early_termination=True, exit_score=0.99)
    sdk.set_training(enable_model_explainability=True, enable_stack_ensemble=False,
                     blocked_training_algorithms=[automl.ClassificationModels.KNN, "xg_boost_classifier"],
                     stack_ensemble_settings=automl.StackEnsembleSettings(stack_meta_learner_type="LogisticRegression"))
    sdk.set_featurization(mode="custom", column_name_and_types={"x2": "Categorical"},
                          transformer_params={"imputer": [{"fields": ["x1"], "parameters": {"strategy": "mean"}}]},
                          blocked_transformers=[automl.BlockedTransformers.WORD_EMBEDDING])
    a = job.model_dump(mode="json", exclude_none=True)
    b = sdk.model_dump(mode="json", exclude_none=True)
    for key in ("task", "target_column_name", "limits", "training", "featurization", "n_cross_validations",
                "positive_label", "training_data"):
        assert a[key] == b[key], key
    assert a["primary_metric"].lower().replace("_", "") == b["primary_metric"].lower()
    fc = automl.forecasting(training_data=Input(type="mltable", path="./d"), target_column_name="y")
    fc.set_forecast_settings(time_column_name="t", forecast_horizon=7, frequency="D", target_lags=[1, 7],
                             target_rolling_window_size=3, seasonality=7, time_series_id_column_names=["s"])
    assert fc.forecasting.forecast_horizon == 7 and fc.forecasting.series_columns() == ["s"]
    with pytest.raises(ValueError, match="forecasting"):
        sdk.set_forecast_settings(time_column_name="t")


def test_factories_take_enable_model_explainability_as_azure_does() -> None:
    """azure-ai-ml's ``automl.classification/regression/forecasting`` take
    ``enable_model_explainability`` (the book's chapter 5 call); it lands in the training settings."""
    from openaml import Input, automl

    data = Input(type="mltable", path="./data")
    job = automl.classification(training_data=data, target_column_name="y", enable_model_explainability=False)
    assert job.training is not None and job.training.enable_model_explainability is False
    job = automl.regression(training_data=data, target_column_name="y", enable_model_explainability=True,
                            training={"blocked_training_algorithms": ["KNN"]})
    assert job.training.enable_model_explainability is True
    assert [str(a) for a in job.training.blocked_training_algorithms] == ["KNN"]
    job = automl.forecasting(training_data=data, target_column_name="y", enable_model_explainability=True)
    assert job.training.enable_model_explainability is True


def test_imputer_parameters_apply_to_the_columns_they_name() -> None:
    """review14 F9/F10: ``transformer_params.imputer`` on a categorical column (Azure's bank-marketing
    example) and ``fill_value`` of ``strategy: constant`` are applied, not ignored."""
    import numpy as np
    import pandas as pd

    from openaml.automl._featurize import build_featurizer

    X = pd.DataFrame({"Embarked": ["S", None, "C", "S", "C", "C"], "Age": [1.0, np.nan, 3.0, 4.0, 5.0, 6.0],
                      "Cabin": ["a", None, "b", "a", "b", "b"]})
    roles = {"Embarked": "Categorical", "Age": "Numeric", "Cabin": "Categorical"}
    fz = {"transformer_params": {"imputer": [
        {"fields": ["Embarked"], "parameters": {"strategy": "constant", "fill_value": "S"}},
        {"fields": ["Cabin"], "parameters": {"strategy": "most_frequent"}},
        {"fields": ["Age"], "parameters": {"strategy": "constant", "fill_value": 99}}]}}
    pipe = build_featurizer(X, roles, fz).fit(X)
    ct = pipe.named_steps["transform"]
    dense = lambda a: a.toarray() if hasattr(a, "toarray") else np.asarray(a)  # noqa: E731
    blocks = {name: dense(t.transform(pipe.named_steps["columns"].transform(X)[cols]))
              for name, t, cols in ct.transformers_ if name != "remainder"}
    assert blocks["num:Age"][1, 0] == 99.0
    assert blocks["cat:Embarked"][1].tolist() == blocks["cat:Embarked"][0].tolist()  # the missing row is "S"
    assert blocks["cat:Cabin"][1].tolist() == blocks["cat:Cabin"][2].tolist()  # "b", the most frequent


@pytest.mark.parametrize(("fields", "expected"), [
    ({"primary_metric": "r2_score"}, "does not fit task classification"),
    ({"training": {"enable_dnn_training": True}}, "enable_dnn_training"),
    ({"limits": {"timeout_minutes": 2, "trial_timeout_minutes": 5}}, "no trial could finish"),
    ({"training": {"allowed_training_algorithms": ["Prophet"]}}, "'Prophet' is not a classification algorithm"),
    ({"n_cross_validations": 1}, "must be >= 2"),
    ({"validation_data_size": 1.5}, "between 0 and 1"),
    ({"featurization": {"mode": "sometimes"}}, "featurization.mode"),
])
def test_fields_that_cannot_apply_are_refused_by_name(fields: dict[str, Any], expected: str) -> None:
    from openaml.entities._automl import AutoMLJob, automl_problems

    job = AutoMLJob.model_validate({"task": "classification", "target_column_name": "y",
                                    "training_data": {"type": "mltable", "path": "./d"}, **fields})
    problems, _ = automl_problems(job)
    assert any(expected in p for p in problems), problems


def test_fields_accepted_but_not_applied_are_said() -> None:
    from openaml.entities._automl import AutoMLJob, automl_problems

    job = AutoMLJob.model_validate({"task": "classification", "target_column_name": "y",
                                    "training_data": {"type": "mltable", "path": "./d"},
                                    "training": {"enable_onnx_compatible_models": True}, "limits": {"max_nodes": 4}})
    problems, notes = automl_problems(job)
    assert not problems
    assert any("ONNX" in n for n in notes) and any("max_nodes" in n for n in notes)
    # review14 F9: every other field of spec 6.1/6.2 that is not applied is said too, never silently ignored
    job = AutoMLJob.model_validate({
        "task": "classification", "target_column_name": "y", "training_data": {"type": "mltable", "path": "./d"},
        "test_data_size": 0.2,
        "featurization": {"mode": "custom", "dataset_language": "deu",
                          "transformer_params": {"hash_one_hot_encoder": [{"fields": ["t"],
                                                                           "parameters": {"number_of_bits": 3}}]}},
        "training": {"ensemble_model_download_timeout_minutes": 5,
                     "stack_ensemble_settings": {"stack_meta_learner_train_percentage": 0.3}}})
    problems, notes = automl_problems(job)
    assert not problems
    for field in ("test_data_size", "dataset_language", "transformer_params.hash_one_hot_encoder",
                  "ensemble_model_download_timeout_minutes", "stack_meta_learner_train_percentage"):
        assert any(field in n for n in notes), (field, notes)
    fc = AutoMLJob.model_validate({"task": "forecasting", "target_column_name": "y",
                                   "training_data": {"type": "mltable", "path": "./d"},
                                   "forecasting": {"time_column_name": "t", "features_unknown_at_forecast_time": ["temp"]}})
    assert any("features_unknown_at_forecast_time" in n for n in automl_problems(fc)[1])


def test_data_problems_name_the_column() -> None:
    from openaml.automl._data import data_problems

    df = _frame()
    p = data_problems(df, task="classification", target="Survived")
    assert len(p) == 1 and "'Survived' is not in training_data" in p[0] and "colour" in p[0] and "label" in p[0]
    one = df.assign(label="yes")
    assert "one class only" in data_problems(one, task="classification", target="label")[0]
    p = data_problems(df, task="regression", target="colour")
    assert "'colour' is not numeric" in p[0] and "task: classification" in p[0]
    ts = pd.DataFrame({"t": ["2024-01-01", "2024-01-01", "2024-01-02"] * 5, "s": "a", "y": range(15)})
    p = data_problems(ts, task="forecasting", target="y",
                      forecasting={"time_column_name": "t", "time_series_id_column_names": ["s"]})
    assert any("duplicate (time, series) rows" in x for x in p)
    # the example names the user's columns, not an internal one (review14 F12)
    assert any("{'s': 'a', 't': '2024-01-01'}" in x for x in p), p
    irregular = pd.DataFrame({"t": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-04", "2024-01-09",
                                                   "2024-01-10", "2024-02-01", "2024-02-11", "2024-03-01",
                                                   "2024-03-02", "2024-03-09", "2024-03-30"]), "y": range(11)})
    p = data_problems(irregular, task="forecasting", target="y", forecasting={"time_column_name": "t"})
    assert any("frequency" in x and "cannot be inferred" in x for x in p)


# ---------------------------------------------------------------------------------- featurization
def test_the_model_scores_raw_rows_with_new_categories_and_missing_columns() -> None:
    from openaml.automl._featurize import build_featurizer, column_roles
    from openaml.automl._trial import AutoMLModel, build_model

    df = _frame()
    X = df.drop(columns=["label"])
    y = (df["label"] == "yes").astype(int).to_numpy()
    roles, notes = column_roles(X, None)
    assert roles["x1"] == "Numeric" and roles["colour"] == "Categorical" and roles["when"] == "DateTime"
    assert roles["review"] == "Text" and roles["code"] == "CategoricalHash"
    assert roles["Id"] == "Ignore" and roles["constant"] == "Ignore"
    assert {n["column"] for n in notes} >= {"Id", "constant", "code"}
    pipe = build_model("lgbm", {"n_estimators": 20, "num_leaves": 4}, "binary", 1, build_featurizer(X, roles, None))
    pipe.fit(X, y)
    model = AutoMLModel(pipe, "classification", ["no", "yes"], list(X.columns))
    new = X.head(3).copy()
    new["colour"] = ["purple", None, "red"]  # a category never seen, a missing one
    new = new.drop(columns=["review"])  # a missing column: added empty, imputed
    out = model.predict(new)
    assert list(out) and set(out) <= {"no", "yes"}
    assert model.predict_proba(new).shape == (3, 2)
    off_roles, off_notes = column_roles(X, {"mode": "off"})
    assert off_roles["colour"] == "Ignore" and any(n["column"] == "colour" for n in off_notes)
    custom, _ = column_roles(X, {"mode": "custom", "column_name_and_types": {"x2": "Categorical"}})
    assert custom["x2"] == "Categorical"


@pytest.mark.parametrize("learner", ["lgbm", "xgboost", "rf", "extra_tree"])
def test_a_tree_ensemble_stops_growing_at_its_deadline_and_says_what_it_grew(learner: str) -> None:
    """Regression (issue 14): a trial's fit had no time limit; a zero-shot forest at the end of a
    search ran past the job's timeout and was killed, its minutes lost. Now the trees stop at the
    fit's deadline, the model scores, and the note says asked vs grown."""
    from openaml.automl import _trial
    from openaml.automl._featurize import build_featurizer, column_roles

    df = pd.concat([_frame()] * 20, ignore_index=True)
    X = df.drop(columns=["label"])
    y = (df["label"] == "yes").astype(int).to_numpy()
    roles, _ = column_roles(X, None)
    asked = 1_000_000  # far more trees than any machine grows in a second
    pipe = _trial.build_model(learner, {"n_estimators": asked}, "binary", 1, build_featurizer(X, roles, None))
    _trial.TIME_LIMITED.clear()
    t0 = time.time()
    fitted = _trial.fit_pipeline(pipe, X, y, np.arange(len(X)), {}, time.time() + 1.0)
    assert time.time() - t0 < 60
    [note] = _trial.TIME_LIMITED
    grown = int(note.split("-> ")[1])
    assert note.startswith(f"n_estimators {asked} -> ") and 1 <= grown < asked
    assert fitted.predict_proba(X.head(5)).shape == (5, 2)
    # a deadline far off: the model is whole, nothing noted
    small = _trial.build_model(learner, {"n_estimators": 3}, "binary", 1, build_featurizer(X, roles, None))
    _trial.TIME_LIMITED.clear()
    whole = _trial.fit_pipeline(small, X, y, np.arange(len(X)), {}, time.time() + 600)
    assert _trial.TIME_LIMITED == []
    model = whole.steps[-1][1]
    trees = (model.booster_.current_iteration() if learner == "lgbm" else
             model.get_booster().num_boosted_rounds() if learner == "xgboost" else len(model.estimators_))
    assert trees == 3


def test_a_linear_svm_trial_gives_class_probabilities() -> None:
    """Regression (issue 14): every LinearSVM trial of a classification job failed (LinearSVC has no
    predict_proba, the metrics need it). Its scores are now calibrated into probabilities."""
    from openaml.automl import _trial
    from openaml.automl._featurize import build_featurizer, column_roles

    df = pd.concat([_frame()] * 5, ignore_index=True)
    X = df.drop(columns=["label"])
    y = (df["label"] == "yes").astype(int).to_numpy()
    roles, _ = column_roles(X, None)
    pipe = _trial.build_model("svc", {}, "binary", 1, build_featurizer(X, roles, None))
    proba = _trial.fit_pipeline(pipe, X, y, np.arange(len(X)), {}).predict_proba(X.head(4))
    assert proba.shape == (4, 2) and np.allclose(proba.sum(axis=1), 1.0)


def test_column_roles_split_only_columns_of_many_distinct_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """The words per value decide between Text and ID-like only: a column of few distinct values
    (long phrases included) is Categorical without splitting every value (seconds on a large frame,
    paid by the guardrails and each worker's first trial)."""
    import pandas as pd

    from openaml.automl._featurize import column_roles

    n = 400
    X = pd.DataFrame({"phrase": [f"a long phrase of words {i % 4}" for i in range(n)],
                      "review": [f"review number {i} says the product was fine" for i in range(n)],
                      "code": [f"C{i}" for i in range(n)]})
    from pandas.core.strings.accessor import StringMethods

    split = StringMethods.split
    calls: list[int] = []

    def counting(self: object, *a: object, **kw: object) -> object:
        calls.append(1)
        return split(self, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(StringMethods, "split", counting)
    roles, notes = column_roles(X, None)
    assert roles == {"phrase": "Categorical", "review": "Text", "code": "Ignore"}
    assert [n["column"] for n in notes] == ["code"]
    assert len(calls) == 2  # review and code: not phrase


def test_metrics_follow_azure_names() -> None:
    from openaml.automl._metrics import classification_metrics, regression_metrics

    y = np.array([0, 1, 1, 0, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4], [0.3, 0.7]])
    m = classification_metrics(y, proba, np.array([0, 1]))
    assert m["AUC_weighted"] == pytest.approx(1.0) and m["accuracy"] == pytest.approx(1.0)
    assert {"norm_macro_recall", "average_precision_score_weighted", "precision_score_weighted", "log_loss"} <= set(m)
    r = regression_metrics(np.array([1.0, 2, 3, 4]), np.array([1.0, 2, 3, 5]))
    assert r["normalized_root_mean_squared_error"] == pytest.approx(0.5 / 3)
    assert {"r2_score", "spearman_correlation", "normalized_mean_absolute_error"} <= set(r)


def test_search_tries_each_learner_then_refines_the_best() -> None:
    from openaml.automl._search import Search

    s = Search("classification", "binary", ["LightGBM", "LogisticRegression"], (200, 5), {})
    history: list[tuple[str, dict[str, Any], float | None]] = []
    seen = []
    for i, loss in enumerate([-0.9, -0.7, -0.91, -0.92]):
        algorithm, learner, config = s.suggest(f"t{i}", history)  # type: ignore[misc]
        seen.append(algorithm)
        history.append((algorithm, config, loss))
        s.tell(f"t{i}", loss)
    assert seen[:2] == ["LightGBM", "LogisticRegression"]
    assert seen[2] == "LightGBM"  # the best learner is refined first


def test_a_worker_refines_the_best_learner_of_the_whole_job() -> None:
    """Issue 14: a worker refined only its own share of the learners (the second worker of a
    two-worker job spent its minutes on forests that never won). With the other workers' best per
    learner (``peers``), it refines the job's best learner, from that learner's best configuration,
    leaving the zero-shot configuration to the learner's owner."""
    from openaml.automl._search import Search

    zero_asked: list[str] = []

    def zero(learner: str) -> dict[str, Any] | None:
        zero_asked.append(learner)
        return None

    s = Search("classification", "binary", ["RandomForest"], (2000, 5), zero)
    history: list[tuple[str, dict[str, Any], float | None]] = []
    algorithm, _, config = s.suggest("t0", history)  # type: ignore[misc]
    assert algorithm == "RandomForest"  # its own share first
    history.append((algorithm, config, -0.80))
    s.tell("t0", -0.80)
    peer_config = {"n_estimators": 40, "num_leaves": 12, "learning_rate": 0.2}
    picks = []
    for i in range(1, 4):
        algorithm, _, config = s.suggest(f"t{i}", history, {"LightGBM": (-0.95, dict(peer_config))})  # type: ignore[misc]
        picks.append(algorithm)
        history.append((algorithm, config, -0.9))
        s.tell(f"t{i}", -0.9)
    assert picks.count("LightGBM") == 2 and "RandomForest" in picks  # two of three to the best, one to the runner-up
    assert "lgbm" not in zero_asked  # LightGBM's zero-shot is its owner's to try
    assert s._cfo["LightGBM"] is not None


def test_a_costly_runner_up_gets_a_third_of_the_time_not_of_the_trials() -> None:
    """Issue 14: one refinement trial in three went to the runner-up whatever it cost; a runner-up
    whose trials take 20 s (a big XGBoost) took most of the time from a best learner whose trials
    take 1 s. With the seconds spent per learner, the runner-up waits until the best has had
    twice its time."""
    from openaml.automl._search import Search

    s = Search("classification", "binary", ["LightGBM", "XGBoostClassifier"], (2000, 5), {})
    history: list[tuple[str, dict[str, Any], float | None]] = []
    cost = {"LightGBM": 1.0, "XGBoostClassifier": 20.0}
    spent: dict[str, float] = {}
    picks = []
    for i in range(30):
        algorithm, _, config = s.suggest(f"t{i}", history, None, spent)  # type: ignore[misc]
        picks.append(algorithm)
        loss = -0.95 if algorithm == "LightGBM" else -0.94
        history.append((algorithm, config, loss))
        s.tell(f"t{i}", loss)
        spent[algorithm] = spent.get(algorithm, 0.0) + cost[algorithm]
    assert picks[:2] == ["LightGBM", "XGBoostClassifier"]
    assert spent["XGBoostClassifier"] <= 0.5 * spent["LightGBM"] + cost["XGBoostClassifier"]
    assert picks.count("LightGBM") > 20


# ---------------------------------------------------------------------------------- on a server
def _job(data: Path, **over: Any) -> Any:
    from openaml import Input, automl

    job = automl.classification(training_data=Input(type="mltable", path=str(data)), target_column_name="label",
                                primary_metric="AUC_weighted", n_cross_validations=2,
                                experiment_name="automl-tests", **over)
    job.set_limits(timeout_minutes=5, trial_timeout_minutes=3, max_trials=2, max_concurrent_trials=2)
    job.set_training(allowed_training_algorithms=["LightGBM", "LogisticRegression"],
                     enable_vote_ensemble=False, enable_stack_ensemble=False, enable_model_explainability=True)
    return job


def test_bad_input_is_refused_before_anything_runs(ml_client: Any, tmp_path: Path) -> None:
    data = _mltable(tmp_path / "d", _frame())
    before = len(ml_client.jobs.list_raw())
    job = _job(data)
    job.target_column_name = "Survived"
    with pytest.raises(ValidationError, match=r"column 'Survived' is not in training_data \(its columns: Id, x1"):
        ml_client.jobs.create_or_update(job)
    one = _mltable(tmp_path / "one", _frame().assign(label="yes"))
    with pytest.raises(ValidationError, match="one class only"):
        ml_client.jobs.create_or_update(_job(one))
    short = _job(data)
    short.set_training(allowed_training_algorithms=["DecisionTree"])
    with pytest.raises(ValidationError, match="DecisionTree cannot train here"):
        ml_client.jobs.create_or_update(short)
    assert len(ml_client.jobs.list_raw()) == before


def test_automl_job_end_to_end(ml_client: Any, tmp_path: Path, server: Any) -> None:
    """The one fast end-to-end run of the default suite: 2 trials as child jobs, the best tagged on
    the parent, its artifacts as Azure writes them, and its scoring file on raw rows."""
    import mlflow
    from mlflow.tracking import MlflowClient

    data = _mltable(tmp_path / "d", _frame())
    job = ml_client.jobs.create_or_update(_job(data))
    done = ml_client.jobs.wait(job.name, timeout=600)
    raw = ml_client.jobs.get_raw(job.name)
    assert done.status == "Completed", raw.get("error")
    every = ml_client.jobs.list_raw(parent_job_name=job.name)
    workers = [k for k in every if (k.get("properties") or {}).get("openaml.automl_role") == "worker"]
    kids = [k for k in every if k not in workers]
    # one worker per concurrent trial (each its own share of the algorithms), each trial a child job
    assert len(workers) == 2 and {w["status"] for w in workers} == {"Completed"}
    assert len(kids) == 2 and {k["status"] for k in kids} == {"Completed"}
    trials = raw["trials"]
    assert {t["name"] for t in trials} == {k["name"] for k in kids}
    assert [t["metric"] for t in trials] == sorted([t["metric"] for t in trials], reverse=True)
    assert {t["algorithm"] for t in trials} == {"LightGBM", "LogisticRegression"}
    assert {g["name"] for g in raw["guardrails"]} >= {"Class balancing detection",
                                                       "Missing feature values imputation",
                                                       "High cardinality feature detection"}
    assert raw["best_child_run_id"] == trials[0]["name"] and raw["best_score"] == trials[0]["metric"]
    assert raw["feature_importance"][0]["feature"] in ("x1", "colour", "review")
    client = MlflowClient(tracking_uri=ml_client.mlflow_tracking_uri if hasattr(ml_client, "mlflow_tracking_uri")
                          else f"{server.url}/mlflow")
    best = client.get_run(job.name).data.tags["automl_best_child_run_id"]
    run = client.get_run(best)
    assert run.data.metrics["AUC_weighted"] == pytest.approx(raw["best_score"])
    assert {"accuracy", "norm_macro_recall", "precision_score_weighted", "log_loss"} <= set(run.data.metrics)
    # the parent run carries the best child's metrics, as Azure's does (review14 F7)
    parent = client.get_run(job.name).data.metrics
    assert parent["AUC_weighted"] == pytest.approx(raw["best_score"])
    assert parent["accuracy"] == pytest.approx(run.data.metrics["accuracy"])
    # the studio's job page shows the trials best first with the primary metric, and the guardrails
    # (review14 F8: only the child-job list and the log's lines)
    import httpx

    page = httpx.get(f"{server.url}/jobs/{job.name}", headers={"Accept": "text/html"}, timeout=60).text
    table = page.split('id="trials-table"', 1)[1].split("</table>", 1)[0]
    assert "AUC_weighted" in table and table.index(trials[0]["name"]) < table.index(trials[1]["name"])
    assert "★ best" in table.split(trials[0]["name"], 1)[1].split("</tr>", 1)[0]
    assert 'id="guardrails"' in page and "Class balancing detection" in page
    files = {a.path for a in client.list_artifacts(best, "outputs")}
    assert {"outputs/mlflow-model", "outputs/model.pkl", "outputs/conda_env_v_1_0_0.yml",
            "outputs/scoring_file_v_2_0_0.py"} <= files
    dest = tmp_path / "best"
    mlflow.set_tracking_uri(f"{server.url}/mlflow")
    client.download_artifacts(best, "outputs", str(dest))
    rows = _frame().drop(columns=["label"]).head(3)
    rows["colour"] = ["purple", "red", None]  # a category never seen in training
    payload = {"Inputs": {"data": json.loads(rows.to_json(orient="records"))},
               "GlobalParameters": {"method": "predict_proba"}}
    code = ("import json, sys, os\nsys.path.insert(0, sys.argv[1])\nimport scoring_file_v_2_0_0 as s\ns.init()\n"
            "print(json.dumps(s.run(sys.argv[2])))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["AZUREML_MODEL_DIR"] = str(dest / "outputs")
    out = subprocess.run([sys.executable, "-c", code, str(dest / "outputs"), json.dumps(payload)], env=env,
                         capture_output=True, text=True, cwd=tmp_path, check=True)
    probs = json.loads(out.stdout.strip().splitlines()[-1])["Results"]
    assert len(probs) == 3 and all(abs(sum(p) - 1) < 1e-6 for p in probs)
    payload["GlobalParameters"] = {"method": "predict"}
    out = subprocess.run([sys.executable, "-c", code, str(dest / "outputs"), json.dumps(payload)], env=env,
                         capture_output=True, text=True, cwd=tmp_path, check=True)
    assert set(json.loads(out.stdout.strip().splitlines()[-1])["Results"]) <= {"yes", "no"}
    pyfunc = mlflow.pyfunc.load_model(str(dest / "outputs" / "mlflow-model"))
    assert set(pyfunc.predict(rows)) <= {"yes", "no"}


@pytest.mark.slow
def test_server_restart_mid_automl_keeps_finished_trials(tmp_path: Path) -> None:
    from openaml import MLClient
    from tests.conftest import start_server

    ws = tmp_path / "ws"
    handle = start_server(ws)
    data = _mltable(tmp_path / "d", _frame())
    try:
        with MLClient(workspace=handle.url) as client:
            job = _job(data)
            job.set_limits(max_trials=4, max_concurrent_trials=1, timeout_minutes=10)
            job = client.jobs.create_or_update(job)
            deadline = time.monotonic() + 400
            while time.monotonic() < deadline:
                kids = client.jobs.list_raw(parent_job_name=job.name)
                if any(k["status"] == "Completed" for k in kids):
                    break
                time.sleep(1)
            finished = {k["name"] for k in kids if k["status"] == "Completed"}
            assert finished
        handle.stop()
        handle = start_server(ws, create=False)
        with MLClient(workspace=handle.url) as client:
            done = client.jobs.wait(job.name, timeout=600)
            assert done.status == "Completed"
            kids = {k["name"]: k for k in client.jobs.list_raw(parent_job_name=job.name)}
            assert finished <= set(kids) and all(kids[n]["status"] == "Completed" for n in finished)
            assert client.jobs.get_raw(job.name)["best_child_run_id"] in kids
    finally:
        handle.stop()


# ---------------------------------------------------------------------------------- forecasting
def _series(n: int = 120, ids: tuple[str, ...] = ("a", "b")) -> pd.DataFrame:
    t = pd.date_range("2024-01-01", periods=n, freq="D")
    frames = []
    for k, s in enumerate(ids):
        y = 10 + 5 * k + 3 * np.sin(2 * np.pi * np.arange(n) / 7) + 0.05 * np.arange(n)
        frames.append(pd.DataFrame({"date": t.astype(str), "store": s, "sales": y}))
    return pd.concat(frames, ignore_index=True)


def test_forecast_models_forecast_the_horizon_per_series() -> None:
    from openaml.automl._forecast import _make, _prepare, forecast_guardrails

    df = _series()
    settings = {"target": "sales", "algorithm": "SeasonalNaive", "flaml_learner": "SeasonalNaive",
                "forecasting": {"time_column_name": "date", "time_series_id_column_names": ["store"],
                                "forecast_horizon": 7}}
    frame, st = _prepare(df, settings)
    assert st["freq"] == "D" and st["season"] == 7 and st["lags"] == [1, 7]
    train, future = frame[frame["date"] < "2024-04-23"], frame[frame["date"] >= "2024-04-23"].head(14)
    naive = _make(settings, st).fit(train)
    out = naive.forecast(future.drop(columns=["sales"]))
    assert list(out.columns)[-1] == "sales_forecast" and len(out) == len(future)
    err_naive = np.abs(out["sales_forecast"].to_numpy() - future["sales"].to_numpy()).mean()
    lgbm = _make({**settings, "algorithm": "LightGBM", "flaml_learner": "lgbm",
                  "config": {"n_estimators": 60, "num_leaves": 8, "min_child_samples": 5}}, st).fit(train)
    err_lgbm = np.abs(lgbm.predict(future.drop(columns=["sales"])) - future["sales"].to_numpy()).mean()
    assert err_naive < 1.0 and err_lgbm < 3.0
    g = {x["name"]: x for x in forecast_guardrails(df, settings["forecasting"])}
    assert g["Frequency detection"]["status"] == "passed" and "D" in g["Frequency detection"]["details"]
    short = forecast_guardrails(_series(n=10), {**settings["forecasting"], "forecast_horizon": 7})
    assert short[0]["status"] == "alerted" and "shorter than" in short[0]["details"]


@pytest.mark.slow
def test_best_model_deploys_as_mlflow_no_code_and_with_the_scoring_file(ml_client: Any, tmp_path: Path) -> None:
    """Chapter 5's end: the best child's files served by an online endpoint, as an MLflow model with
    no scoring script, and as model.pkl behind scoring_file_v_2_0_0.py."""
    from mlflow.tracking import MlflowClient

    from openaml.entities import CodeConfiguration, Environment, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

    data = _mltable(tmp_path / "d", _frame())
    job = _job(data)
    job.set_training(allowed_training_algorithms=["LogisticRegression"])
    job.set_limits(max_trials=1, max_concurrent_trials=1)
    job = ml_client.jobs.create_or_update(job)
    assert ml_client.jobs.wait(job.name, timeout=600).status == "Completed"
    client = MlflowClient(tracking_uri=ml_client.workspaces.get().mlflow_tracking_uri)
    best = client.get_run(job.name).data.tags["automl_best_child_run_id"]
    local = Path(client.download_artifacts(best, "outputs", str(tmp_path / "best")))
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="ep-automl", auth_mode="key"))
    no_code = ManagedOnlineDeployment(name="mlflow", endpoint_name="ep-automl",
                                      model=Model(path=str(local / "mlflow-model"), type="mlflow_model"),
                                      instance_type="Standard_DS3_v2", instance_count=1)
    assert ml_client.online_deployments.begin_create_or_update(no_code).result(timeout=900).provisioning_state == \
        "Succeeded"
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.pkl").write_bytes((local / "model.pkl").read_bytes())
    scoring = ManagedOnlineDeployment(name="scoring", endpoint_name="ep-automl",
                                      model=Model(path=str(tmp_path / "model")),
                                      code_configuration=CodeConfiguration(code=str(local),
                                                                           scoring_script="scoring_file_v_2_0_0.py"),
                                      environment=Environment(
                                          image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py311-cpu-inference",
                                          conda_file=str(local / "conda_env_v_1_0_0.yml")),
                                      instance_type="Standard_DS3_v2", instance_count=1)
    assert ml_client.online_deployments.begin_create_or_update(scoring).result(timeout=900).provisioning_state == \
        "Succeeded"
    rows = json.loads(_frame().drop(columns=["label"]).head(2).to_json(orient="records"))
    req = tmp_path / "req.json"
    req.write_text(json.dumps({"Inputs": {"data": rows}, "GlobalParameters": {"method": "predict_proba"}}))
    out = json.loads(ml_client.online_endpoints.invoke("ep-automl", request_file=str(req), deployment_name="scoring"))
    assert len(out["Results"]) == 2 and all(abs(sum(p) - 1) < 1e-6 for p in out["Results"])
    req.write_text(json.dumps({"input_data": {"columns": list(rows[0]), "data": [list(r.values()) for r in rows]}}))
    out = json.loads(ml_client.online_endpoints.invoke("ep-automl", request_file=str(req), deployment_name="mlflow"))
    preds = out["predictions"] if isinstance(out, dict) else out
    assert len(preds) == 2 and set(preds) <= {"yes", "no"}


def test_guardrails_name_a_class_too_rare_for_the_folds() -> None:
    from openaml.automl._guardrails import guardrails
    from openaml.entities._automl import AutoMLJob

    df = _frame()
    df.loc[:1, "label"] = "maybe"  # 2 rows: fewer than the 3 folds
    job = AutoMLJob.model_validate({"task": "classification", "target_column_name": "label",
                                    "training_data": {"type": "mltable", "path": "./d"}, "n_cross_validations": 3})
    g = {x["name"]: x for x in guardrails(df, job)}
    cb = g["Class balancing detection"]
    assert cb["status"] == "alerted" and "'maybe'" in cb["details"] and "too rare for 3 folds" in cb["details"]
    assert g["Missing feature values imputation"]["status"] == "done" and "x1" in \
        g["Missing feature values imputation"]["details"]


def test_the_titanic_automl_example_is_a_valid_job() -> None:
    from openaml import load_job
    from openaml.entities._automl import automl_problems

    root = Path(__file__).resolve().parents[1] / "examples" / "titanic" / "automl"
    job = load_job(root / "automl-job.yml")
    problems, notes = automl_problems(job)
    assert not problems and any("ONNX" in n for n in notes)
    assert (job.base_path / job.training_data.path / "MLTable").is_file()
    request = json.loads((root / "sample-titanic-data.json").read_text())
    assert request["GlobalParameters"]["method"] == "predict" and len(request["Inputs"]["data"]) == 2


def test_cli_says_each_warning_once(ml_client: Any, cli: Any, tmp_path: Path) -> None:
    """review14 F11: a note the SDK's check and the server's answer both give is printed once."""
    _mltable(tmp_path / "data", _frame(60))
    (tmp_path / "job.yml").write_text(
        "type: automl\ntask: classification\ntarget_column_name: label\n"
        "training_data: {type: mltable, path: ./data}\nlimits: {timeout_minutes: 1, max_trials: 1}\n"
        "training: {enable_onnx_compatible_models: true, enable_model_explainability: false}\n")
    r = cli("job", "create", "--file", str(tmp_path / "job.yml"), "-o", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    try:
        assert r.stderr.count("enable_onnx_compatible_models: no ONNX model") == 1, r.stderr
    finally:
        ml_client.jobs.begin_cancel(r.json()["name"])
