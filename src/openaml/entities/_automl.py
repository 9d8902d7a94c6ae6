"""AutoML jobs (spec section 6.1, 6.2, 6.4): the ``AutoMLJob`` entity with azure-ai-ml v2's field
names, the primary-metric and algorithm enums, and the field checks done before anything runs.

The YAML (``type: automl``, ``task: classification|regression|forecasting``) and the SDK
(:mod:`openaml.automl`) build the same entity. :func:`automl_problems` returns every problem of
a job (field named, value shown, the fix), and the notes (accepted but not applied here, each one
said); the server repeats the checks and the data checks (:mod:`openaml.automl._data`).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator

from openaml.entities._base import Entity
from openaml.entities._io import Input, Output, normalize_inputs, normalize_outputs
from openaml.entities._job import Job, JobResources

__all__ = [
    "AutoMLJob", "AutoMLLimits", "AutoMLTraining", "AutoMLFeaturization", "ForecastingSettings",
    "StackEnsembleSettings", "ClassificationPrimaryMetrics", "RegressionPrimaryMetrics",
    "ForecastingPrimaryMetrics", "ClassificationModels", "RegressionModels", "ForecastingModels",
    "BlockedTransformers", "TASKS", "PRIMARY_METRICS", "MODELS", "automl_problems", "canonical_model",
    "canonical_metric", "DEFAULT_METRIC",
]

TASKS = ("classification", "regression", "forecasting")


class _StrEnum(StrEnum):
    pass


class ClassificationPrimaryMetrics(_StrEnum):
    """azure-ai-ml ``ClassificationPrimaryMetrics``."""

    AUC_WEIGHTED = "AUCWeighted"
    ACCURACY = "Accuracy"
    NORM_MACRO_RECALL = "NormMacroRecall"
    AVERAGE_PRECISION_SCORE_WEIGHTED = "AveragePrecisionScoreWeighted"
    PRECISION_SCORE_WEIGHTED = "PrecisionScoreWeighted"


class RegressionPrimaryMetrics(_StrEnum):
    """azure-ai-ml ``RegressionPrimaryMetrics``."""

    SPEARMAN_CORRELATION = "SpearmanCorrelation"
    NORMALIZED_ROOT_MEAN_SQUARED_ERROR = "NormalizedRootMeanSquaredError"
    R2_SCORE = "R2Score"
    NORMALIZED_MEAN_ABSOLUTE_ERROR = "NormalizedMeanAbsoluteError"


class ForecastingPrimaryMetrics(_StrEnum):
    """azure-ai-ml ``ForecastingPrimaryMetrics``."""

    SPEARMAN_CORRELATION = "SpearmanCorrelation"
    NORMALIZED_ROOT_MEAN_SQUARED_ERROR = "NormalizedRootMeanSquaredError"
    R2_SCORE = "R2Score"
    NORMALIZED_MEAN_ABSOLUTE_ERROR = "NormalizedMeanAbsoluteError"


class ClassificationModels(_StrEnum):
    """azure-ai-ml ``ClassificationModels``."""

    LOGISTIC_REGRESSION = "LogisticRegression"
    SGD = "SGD"
    MULTINOMIAL_NAIVE_BAYES = "MultinomialNaiveBayes"
    BERNOULLI_NAIVE_BAYES = "BernoulliNaiveBayes"
    SVM = "SVM"
    LINEAR_SVM = "LinearSVM"
    KNN = "KNN"
    DECISION_TREE = "DecisionTree"
    RANDOM_FOREST = "RandomForest"
    EXTREME_RANDOM_TREES = "ExtremeRandomTrees"
    LIGHT_GBM = "LightGBM"
    GRADIENT_BOOSTING = "GradientBoosting"
    XG_BOOST_CLASSIFIER = "XGBoostClassifier"


class RegressionModels(_StrEnum):
    """azure-ai-ml ``RegressionModels``."""

    ELASTIC_NET = "ElasticNet"
    GRADIENT_BOOSTING = "GradientBoosting"
    DECISION_TREE = "DecisionTree"
    KNN = "KNN"
    LASSO_LARS = "LassoLars"
    SGD = "SGD"
    RANDOM_FOREST = "RandomForest"
    EXTREME_RANDOM_TREES = "ExtremeRandomTrees"
    LIGHT_GBM = "LightGBM"
    XG_BOOST_REGRESSOR = "XGBoostRegressor"


class ForecastingModels(_StrEnum):
    """azure-ai-ml ``ForecastingModels``."""

    AUTO_ARIMA = "AutoArima"
    PROPHET = "Prophet"
    NAIVE = "Naive"
    SEASONAL_NAIVE = "SeasonalNaive"
    AVERAGE = "Average"
    SEASONAL_AVERAGE = "SeasonalAverage"
    EXPONENTIAL_SMOOTHING = "ExponentialSmoothing"
    ARIMAX = "Arimax"
    TCN_FORECASTER = "TCNForecaster"
    ELASTIC_NET = "ElasticNet"
    GRADIENT_BOOSTING = "GradientBoosting"
    DECISION_TREE = "DecisionTree"
    KNN = "KNN"
    LASSO_LARS = "LassoLars"
    SGD = "SGD"
    RANDOM_FOREST = "RandomForest"
    EXTREME_RANDOM_TREES = "ExtremeRandomTrees"
    LIGHT_GBM = "LightGBM"
    XG_BOOST_REGRESSOR = "XGBoostRegressor"


class BlockedTransformers(_StrEnum):
    """azure-ai-ml ``BlockedTransformers``."""

    TEXT_TARGET_ENCODER = "TextTargetEncoder"
    ONE_HOT_ENCODER = "OneHotEncoder"
    CAT_TARGET_ENCODER = "CatTargetEncoder"
    TF_IDF = "TfIdf"
    WOE_TARGET_ENCODER = "WoETargetEncoder"
    LABEL_ENCODER = "LabelEncoder"
    WORD_EMBEDDING = "WordEmbedding"
    NAIVE_BAYES = "NaiveBayes"
    COUNT_VECTORIZER = "CountVectorizer"
    HASH_ONE_HOT_ENCODER = "HashOneHotEncoder"


def _key(v: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(getattr(v, "value", v)).lower())


# canonical (Azure's metric names as logged) per task
PRIMARY_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("AUC_weighted", "accuracy", "norm_macro_recall", "average_precision_score_weighted",
                       "precision_score_weighted"),
    "regression": ("spearman_correlation", "normalized_root_mean_squared_error", "r2_score",
                   "normalized_mean_absolute_error"),
    "forecasting": ("normalized_root_mean_squared_error", "spearman_correlation", "r2_score",
                    "normalized_mean_absolute_error"),
}
DEFAULT_METRIC = {"classification": "accuracy", "regression": "normalized_root_mean_squared_error",
                  "forecasting": "normalized_root_mean_squared_error"}
MODELS: dict[str, tuple[str, ...]] = {
    "classification": tuple(m.value for m in ClassificationModels),
    "regression": tuple(m.value for m in RegressionModels),
    "forecasting": tuple(m.value for m in ForecastingModels),
}
_TRANSFORMERS = tuple(t.value for t in BlockedTransformers)


def canonical_metric(task: str, value: Any) -> str | None:
    """Azure's logged name of a primary metric (``AUCWeighted``, ``auc_weighted`` -> ``AUC_weighted``)."""
    return next((m for m in PRIMARY_METRICS.get(task, ()) if _key(m) == _key(value)), None)


