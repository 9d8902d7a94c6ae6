"""Data guardrails as Azure AutoML reports them: each ``{"name", "status", "details"}`` with status
``passed`` (nothing found), ``done`` (found and handled by featurization) or ``alerted`` (found;
the user should look). Computed on the training data by the job's first trial worker, before its first trial (as
Azure computes them in the run's setup, after the submission); shown in the job's log and in
``job show`` (``guardrails``).

- Class balancing detection (classification): a class with under 20 % of the rows of the
  largest class (Azure's threshold) is alerted; a class with fewer rows than the folds is alerted
  and named (stratified folds then use fewer splits).
- Missing feature values imputation: columns with missing values (done: imputed).
- High cardinality feature detection: categorical columns hashed (done) or dropped as ID-like.
- Forecasting: short series (fewer rows than 2 x horizon + lags, handled per
  ``short_series_handling_config``) and frequency detection (the inferred or given frequency).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["guardrails", "guardrails_of"]


def guardrails(df: pd.DataFrame, job: Any) -> list[dict[str, Any]]:
    """The guardrails of AutoML job entity ``job`` (:class:`openaml.entities._automl.AutoMLJob`) on
    its training frame ``df``: a list of ``{"name", "status", "details"}``."""
    return guardrails_of(df, task=job.task, target=str(job.target_column_name),
                         n_cross_validations=job.n_cross_validations,
                         featurization=job.featurization.model_dump(exclude_none=True) if job.featurization else None,
                         forecasting=job.forecasting.model_dump(exclude_none=True) if job.forecasting else None)


def guardrails_of(df: pd.DataFrame, *, task: str, target: str, n_cross_validations: Any = None,
                  featurization: dict[str, Any] | None = None,
                  forecasting: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """:func:`guardrails` from the job's fields as plain values (the trial worker's settings)."""
    from openaml.automl._featurize import column_roles

    out: list[dict[str, Any]] = []
    X = df.drop(columns=[target])
    if task == "classification":
        counts = df[target].dropna().value_counts()
        small = counts[counts < 0.2 * counts.max()]
        folds = n_cross_validations if isinstance(n_cross_validations, int) else 3
        rare = counts[counts < folds]
        details = []
        if len(small):
            details.append("imbalanced classes: " + ", ".join(f"{k!r} {int(v)} rows ({v / counts.sum():.1%})"
                                                                for k, v in small.items()))
        if len(rare):
            details.append(f"classes too rare for {folds} folds: " + ", ".join(f"{k!r} ({int(v)} rows)"
                                                                             for k, v in rare.items())
                           + "; the folds use fewer splits")
        out.append({"name": "Class balancing detection", "status": "alerted" if details else "passed",
                    "details": "; ".join(details) or f"{len(counts)} classes, smallest {int(counts.min())} rows"})
    missing = {str(c): int(n) for c, n in X.isna().sum().items() if n}
    off = str((featurization or {}).get("mode") or "auto").lower() == "off"
    out.append({"name": "Missing feature values imputation",
                "status": ("alerted" if off else "done") if missing else "passed",
                "details": (", ".join(f"{c}: {n} missing" for c, n in missing.items())
                            + ("; featurization is off: rows are passed as they are" if off else
                               "; imputed (numeric: median plus an indicator; categorical: a category of "
                               "their own, or as transformer_params.imputer says)"))
                if missing else "no missing values"})
    _, notes = column_roles(X, featurization)
    high = [n for n in notes if n["action"] in ("hashed",) or "ID-like" in n["reason"]]
    out.append({"name": "High cardinality feature detection", "status": "done" if high else "passed",
                "details": "; ".join(f"{n['column']}: {n['action']} ({n['reason']})" for n in high)
                or "no high-cardinality columns"})
    if task == "forecasting" and forecasting is not None:
        from openaml.automl._forecast import forecast_guardrails

        out.extend(forecast_guardrails(df, forecasting))
    return out
