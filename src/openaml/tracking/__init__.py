"""The tracking port: the one place openaml imports mlflow (ARCHITECTURE.md, "Layers").

Server side: :class:`Tracking` configures MLflow's tracking and registry stores on the
workspace's backend (:func:`tracking_backend_url`: SQLite in the workspace folder, or the
metadata store's PostgreSQL database), builds the MLflow ASGI app mounted at ``/mlflow``, creates a job's run with
the job name as run id (Azure ML: a job IS a run), ends runs, and reads and writes the model
registry that backs workspace models.

The names are imported when first used: MLflow loads this package's ``azureml`` artifact
repository (an entry point) on every ``import mlflow``, in every job, and that must not import the
server's side (SQLAlchemy, the workspace: about 0.4 s of each job's start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openaml.tracking._backend import tracking_backend_url
    from openaml.tracking._explain import log_explanation
    from openaml.tracking._tracking import Tracking

__all__ = ["Tracking", "log_explanation", "tracking_backend_url"]

_WHERE = {"Tracking": "openaml.tracking._tracking", "log_explanation": "openaml.tracking._explain",
          "tracking_backend_url": "openaml.tracking._backend"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
