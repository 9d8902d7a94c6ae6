"""The tracking port: the one place openaml imports mlflow (ARCHITECTURE.md, "Layers").

Server side: :class:`Tracking` configures MLflow's tracking and registry stores on the
workspace's backend (:func:`tracking_backend_url`: SQLite in the workspace folder, or the
metadata store's PostgreSQL database), builds the MLflow ASGI app mounted at ``/mlflow``, creates a job's run with
the job name as run id (Azure ML: a job IS a run), ends runs, and reads and writes the model
registry that backs workspace models.
"""

from __future__ import annotations

from openaml.tracking._backend import tracking_backend_url
from openaml.tracking._explain import log_explanation
from openaml.tracking._tracking import Tracking

__all__ = ["Tracking", "log_explanation", "tracking_backend_url"]
