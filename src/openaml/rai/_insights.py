"""rai_tabular_explanation and rai_tabular_erroranalysis, on the libraries ``responsibleai`` uses.

Explanation (``explanation.json``): ``responsibleai``'s ExplainerManager runs interpret-community's
MimicExplainer with an ``LGBMExplainableModel`` surrogate (``augment_data=True``,
``max_num_of_augmentations=10``) and reads SHAP values off the surrogate. interpret-community 0.32
would pull shap down to 0.46 and interpret-core below 0.7 (the stack has shap 0.51), so the same
method is done here with the
libraries it wraps: a LightGBM surrogate (classifier on the model's predicted labels, regressor on
its predictions) trained on the train rows plus up to 10 augmented copies (each feature resampled
independently from the train data), explained with ``shap.TreeExplainer`` (raw output: log-odds
for classifiers). ``local_importance`` is rows x features for the positive class (binary), the
predicted class (multiclass) or the prediction (regression); ``global_importance`` the mean
absolute local importance; ``surrogate_r2``/``surrogate_accuracy`` says how well the surrogate
mimics the model on the test rows.

Error analysis (``error_analysis.json``): Microsoft's ``erroranalysis`` (``PredictionsAnalyzer`` on
the constructor's predictions, the model's own output): ``compute_error_tree`` with ``max_depth``,
``num_leaves``, ``min_child_samples`` (its LightGBM surrogate tree of the errors),
``compute_matrix`` on ``filter_features`` (1 or 2; the heat map) and ``compute_importances``
(mutual information of each feature with the error). erroranalysis 0.4.2 predates pandas 3: the one
call it makes that pandas 3 refuses (indexing a frame with a set) is adapted here
(:func:`_patch_erroranalysis`); a heat map erroranalysis cannot bin, or importances over missing
values, fall back to openaml's binning and median-filled data, recorded in ``deviations``.
"""

from __future__ import annotations

import json
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from openaml.rai._io import Dashboard, RAIInputError

__all__ = ["error_analysis", "explanation", "library_versions"]

MAX_AUGMENTATIONS = 10  # interpret-community's max_num_of_augmentations, as responsibleai passes it
AUGMENTED_ROWS_CAP = 20000