def canonical_model(task: str, value: Any) -> str | None:
    """The enum name of an algorithm (``light_gbm``, ``LightGBM`` -> ``LightGBM``), None if unknown."""
    return next((m for m in MODELS.get(task, ()) if _key(m) == _key(value)), None)


class AutoMLLimits(Entity):
    """``limits``: minutes and counts as Azure gives them. ``timeout_minutes`` bounds the whole job
    (default 360 as Azure), ``trial_timeout_minutes`` each trial, ``max_trials`` (default 1000),
    ``max_concurrent_trials`` (default 1), ``max_cores_per_trial`` (-1: all), ``exit_score``."""

    timeout_minutes: int | None = None
    trial_timeout_minutes: int | None = None
    max_trials: int | None = None
    max_concurrent_trials: int | None = None
    max_cores_per_trial: int | None = None
    max_nodes: int | None = None
    enable_early_termination: bool | None = None
    exit_score: float | None = None


class StackEnsembleSettings(Entity):
    stack_meta_learner_type: str | None = None
    stack_meta_learner_train_percentage: float | None = None
    stack_meta_learner_kwargs: dict[str, Any] | None = None


class AutoMLTraining(Entity):
    """``training``: what trains and what is built after the search."""

    enable_model_explainability: bool | None = None
    enable_onnx_compatible_models: bool | None = None
    enable_dnn_training: bool | None = None
    enable_stack_ensemble: bool | None = None
    enable_vote_ensemble: bool | None = None
    ensemble_model_download_timeout_minutes: int | None = None
    stack_ensemble_settings: StackEnsembleSettings | None = None
    training_mode: str | None = None
    allowed_training_algorithms: list[str] | None = None
    blocked_training_algorithms: list[str] | None = None

    @field_validator("allowed_training_algorithms", "blocked_training_algorithms", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        return [str(getattr(x, "value", x)) for x in v] if isinstance(v, (list, tuple)) else v


class TransformerParam(Entity):
    fields: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)


