"""Fairness assessment and mitigation with fairlearn (issue 16 item 3; the book's chapter 8).

Usable three ways: the built-in component ``rai_tabular_fairness`` (a pipeline step after the
constructor), the gathered dashboard's ``fairness`` part, and directly from a training script in a
plain command job::

    from openaml.rai.fairness import assess_fairness, mitigate
    report = assess_fairness(y_test, model.predict(X_test), X_test[["Sex"]], pos_label=1)
    mitigated, comparison = mitigate(model, X_train, y_train, X_train[["Sex"]], X_test, y_test,
                                     X_test[["Sex"]], method="threshold_optimizer",
                                     constraint="demographic_parity", pos_label=1)

Metrics (fairlearn ``MetricFrame``, binary classification): selection rate, accuracy, recall and
false positive rate by group, with their between-group ``difference`` (max - min) and ``ratio``
(min / max). Mitigation: ``ThresholdOptimizer`` (post-processing of the fitted model's
probabilities; needs ``predict_proba``) or ``ExponentiatedGradient`` (reduction: refits a clone of
the model with sample weights; a scikit-learn Pipeline gets them on its last step), under
``demographic_parity`` or ``equalized_odds``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from openaml.rai._io import RAIInputError

__all__ = ["METRICS", "MitigatedModel", "assess_fairness", "check_sensitive_features", "mitigate"]

METRICS = ("selection_rate", "accuracy", "recall", "false_positive_rate")


def check_sensitive_features(data: pd.DataFrame, columns: list[str], *, what: str = "test data") -> None:
    """Raises RAIInputError naming the column: unknown, or with missing values (fairlearn cannot
    place a row with no group)."""
    if not columns:
        raise RAIInputError("input 'sensitive_features': give a JSON list of columns, e.g. '[\"Sex\"]'")
    unknown = [c for c in columns if c not in data.columns]
    if unknown:
        raise RAIInputError(f"input 'sensitive_features': {unknown} are not columns of the {what}; columns: "
                            f"{', '.join(map(str, data.columns))}")
    for c in columns:
        n = int(data[c].isna().sum())
        if n:
            raise RAIInputError(f"input 'sensitive_features': column {c!r} has {n} missing value(s) in the {what}; "
                                "fill them (e.g. with 'unknown') or drop those rows before the assessment")


def _binary(y: Any, pos_label: Any) -> np.ndarray:
    return (np.asarray([str(v) for v in np.asarray(y)]) == str(pos_label)).astype(int)


def assess_fairness(y_true: Any, y_pred: Any, sensitive: pd.DataFrame, *, pos_label: Any = 1) -> dict[str, Any]:
    """{column: {"by_group": {group: {metric: value}}, "difference": {metric: value}, "ratio": {...}}}.

    Raises:
        RAIInputError: a sensitive column with missing values.
    """
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate
    from sklearn.metrics import accuracy_score, recall_score

    check_sensitive_features(sensitive, list(sensitive.columns))
    yt, yp = _binary(y_true, pos_label), _binary(y_pred, pos_label)
    fns = {"selection_rate": selection_rate, "accuracy": accuracy_score,
           "recall": lambda a, b: recall_score(a, b, zero_division=0),
           "false_positive_rate": false_positive_rate}
    out: dict[str, Any] = {}
    for col in sensitive.columns:
        mf = MetricFrame(metrics=fns, y_true=yt, y_pred=yp, sensitive_features=sensitive[col].astype(str).to_numpy())
        by_group = {str(g): {m: float(v) for m, v in row.items()} for g, row in mf.by_group.iterrows()}
        out[str(col)] = {"by_group": by_group, "overall": {m: float(v) for m, v in mf.overall.items()},
                         "difference": {m: float(v) for m, v in mf.difference().items()},
                         "ratio": {m: float(v) for m, v in mf.ratio().items()}}
    return out


def _bases() -> tuple[type, ...]:
    from sklearn.base import BaseEstimator, ClassifierMixin

    return (ClassifierMixin, BaseEstimator)


class _Prefit(*_bases()):  # type: ignore[misc]
    """A fitted classifier seen by ThresholdOptimizer (``predict_proba`` column 1 = ``pos_label``)."""

    def __init__(self, model: Any, pos_label: Any) -> None:
        self.model = model
        self.pos_label = pos_label
        self.classes_ = np.array([0, 1])

    def fit(self, X: Any, y: Any, **kw: Any) -> _Prefit:
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        proba = np.asarray(self.model.predict_proba(X), dtype=float)
        idx = [str(c) for c in self.model.classes_].index(str(self.pos_label))
        return np.column_stack([1 - proba[:, idx], proba[:, idx]])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


class _Weighted(*_bases()):  # type: ignore[misc]
    """Refits a clone of a scikit-learn model on 0/1 labels; a Pipeline's sample weights go to its last step."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _Weighted:
        from sklearn.base import clone
        from sklearn.pipeline import Pipeline

        self.fitted_ = clone(self.model)
        if sample_weight is None:
            self.fitted_.fit(X, y)
        elif isinstance(self.fitted_, Pipeline):
            self.fitted_.fit(X, y, **{f"{self.fitted_.steps[-1][0]}__sample_weight": sample_weight})
        else:
            self.fitted_.fit(X, y, sample_weight=sample_weight)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.fitted_.predict(X)).astype(int)


