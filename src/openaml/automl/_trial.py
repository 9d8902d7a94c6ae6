"""One AutoML trial, run as a child command job (``python -m openaml.automl._trial``) in the job's
environment: featurize, train one learner with one configuration, validate, log, save.

Input: the trial's settings as JSON in ``OPENAML_AUTOML_TRIAL`` (written by the AutoML kind) and
the data folders as ``--training_data/--validation_data/--test_data PATH`` (the runner's
resolved MLTable inputs). Output, as an Azure AutoML child run:

- metrics: every metric of the task (:mod:`openaml.automl._metrics`), from cross-validation
  (out-of-fold predictions) or the validation set; ``test_*`` ones when test data is given;
- params: the learner, its hyperparameters, the featurization; tag ``automl_pipeline``
  (the pipeline's description) and ``automl_algorithm``;
- ``./outputs`` (uploaded by the runner): ``model.pkl`` (the fitted pipeline, refit on all
  training data, scores raw rows), ``mlflow-model/`` (signature and input example),
  ``conda_env_v_1_0_0.yml``, ``scoring_file_v_2_0_0.py``, ``oof.npz`` (validation predictions,
  for ensembles) and, with ``enable_model_explainability``, ``explanation/global_importance.json``.

The model pickles openaml's featurization classes by value (cloudpickle), so it loads where
openaml is not installed (a deployment's environment).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["main", "run_trial", "build_model", "AutoMLModel", "label_array", "evaluate", "sink", "Collector", "wants_full"]

_SINK: Any = None  # None: the fluent mlflow API (the child job's own run); a worker sets a Collector
# a worker's memo (None in a one-trial job): the column roles, and the featurize step fitted once per set of rows
_CACHE: dict[Any, Any] | None = None


class Collector:
    """What a trial logs, kept in memory (a trial worker hands it to the AutoML job, which logs it
    on the trial's child run): ``metrics``, ``params``, ``tags``, with mlflow's fluent signatures."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}

    def log_metrics(self, metrics: dict[str, float]) -> None:
        self.metrics.update({k: float(v) for k, v in metrics.items()})

    def log_params(self, params: dict[str, Any]) -> None:
        self.params.update({k: str(v) for k, v in params.items()})

    def set_tags(self, tags: dict[str, Any]) -> None:
        self.tags.update({k: str(v) for k, v in tags.items()})

    def set_tag(self, key: str, value: Any) -> None:
        self.tags[key] = str(value)


def sink() -> Any:
    """Where a trial logs: the worker's :class:`Collector`, else ``mlflow`` (the active run)."""
    if _SINK is not None:
        return _SINK
    import mlflow

    return mlflow


def wants_full(settings: dict[str, Any], metrics: dict[str, float]) -> bool:
    """Whether a trial writes its full model artifacts (MLflow model, conda file, scoring file,
    explanation): always, unless its settings carry ``best_loss`` (a worker's best so far) and the
    trial's primary metric does not beat it. The job's best trial is always the best so far of the
    worker that ran it, so its artifacts are always complete."""
    best = settings.get("best_loss")
    if best is None:
        return True
    from openaml.automl._metrics import loss_of

    value = metrics.get(settings["metric"])
    return value is not None and loss_of(settings["metric"], float(value)) < float(best)

_SCALED = {"lrl1", "lrl2", "sgd", "svc", "kneighbor", "enet", "lassolars"}
_DENSE = {"histgb", "lassolars"}  # learners that refuse sparse input


def _to_dense(X: Any) -> Any:
    return X.toarray() if hasattr(X, "toarray") else X


def label_array(values: Any, dtype: Any = None) -> np.ndarray:
    """The class labels as an array of the target column's dtype (``dtype``; else inferred from the
    values: Python ints -> int64, strings -> object), so that ``predict`` answers in the user's
    terms (an int64 target predicts int64, which scikit-learn's metrics read as binary/multiclass;
    an object array of ints reads as "unknown")."""
    if dtype is not None and np.dtype(dtype) != np.dtype(object):
        return np.asarray(list(values), dtype=dtype)
    return np.asarray(pd.Series(list(values), dtype=object).infer_objects().to_numpy())


class AutoMLModel:
    """The fitted AutoML pipeline: raw rows in, the original labels out (``predict``), class
    probabilities (``predict_proba``, columns in ``classes_`` order) for classification."""

    def __init__(self, pipeline: Any, task: str, classes: list[Any] | None, columns: list[str]) -> None:
        self.pipeline = pipeline
        self.task = task
        self.classes_ = None if classes is None else label_array(classes)
        self.columns = columns

    def _frame(self, X: Any) -> pd.DataFrame:
        return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X, columns=self.columns)

    def predict(self, X: Any) -> np.ndarray:
        if self.task == "classification":
            assert self.classes_ is not None
            return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])
        return np.asarray(self.pipeline.predict(self._frame(X)), dtype=float)

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.task != "classification":
            raise AttributeError("predict_proba is for classification models")
        return np.asarray(self.pipeline.predict_proba(self._frame(X)))


