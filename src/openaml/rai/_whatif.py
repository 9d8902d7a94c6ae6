"""rai_tabular_counterfactual (dice-ml) and rai_tabular_causal (econml), as ``responsibleai`` runs them.

Counterfactuals (``counterfactual.json``): ``dice_ml.Data`` (the train rows without missing values,
continuous = the non-categorical features), ``dice_ml.Model`` (backend ``sklearn``), ``dice_ml.Dice``
with ``method`` (``random``, Azure's default; ``genetic``, ``kdtree``) and, per test row (the first
``max_rows``), ``generate_counterfactuals`` with ``total_CFs``, ``desired_class`` (``opposite`` or a
class) or ``desired_range``, ``permitted_range`` and ``features_to_vary``. A row DiCE finds nothing
for, or that has missing values (DiCE refuses them), gets ``error`` set: the step still succeeds.
``feature_importance``: DiCE's summary importance, the share of counterfactuals changing each
feature. Without dice-ml installed (an optional extra, see :mod:`openaml.rai._cf_random`) or for a
model without ``predict_proba``, openaml's random search runs instead, recorded in ``deviations``.

Causal (``causal.json``): ``econml.solutions.causal_analysis.CausalAnalysis`` on the train rows (as
responsibleai's CausalManager), with ``treatment_features``, the categorical features,
``heterogeneity_features``, ``nuisance_model`` (``linear`` | ``automl``), ``heterogeneity_model``,
``upper_bound_on_cat_expansion``, ``skip_cat_limit_checks`` and ``random_state``;
``global_causal_effect(alpha, keep_all_levels=True)`` gives each effect's point, stderr, p-value
and confidence interval. econml takes no missing values: numbers are filled with the column's
median and categories with ``"missing"``, recorded in ``deviations``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from openaml.rai import _cf_random
from openaml.rai._insights import library_versions
from openaml.rai._io import Dashboard, RAIInputError

__all__ = ["causal", "counterfactual"]

METHODS = ("random", "genetic", "kdtree")


class _DiceModel:
    """The loaded MLflow model as the estimator dice-ml's sklearn backend calls (predict, predict_proba)."""

    def __init__(self, dash: Dashboard) -> None:
        self.model, self.features = dash.model, dash.features

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.model.predict(X[self.features])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        out = self.model.predict_proba(X[self.features])
        assert out is not None
        return out


def counterfactual(dash: Dashboard, *, total_CFs: int = 10, desired_class: str | None = None,
                   desired_range: str | None = None, permitted_range: str | None = None,
                   features_to_vary: str = "all", feature_importance: bool = True, max_rows: int = 50,
                   method: str = "random") -> dict[str, Any]:
    """The ``counterfactual`` part of dashboard.json. Raises RAIInputError for bad inputs (before any search)."""
    if method not in METHODS:
        raise RAIInputError(f"input 'method': {method!r}; use one of {', '.join(METHODS)}")
    checked = _cf_random.validate(dash, total_CFs=total_CFs, desired_class=desired_class,
                                  desired_range=desired_range, permitted_range=permitted_range,
                                  features_to_vary=features_to_vary)
    reason = None
    try:
        import dice_ml
    except ImportError:
        reason = "dice-ml is not installed (optional extra openaml[rai-dice])"
    if reason is None and dash.is_classification and not dash.model.can_proba:
        reason = "the model has no predict_proba (dice-ml's sklearn backend needs it)"
    if reason is not None:
        out = _cf_random.search(dash, checked, total_CFs=total_CFs, feature_importance=feature_importance,
                                max_rows=max_rows)
        out["deviations"] = [f"counterfactuals: {reason}; openaml's random search was used (method {method!r} "
                             "asked)"]
        out["libraries"] = {}
        return out
    features, target = dash.features, dash.target
    continuous = [c for c in features if c not in dash.categorical]
    train = dash.train[features + [target]].dropna().reset_index(drop=True)
    for c in dash.categorical:
        train[c] = train[c].astype(str)
    data = dice_ml.Data(dataframe=train, continuous_features=continuous, outcome_name=target)
    model = dice_ml.Model(model=_DiceModel(dash), backend="sklearn",
                          model_type="classifier" if dash.is_classification else "regressor")
    explainer = dice_ml.Dice(data, model, method=method)
    kwargs: dict[str, Any] = {"total_CFs": total_CFs, "features_to_vary": checked["vary"]}
    if checked["permitted"]:
        kwargs["permitted_range"] = checked["permitted"]
    want = checked["want"]
    if dash.is_classification:
        classes = [str(c) for c in (dash.model.classes or dash.config.get("class_values") or [])]
        kwargs["desired_class"] = "opposite" if want == "opposite" else classes.index(str(want))
    else:
        kwargs["desired_range"] = [float(v) for v in checked["rng_range"]]
    test = dash.X("test").reset_index(drop=True).head(max_rows)
    rows: list[dict[str, Any]] = []
    changed = np.zeros(len(features))
    n_cfs = 0
    for i in range(len(test)):
        query = test.iloc[[i]].copy()
        original = query.to_dict(orient="records")[0]
        missing = [c for c in features if pd.isna(original[c])]
        if missing:
            rows.append({"index": i, "original": original, "counterfactuals": [],
                         "error": f"the row has missing values in {missing}; DiCE takes no missing values"})
            continue
        for c in dash.categorical:
            query[c] = query[c].astype(str)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = explainer.generate_counterfactuals(query, verbose=False, **kwargs)
            cfs = result.cf_examples_list[0].final_cfs_df
        except Exception as exc:  # noqa: BLE001 - DiCE's own per-row failure, reported per row
            rows.append({"index": i, "original": original, "counterfactuals": [],
                         "error": f"no counterfactual found: {type(exc).__name__}: {exc}"})
            continue
        found = [] if cfs is None else cfs[features].to_dict(orient="records")
        for cf in found:
            changed += np.array([str(cf[c]) != str(original[c]) for c in features])
        n_cfs += len(found)
        rows.append({"index": i, "original": original, "counterfactuals": found,
                     "error": None if found else f"no counterfactual found by DiCE ({method}) among "
                                                 f"features_to_vary {checked['vary']}"})
    importance = {c: float(v / n_cfs) for c, v in zip(features, changed, strict=True)} \
        if feature_importance and n_cfs else None
    return {"method": f"dice-ml Dice(method={method!r})", "desired_class": want,
            "desired_range": checked["rng_range"] if not dash.is_classification else None, "total_cfs": total_CFs,
            "features_to_vary": checked["vary"], "feature_importance": importance, "rows": rows, "deviations": [],
            "libraries": library_versions("dice-ml", "raiutils")}


