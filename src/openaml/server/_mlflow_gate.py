"""The RAI gate in front of MLflow's REST API (``/mlflow``): registry writes that promote a model
version (tags, versions created with tags, stage transitions, aliases) pass
:meth:`openaml.services.rai_gate.RaiGateService.check_mlflow_write` first.

The files of registered model versions (``mlflow-artifacts/artifacts/models/...``, where openaml keeps
them) are the server's: a write there through MLflow's artifact proxy (PUT, DELETE, a multipart
upload) is refused for everyone (403), so a version's files cannot be swapped after its score card
passed (review G6); a new version is registered instead.

A refused write is answered as MLflow answers its own errors (``{"error_code", "message"}``; HTTP
409 ``RESOURCE_CONFLICT`` naming the failing checks, 400 ``INVALID_PARAMETER_VALUE``), so the
``mlflow`` client raises ``RestException`` with that message. Every other request passes untouched.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qs

from openaml.errors import ConflictError, OpenAMLError
from openaml.server._auth import artifact_parts, request_json_object

__all__ = ["RaiGateMlflow"]

_GATED = ("model-versions/set-tag", "model-versions/create", "model-versions/transition-stage",
          "registered-models/alias", "registered-models/rename")
# MLflow's DELETE requests carry their fields as a JSON body too
_GATED_DELETE = ("model-versions/delete-tag", "model-versions/delete", "registered-models/delete")


def _registered_files(path: str, query: bytes) -> bool:
    """The request (``path``, ``query``) to MLflow's artifact proxy names files under ``models/`` of the
    artifact root: registered model versions' files."""
    marker = "/mlflow-artifacts/"
    at = path.find(marker)
    if at < 0:
        return False
    q = {k: v[0] for k, v in parse_qs(query.decode("latin-1")).items() if v}
    parts = artifact_parts(path[at + len(marker):], q)
    return parts is not None and parts[:1] == ["models"]


def _endpoint(path: str) -> str | None:
    """``.../api/2.0/mlflow/model-versions/set-tag`` (also ajax-api and preview paths) -> the gated name."""
    marker = "/mlflow/"
    at = path.rfind(marker)
    tail = path[at + len(marker):].strip("/") if at >= 0 else ""
    return tail if tail in _GATED or tail in _GATED_DELETE else None


class RaiGateMlflow:
    """ASGI wrapper of the ``/mlflow`` app (see the module docstring)."""

    def __init__(self, app: Any, ctx: Any) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("method") not in ("GET", "HEAD", "OPTIONS") \
                and _registered_files(scope.get("path", ""), scope.get("query_string", b"")):
            await _answer(send, 403, "PERMISSION_DENIED", "the files of a registered model version are the server's "
                          "and never change; register a new version (openaml model create) instead")
            return
        endpoint = _endpoint(scope.get("path", "")) if scope.get("type") == "http" else None
        methods = ("DELETE",) if endpoint in _GATED_DELETE else ("POST", "PATCH", "PUT")
        if endpoint is None or scope.get("method") not in methods:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        body = request_json_object(raw)  # as MLflow reads it: a double-encoded body too
        error = (await _run(lambda: self._check(endpoint, body)) if body is not None else
                 (400, "INVALID_PARAMETER_VALUE", f"{endpoint}: the request body must be a JSON object"))
        if error is not None:
            await _answer(send, *error)
            return
        sent = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _check(self, endpoint: str, body: dict[str, Any]) -> tuple[int, str, str] | None:
        from openaml.services.rai_gate import RaiGateService

        try:
            RaiGateService(self.ctx).check_mlflow_write(endpoint, body)
        except ConflictError as e:
            return 409, "RESOURCE_CONFLICT", e.message
        except OpenAMLError as e:
            return 400, "INVALID_PARAMETER_VALUE", e.message
        return None


async def _answer(send: Any, status: int, code: str, text: str) -> None:
    """An error as MLflow's server answers one (``{"error_code", "message"}``)."""
    payload = json.dumps({"error_code": code, "message": text}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


async def _run(fn: Any) -> Any:
    import anyio

    return await anyio.to_thread.run_sync(fn)
