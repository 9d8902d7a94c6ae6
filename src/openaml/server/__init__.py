"""The workspace server (FastAPI + uvicorn): REST API, MLflow, scheduler."""

from __future__ import annotations

from openaml.server._app import create_app

__all__ = ["create_app"]
