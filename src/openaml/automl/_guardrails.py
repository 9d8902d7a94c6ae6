"""Data guardrails as Azure AutoML reports them: each ``{"name", "status", "details"}`` with status
``passed`` (nothing found), ``done`` (found and handled by featurization) or ``alerted`` (found;
the user should look). Computed on the training data when the job is submitted; shown in the
job's log and in ``job show`` (``guardrails``).

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

__all__ = ["guardrails"]


def guardrails(df: pd.DataFrame, job: Any) -> list[dict[str, Any]]:
    from openaml.automl._featurize import column_roles

    target = job.target_column_name
    out: list[dict[str, Any]] = []
    X = df.drop(columns=[target])
    if job.task == "classification":
        counts = df[target].dropna().value_counts()
        small = counts[counts < 0.2 * counts.max()]
        folds = job.n_cross_validations if isinstance(job.n_cross_validations, int) else 3
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
    off = str((job.featurization.mode if job.featurization else None) or "auto").lower() == "off"
    out.append({"name": "Missing feature values imputation",
                "status": ("alerted" if off else "done") if missing else "passed",
                "details": (", ".join(f"{c}: {n} missing" for c, n in missing.items())
                            + ("; featurization is off: rows are passed as they are" if off else
                               "; imputed (numeric: median plus an indicator; categorical: a category of "
                               "their own, or as transformer_params.imputer says)"))
                if missing else "no missing values"})
    fz = job.featurization.model_dump(exclude_none=True) if job.featurization else None
    _, notes = column_roles(X, fz)
    high = [n for n in notes if n["action"] in ("hashed",) or "ID-like" in n["reason"]]
    out.append({"name": "High cardinality feature detection", "status": "done" if high else "passed",
                "details": "; ".join(f"{n['column']}: {n['action']} ({n['reason']})" for n in high)
                or "no high-cardinality columns"})
    if job.task == "forecasting" and job.forecasting is not None:
        from openaml.automl._forecast import forecast_guardrails

        out.extend(forecast_guardrails(df, job.forecasting.model_dump(exclude_none=True)))
    return out
