"""rai_tabular_explanation and rai_tabular_erroranalysis, on scikit-learn, numpy and pandas.

Explanation (``explanation.json``): model-agnostic, interventional feature attribution. For every
test row x and feature j, the local importance is ``f(x) - mean_b f(x with x_j := b_j)`` over a fixed
background sample b of the train data (20 rows), where f is the probability of the positive class
(binary), of the predicted class (multiclass) or the prediction (regression). The global importance
of j is the mean absolute local importance; ``expected_value`` is the mean of f on the background.
(Azure's component uses ``responsibleai``'s mimic explainer; its packages pin numpy<=1.26 and
pandas<2, which the server's stack cannot load; see docs/guide/rai.md.)

Error analysis (``error_analysis.json``): as Microsoft's ``erroranalysis``, a surrogate decision
tree trained on the test rows to predict where the model errs (classification: a wrong label;
regression: the absolute error), with ``max_depth``, ``num_leaves`` (max leaf nodes) and
``min_child_samples`` (min samples per leaf); categorical features enter as ordinal codes and their
conditions read ``Sex in ['male']``. ``filter_features`` (1 or 2 features) gives the heat map.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from openaml.rai._io import Dashboard, RAIInputError

__all__ = ["error_analysis", "explanation", "score_function"]

BACKGROUND_ROWS = 20


def score_function(dash: Dashboard) -> tuple[Any, str]:
    """(f: DataFrame -> 1-d float array, what f is)."""
    model = dash.model
    if not dash.is_classification:
        return (lambda X: model.predict(X).astype(float)), "prediction"
    values = dash.config.get("class_values") or []
    if model.can_proba:
        def proba(X: pd.DataFrame) -> np.ndarray:
            out = model.predict_proba(X)
            assert out is not None
            return out

        if len(values) == 2:
            return (lambda X: proba(X)[:, 1]), f"probability of class {values[1]!r}"
        return (lambda X: proba(X).max(axis=1)), "probability of the predicted class"
    positive = values[-1] if values else 1
    return (lambda X: (model.predict(X) == positive).astype(float)), f"prediction == {positive!r}"


def explanation(dash: Dashboard, comment: str = "") -> dict[str, Any]:
    """The ``explanation`` part of dashboard.json (see the module docstring)."""
    f, what = score_function(dash)
    X = dash.X("test").reset_index(drop=True)
    train = dash.X("train")
    bg = train.sample(n=min(BACKGROUND_ROWS, len(train)), random_state=0).reset_index(drop=True)
    n, k = len(X), len(bg)
    base = f(X)
    local = np.zeros((n, len(dash.features)))
    big = pd.concat([X] * k, ignore_index=True)
    for j, col in enumerate(dash.features):
        swapped = big.copy()
        swapped[col] = np.repeat(bg[col].to_numpy(), n)
        scores = f(swapped).reshape(k, n)
        local[:, j] = base - scores.mean(axis=0)
    glob = np.abs(local).mean(axis=0)
    return {"method": "interventional feature ablation (openaml; background of "
                      f"{k} train rows; explains the {what})",
            "comment": comment,
            "global_importance": {c: float(v) for c, v in zip(dash.features, glob, strict=True)},
            "local_importance": local.round(6).tolist(),
            "expected_value": float(f(bg).mean())}


def _errors(dash: Dashboard) -> tuple[np.ndarray, np.ndarray, str]:
    """(error flag per test row, error amount per row, metric name)."""
    y = dash.y("test").to_numpy()
    pred = np.asarray(dash.predictions["y_pred"])
    if dash.is_classification:
        wrong = np.array([str(a) != str(b) for a, b in zip(y, pred, strict=True)])
        return wrong, wrong.astype(float), "error_rate"
    err = np.abs(y.astype(float) - pred.astype(float))
    return err > err.mean(), err, "mean_absolute_error"


def _encode(X: pd.DataFrame, categorical: list[str]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    enc = X.copy()
    cats: dict[str, list[str]] = {}
    for c in X.columns:
        if c in categorical or not pd.api.types.is_numeric_dtype(X[c]):
            levels = sorted(X[c].astype(str).unique().tolist())
            cats[c] = levels
            enc[c] = X[c].astype(str).map({v: i for i, v in enumerate(levels)}).astype(float)
        else:
            enc[c] = X[c].astype(float).fillna(X[c].median() if X[c].notna().any() else 0.0)
    return enc, cats


def _condition(col: str, thr: float, left: bool, cats: dict[str, list[str]]) -> str:
    if col in cats:
        chosen = [v for i, v in enumerate(cats[col]) if (i <= thr) == left]
        return f"{col} in {chosen}"
    return f"{col} {'<=' if left else '>'} {thr:.4g}"


def _bins(s: pd.Series, categorical: bool) -> pd.Series:
    if categorical or not pd.api.types.is_numeric_dtype(s) or s.nunique() <= 8:
        return s.astype(str)
    return pd.qcut(s, q=4, duplicates="drop").astype(str)


def error_analysis(dash: Dashboard, *, max_depth: int = 3, num_leaves: int = 31, min_child_samples: int = 20,
                   filter_features: str | None = None) -> dict[str, Any]:
    """The ``error_analysis`` part of dashboard.json. Raises RAIInputError for bad parameters."""
    from sklearn.tree import DecisionTreeRegressor

    heat_features: list[str] = []
    if filter_features and filter_features.strip() not in ("null", "None", "[]"):
        try:
            heat_features = json.loads(filter_features)
        except json.JSONDecodeError:
            heat_features = [filter_features]
        heat_features = [heat_features] if isinstance(heat_features, str) else list(heat_features)
        bad = [c for c in heat_features if c not in dash.features]
        if bad or not 1 <= len(heat_features) <= 2:
            raise RAIInputError(f"input 'filter_features': {filter_features!r} must name 1 or 2 feature columns "
                                f"({'unknown: ' + str(bad) if bad else 'got ' + str(len(heat_features))}); "
                                f"features: {', '.join(dash.features)}")
    for name, value, lo in (("max_depth", max_depth, 1), ("num_leaves", num_leaves, 2),
                            ("min_child_samples", min_child_samples, 1)):
        if value < lo:
            raise RAIInputError(f"input {name!r}: {value} must be at least {lo}")
    wrong, amount, metric = _errors(dash)
    X, cats = _encode(dash.X("test").reset_index(drop=True), dash.categorical)
    tree = DecisionTreeRegressor(max_depth=max_depth, max_leaf_nodes=num_leaves,
                                 min_samples_leaf=min(min_child_samples, max(1, len(X) // 2)), random_state=0)
    tree.fit(X, amount)
    t = tree.tree_
    path = tree.decision_path(X)
    counts = np.asarray(path.sum(axis=0)).ravel()
    errs = np.asarray(path.T @ wrong.astype(float)).ravel()
    amounts = np.asarray(path.T @ amount).ravel()

    def node(i: int, condition: str | None) -> dict[str, Any]:
        n = int(counts[i])
        out: dict[str, Any] = {"id": i, "n": n, "errors": int(errs[i]),
                               "error_rate": float(amounts[i] / n) if n else 0.0,
                               "condition": condition, "children": []}
        left, right = t.children_left[i], t.children_right[i]
        if left != -1:
            col = X.columns[t.feature[i]]
            out["children"] = [node(left, _condition(col, t.threshold[i], True, cats)),
                               node(right, _condition(col, t.threshold[i], False, cats))]
        return out

    heatmap = None
    if heat_features:
        test = dash.X("test").reset_index(drop=True)
        binned = pd.DataFrame({c: _bins(test[c], c in dash.categorical) for c in heat_features})
        binned["_wrong"], binned["_amount"] = wrong, amount
        cells = []
        for key, g in binned.groupby(heat_features, sort=True, observed=True):
            key = key if isinstance(key, tuple) else (key,)
            cells.append({"bin": [str(k) for k in key], "n": len(g), "errors": int(g["_wrong"].sum()),
                          "error_rate": float(g["_amount"].mean())})
        heatmap = {"features": heat_features, "cells": cells}
    importance = dict(zip(X.columns, tree.feature_importances_.tolist(), strict=True))
    return {"metric": metric, "tree": node(0, None), "heatmap": heatmap, "feature_importance": importance,
            "parameters": {"max_depth": max_depth, "num_leaves": num_leaves, "min_child_samples": min_child_samples,
                           "filter_features": heat_features or None}}
