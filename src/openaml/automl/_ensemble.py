"""Ensemble trials (Azure's ``VotingEnsemble`` and ``StackEnsemble``), run after the search as the
final child runs from the best trials (at most 5, ``members`` in the trial's settings).

Both read the members' ``outputs/model.pkl`` and ``outputs/oof.npz`` (their validation
predictions: every member used the same folds), given as the trial's inputs (``--member DIR``).

- Vote: Caruana ensemble selection (greedy, with replacement, 20 rounds) on the validation
  predictions; the weights are how often each member was picked; predictions are the weighted
  mean of the members' probabilities (classification) or values (regression).
- Stack: a meta learner on the members' validation predictions (``stack_meta_learner_type``:
  LogisticRegression (default, classification), ElasticNetCV (default, regression),
  LightGBMClassifier/Regressor, LinearRegression); its metrics come from a 5-fold
  cross-validation of the meta learner on those predictions.

The ensemble model scores raw rows as a member does (forecasting: ``forecast(frame)`` too, the
members' rolling-origin forecasts being their validation predictions); its artifacts are written
as a trial's.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["run_ensemble", "EnsembleModel"]


class EnsembleModel:
    """Members' predictions combined: ``weights`` (vote) or a ``meta`` learner (stack)."""

    def __init__(self, members: list[Any], task: str, classes: Any, weights: list[float] | None,
                 meta: Any = None) -> None:
        self.members = members
        self.task = task
        self.classes_ = classes
        self.weights = weights
        self.meta = meta

    def fit(self, X: Any, y: Any = None) -> EnsembleModel:
        """No-op: the members and the weights are fitted (scikit-learn's inspection tools ask for it)."""
        return self

    def _outputs(self, X: Any) -> list[np.ndarray]:
        if self.task == "classification":
            return [np.asarray(m.predict_proba(X)) for m in self.members]
        return [np.asarray(m.predict(X), dtype=float) for m in self.members]

    def _combine(self, outs: list[np.ndarray]) -> np.ndarray:
        if self.meta is not None:
            feats = _stack_features(outs, self.task)
            return np.asarray(self.meta.predict_proba(feats) if self.task == "classification"
                              else self.meta.predict(feats))
        w = np.asarray(self.weights, dtype=float)
        return np.tensordot(w / w.sum(), np.stack(outs), axes=1)

    def forecast(self, frame: Any) -> Any:
        """Forecasting: the first member's forecast frame with ``<target>_forecast`` the ensemble's."""
        out = self.members[0].forecast(frame)
        column = [c for c in out.columns if str(c).endswith("_forecast")][-1]
        out[column] = self.predict(frame)
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.task != "classification":
            raise AttributeError("predict_proba is for classification models")
        return self._combine(self._outputs(X))

    def predict(self, X: Any) -> np.ndarray:
        if self.task == "classification":
            return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])
        return self._combine(self._outputs(X))


def _stack_features(outs: list[np.ndarray], task: str) -> np.ndarray:
    if task == "classification":
        return np.hstack([o[:, 1:] if o.shape[1] == 2 else o for o in outs])
    return np.column_stack(outs)


