"""Azure AutoML algorithm names -> FLAML learners (``flaml.automl.model`` estimators).

Each Azure name maps to the FLAML learner that trains the same model family with FLAML's search
space for it. The names Azure has and FLAML does not (``DecisionTree``, the two naive Bayes,
kernel ``SVM``) have no learner here: allowing only them is refused, blocking them is a no-op.
Forecasting uses the regression learners on lag/rolling features plus the statistical models of
:mod:`openaml.automl._forecast` (``Naive``, ``SeasonalNaive``, ``Average``, ``SeasonalAverage``,
``ExponentialSmoothing``, and ``AutoArima`` (pmdarima) and ``Prophet`` (prophet) where those
libraries are installed: named in ``allowed_training_algorithms`` without them, they are refused).
"""

from __future__ import annotations

from typing import Any

__all__ = ["FLAML_LEARNERS", "STAT_MODELS", "LIBRARY_MODELS", "learners_for", "flaml_task", "estimator_class",
           "missing_library"]

# Azure name -> FLAML learner, in the order trials try them (FLAML's own priority first)
FLAML_LEARNERS: dict[str, dict[str, str]] = {
    "classification": {"LightGBM": "lgbm", "RandomForest": "rf", "ExtremeRandomTrees": "extra_tree",
                       "XGBoostClassifier": "xgboost", "LogisticRegression": "lrl2",
                       "GradientBoosting": "histgb", "KNN": "kneighbor", "SGD": "sgd", "LinearSVM": "svc"},
    "regression": {"LightGBM": "lgbm", "RandomForest": "rf", "ExtremeRandomTrees": "extra_tree",
                   "XGBoostRegressor": "xgboost", "ElasticNet": "enet", "GradientBoosting": "histgb",
                   "KNN": "kneighbor", "LassoLars": "lassolars", "SGD": "sgd"},
}
FLAML_LEARNERS["forecasting"] = dict(FLAML_LEARNERS["regression"])
# forecasting's statistical models (openaml.automl._forecast), tried first: they are cheap baselines
STAT_MODELS = ("Naive", "SeasonalNaive", "Average", "SeasonalAverage", "ExponentialSmoothing", "AutoArima",
               "Prophet")
# the per-series models that need a library of their own (tried last: they are the slowest)
LIBRARY_MODELS = {"AutoArima": "pmdarima", "Prophet": "prophet"}


def missing_library(algorithm: str) -> str | None:
    """The library ``algorithm`` needs that cannot be imported here, or None."""
    import importlib.util

    lib = LIBRARY_MODELS.get(algorithm)
    return lib if lib and importlib.util.find_spec(lib) is None else None


def learners_for(task: str, allowed: list[str] | None, blocked: list[str] | None) -> tuple[list[str], list[str]]:
    """(Azure names to try in order, problems). ``allowed``/``blocked`` hold canonical names."""
    table = list(FLAML_LEARNERS[task])
    if task == "forecasting":
        cheap = [m for m in STAT_MODELS if m not in LIBRARY_MODELS]
        table = [*cheap, *table, *(m for m in LIBRARY_MODELS if not missing_library(m))]
    problems: list[str] = []
    names = table
    if allowed:
        unavailable = [a for a in allowed if task == "forecasting" and missing_library(a)]
        for a in unavailable:
            problems.append(f"field 'training.allowed_training_algorithms': {a} needs the {missing_library(a)} "
                            f"package, which is not installed in this environment (pip install {missing_library(a)})")
        missing = [a for a in allowed if a not in table and a not in unavailable]
        if missing:
            problems.append(f"field 'training.allowed_training_algorithms': {', '.join(missing)} cannot train here "
                            f"(no learner); those that can: {', '.join(table)}")
        names = [n for n in table if n in allowed]
    names = [n for n in names if n not in (blocked or [])]
    if not names and not problems:
        problems.append("field 'training.blocked_training_algorithms' blocks every algorithm that can train "
                        f"here ({', '.join(table)}); allow at least one")
    return names, problems


def flaml_task(task: str, n_classes: int) -> str:
    if task == "classification":
        return "binary" if n_classes <= 2 else "multiclass"
    return "regression"


def estimator_class(learner: str, task: str) -> Any:
    """The FLAML estimator class of a FLAML learner name."""
    from flaml.automl.task.generic_task import GenericTask

    return GenericTask(task).estimator_class_from_str(learner)
