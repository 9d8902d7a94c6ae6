"""Old MLflow clients against the workspace's MLflow 3 server.

MLflow 1.x clients call the model registry under ``/api/2.0/preview/mlflow/...`` (the registry's
REST paths before MLflow 2.0 dropped the ``preview`` segment); MLflow 3's server serves only
``/api/2.0/mlflow/...``, so ``registered_model_name=`` and ``models:/`` URIs failed with 404 from a
1.x client. The request and response bodies are the same protocol messages under both paths, so
rewriting the path is the whole fix.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OldClientPaths"]

_OLD = ("/api/2.0/preview/mlflow/", "/ajax-api/2.0/preview/mlflow/")


class OldClientPaths:
    """ASGI wrapper: ``.../api/2.0/preview/mlflow/X`` is served as ``.../api/2.0/mlflow/X``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and "/preview/mlflow/" in scope.get("path", ""):
            path = scope["path"]
            for old in _OLD:
                path = path.replace(old, old.replace("/preview", ""))
            scope = dict(scope, path=path, raw_path=path.encode("utf-8"))
        await self.app(scope, receive, send)
