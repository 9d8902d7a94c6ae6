"""``from openaml import automl`` (azure-ai-ml ``azure.ai.ml.automl``): tabular AutoML jobs.

``automl.classification(...)``, ``automl.regression(...)`` and ``automl.forecasting(...)`` build an
:class:`AutoMLJob` (``type: automl``) that ``ml_client.jobs.create_or_update(job)`` submits; then
``job.set_limits(...)``, ``set_training(...)``, ``set_featurization(...)``, ``set_data(...)`` and,
for forecasting, ``set_forecast_settings(...)`` as in azure-ai-ml. Trials run as child jobs
(``openaml job list --parent-job-name <job>``); the parent's MLflow run carries
``automl_best_child_run_id``. Guide: docs/guide/automl.md.

Importing this package is light: the names load on first use (a trial, ``python -m
openaml.automl._trial``, does not pay for the SDK's entities).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openaml.automl._api import (
        AutoMLJob,
        BlockedTransformers,
        ClassificationJob,
        ClassificationModels,
        ClassificationPrimaryMetrics,
        ForecastingJob,
        ForecastingModels,
        ForecastingPrimaryMetrics,
        ForecastingSettings,
        RegressionJob,
        RegressionModels,
        RegressionPrimaryMetrics,
        StackEnsembleSettings,
        TabularFeaturizationSettings,
        TabularLimitSettings,
        TrainingSettings,
        classification,
        forecasting,
        regression,
    )

__all__ = [
    "classification", "regression", "forecasting", "AutoMLJob", "ClassificationJob", "RegressionJob",
    "ForecastingJob", "ClassificationPrimaryMetrics", "RegressionPrimaryMetrics", "ForecastingPrimaryMetrics",
    "ClassificationModels", "RegressionModels", "ForecastingModels", "BlockedTransformers", "ForecastingSettings",
    "StackEnsembleSettings", "TabularLimitSettings", "TrainingSettings", "TabularFeaturizationSettings",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from openaml.automl import _api

        return getattr(_api, name)
    raise AttributeError(f"module 'openaml.automl' has no attribute {name!r}")
