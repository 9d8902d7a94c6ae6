"""AutoML's warm process (issue 14): what it imports, and the trial worker's entry.

An AutoML trial worker (``python -m openaml.automl._worker``, one per ``max_concurrent_trials``)
spends its first seconds importing mlflow, scikit-learn, pandas, FLAML, LightGBM and XGBoost (about
5 s of CPU on a laptop core; 10 % of a 1-minute budget on two cores, paid again by every worker of
every job). The runner (:mod:`openaml.runner._step_pool`) keeps one warm process per server and
environment: ``python -m openaml.automl._warm <pool.json>``, with :data:`PRELOAD` imported by name:
openaml's AutoML modules and the libraries they import, nothing else (never a job's data or model).
A worker is forked from it into its own job (its namespaces, variables, folder, log: as
:mod:`openaml.runner._warm_step` describes; ``$OPENAML_AUTOML_WARM_FD`` holds the connection) and
falls back to a cold start when it cannot be.

Ray is kept out of the warm process (FLAML imports ``ray.tune`` when it is installed; a process
with Ray's threads cannot be forked safely), as the worker keeps it out of a cold start.
"""

from __future__ import annotations

import sys

__all__ = ["FD_ENV", "PRELOAD", "run_warm"]

FD_ENV = "OPENAML_AUTOML_WARM_FD"

#: what the warm process imports: openaml's AutoML modules and the libraries a worker imports for
#: classification and regression (forecasting's statistical libraries are left to its own workers:
#: they would cost every job)
PRELOAD = [
    "numpy", "pandas", "pyarrow.parquet", "scipy.sparse", "scipy.stats", "joblib", "cloudpickle",
    "threadpoolctl", "yaml", "httpx",
    "sklearn.base", "sklearn.pipeline", "sklearn.compose", "sklearn.impute", "sklearn.preprocessing",
    "sklearn.feature_extraction", "sklearn.feature_extraction.text", "sklearn.model_selection",
    "sklearn.metrics", "sklearn.linear_model", "sklearn.ensemble", "sklearn.tree", "sklearn.calibration",
    "lightgbm", "xgboost", "flaml", "flaml.default", "flaml.automl", "flaml.automl.task.factory",
    "flaml.tune.searcher.blendsearch",
    "mlflow", "mlflow.tracking", "mlflow.entities", "mlflow.models", "mlflow.sklearn", "mlflow.pyfunc", "mlflow.types.schema",
    "openaml.automl._data", "openaml.automl._featurize", "openaml.automl._learners", "openaml.automl._metrics",
    "openaml.automl._search", "openaml.automl._trial", "openaml.automl._artifacts", "openaml.automl._ensemble",
    "openaml.automl._guardrails", "openaml.automl._worker",
]


def run_warm(argv: list[str]) -> int | None:
    """Run the worker in a child of the warm process; its exit code, or None (no warm process, or it
    refused: the caller runs the worker here, cold). :func:`openaml.runner._warm_step.run_warm`."""
    from openaml.runner._warm_step import run_warm as _run

    return _run(argv, FD_ENV)


def prime() -> None:
    """What the first model a worker saves would compute, computed once here: MLflow's map of the
    installed distributions (``save_model`` checks the model's pip requirements against it: 1.5 s
    of CPU the first time in a process) and the installed versions of the requirements. Nothing of a
    job's. A failure leaves it to the worker."""
    try:
        from mlflow.utils import requirements_utils

        requirements_utils._init_packages_to_modules_map()
        from openaml.automl._artifacts import requirements

        requirements(["lgbm", "xgboost"])
    except Exception:  # noqa: BLE001 - MLflow's private map moved: the worker computes it, as a cold one does
        pass


def _main(cfg_path: str) -> int:
    from openaml.runner._warm_step import process_main, serve_module

    sys.modules.setdefault("ray", None)  # type: ignore[arg-type] # as the worker does: FLAML would import ray.tune
    prime()
    return process_main(cfg_path, serve_module("openaml.automl._worker", FD_ENV))


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
