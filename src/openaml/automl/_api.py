"""The public AutoML API re-exported by :mod:`openaml.automl` (see its docstring)."""

from __future__ import annotations

from typing import Any

from openaml.entities._automl import (
    AutoMLFeaturization,
    AutoMLJob,
    AutoMLLimits,
    AutoMLTraining,
    BlockedTransformers,
    ClassificationModels,
    ClassificationPrimaryMetrics,
    ForecastingModels,
    ForecastingPrimaryMetrics,
    ForecastingSettings,
    RegressionModels,
    RegressionPrimaryMetrics,
    StackEnsembleSettings,
)

__all__ = [
    "classification", "regression", "forecasting", "AutoMLJob", "ClassificationJob", "RegressionJob",
    "ForecastingJob", "ClassificationPrimaryMetrics", "RegressionPrimaryMetrics", "ForecastingPrimaryMetrics",
    "ClassificationModels", "RegressionModels", "ForecastingModels", "BlockedTransformers", "ForecastingSettings",
    "StackEnsembleSettings", "TabularLimitSettings", "TrainingSettings", "TabularFeaturizationSettings",
]

# azure-ai-ml's class names for the same entities
ClassificationJob = RegressionJob = ForecastingJob = AutoMLJob
TabularLimitSettings = AutoMLLimits
TrainingSettings = AutoMLTraining
TabularFeaturizationSettings = AutoMLFeaturization

_JOB_KEYS = ("compute", "experiment_name", "name", "display_name", "description", "tags", "properties",
             "outputs", "log_verbosity", "environment_id", "environment_variables", "resources", "queue_settings")
_DATA_KEYS = ("training_data", "target_column_name", "weight_column_name", "validation_data", "validation_data_size",
              "n_cross_validations", "cv_split_column_names", "test_data", "test_data_size")


def _job(task: str, kw: dict[str, Any]) -> AutoMLJob:
    primary_metric = kw.pop("primary_metric", None)
    positive_label = kw.pop("positive_label", None)
    featurization = kw.pop("featurization", None)
    # azure-ai-ml takes it as a factory keyword (the book's chapter 5 call); it is a training setting
    explainability = kw.pop("enable_model_explainability", None)
    unknown = [k for k in kw if k not in _JOB_KEYS + _DATA_KEYS + ("forecasting_settings", "limits", "training")]
    if unknown:
        raise TypeError(f"automl.{task}() got unexpected keyword arguments {unknown}; "
                        f"see azure-ai-ml's automl.{task}() for the accepted ones")
    fields: dict[str, Any] = {"task": task, "primary_metric": primary_metric, "positive_label": positive_label,
                              "featurization": featurization}
    fields.update({k: v for k, v in kw.items() if k in _JOB_KEYS + _DATA_KEYS + ("limits", "training")})
    if kw.get("forecasting_settings") is not None:
        fields["forecasting"] = kw["forecasting_settings"]
    if explainability is not None:
        training = fields.get("training")
        base = (training.model_dump(exclude_none=True) if isinstance(training, AutoMLTraining)
                else dict(training or {}))
        fields["training"] = {**base, "enable_model_explainability": bool(explainability)}
    from openaml.entities._node import current_builder

    builder = current_builder()
    if builder is None:
        return AutoMLJob.model_validate({k: v for k, v in fields.items() if v is not None})
    # inside @dsl.pipeline: a type: automl node, its data bound to other nodes' outputs or pipeline inputs
    from openaml.automl._node import DATA_KEYS, AutoMLNode, is_binding

    data = {k: fields[k] for k in DATA_KEYS if fields.get(k) is not None}
    for k, v in data.items():
        if is_binding(v):
            fields[k] = {"type": "mltable", "path": "./bound-in-pipeline"}
    job = AutoMLJob.model_validate({k: v for k, v in fields.items() if v is not None})
    node = AutoMLNode(job, {k: v if is_binding(v) else getattr(job, k) for k, v in data.items()})
    builder.add(node)
    return node  # type: ignore[return-value]  # an AutoMLNode answers as the job it wraps


def classification(*, training_data: Any = None, target_column_name: str | None = None,
                   primary_metric: Any = None, **kwargs: Any) -> AutoMLJob:
    """A classification AutoML job (azure-ai-ml ``automl.classification``); ``positive_label``
    names the positive class of a binary target."""
    return _job("classification", {"training_data": training_data, "target_column_name": target_column_name,
                                   "primary_metric": primary_metric, **kwargs})


def regression(*, training_data: Any = None, target_column_name: str | None = None,
               primary_metric: Any = None, **kwargs: Any) -> AutoMLJob:
    """A regression AutoML job (azure-ai-ml ``automl.regression``)."""
    return _job("regression", {"training_data": training_data, "target_column_name": target_column_name,
                               "primary_metric": primary_metric, **kwargs})


def forecasting(*, training_data: Any = None, target_column_name: str | None = None,
                primary_metric: Any = None, **kwargs: Any) -> AutoMLJob:
    """A forecasting AutoML job (azure-ai-ml ``automl.forecasting``); settings with
    ``forecasting_settings=ForecastingSettings(...)`` or ``job.set_forecast_settings(...)``."""
    return _job("forecasting", {"training_data": training_data, "target_column_name": target_column_name,
                                "primary_metric": primary_metric, **kwargs})