class AutoMLFeaturization(Entity):
    """``featurization``: ``mode`` auto/off/custom; ``column_name_and_types`` (column -> Numeric,
    Categorical, DateTime, Text, Ignore); ``transformer_params`` (Imputer/HashOneHotEncoder...);
    ``blocked_transformers``."""

    mode: str | None = None
    blocked_transformers: list[str] | None = None
    column_name_and_types: dict[str, str] | None = None
    transformer_params: dict[str, list[TransformerParam]] | None = None
    dataset_language: str | None = None
    enable_dnn_featurization: bool | None = None

    @field_validator("blocked_transformers", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        return [str(getattr(x, "value", x)) for x in v] if isinstance(v, (list, tuple)) else v


class ForecastingSettings(Entity):
    """``forecasting`` (spec 6.2)."""

    time_column_name: str | None = None
    time_series_id_column_names: str | list[str] | None = None
    forecast_horizon: int | str | None = None
    frequency: str | None = None
    target_lags: int | list[int] | str | None = None
    target_rolling_window_size: int | str | None = None
    feature_lags: str | None = None
    seasonality: int | str | None = None
    country_or_region_for_holidays: str | None = None
    cv_step_size: int | str | None = None
    short_series_handling_config: str | None = None
    use_stl: str | None = None
    target_aggregate_function: str | None = None
    features_unknown_at_forecast_time: str | list[str] | None = None

    def series_columns(self) -> list[str]:
        ids = self.time_series_id_column_names
        return [ids] if isinstance(ids, str) else list(ids or [])


class AutoMLJob(Job):
    """An AutoML job (``type: automl``): a parent job whose trials are child jobs (one pipeline of
    featurization + learner + hyperparameters each), ranked by ``primary_metric``."""

    type: Literal["automl"] = "automl"
    task: str
    target_column_name: str | None = None
    training_data: Input | None = None
    validation_data: Input | None = None
    validation_data_size: float | None = None
    test_data: Input | None = None
    test_data_size: float | None = None
    n_cross_validations: int | str | None = None
    cv_split_column_names: list[str] | None = None
    weight_column_name: str | None = None
    primary_metric: str | None = None
    positive_label: Any = None
    log_verbosity: str | None = None
    limits: AutoMLLimits | None = None
    training: AutoMLTraining | None = None
    featurization: AutoMLFeaturization | None = None
    forecasting: ForecastingSettings | None = None
    outputs: dict[str, Output] = Field(default_factory=dict)
    resources: JobResources | None = None
    environment_id: str | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)

    @field_validator("task", mode="before")
    @classmethod
    def _task(cls, v: Any) -> Any:
        return str(getattr(v, "value", v)).lower() if v is not None else v

    @field_validator("primary_metric", mode="before")
    @classmethod
    def _metric(cls, v: Any) -> Any:
        return None if v is None else str(getattr(v, "value", v))

    @field_validator("training_data", "validation_data", "test_data", mode="before")
    @classmethod
    def _data(cls, v: Any) -> Any:
        if isinstance(v, str):
            return {"type": "mltable", "path": v}
        if isinstance(v, dict):
            return normalize_inputs({"x": v})["x"]
        return v

    @field_validator("outputs", mode="before")
    @classmethod
    def _outputs(cls, v: Any) -> Any:
        return normalize_outputs(v) if isinstance(v, dict) else v

    # azure-ai-ml's builder methods (also on the SDK's job returned by automl.classification(...))
    def set_limits(self, **kw: Any) -> None:
        self.limits = AutoMLLimits.model_validate({**(self.limits.model_dump(exclude_none=True) if self.limits else {}),
                                                  **{k: v for k, v in kw.items() if v is not None}})

    def set_training(self, **kw: Any) -> None:
        base = self.training.model_dump(exclude_none=True) if self.training else {}
        self.training = AutoMLTraining.model_validate({**base, **{k: v for k, v in kw.items() if v is not None}})

    def set_featurization(self, **kw: Any) -> None:
        base = self.featurization.model_dump(exclude_none=True) if self.featurization else {}
        self.featurization = AutoMLFeaturization.model_validate({**base, **{k: v for k, v in kw.items()
                                                                              if v is not None}})

    def set_forecast_settings(self, **kw: Any) -> None:
        if self.task != "forecasting":
            raise ValueError(f"set_forecast_settings is for task forecasting; this job's task is {self.task!r}")
        base = self.forecasting.model_dump(exclude_none=True) if self.forecasting else {}
        self.forecasting = ForecastingSettings.model_validate({**base, **{k: v for k, v in kw.items()
                                                                            if v is not None}})

    def set_data(self, *, training_data: Any, target_column_name: str, weight_column_name: str | None = None,
                 validation_data: Any = None, validation_data_size: float | None = None,
                 n_cross_validations: int | str | None = None, cv_split_column_names: list[str] | None = None,
                 test_data: Any = None, test_data_size: float | None = None) -> None:
        values = {"training_data": training_data, "target_column_name": target_column_name,
                  "weight_column_name": weight_column_name, "validation_data": validation_data,
                  "validation_data_size": validation_data_size, "n_cross_validations": n_cross_validations,
                  "cv_split_column_names": cv_split_column_names, "test_data": test_data,
                  "test_data_size": test_data_size}
        for k, v in values.items():
            if v is None:
                continue
            if k in ("training_data", "validation_data", "test_data"):
                v = type(self)._data(v)
                v = Input.model_validate(v) if isinstance(v, dict) else v
            setattr(self, k, v)