def library_versions(*names: str) -> dict[str, str]:
    """{distribution: version} of those installed."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _lgbm_frame(X: pd.DataFrame, categorical: list[str], levels: dict[str, list[str]]) -> pd.DataFrame:
    out = X.copy()
    for c in X.columns:
        if c in levels:
            out[c] = pd.Categorical(X[c].astype(object).where(X[c].notna(), None), categories=levels[c])
        else:
            out[c] = pd.to_numeric(X[c], errors="coerce").astype(float)
    return out


def _augment(train: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The train rows plus copies whose every column is resampled independently (interpret-community)."""
    n = len(train)
    copies = max(0, min(MAX_AUGMENTATIONS, AUGMENTED_ROWS_CAP // max(n, 1) - 1))
    parts = [train]
    for _ in range(copies):
        parts.append(pd.DataFrame({c: train[c].to_numpy()[rng.integers(0, n, size=n)] for c in train.columns}))
    return pd.concat(parts, ignore_index=True)


def explanation(dash: Dashboard, comment: str = "") -> dict[str, Any]:
    """The ``explanation`` part of dashboard.json (see the module docstring)."""
    import lightgbm as lgb
    import shap

    features, categorical = dash.features, dash.categorical
    train = dash.X("train").reset_index(drop=True)
    test = dash.X("test").reset_index(drop=True)
    levels = {c: sorted(pd.concat([train[c], test[c]]).dropna().astype(str).unique().tolist()) for c in features
              if c in categorical or not pd.api.types.is_numeric_dtype(train[c])}
    strs = {c: (lambda s: s.astype(object).where(s.isna(), s.astype(str))) for c in levels}
    train = train.assign(**{c: f(train[c]) for c, f in strs.items()})
    test = test.assign(**{c: f(test[c]) for c, f in strs.items()})
    aug = _augment(train, np.random.default_rng(0))
    labels = dash.model.predict(_restore(aug, dash))
    params: dict[str, Any] = {"random_state": 0, "verbose": -1, "n_jobs": 1}
    Xa, Xt = _lgbm_frame(aug, categorical, levels), _lgbm_frame(test, categorical, levels)
    if dash.is_classification:
        y_lab = np.array([str(v) for v in labels])
        if len(np.unique(y_lab)) < 2:
            raise RAIInputError("explanation: the model predicts a single class on the train data; a surrogate "
                                "cannot be trained (responsibleai's mimic explainer fails the same way)")
        surrogate = lgb.LGBMClassifier(**params).fit(Xa, y_lab)
        fidelity = {"surrogate_accuracy": float(np.mean(surrogate.predict(Xt) ==
                                                        np.array([str(v) for v in dash.predictions["y_pred"]])))}
    else:
        surrogate = lgb.LGBMRegressor(**params).fit(Xa, np.asarray(labels, dtype=float))
        pred = np.asarray(dash.predictions["y_pred"], dtype=float)
        ss = float(((pred - pred.mean()) ** 2).sum()) or 1.0
        fidelity = {"surrogate_r2": float(1 - ((surrogate.predict(Xt) - pred) ** 2).sum() / ss)}
    explainer = shap.TreeExplainer(surrogate)
    sv = np.asarray(explainer.shap_values(Xt))
    ev = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    explained = "the prediction"
    expected: float | list[float]
    if sv.ndim == 3:  # (rows, features, classes): multiclass, or binary on some shap versions
        order = [str(c) for c in surrogate.classes_]
        if sv.shape[2] == 2:
            local, expected = sv[:, :, 1], float(ev[-1])
            explained = f"log-odds of class {order[1]!r}"
        else:
            pick = np.array([order.index(str(p)) if str(p) in order else 0 for p in dash.predictions["y_pred"]])
            local = sv[np.arange(len(sv)), :, pick]
            expected = [float(v) for v in ev]
            explained = "log-odds of the predicted class"
    else:
        local, expected = sv, float(ev[-1])
        if dash.is_classification:
            explained = f"log-odds of class {str(surrogate.classes_[-1])!r}"
    glob = np.abs(local).mean(axis=0)
    return {"method": f"mimic explainer: LightGBM surrogate + shap TreeExplainer (as responsibleai's "
                      f"MimicExplainer/LGBMExplainableModel; explains the {explained})",
            "comment": comment, "explained": explained, **fidelity,
            "global_importance": {c: float(v) for c, v in zip(features, glob, strict=True)},
            "local_importance": np.round(local, 6).tolist(), "expected_value": expected,
            "deviations": ["interpret-community (responsibleai's explainer) is not used: it caps shap at 0.46 and "
                           "interpret-core below 0.7 (the stack has shap 0.51); its MimicExplainer method is done "
                           "with lightgbm and shap directly"],
            "libraries": library_versions("shap", "lightgbm")}


def _restore(aug: pd.DataFrame, dash: Dashboard) -> pd.DataFrame:
    """Augmented rows in the train data's own dtypes (what the model was fitted on)."""
    train = dash.X("train")
    out = aug.copy()
    for c in out.columns:
        try:
            out[c] = out[c].astype(train[c].dtype)
        except (TypeError, ValueError):
            pass
    return out


# --------------------------------------------------------------------------------------------- errors
def _patch_erroranalysis() -> None:
    """erroranalysis 0.4.2's ``filter_to_used_features`` indexes a frame with a set, which pandas 3
    refuses; the same selection with a list (column order does not matter to its callers)."""
    from erroranalysis._internal import surrogate_error_tree as st

    if getattr(st.filter_to_used_features, "_openaml", False):
        return

    def filter_to_used_features(df: pd.DataFrame, tree: dict[str, Any]) -> pd.DataFrame:
        keep = set(tree[st.CACHED_SUBTREE_FEATURES]) | {st.PRED_Y, st.TRUE_Y, st.DIFF}
        return df[[c for c in df.columns if c in keep]]

    filter_to_used_features._openaml = True  # type: ignore[attr-defined]
    st.filter_to_used_features = filter_to_used_features

    # with categorical features it writes the string-indexed codes into ``frame.to_numpy()`` in place,
    # which pandas 3 (copy on write) hands out read-only: "assignment destination is read-only"
    booster = st.get_surrogate_booster_local

    def get_surrogate_booster_local(filtered_df: pd.DataFrame, *args: Any, **kwargs: Any) -> Any:
        return booster(_WritableFrame(filtered_df), *args, **kwargs)

    st.get_surrogate_booster_local = get_surrogate_booster_local


class _WritableFrame(pd.DataFrame):
    """A frame whose ``to_numpy()`` is a writable array (a copy where pandas gives a read-only one);
    frames derived from it (``drop``) are too."""

    @property
    def _constructor(self) -> Any:
        return _WritableFrame

    def to_numpy(self, *args: Any, **kwargs: Any) -> Any:
        out = super().to_numpy(*args, **kwargs)
        return out if out.flags.writeable else out.copy()


def _tree(nodes: list[dict[str, Any]], regression: bool) -> dict[str, Any]:
    """erroranalysis's flat node list -> the dashboard's nested NODE."""
    by_parent: dict[Any, list[dict[str, Any]]] = {}
    for n in nodes:
        by_parent.setdefault(n.get("parentId"), []).append(n)

    def build(n: dict[str, Any]) -> dict[str, Any]:
        size = int(n["size"])
        value = n.get("metricValue")
        return {"id": int(n["id"]), "n": size,
                "errors": None if regression else int(n["error"]),
                "error_rate": float(value) if value is not None else (float(n["error"]) / size if size else 0.0),
                "condition": n.get("condition"),
                "children": [build(c) for c in sorted(by_parent.get(n["id"], []), key=lambda c: int(c["id"]))]}

    roots = by_parent.get(None) or [nodes[0]]
    return build(roots[0])


def _bins(s: pd.Series, categorical: bool) -> pd.Series:
    if categorical or not pd.api.types.is_numeric_dtype(s) or s.nunique() <= 8:
        return s.astype(str)
    return pd.qcut(s, q=4, duplicates="drop").astype(str)


def _heatmap_own(dash: Dashboard, features: list[str], wrong: np.ndarray, amount: np.ndarray) -> dict[str, Any]:
    test = dash.X("test").reset_index(drop=True)
    binned = pd.DataFrame({c: _bins(test[c], c in dash.categorical) for c in features})
    binned["_wrong"], binned["_amount"] = wrong, amount
    cells = []
    for key, g in binned.groupby(features, sort=True, observed=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        cells.append({"bin": [str(k) for k in key], "n": len(g), "errors": int(g["_wrong"].sum()),
                      "error_rate": float(g["_amount"].mean())})
    return {"features": features, "cells": cells, "method": "openaml quartile binning"}


def _axis(cat: dict[str, Any]) -> list[str]:
    values = list(cat.get("values") or [])
    lo, hi = cat.get("intervalMin") or [], cat.get("intervalMax") or []
    if lo and hi and len(lo) == len(values):
        return [f"({a:.4g}, {b:.4g}]" for a, b in zip(lo, hi, strict=True)]
    return [str(v) for v in values]


def _heatmap(matrix: dict[str, Any], features: list[str], regression: bool) -> dict[str, Any]:
    """erroranalysis's ``compute_matrix`` JSON -> the dashboard's heat map cells."""
    rows = _axis(matrix["category1"])
    cols = _axis(matrix["category2"]) if len(features) == 2 and "category2" in matrix else None
    flat = [c for row in matrix["matrix"] for c in row] if cols is None else None
    cells = []
    for i, row in enumerate(matrix["matrix"] if cols is not None else [flat]):
        for j, cell in enumerate(row or []):
            n = int(cell.get("count", 0))
            if not n:
                continue
            value = cell.get("metricValue")
            errors = cell.get("falseCount")
            rate = float(value) if value is not None and regression else \
                (float(errors) / n if errors is not None else float(value or 0.0))
            key = [rows[i], cols[j]] if cols is not None else [rows[j]]
            cells.append({"bin": key, "n": n, "errors": None if regression or errors is None else int(errors),
                          "error_rate": rate})
    return {"features": features, "cells": cells, "method": "erroranalysis compute_matrix"}


def _parse_filter_features(dash: Dashboard, filter_features: str | None) -> list[str]:
    if not filter_features or str(filter_features).strip() in ("null", "None", "[]", ""):
        return []
    try:
        heat = json.loads(filter_features)
    except json.JSONDecodeError:
        heat = [filter_features]
    heat = [heat] if isinstance(heat, str) else list(heat)
    bad = [c for c in heat if c not in dash.features]
    if bad or not 1 <= len(heat) <= 2:
        raise RAIInputError(f"input 'filter_features': {filter_features!r} must name 1 or 2 feature columns "
                            f"({'unknown: ' + str(bad) if bad else 'got ' + str(len(heat))}); "
                            f"features: {', '.join(dash.features)}")
    return heat


def error_analysis(dash: Dashboard, *, max_depth: int = 3, num_leaves: int = 31, min_child_samples: int = 20,
                   filter_features: str | None = None) -> dict[str, Any]:
    """The ``error_analysis`` part of dashboard.json (see the module docstring).

    Raises:
        RAIInputError: a bad ``filter_features``, ``max_depth`` < 1, ``num_leaves`` < 2 or
            ``min_child_samples`` < 1 (Azure's component's bounds), before any work.
    """
    heat = _parse_filter_features(dash, filter_features)
    for name, value, lo in (("max_depth", max_depth, 1), ("num_leaves", num_leaves, 2),
                            ("min_child_samples", min_child_samples, 1)):
        if value < lo:
            raise RAIInputError(f"input {name!r}: {value} must be at least {lo}")
    _patch_erroranalysis()
    from erroranalysis.analyzer import PredictionsAnalyzer

    regression = not dash.is_classification
    X = dash.X("test").reset_index(drop=True)
    X = X.assign(**{c: X[c].astype(object) for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])})
    X.columns = pd.Index(list(X.columns), dtype=object)
    y = dash.y("test").reset_index(drop=True)
    pred = np.asarray(dash.predictions["y_pred"])
    if dash.is_classification:  # erroranalysis compares labels: give both the same type
        y, pred = y.astype(str).to_numpy(), np.array([str(v) for v in pred])
        classes: list[Any] | None = [str(c) for c in dash.config.get("classes") or []] or None
    else:
        y, pred, classes = y.astype(float).to_numpy(), pred.astype(float), None
    task = "regression" if regression else "classification"
    analyzer = PredictionsAnalyzer(pred, _WritableFrame(X), y, list(X.columns), dash.categorical, model_task=task,
                                   classes=classes)
    deviations: list[str] = []
    nodes = analyzer.compute_error_tree(list(X.columns), None, None, max_depth=max_depth, num_leaves=num_leaves,
                                        min_child_samples=min_child_samples)
    metric = str(nodes[0].get("metricName") or ("Error rate" if not regression else "Mean absolute error"))
    heatmap = None
    if heat:
        try:
            heatmap = _heatmap(analyzer.compute_matrix(heat, None, None), heat, regression)
        except Exception as exc:  # noqa: BLE001 - a library limit, reported and replaced
            if dash.is_classification:
                wrong = y != pred
                amount = wrong.astype(float)
            else:
                amount = np.abs(y - pred)
                wrong = amount > amount.mean()
            heatmap = _heatmap_own(dash, heat, wrong, amount)
            deviations.append(f"heat map: erroranalysis compute_matrix failed on {heat} "
                              f"({type(exc).__name__}: {exc}); openaml's quartile binning was used")
    # mutual information (scikit-learn's, random_state=None: numpy's global generator) jitters continuous
    # features: seeded, so that a dashboard is the same every time it is computed
    state = np.random.get_state()
    np.random.seed(0)
    try:
        scores = analyzer.compute_importances()
    except ValueError as exc:  # mutual information takes no missing values
        filled = X.copy()
        for c in filled.columns:
            if pd.api.types.is_numeric_dtype(filled[c]):
                filled[c] = filled[c].fillna(filled[c].median() if filled[c].notna().any() else 0.0)
            else:
                filled[c] = filled[c].fillna("missing")
        scores = PredictionsAnalyzer(pred, _WritableFrame(filled), y, list(X.columns), dash.categorical, model_task=task,
                                     classes=classes).compute_importances()
        deviations.append(f"feature importance: {exc.__class__.__name__} on missing values; computed on the test "
                          "rows with missing numbers filled with the column median")
    np.random.set_state(state)
    importance = {str(c): float(v) for c, v in zip(X.columns, scores, strict=True)}
    return {"metric": metric, "tree": _tree(nodes, regression), "heatmap": heatmap, "feature_importance": importance,
            "method": "erroranalysis PredictionsAnalyzer (compute_error_tree, compute_matrix, compute_importances)",
            "parameters": {"max_depth": max_depth, "num_leaves": num_leaves, "min_child_samples": min_child_samples,
                           "filter_features": heat or None},
            "deviations": deviations, "libraries": library_versions("erroranalysis", "lightgbm")}
