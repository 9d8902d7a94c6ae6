"""``log_explanation``: MLflow's SHAP explanation plus what the studio needs to label it.

``mlflow.shap.log_explanation(predict_fn, X)`` (MLflow's own API, usable as is in a job) logs
``model_explanations_shap/{base_values.npy, shap_values.npy, summary_bar_plot.png}``: the values, but
neither the feature names nor the rows explained. This helper calls it and adds
``feature_names.json`` (the column names) and ``features.json`` (the rows, JSON records), so the
studio's Explanations view shows named features and a row's values beside its contributions, as the
book's chapter 8 global and local importance views do.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["log_explanation"]


def log_explanation(predict_function: Any, features: Any, artifact_path: str = "model_explanations_shap") -> str:
    """Log a SHAP explanation of ``predict_function`` on ``features`` to the active MLflow run.

    Args:
        predict_function: ``f(X) -> array of shape (n_samples,) or (n_samples, n_outputs)``
            (e.g. ``model.predict`` or ``model.predict_proba``).
        features: a pandas DataFrame (its column names are kept) or an array of shape
            (n_samples, n_features); every row is explained (SHAP's KernelExplainer: keep it small,
            tens to hundreds of rows).
        artifact_path: the run-relative folder (MLflow's default ``model_explanations_shap``).

    Returns:
        The explanation's artifact URI (as ``mlflow.shap.log_explanation``).

    Raises:
        ImportError: shap is not installed in the job's environment.
        mlflow.exceptions.MlflowException: no active run could be started.
    """
    import mlflow
    import mlflow.shap
    import pandas as pd

    uri = str(mlflow.shap.log_explanation(predict_function, features, artifact_path=artifact_path))
    frame = features if isinstance(features, pd.DataFrame) else pd.DataFrame(features)
    names = [str(c) for c in frame.columns]
    frame = frame.set_axis(names, axis=1)
    mlflow.log_text(json.dumps(names), f"{artifact_path}/feature_names.json")
    mlflow.log_text(json.dumps(json.loads(frame.to_json(orient="records"))), f"{artifact_path}/features.json")
    return uri