def automl_problems(job: AutoMLJob) -> tuple[list[str], list[str]]:
    """(problems, notes) of an AutoML job's fields, before its data is read.

    Problems refuse the job (each names the field, the value and the fix); notes are fields that
    are accepted but not applied here (documented in docs/differences.md), said in the job's warnings.
    """
    p: list[str] = []
    notes: list[str] = []
    task = job.task
    if task not in TASKS:
        return [f"field 'task': {task!r} is not a tabular AutoML task here; use one of {', '.join(TASKS)} "
                "(image and text tasks need GPUs and downloaded models)"], notes
    if not job.target_column_name:
        p.append("field 'target_column_name' is required: the column to predict")
    if job.training_data is None:
        p.append("field 'training_data' is required: an MLTable input (type: mltable, path: ./folder)")
    for f in ("training_data", "validation_data", "test_data"):
        inp = getattr(job, f)
        if inp is not None and inp.type != "mltable":
            p.append(f"field '{f}': type {inp.type!r}; AutoML data is type: mltable (a folder with an MLTable file)")
    if job.primary_metric is not None and canonical_metric(task, job.primary_metric) is None:
        p.append(f"field 'primary_metric': {job.primary_metric!r} does not fit task {task}; use one of "
                 + ", ".join(PRIMARY_METRICS[task]))
    for f in ("validation_data_size", "test_data_size"):
        v = getattr(job, f)
        if v is not None and not 0.0 < v < 1.0:
            p.append(f"field '{f}': {v!r} must be a fraction between 0 and 1 (e.g. 0.2)")
    if job.test_data_size is not None and job.test_data is None:
        notes.append(f"test_data_size={job.test_data_size} is not applied: no rows are held out and no test_* "
                     "metrics are computed; give test_data (an MLTable) for them")
    cv = job.n_cross_validations
    if isinstance(cv, str) and cv.lower() != "auto":
        p.append(f"field 'n_cross_validations': {cv!r}; give an integer >= 2 or 'auto'")
    elif isinstance(cv, int) and cv < 2:
        p.append(f"field 'n_cross_validations': {cv} must be >= 2 (or 'auto')")
    if cv is not None and (job.validation_data is not None or job.validation_data_size):
        p.append("field 'n_cross_validations': give either cross-validation or validation_data/"
                 "validation_data_size, not both (Azure's rule)")
    if job.positive_label is not None and task != "classification":
        p.append(f"field 'positive_label' is for classification; this job's task is {task}")
    lim = job.limits or AutoMLLimits()
    for f in ("timeout_minutes", "trial_timeout_minutes", "max_trials", "max_concurrent_trials"):
        v = getattr(lim, f)
        if v is not None and v < 1:
            p.append(f"field 'limits.{f}': {v} must be >= 1")
    if lim.max_cores_per_trial is not None and lim.max_cores_per_trial == 0 or (lim.max_cores_per_trial or 0) < -1:
        p.append(f"field 'limits.max_cores_per_trial': {lim.max_cores_per_trial}; give -1 (all cores) or >= 1")
    if lim.timeout_minutes and lim.trial_timeout_minutes and lim.trial_timeout_minutes > lim.timeout_minutes:
        p.append(f"field 'limits.trial_timeout_minutes': {lim.trial_timeout_minutes} is longer than "
                 f"limits.timeout_minutes ({lim.timeout_minutes}): no trial could finish; lower it or raise the timeout")
    if lim.max_nodes not in (None, 1):
        notes.append(f"limits.max_nodes={lim.max_nodes} is not applied: trials run on the job's compute, "
                     "max_concurrent_trials at a time")
    tr = job.training or AutoMLTraining()
    for f in ("allowed_training_algorithms", "blocked_training_algorithms"):
        for name in getattr(tr, f) or []:
            if canonical_model(task, name) is None:
                p.append(f"field 'training.{f}': {name!r} is not a {task} algorithm; use "
                         + ", ".join(MODELS[task]))
    if tr.enable_dnn_training:
        p.append("field 'training.enable_dnn_training': deep-learning trials (TCNForecaster, BERT) need torch "
                 "and GPUs; openaml's AutoML does not run them. Remove the field or set it to false")
    if tr.training_mode not in (None, "auto", "non_distributed"):
        notes.append(f"training.training_mode={tr.training_mode!r}: trials are not distributed here "
                     "(non_distributed is used)")
    if tr.ensemble_model_download_timeout_minutes is not None:
        notes.append("training.ensemble_model_download_timeout_minutes is not applied: the ensembles read their "
                     "members from the job's own files, nothing is downloaded")
    if tr.stack_ensemble_settings and tr.stack_ensemble_settings.stack_meta_learner_train_percentage is not None:
        notes.append("training.stack_ensemble_settings.stack_meta_learner_train_percentage is not applied: the "
                     "meta learner is trained on the members' out-of-fold predictions of all training rows")
    if tr.enable_onnx_compatible_models:
        notes.append("training.enable_onnx_compatible_models: no ONNX model is written (no skl2onnx); the "
                     "MLflow, pickle and scoring-file forms are")
    if tr.stack_ensemble_settings and tr.stack_ensemble_settings.stack_meta_learner_type not in (
            None, "none", "LogisticRegression", "LogisticRegressionCV", "LightGBMClassifier", "ElasticNet",
            "ElasticNetCV", "LightGBMRegressor", "LinearRegression"):
        p.append(f"field 'training.stack_ensemble_settings.stack_meta_learner_type': "
                 f"{tr.stack_ensemble_settings.stack_meta_learner_type!r} is not one of Azure's meta learners")
    fz = job.featurization or AutoMLFeaturization()
    if fz.mode is not None and fz.mode.lower() not in ("auto", "off", "custom"):
        p.append(f"field 'featurization.mode': {fz.mode!r}; use auto, off or custom")
    for t in fz.blocked_transformers or []:
        if _key(t) not in {_key(x) for x in _TRANSFORMERS}:
            p.append(f"field 'featurization.blocked_transformers': {t!r} is not a transformer; use "
                     + ", ".join(_TRANSFORMERS))
    for col, typ in (fz.column_name_and_types or {}).items():
        if _key(typ) not in ("numeric", "categorical", "categoricalhash", "datetime", "text", "ignore",
                             "categoricalhashonehot"):
            p.append(f"field 'featurization.column_name_and_types.{col}': {typ!r}; use Numeric, Categorical, "
                     "CategoricalHash, DateTime, Text or Ignore")
    if fz.dataset_language:
        notes.append(f"featurization.dataset_language={fz.dataset_language!r} is not applied: text columns get "
                     "TF-IDF features whatever their language (no language-specific models here)")
    for key in fz.transformer_params or {}:
        if str(key).lower() != "imputer":
            notes.append(f"featurization.transformer_params.{key} is not applied: only the imputer's parameters "
                         "are (categorical columns are one-hot encoded, or hashed above the cardinality limit)")
    if fz.enable_dnn_featurization:
        notes.append("featurization.enable_dnn_featurization: BERT text features are not computed here (TF-IDF is)")
    if task == "forecasting":
        fc = job.forecasting or ForecastingSettings()
        if not fc.time_column_name:
            p.append("field 'forecasting.time_column_name' is required for forecasting")
        if fc.short_series_handling_config not in (None, "none", "auto", "pad", "drop"):
            p.append(f"field 'forecasting.short_series_handling_config': {fc.short_series_handling_config!r}; "
                     "use none, auto, pad or drop")
        if fc.target_aggregate_function not in (None, "none", "sum", "max", "min", "mean"):
            p.append(f"field 'forecasting.target_aggregate_function': {fc.target_aggregate_function!r}; "
                     "use none, sum, max, min or mean")
        for f in ("forecast_horizon", "target_rolling_window_size", "seasonality", "cv_step_size"):
            v = getattr(fc, f)
            if isinstance(v, str) and v.lower() != "auto":
                p.append(f"field 'forecasting.{f}': {v!r}; give an integer or 'auto'")
            elif isinstance(v, int) and v < 1:
                p.append(f"field 'forecasting.{f}': {v} must be >= 1")
        if fc.country_or_region_for_holidays:
            problem = _holiday_problem(fc.country_or_region_for_holidays)
            if problem:
                p.append(problem)
        if fc.use_stl not in (None, "none"):
            notes.append(f"forecasting.use_stl={fc.use_stl!r}: STL features are not computed here")
        if fc.features_unknown_at_forecast_time:
            notes.append(f"forecasting.features_unknown_at_forecast_time={fc.features_unknown_at_forecast_time!r} "
                         "is not applied: every feature column is read from the rows given to forecast()")
        if fc.feature_lags not in (None, "none"):
            notes.append(f"forecasting.feature_lags={fc.feature_lags!r}: only target lags are built here")
    elif job.forecasting is not None:
        p.append(f"field 'forecasting' is for task forecasting; this job's task is {task}")
    return p, notes


def _holiday_problem(country: str) -> str | None:
    """Why ``country_or_region_for_holidays`` cannot build holiday features (the ``holidays``
    package's ISO 3166 codes), or None."""
    try:
        import holidays
    except ImportError:
        return ("field 'forecasting.country_or_region_for_holidays' needs the holidays package, which is not "
                "installed here (pip install holidays)")
    codes = holidays.list_supported_countries()
    if str(country).upper() not in codes:
        return (f"field 'forecasting.country_or_region_for_holidays': {country!r} is not a country or region code "
                f"the holidays package knows; use an ISO 3166 code such as US, GB, DE, FR, IN")
    return None