def build_model(learner: str, config: dict[str, Any], ftask: str, n_jobs: int, featurizer: Any) -> Any:
    """featurizer -> (scaler for linear/distance learners) -> the learner's estimator with ``config``."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, MaxAbsScaler

    from openaml.automl._learners import estimator_class

    cls = estimator_class(learner, ftask)
    est = cls(task=ftask, n_jobs=n_jobs, **config)
    params = dict(est.params)
    model = est.estimator_class(**params)
    if learner == "svc":  # a linear SVM has no predict_proba: its scores calibrated (Platt), as Azure's LinearSVM wrapper does
        from sklearn.calibration import CalibratedClassifierCV

        model = CalibratedClassifierCV(model, method="sigmoid", cv=3)
    steps: list[tuple[str, Any]] = [("featurize", featurizer)]
    if learner in _SCALED:
        steps.append(("scale", MaxAbsScaler()))
    if learner in _DENSE:
        steps.append(("dense", FunctionTransformer(_to_dense, accept_sparse=True)))
    steps.append(("model", model))
    return Pipeline(steps)


def _folds(n: int, y: np.ndarray, task: str, settings: dict[str, Any], df: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/validation index pairs: cv_split_column_names, n_cross_validations, validation_data_size,
    or Azure's automatic rule (< 1,000 rows: 10 folds; < 20,000: 3 folds; else a 10 % holdout)."""
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    split_cols = settings.get("cv_split_column_names") or []
    if split_cols:
        return [(np.where(df[c].to_numpy() == 1)[0], np.where(df[c].to_numpy() == 0)[0]) for c in split_cols]
    cv = settings.get("n_cross_validations")
    size = settings.get("validation_data_size")
    strat = task == "classification" and int(np.min(np.unique(y, return_counts=True)[1])) >= 2
    idx = np.arange(n)
    if size or (cv in (None, "auto") and n >= 20000):
        tr, va = train_test_split(idx, test_size=float(size or 0.1), random_state=42, stratify=y if strat else None)
        return [(tr, va)]
    k = int(cv) if cv not in (None, "auto") else (10 if n < 1000 else 3)
    if strat:
        smallest = int(np.min(np.unique(y, return_counts=True)[1]))
        k_used = max(2, min(k, smallest))
        splitter: Any = StratifiedKFold(n_splits=k_used, shuffle=True, random_state=42)
        return list(splitter.split(idx, y))
    return list(KFold(n_splits=k, shuffle=True, random_state=42).split(idx))


