"""Counterfactuals when dice-ml is not installed: DiCE's ``random`` method re-done on numpy/pandas.

dice-ml (what Azure's rai_tabular_counterfactual runs) requires the ``xgboost`` distribution, whose
wheel brings CUDA's NCCL (~200 MB) and overwrites the ``xgboost`` module of the stack's
``xgboost-cpu``; it is therefore an optional extra (``pip install 'openaml[rai-dice]'``) and this
search is the fallback, recorded in the insight's ``deviations``. For each of the first
``max_rows`` test rows, candidates change 1 to 3 of ``features_to_vary`` to values drawn from the
train data (numeric values inside ``permitted_range`` when given); those whose prediction reaches
``desired_class`` (or the ``opposite`` class) or falls in ``desired_range`` are kept, fewest changes
and smallest distance first, up to ``total_CFs``. A row with none gets ``error`` set.
``feature_importance``: the share of counterfactuals that change each feature.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from openaml.rai._io import Dashboard, RAIInputError

__all__ = ["json_value", "search", "validate"]


def json_value(value: str | None) -> Any:
    if value is None or str(value).strip() in ("", "null", "None"):
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def validate(dash: Dashboard, *, total_CFs: int = 10, desired_class: str | None = None,
                   desired_range: str | None = None, permitted_range: str | None = None,
                   features_to_vary: str = "all", feature_importance: bool = True, max_rows: int = 50,
                   method: str = "random") -> dict[str, Any]:
    """The checked inputs (vary, permitted, desired_range, want). Raises RAIInputError for bad inputs."""
    if total_CFs < 1:
        raise RAIInputError(f"input 'total_CFs': {total_CFs} must be at least 1")
    features = dash.features
    vary = features if features_to_vary.strip() in ("all", "'all'", "") else json_value(features_to_vary)
    vary = [vary] if isinstance(vary, str) else list(vary)
    unknown = [c for c in vary if c not in features]
    if unknown:
        raise RAIInputError(f"input 'features_to_vary': {unknown} are not features; features: {', '.join(features)}")
    permitted = json_value(permitted_range) or {}
    if not isinstance(permitted, dict) or any(c not in features for c in permitted):
        raise RAIInputError(f"input 'permitted_range': {permitted_range!r} must be a JSON object "
                            "{feature: [low, high]} of feature columns")
    rng_range = json_value(desired_range)
    values = dash.config.get("class_values") or []
    by_str = {str(v): v for v in values}
    if dash.is_classification:
        if desired_class is None:
            raise RAIInputError("input 'desired_class' is required for classification (a class, or 'opposite')")
        want = str(desired_class).strip("'\"")
        if want != "opposite" and want not in by_str:
            raise RAIInputError(f"input 'desired_class': {desired_class!r} is not a class of the model; classes: "
                                f"{list(by_str)} (or 'opposite')")
    else:
        if not (isinstance(rng_range, list) and len(rng_range) == 2):
            raise RAIInputError(f"input 'desired_range': {desired_range!r} must be a JSON list [low, high] for "
                                "regression")
    return {"vary": vary, "permitted": permitted, "rng_range": rng_range,
            "want": want if dash.is_classification else None}


def search(dash: Dashboard, checked: dict[str, Any], *, total_CFs: int, feature_importance: bool, max_rows: int,
           seed: int = 0) -> dict[str, Any]:
    """The ``counterfactual`` part of dashboard.json, by random search (see the module docstring)."""
    vary, permitted, rng_range, want = checked["vary"], checked["permitted"], checked["rng_range"], checked["want"]
    features = dash.features
    rng = np.random.default_rng(seed)
    train = dash.X("train")
    test = dash.X("test").reset_index(drop=True).head(max_rows)
    preds = np.asarray(dash.predictions["y_pred"])[: len(test)]
    spans = {c: float(train[c].max() - train[c].min()) or 1.0 for c in features
             if c not in dash.categorical and pd.api.types.is_numeric_dtype(train[c])}
    n_cand = max(200, 40 * total_CFs)
    blocks = []
    changed_masks = []
    for i in range(len(test)):
        block = pd.concat([test.iloc[[i]]] * n_cand, ignore_index=True)
        mask = np.zeros((n_cand, len(features)), dtype=bool)
        k = rng.integers(1, min(3, len(vary)) + 1, size=n_cand)
        for r in range(n_cand):
            mask[r, [features.index(c) for c in rng.choice(vary, size=k[r], replace=False)]] = True
        for j, c in enumerate(features):
            rows = mask[:, j]
            if not rows.any():
                continue
            if c in permitted:
                lo, hi = permitted[c]
                newv = rng.uniform(lo, hi, size=rows.sum())
                if pd.api.types.is_integer_dtype(train[c]):
                    newv = np.round(newv).astype(train[c].dtype)
            else:
                newv = rng.choice(train[c].to_numpy(), size=rows.sum())
            block.loc[rows, c] = newv
        same = (block[features].astype(str).to_numpy() == test.iloc[[i]][features].astype(str).to_numpy())
        mask &= ~same
        blocks.append(block)
        changed_masks.append(mask)
    out_rows: list[dict[str, Any]] = []
    changed_total = np.zeros(len(features))
    n_cfs = 0
    if blocks:
        allp = dash.model.predict(pd.concat(blocks, ignore_index=True)[features])
        for i, (block, mask) in enumerate(zip(blocks, changed_masks, strict=True)):
            p = allp[i * n_cand:(i + 1) * n_cand]
            if dash.is_classification:
                ok = (np.array([str(v) for v in p]) != str(preds[i])) if want == "opposite" else \
                    (np.array([str(v) for v in p]) == want)
            else:
                ok = (p.astype(float) >= float(rng_range[0])) & (p.astype(float) <= float(rng_range[1]))
            ok &= mask.any(axis=1)
            idx = np.flatnonzero(ok)
            dist = np.array([sum(abs(float(block.at[r, c]) - float(test.at[i, c])) / spans[c]
                                 for c in spans if mask[r, features.index(c)]) for r in idx])
            order = idx[np.lexsort((dist, mask[idx].sum(axis=1)))] if len(idx) else idx
            chosen, seen = [], set()
            for r in order:
                key = tuple(block.loc[r, features].astype(str))
                if key in seen:
                    continue
                seen.add(key)
                chosen.append(r)
                if len(chosen) >= total_CFs:
                    break
            for r in chosen:
                changed_total += mask[r]
            n_cfs += len(chosen)
            target = "the opposite class" if dash.is_classification and want == "opposite" else \
                (f"class {want!r}" if dash.is_classification else f"a prediction in {rng_range}")
            out_rows.append({"index": i, "original": test.iloc[[i]][features].to_dict(orient="records")[0],
                             "counterfactuals": block.iloc[chosen][features].to_dict(orient="records"),
                             "error": None if chosen else
                             f"no counterfactual found: none of {n_cand} candidates changing up to 3 of "
                             f"{len(vary)} features reaches {target}"})
    importance = {c: float(v / n_cfs) for c, v in zip(features, changed_total, strict=True)} \
        if feature_importance and n_cfs else None
    return {"method": "random search (openaml's fallback for dice-ml)",
            "desired_class": None if not dash.is_classification else want,
            "desired_range": rng_range if not dash.is_classification else None, "total_cfs": total_CFs,
            "features_to_vary": vary, "feature_importance": importance, "rows": out_rows}
