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