def causal(dash: Dashboard, *, treatment_features: str, heterogeneity_features: str | None = None,
           nuisance_model: str = "linear", heterogeneity_model: str = "linear", alpha: float = 0.05,
           upper_bound_on_cat_expansion: int = 50, skip_cat_limit_checks: bool = False,
           random_state: str | None = None) -> dict[str, Any]:
    """The ``causal`` part of dashboard.json (see the module docstring). Raises RAIInputError for bad inputs."""
    treatments = _cf_random.json_value(treatment_features)
    treatments = [treatments] if isinstance(treatments, str) else list(treatments or [])
    if not treatments:
        raise RAIInputError("input 'treatment_features': give a JSON list of feature columns, e.g. '[\"Age\"]'")
    bad = [t for t in treatments if t not in dash.features]
    if bad:
        raise RAIInputError(f"input 'treatment_features': {bad} are not features; features: {', '.join(dash.features)}")
    hetero = _cf_random.json_value(heterogeneity_features)
    hetero = [hetero] if isinstance(hetero, str) else (list(hetero) if hetero else None)
    if hetero and any(h not in dash.features for h in hetero):
        raise RAIInputError(f"input 'heterogeneity_features': {[h for h in hetero if h not in dash.features]} are "
                            f"not features; features: {', '.join(dash.features)}")
    if nuisance_model not in ("linear", "automl"):
        raise RAIInputError(f"input 'nuisance_model': {nuisance_model!r}; use linear or automl")
    if heterogeneity_model not in ("linear", "forest"):
        raise RAIInputError(f"input 'heterogeneity_model': {heterogeneity_model!r}; use linear or forest")
    seed = None if str(random_state) in ("None", "null", "") else int(str(random_state))
    from econml.solutions.causal_analysis import CausalAnalysis

    X = dash.X("train").reset_index(drop=True).copy()
    X.columns = pd.Index(list(X.columns), dtype=object)  # econml indexes names with lists
    deviations = []
    for c in X.columns:
        if c in dash.categorical or not pd.api.types.is_numeric_dtype(X[c]):
            if X[c].isna().any():
                deviations.append(f"causal: missing values of {c!r} became the category 'missing' (econml takes none)")
            X[c] = X[c].astype(object).where(X[c].notna(), "missing").astype(str).astype(object)
        elif X[c].isna().any():
            deviations.append(f"causal: missing values of {c!r} were filled with its median (econml takes none)")
            X[c] = X[c].fillna(X[c].median() if X[c].notna().any() else 0.0)
    y = dash.y("train").reset_index(drop=True)
    y_arr = y.astype(str).to_numpy() if dash.is_classification else y.astype(float).to_numpy()
    analysis = CausalAnalysis(treatments, dash.categorical, heterogeneity_inds=hetero,
                              classification=dash.is_classification, nuisance_models=nuisance_model,
                              heterogeneity_model=heterogeneity_model,
                              upper_bound_on_cat_expansion=upper_bound_on_cat_expansion,
                              skip_cat_limit_checks=skip_cat_limit_checks, n_jobs=1, verbose=0, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            analysis.fit(X, y_arr)
        except ValueError as exc:
            raise RAIInputError(f"causal: econml's CausalAnalysis refused the data: {exc}") from None
        table = analysis.global_causal_effect(alpha=alpha, keep_all_levels=True).reset_index()
    effects = []
    for rec in table.to_dict(orient="records"):
        value = rec.get("feature_value")
        label = str(rec["feature"]) if value in (None, "num") else f"{rec['feature']} = {value}"
        effects.append({"feature": label, "point": rec["point"], "stderr": rec.get("stderr"),
                        "ci_lower": rec["ci_lower"], "ci_upper": rec["ci_upper"], "p_value": rec.get("p_value")})
    classes = dash.config.get("classes") or []
    return {"method": f"econml CausalAnalysis (nuisance {nuisance_model}, heterogeneity {heterogeneity_model})",
            "treatment_features": treatments, "heterogeneity_features": hetero, "alpha": alpha,
            "global_effects": effects, "policies": None, "deviations": deviations,
            "outcome": f"P({dash.target} = {classes[-1]})" if dash.is_classification and classes else dash.target,
            "libraries": library_versions("econml")}