def evaluate(model: Any, X: pd.DataFrame, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
             task: str, n_classes: int, weight: np.ndarray | None, deadline: float) -> tuple[np.ndarray, np.ndarray, Any]:
    """Out-of-fold predictions (probabilities for classification), the rows they cover, and the
    last fold's fitted model."""

    shape = (len(y), n_classes) if task == "classification" else (len(y),)
    pred = np.full(shape, np.nan)
    covered = np.zeros(len(y), dtype=bool)
    fits = len(folds) + (1 if len(folds) > 1 else 0)  # cross-validation refits on all rows after
    for i, (tr, va) in enumerate(folds):
        now = time.time()
        if now > deadline:
            raise TimeoutError("the trial's time limit was reached during validation")
        fit_kw = {"model__sample_weight": weight[tr]} if weight is not None else {}
        # each fit its share of the time left (its predictions after it: 90 % of the share)
        m = fit_pipeline(model, X, y, tr, fit_kw, now + 0.9 * (deadline - now) / (fits - i))
        if task == "classification":
            p = m.predict_proba(X.iloc[va])
            full = np.zeros((len(va), n_classes))
            full[:, np.asarray(m.classes_, dtype=int)] = p
            pred[va] = full
        else:
            pred[va] = m.predict(X.iloc[va])
        covered[va] = True
    return pred, covered, m