class MitigatedModel:
    """The mitigated classifier: ``predict(X)`` -> the original class labels. ``X`` must hold the
    sensitive feature columns (ThresholdOptimizer's thresholds are per group)."""

    def __init__(self, mitigator: Any, method: str, sensitive: list[str], features: list[str],
                 labels: tuple[Any, Any]) -> None:
        self.mitigator, self.method, self.sensitive, self.features, self.labels = \
            mitigator, method, sensitive, features, labels

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if self.method == "threshold_optimizer":
            out = self.mitigator.predict(X[self.features], sensitive_features=X[self.sensitive].astype(str),
                                         random_state=0)
        else:
            out = self.mitigator.predict(X[self.features], random_state=0)
        return np.where(np.asarray(out).astype(int) == 1, self.labels[1], self.labels[0])


def mitigate(model: Any, X_train: pd.DataFrame, y_train: Any, A_train: pd.DataFrame, X_test: pd.DataFrame,
             y_test: Any, A_test: pd.DataFrame, *, method: str = "threshold_optimizer",
             constraint: str = "demographic_parity", pos_label: Any = 1, neg_label: Any = 0
             ) -> tuple[MitigatedModel, dict[str, Any]]:
    """(the mitigated model, {"method", "constraint", "before", "after"}): before/after are
    :func:`assess_fairness` of the test data.

    Raises:
        RAIInputError: unknown method or constraint, a model without ``predict_proba`` for
            threshold_optimizer, sensitive features with missing values.
    """
    from fairlearn.postprocessing import ThresholdOptimizer
    from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient

    if constraint not in ("demographic_parity", "equalized_odds"):
        raise RAIInputError(f"input 'constraint': {constraint!r}; use demographic_parity or equalized_odds")
    check_sensitive_features(A_train, list(A_train.columns), what="train data")
    check_sensitive_features(A_test, list(A_test.columns))
    features = list(X_train.columns)
    sensitive = list(A_train.columns)
    yb = _binary(y_train, pos_label)
    a_train = A_train.astype(str)
    if method == "threshold_optimizer":
        if not hasattr(model, "predict_proba"):
            raise RAIInputError("input 'mitigation': threshold_optimizer needs a model with predict_proba; use "
                                "exponentiated_gradient")
        mitigator: Any = ThresholdOptimizer(estimator=_Prefit(model, pos_label), constraints=constraint,
                                            prefit=True, predict_method="predict_proba")
        mitigator.fit(X_train, yb, sensitive_features=a_train)
    elif method == "exponentiated_gradient":
        moment = DemographicParity() if constraint == "demographic_parity" else EqualizedOdds()
        mitigator = ExponentiatedGradient(_Weighted(model), constraints=moment, max_iter=30)
        mitigator.fit(X_train, yb, sensitive_features=a_train)
    else:
        raise RAIInputError(f"input 'mitigation': {method!r}; use threshold_optimizer or exponentiated_gradient")
    mitigated = MitigatedModel(mitigator, method, sensitive, features, (neg_label, pos_label))
    both = pd.concat([X_test[features], A_test[[c for c in sensitive if c not in features]]], axis=1)
    before = assess_fairness(y_test, model.predict(X_test[features]), A_test, pos_label=pos_label)
    after = assess_fairness(y_test, mitigated.predict(both), A_test, pos_label=pos_label)
    return mitigated, {"method": method, "constraint": constraint, "before": before, "after": after}


def comparison_table(comparison: dict[str, Any]) -> pd.DataFrame:
    """One row per (sensitive feature, metric): overall, difference and ratio before and after."""
    rows = []
    for col, before in comparison["before"].items():
        after = comparison["after"][col]
        for m in METRICS:
            rows.append({"sensitive_feature": col, "metric": m,
                         "overall_before": before["overall"][m], "overall_after": after["overall"][m],
                         "difference_before": before["difference"][m], "difference_after": after["difference"][m],
                         "ratio_before": before["ratio"][m], "ratio_after": after["ratio"][m]})
    return pd.DataFrame(rows)
