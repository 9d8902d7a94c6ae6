"""The tracking port: the one place openaml imports mlflow (ARCHITECTURE.md, "Layers").

Server side: :class:`Tracking` configures MLflow's tracking and registry stores inside the
workspace folder, builds the MLflow ASGI app mounted at ``/mlflow``, creates a job's run with
the job name as run id (Azure ML: a job IS a run), ends runs, and reads and writes the model
registry that backs workspace models.
"""

from __future__ import annotations

from openaml.tracking._tracking import Tracking

__all__ = ["Tracking"]