def fit_pipeline(model: Any, X: pd.DataFrame, y: np.ndarray, rows: np.ndarray, fit_kw: dict[str, Any],
                 deadline: float | None = None) -> Any:
    """A fitted copy of pipeline ``model`` on rows ``rows`` of ``X, y``. In a worker (``_CACHE``
    set) the featurize step is fitted once per set of rows and shared by the trials (every trial
    of a job has the same featurization; only the steps after it are fitted per trial).

    ``deadline`` (epoch seconds): a tree ensemble (LightGBM, XGBoost, random forest, extra trees)
    stops adding trees then (:func:`fit_within`), as FLAML's estimators fit within a budget; what it
    grew is added to :data:`TIME_LIMITED`."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    key = ("featurize", len(X), len(rows), int(rows[:64].sum()), int(rows.sum()))
    if _CACHE is not None and key in _CACHE:
        feat, Xt = _CACHE[key]
    else:
        feat = clone(model.steps[0][1])
        Xt = feat.fit_transform(X.iloc[rows], y[rows])
        if _CACHE is not None:
            _CACHE[key] = (feat, Xt)
    tail = Pipeline([(n, clone(step)) for n, step in model.steps[1:]])
    est_kw = {k.split("__", 1)[1]: v for k, v in fit_kw.items()}  # model__sample_weight -> sample_weight
    Xm = Xt
    for _, step in tail.steps[:-1]:
        Xm = step.fit_transform(Xm, y[rows])
    note = fit_within(tail.steps[-1][1], Xm, y[rows], est_kw, deadline)
    if note:
        TIME_LIMITED.append(note)
    return Pipeline([(model.steps[0][0], feat), *tail.steps])


#: what the fits of the trial running grew when their deadline stopped them (its log and tags say so)
TIME_LIMITED: list[str] = []


def fit_within(est: Any, X: Any, y: np.ndarray, fit_kw: dict[str, Any], deadline: float | None) -> str | None:
    """Fit estimator ``est`` on ``X, y``; a tree ensemble stops adding trees at ``deadline`` (epoch
    seconds): LightGBM and XGBoost by a training callback, a scikit-learn forest grown in chunks
    (``warm_start``), as FLAML fits its estimators within a time budget. Returns None when the
    model is whole, else ``"n_estimators A -> B"`` (asked, grown: the model holds B trees and says
    so in its ``n_estimators``, except LightGBM and XGBoost, whose ``predict`` uses the trees grown)."""
    name = type(est).__module__.split(".")[0]
    if deadline is None or not hasattr(est, "n_estimators"):
        est.fit(X, y, **fit_kw)
        return None
    asked = int(est.n_estimators)
    end: float = deadline
    if name == "lightgbm":
        import lightgbm

        def stop(env: Any) -> None:
            if time.time() >= end:
                raise lightgbm.callback.EarlyStopException(env.iteration, env.evaluation_result_list or [])

        est.fit(X, y, callbacks=[stop], **fit_kw)
        grown = int(est.booster_.current_iteration())
    elif name == "xgboost":
        import xgboost

        class _Stop(xgboost.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                return time.time() >= end

        est.set_params(callbacks=[_Stop()])
        try:
            est.fit(X, y, **fit_kw)
        finally:
            est.set_params(callbacks=None)
        grown = int(est.get_booster().num_boosted_rounds())
    elif name == "sklearn" and hasattr(est, "warm_start"):
        grown = min(asked, 4)
        est.set_params(warm_start=True, n_estimators=grown)
        t0 = time.time()
        est.fit(X, y, **fit_kw)
        per_tree = (time.time() - t0) / grown
        while grown < asked:
            room = int((end - time.time()) / max(per_tree, 1e-6))
            more = min(asked - grown, grown, room)  # doubling, while the time left holds the next chunk
            if more < 1:
                break
            grown += more
            est.set_params(n_estimators=grown)
            t0 = time.time()
            est.fit(X, y, **fit_kw)
            per_tree = max(per_tree, (time.time() - t0) / more)
        est.set_params(warm_start=False)
    else:
        est.fit(X, y, **fit_kw)
        return None
    return None if grown >= asked else f"n_estimators {asked} -> {grown}"


def _roles(X: pd.DataFrame, featurization: dict[str, Any] | None) -> tuple[dict[str, str], list[dict[str, Any]]]:
    from openaml.automl._featurize import column_roles

    if _CACHE is None:
        return column_roles(X, featurization)
    key = ("roles", tuple(map(str, X.columns)), X.shape, json.dumps(featurization, sort_keys=True, default=str))
    if key not in _CACHE:
        _CACHE[key] = column_roles(X, featurization)
    roles, notes = _CACHE[key]
    return dict(roles), list(notes)


def _read(path: str | None) -> pd.DataFrame | None:
    from openaml.automl._data import read_mltable

    return None if not path else read_mltable(path)


def _importance(model: Any, X: pd.DataFrame, y: np.ndarray, task: str) -> list[dict[str, Any]]:
    """Global importance of each raw column: the mean drop in score (accuracy, or R2 for
    regression) when the column is shuffled, on up to 500 rows, 3 repeats (permutation importance),
    normalized to sum to 1. ``model.predict`` must answer in ``y``'s terms."""
    from sklearn.metrics import accuracy_score, r2_score

    rs = np.random.RandomState(0)
    rows = rs.choice(len(X), min(len(X), 500), replace=False)
    Xs = X.iloc[rows].reset_index(drop=True)
    ys = y[rows]

    def score(frame: pd.DataFrame) -> float:
        pred = model.predict(frame)
        return float(accuracy_score(ys, pred) if task == "classification" else r2_score(ys, pred))

    base = score(Xs)
    drops = []
    for c in Xs.columns:
        total = 0.0
        for _ in range(3):
            shuffled = Xs.copy()
            shuffled[c] = rs.permutation(shuffled[c].to_numpy())
            total += base - score(shuffled)
        drops.append(max(0.0, total / 3))
    norm = sum(drops) or 1.0
    out = [{"feature": str(c), "importance": round(d / norm, 6)} for c, d in zip(Xs.columns, drops, strict=True)]
    return sorted(out, key=lambda d: -d["importance"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="openaml.automl._trial")
    ap.add_argument("--training_data", required=True)
    ap.add_argument("--validation_data")
    ap.add_argument("--test_data")
    ap.add_argument("--member", action="append", default=[], help="an ensemble member's outputs folder")
    args = ap.parse_args(argv)
    # FLAML imports ray.tune when Ray is installed (seconds per trial); a trial never uses Ray
    sys.modules.setdefault("ray", None)  # type: ignore[arg-type]
    settings = json.loads(os.environ["OPENAML_AUTOML_TRIAL"])
    from threadpoolctl import threadpool_limits

    # the trial's cores: OpenMP/BLAS pools beyond them only contend (n_jobs, set by the AutoML job)
    threadpool_limits(int(settings.get("n_jobs") or 1))
    return run_trial(settings, args)


def run_trial(settings: dict[str, Any], args: argparse.Namespace) -> int:
    """One trial of ``settings`` on the data folders of ``args``: its files under ``./outputs``,
    what it logs to :func:`sink`. Raises what the trial raised (its time limit: TimeoutError)."""
    started = time.time()
    deadline = started + float(settings.get("time_limit_s") or 1e9) * 0.9
    if settings.get("learner") in ("vote_ensemble", "stack_ensemble"):
        from openaml.automl._ensemble import run_ensemble

        return run_ensemble(settings, args)
    if settings["task"] == "forecasting":
        from openaml.automl._forecast import run_forecast_trial

        return run_forecast_trial(settings, args, deadline)
    return _run(settings, args, deadline)


def prepare_frame(df: pd.DataFrame, settings: dict[str, Any]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
    """(features, target, weights) with the rows that have a target; split columns and the weight
    column removed from the features."""
    target = settings["target"]
    df = df[df[target].notna()].reset_index(drop=True)
    weight_col = settings.get("weight_column_name")
    w = df[weight_col].to_numpy(dtype=float) if weight_col else None
    drop = [target, *(settings.get("cv_split_column_names") or []), *([weight_col] if weight_col else [])]
    return df.drop(columns=[c for c in drop if c in df.columns]), df[target].to_numpy(), w


def _run(settings: dict[str, Any], args: argparse.Namespace, deadline: float) -> int:
    from openaml.automl import _artifacts
    from openaml.automl._featurize import build_featurizer
    from openaml.automl._learners import flaml_task
    from openaml.automl._metrics import classification_metrics, regression_metrics

    t0 = time.time()
    TIME_LIMITED.clear()
    # when training began (the imports done): a trial canceled at the job's timeout still shows its training time
    sink().set_tag("automl_training_started_at", f"{t0:.3f}")
    task = settings["task"]
    df = _read(args.training_data)
    assert df is not None
    X, y_raw, w = prepare_frame(df, settings)
    split_frame = df[df[settings["target"]].notna()].reset_index(drop=True)
    classes: list[Any] | None = None
    if task == "classification":
        classes = sorted(pd.unique(y_raw).tolist(), key=lambda v: (str(type(v)), v))
        pos = settings.get("positive_label")
        if pos is not None and len(classes) == 2:  # the positive class is the second column of predict_proba
            match = [c for c in classes if c == pos or str(c) == str(pos)]
            if match:
                classes = [c for c in classes if c is not match[0]] + [match[0]]
        classes = list(label_array(classes, y_raw.dtype))  # the target's dtype, kept in the model's classes_
        lookup = {c: i for i, c in enumerate(classes)}
        y = np.array([lookup[v] for v in y_raw])
    else:
        y = y_raw.astype(float)
    n_classes = len(classes or [])
    ftask = flaml_task(task, n_classes)
    roles, notes = _roles(X, settings.get("featurization"))
    learner, config = settings["flaml_learner"], dict(settings.get("config") or {})
    n_jobs = int(settings.get("n_jobs") or 1)
    model = build_model(learner, config, ftask, n_jobs, build_featurizer(X, roles, settings.get("featurization")))
    val_df = _read(args.validation_data)
    if val_df is not None:
        Xv, yv_raw, wv = prepare_frame(val_df, settings)
        yv = np.array([lookup[v] for v in yv_raw]) if classes is not None else yv_raw.astype(float)
        allX = pd.concat([X, Xv], ignore_index=True)
        ally = np.concatenate([y, yv])
        allw = None if w is None or wv is None else np.concatenate([w, wv])
        folds = [(np.arange(len(X)), np.arange(len(X), len(allX)))]
        pred, covered, fitted = evaluate(model, allX, ally, folds, task, n_classes, allw, deadline)
        ev_y, ev_w = ally, allw
    else:
        folds = _folds(len(X), y, task, settings, split_frame)
        pred, covered, fitted = evaluate(model, X, y, folds, task, n_classes, w, deadline)
        ev_y, ev_w = y, w
    ew = None if ev_w is None else ev_w[covered]
    if task == "classification":
        metrics = classification_metrics(ev_y[covered], pred[covered], np.arange(n_classes), ew)
    else:
        metrics = regression_metrics(ev_y[covered], pred[covered], ew)
    if len(folds) > 1:  # cross-validation: the final model is refit on all training data, as Azure does
        fit_kw = {"model__sample_weight": w} if w is not None else {}
        model = fit_pipeline(model, X, y, np.arange(len(X)), fit_kw, deadline)
    else:  # a holdout (validation data or size): the model validated is the model kept, as Azure does
        model = fitted
    final = AutoMLModel(model, task, classes, [str(c) for c in X.columns])
    fit_seconds = time.time() - t0  # featurize, fit, validate, refit: what follows is files and test scores
    test_df = _read(args.test_data)
    if test_df is not None:
        Xt, yt_raw, wt = prepare_frame(test_df, settings)
        if task == "classification":
            proba = final.predict_proba(Xt)
            yt = np.array([{c: i for i, c in enumerate(classes or [])}.get(v, -1) for v in yt_raw])
            keep = yt >= 0
            tm = classification_metrics(yt[keep], proba[keep], np.arange(n_classes), None)
        else:
            tm = regression_metrics(yt_raw.astype(float), final.predict(Xt), wt)
        metrics.update({f"test_{k}": v for k, v in tm.items()})
    out = Path("outputs")
    out.mkdir(exist_ok=True)
    np.savez_compressed(out / "oof.npz", pred=pred, covered=covered, y=ev_y)
    full = wants_full(settings, metrics)
    explanation = None
    if settings.get("explain") and full:
        explanation = _importance(model, X, y, task)
    description = " -> ".join(["featurize(" + ", ".join(f"{r}:{sum(1 for v in roles.values() if v == r)}"
                                                        for r in sorted(set(roles.values()))) + ")",
                               *(["MaxAbsScaler"] if learner in _SCALED else []),
                               settings["algorithm"]])
    _artifacts.write_model_artifacts(out, final, X, settings, description, full=full)
    if explanation is not None:
        (out / "explanation").mkdir(exist_ok=True)
        (out / "explanation" / "global_importance.json").write_text(json.dumps(explanation, indent=1))
    sink().log_metrics(metrics)
    sink().log_params({"algorithm": settings["algorithm"], "flaml_learner": learner,
                       **{f"hp.{k}": v for k, v in list(config.items())[:80]}})
    tags = {"automl_algorithm": settings["algorithm"], "automl_pipeline": description,
            "automl_featurization": json.dumps({"roles": roles, "notes": notes})[:5000],
            "automl_trial_seconds": f"{time.time() - t0:.2f}", "automl_fit_seconds": f"{fit_seconds:.2f}"}
    if TIME_LIMITED:  # asked vs grown: the trial's time limit stopped its trees
        tags["automl_time_limited"] = "; ".join(TIME_LIMITED)
        print(f"trial {settings['algorithm']}: the trial's time limit stopped its trees: {'; '.join(TIME_LIMITED)}")
    if explanation is not None:
        tags["automl_feature_importance"] = json.dumps(explanation[:40])[:5000]
    sink().set_tags(tags)
    print(f"trial {settings['algorithm']}: {settings['metric']} = {metrics.get(settings['metric'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
