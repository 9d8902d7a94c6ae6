"""The built-in RAI components' warm process (issue 16): what it imports, and the step's entry.

A built-in RAI step (``python -m openaml.rai <step> ...``) spends most of a cold start importing
its libraries (pandas, scikit-learn, lightgbm, shap, erroranalysis, responsibleai: seconds of CPU
per step, paid again by every step of a pipeline). The runner (:mod:`openaml.runner._step_pool`)
keeps one warm process per server and environment: ``python -m openaml.rai._warm <pool.json>``,
with :data:`PRELOAD` imported: openaml's own RAI modules and the libraries they use, by name, and
nothing else: never a model, never a job's files (loading a model unpickles the user's objects:
user code, so the model is loaded in the step, in the job's sandbox, as a cold step loads it).
How a step is forked from it into its job, and falls back to a cold start:
:mod:`openaml.runner._warm_step` (``python -m openaml.rai`` calls :func:`run_warm` first, with the
connection in ``$OPENAML_RAI_WARM_FD``).
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["FD_ENV", "PRELOAD", "run_warm"]

FD_ENV = "OPENAML_RAI_WARM_FD"

#: what the warm process imports: openaml's RAI modules and the libraries their steps import lazily
#: (learned from the housing pipeline's steps in one process; causal's econml, mitigation's mlflow
#: and the score card's pyplot are left to their own steps: they would cost every pipeline)
PRELOAD = [
    "numpy", "pandas", "pyarrow.parquet", "scipy.stats", "sklearn.base", "sklearn.pipeline", "sklearn.metrics",
    "sklearn.ensemble", "sklearn.tree", "sklearn.linear_model", "joblib", "cloudpickle", "lightgbm", "shap",
    "erroranalysis.analyzer", "erroranalysis._internal.surrogate_error_tree", "httpx", "yaml", "psutil",
    "openaml.rai._io", "openaml.rai._constructor", "openaml.rai._insights", "openaml.rai._whatif",
    "openaml.rai._cf_random", "openaml.rai._gather", "openaml.rai.__main__",
]


# ====================================================================== the step's side (in the job)
def run_warm(argv: list[str]) -> int | None:
    """Run the step in a child of the warm process; its exit code, or None (no warm process, or it
    refused: the caller runs the step here, cold). :func:`openaml.runner._warm_step.run_warm`."""
    from openaml.runner._warm_step import run_warm as _run

    return _run(argv, FD_ENV)


# ====================================================================== the warm process's child (in the job)
def _mark_start(step: Any) -> None:
    step._MARKS["process_start"] = time.time()  # this process's start (its fork), for _timings.json


# ====================================================================== the warm process
def _main(cfg_path: str) -> int:
    from openaml.runner._warm_step import process_main, serve_module

    return process_main(cfg_path, serve_module("openaml.rai.__main__", FD_ENV, before=_mark_start))


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
