"""The metrics Azure AutoML logs for a tabular child run, by task, computed with scikit-learn.

Classification (binary and multiclass): ``accuracy``, ``AUC_weighted``/``AUC_macro``/``AUC_micro``,
``average_precision_score_*``, ``balanced_accuracy``, ``f1_score_*``, ``precision_score_*``,
``recall_score_*``, ``log_loss``, ``norm_macro_recall``, ``matthews_correlation``,
``weighted_accuracy``. Regression and forecasting: ``r2_score``, ``spearman_correlation``,
``explained_variance``, ``mean_absolute_error``, ``median_absolute_error``,
``root_mean_squared_error``, ``root_mean_squared_log_error`` (non-negative targets),
and their ``normalized_*`` forms (divided by the target's range, as Azure does).
Names and meaning: Azure ML "Evaluate AutoML experiment results" (metric definitions).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["classification_metrics", "regression_metrics", "GOAL", "loss_of"]

# the metrics where lower is better; every other primary metric is maximised
_MINIMIZE = {"normalized_root_mean_squared_error", "normalized_mean_absolute_error", "log_loss",
             "root_mean_squared_error", "mean_absolute_error", "normalized_root_mean_squared_log_error",
             "normalized_median_absolute_error", "median_absolute_error", "root_mean_squared_log_error"}
GOAL = {"minimize": _MINIMIZE}


def loss_of(metric: str, value: float) -> float:
    """A loss to minimise from a metric's value (negated where higher is better)."""
    return value if metric in _MINIMIZE else -value


def _safe(fn: Any, *a: Any, **k: Any) -> float | None:
    try:
        v = float(fn(*a, **k))
    except Exception:  # noqa: BLE001 - a metric undefined for this data is left out, as Azure does
        return None
    return v if math.isfinite(v) else None


def classification_metrics(y: np.ndarray, proba: np.ndarray, classes: np.ndarray,
                           weight: np.ndarray | None = None) -> dict[str, float]:
    """Metrics of class probabilities ``proba`` (n x k, columns in ``classes`` order) against ``y``."""
    from sklearn import metrics as m
    from sklearn.preprocessing import label_binarize

    pred = classes[np.argmax(proba, axis=1)]
    out: dict[str, float | None] = {
        "accuracy": _safe(m.accuracy_score, y, pred, sample_weight=weight),
        "balanced_accuracy": _safe(m.balanced_accuracy_score, y, pred, sample_weight=weight),
        "matthews_correlation": _safe(m.matthews_corrcoef, y, pred, sample_weight=weight),
        "log_loss": _safe(m.log_loss, y, proba, labels=classes, sample_weight=weight),
    }
    for avg in ("macro", "micro", "weighted"):
        out[f"f1_score_{avg}"] = _safe(m.f1_score, y, pred, average=avg, zero_division=0, sample_weight=weight)
        out[f"precision_score_{avg}"] = _safe(m.precision_score, y, pred, average=avg, zero_division=0,
                                              sample_weight=weight)
        out[f"recall_score_{avg}"] = _safe(m.recall_score, y, pred, average=avg, zero_division=0,
                                           sample_weight=weight)
    onehot = label_binarize(y, classes=classes)
    if len(classes) == 2:
        onehot = np.hstack([1 - onehot, onehot])
    for avg in ("macro", "micro", "weighted"):
        out[f"AUC_{avg}"] = _safe(m.roc_auc_score, onehot, proba, average=avg, sample_weight=weight)
        out[f"average_precision_score_{avg}"] = _safe(m.average_precision_score, onehot, proba, average=avg,
                                                      sample_weight=weight)
    k = len(classes)
    rm = out["recall_score_macro"]
    out["norm_macro_recall"] = None if rm is None else max(0.0, (rm - 1.0 / k) / (1.0 - 1.0 / k))
    counts = np.array([np.sum(y == c) for c in classes], dtype=float)
    if counts.sum():  # Azure's weighted_accuracy: each sample weighted by its class's frequency
        w = counts[np.searchsorted(classes, y)] if np.all(np.sort(classes) == classes) else None
        if w is not None:
            out["weighted_accuracy"] = _safe(m.accuracy_score, y, pred, sample_weight=w)
    return {k: v for k, v in out.items() if v is not None}


def regression_metrics(y: np.ndarray, pred: np.ndarray, weight: np.ndarray | None = None) -> dict[str, float]:
    """Metrics of predictions ``pred`` against ``y`` (normalized by the range of ``y``)."""
    from scipy.stats import spearmanr
    from sklearn import metrics as m

    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    rng = float(np.max(y) - np.min(y)) or 1.0
    rmse = _safe(lambda: math.sqrt(m.mean_squared_error(y, pred, sample_weight=weight)))
    mae = _safe(m.mean_absolute_error, y, pred, sample_weight=weight)
    medae = _safe(m.median_absolute_error, y, pred)
    out: dict[str, float | None] = {
        "r2_score": _safe(m.r2_score, y, pred, sample_weight=weight),
        "explained_variance": _safe(m.explained_variance_score, y, pred, sample_weight=weight),
        "spearman_correlation": _safe(lambda: spearmanr(y, pred).statistic),
        "root_mean_squared_error": rmse, "mean_absolute_error": mae, "median_absolute_error": medae,
        "normalized_root_mean_squared_error": None if rmse is None else rmse / rng,
        "normalized_mean_absolute_error": None if mae is None else mae / rng,
        "normalized_median_absolute_error": None if medae is None else medae / rng,
    }
    if np.min(y) >= 0:
        clipped = np.clip(pred, 0, None)
        rmsle = _safe(lambda: math.sqrt(m.mean_squared_log_error(y, clipped)))
        out["root_mean_squared_log_error"] = rmsle
        lrng = float(np.log1p(np.max(y)) - np.log1p(np.min(y))) or 1.0
        out["normalized_root_mean_squared_log_error"] = None if rmsle is None else rmsle / lrng
    return {k: v for k, v in out.items() if v is not None}