def _metrics(task: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from openaml.automl._metrics import classification_metrics, regression_metrics

    if task == "classification":
        return classification_metrics(y, pred, np.arange(pred.shape[1]))
    return regression_metrics(y, pred)


def _score(task: str, metric: str, y: np.ndarray, pred: np.ndarray) -> float | None:
    """The primary metric alone where it is cheap to compute (AUC_weighted, accuracy, r2_score,
    normalized RMSE: the selection rounds compute it 100 times), else from all the task's metrics."""
    from sklearn import metrics as m

    if task == "classification" and metric == "AUC_weighted" and pred.shape[1] == 2:
        return float(m.roc_auc_score(y, pred[:, 1]))  # binary: both columns give the positive class's AUC
    if task == "classification" and metric == "accuracy":
        return float(np.mean(np.argmax(pred, axis=1) == y))
    if task != "classification" and metric == "r2_score":
        return float(m.r2_score(y, pred))
    if task != "classification" and metric == "normalized_root_mean_squared_error":
        return float(np.sqrt(np.mean((y - pred) ** 2)) / (float(np.max(y) - np.min(y)) or 1.0))
    return _metrics(task, y, pred).get(metric)


def _caruana(task: str, metric: str, y: np.ndarray, preds: list[np.ndarray], rounds: int = 20) -> list[float]:
    from openaml.automl._metrics import loss_of

    counts = [0] * len(preds)
    total: np.ndarray | None = None
    for r in range(rounds):
        best_i, best_loss = 0, float("inf")
        for i, p in enumerate(preds):
            cand = p if total is None else (total * r + p) / (r + 1)
            value = _score(task, metric, y, cand)
            loss = float("inf") if value is None else loss_of(metric, value)
            if loss < best_loss:
                best_i, best_loss = i, loss
        counts[best_i] += 1
        total = preds[best_i] if total is None else (total * r + preds[best_i]) / (r + 1)
    return [float(c) for c in counts]


def _meta_learner(kind: str | None, task: str, kwargs: dict[str, Any]) -> Any:
    from sklearn import linear_model

    kind = kind or ("LogisticRegression" if task == "classification" else "ElasticNetCV")
    if kind in ("LightGBMClassifier", "LightGBMRegressor"):
        import lightgbm

        cls = lightgbm.LGBMClassifier if task == "classification" else lightgbm.LGBMRegressor
        return cls(verbose=-1, **kwargs)
    if kind == "LogisticRegressionCV":
        return linear_model.LogisticRegressionCV(**kwargs)
    return getattr(linear_model, kind)(**kwargs)


def run_ensemble(settings: dict[str, Any], args: argparse.Namespace) -> int:
    from sklearn.model_selection import cross_val_predict

    from openaml.automl import _artifacts
    from openaml.automl._data import read_mltable
    from openaml.automl._trial import prepare_frame

    t0 = time.time()
    task, metric = settings["task"], settings["metric"]
    members, oofs, names = [], [], []
    y = covered = None
    for run_id, member in zip(settings["members"], args.member, strict=True):
        folder = Path(member)
        with open(folder / "model.pkl", "rb") as f:
            members.append(pickle.load(f))
        z = np.load(folder / "oof.npz", allow_pickle=False)
        oofs.append(z["pred"])
        y, covered = z["y"], z["covered"]
        names.append(run_id)
    assert y is not None and covered is not None
    preds = [p[covered] for p in oofs]
    yc = y[covered].astype(int) if task == "classification" else y[covered].astype(float)
    classes = getattr(members[0], "classes_", None)
    if settings["learner"] == "vote_ensemble":
        weights = _caruana(task, metric, yc, preds)
        keep = [i for i, w in enumerate(weights) if w > 0]
        model = EnsembleModel([members[i] for i in keep], task, classes, [weights[i] for i in keep])
        combined = np.tensordot(np.asarray([weights[i] for i in keep]) / sum(weights), np.stack([preds[i] for i in keep]),
                                axes=1)
        params = {"ensembled_iterations": json.dumps([names[i] for i in keep]),
                  "ensemble_weights": json.dumps([weights[i] for i in keep])}
    else:
        stack = settings.get("stack") or {}
        meta = _meta_learner(stack.get("stack_meta_learner_type"), task, stack.get("stack_meta_learner_kwargs") or {})
        feats = _stack_features(preds, task)
        method = "predict_proba" if task == "classification" else "predict"
        combined = cross_val_predict(meta, feats, yc, cv=5, method=method)
        meta.fit(feats, yc)
        model = EnsembleModel(members, task, classes, None, meta)
        params = {"ensembled_iterations": json.dumps(names), "meta_learner": type(meta).__name__}
    metrics = _metrics(task, yc, combined)
    fit_seconds = time.time() - t0
    df = read_mltable(args.training_data)
    X, y_raw, _ = prepare_frame(df, settings)
    out = Path("outputs")
    out.mkdir(exist_ok=True)
    description = f"{settings['algorithm']} of {len(names)} trials"
    learners = ["lgbm", "xgboost"] + (["AutoArima", "Prophet", "holidays"] if task == "forecasting" else [])
    settings = {**settings, "ensemble_learners": learners}
    _artifacts.write_model_artifacts(out, model, X, settings, description)
    tags = {}
    if settings.get("explain") and task != "forecasting":
        from openaml.automl._trial import _importance

        explanation = _importance(model, X, y_raw if task == "classification" else y_raw.astype(float), task)
        (out / "explanation").mkdir(exist_ok=True)
        (out / "explanation" / "global_importance.json").write_text(json.dumps(explanation, indent=1))
        tags["automl_feature_importance"] = json.dumps(explanation[:40])[:5000]
    elif settings.get("explain"):  # said in the job's warnings when the ensemble is the best
        tags["automl_explanation_skipped"] = "a forecasting ensemble is not explained (its members' lags differ)"
    from openaml.automl._trial import sink

    sink().log_metrics(metrics)
    sink().log_params({"algorithm": settings["algorithm"], **params})
    sink().set_tags({"automl_algorithm": settings["algorithm"], "automl_pipeline": description,
                     "automl_trial_seconds": f"{time.time() - t0:.2f}",
                     "automl_fit_seconds": f"{fit_seconds:.2f}", **tags})
    print(f"trial {settings['algorithm']}: {metric} = {metrics.get(metric)}")
    return 0
