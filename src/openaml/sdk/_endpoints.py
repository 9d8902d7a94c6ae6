"""``ml_client.online_endpoints`` and ``ml_client.online_deployments`` (azure-ai-ml v2 names)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from openaml.entities._assets import Model
from openaml.entities._endpoint import (
    DeploymentState,
    EndpointAuthKeys,
    EndpointAuthToken,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
)
from openaml.errors import OpenAMLError, ValidationError
from openaml.sdk._client import Poller as _Done  # what begin_* returns, as elsewhere in the SDK

__all__ = ["DeploymentPoller", "EndpointInvokeError", "OnlineDeploymentOperations", "OnlineEndpointOperations"]


def upload_deployment_files(transport: Any, dep: Any, data: dict[str, Any], *, is_local: Any) -> bool:
    """Upload a deployment's local model (``model.path``) and code folder (``code_configuration.code``)
    and resolve its environment into ``data`` (the request body), online and batch deployments alike;
    ``is_local(path)`` says whether a model path is local. Returns whether the code was uploaded.

    Raises:
        ValidationError: a local model path or code folder that does not exist, naming the field.
    """
    from openaml.sdk._environments import environment_payload
    from openaml.sdk._upload import upload_code, upload_path

    base = dep.base_path
    model = dep.model
    if isinstance(model, Model) and model.name and model.version and (
            model.id or str(model.path or "").startswith(("mlflow-artifacts:", "runs:/", "models:/"))):
        # a registered model (ml_client.models.get / create_or_update): deployed by reference, as Azure does
        data["model"] = f"azureml:{model.name}:{model.version}"
        model = None
    if isinstance(model, Model) and model.path and is_local(str(model.path)):
        local = Path(str(model.path)).expanduser()
        local = local if local.is_absolute() else base / local
        if not local.exists():
            raise ValidationError(f"deployment {dep.name!r}: field 'model.path': {model.path!r} does not exist "
                                  f"(resolved to {local})", details={"field": "model.path"})
        data["model"] = {**data.get("model", {}), "path": upload_path(transport, local, target="datastore")["uri"]}
    cc = dep.code_configuration
    uploaded = False
    if cc is not None and cc.code and not str(cc.code).startswith(("azureml:", "openaml-code:")):
        local = Path(cc.code).expanduser()
        local = local if local.is_absolute() else base / local
        if not local.is_dir():
            raise ValidationError(f"deployment {dep.name!r}: field 'code_configuration.code': folder {cc.code!r} "
                                  f"does not exist (resolved to {local})", details={"field": "code_configuration.code"})
        data["code_configuration"] = {**data["code_configuration"],
                                      "code": "openaml-code:" + upload_code(transport, local)}
        uploaded = True
    if dep.environment is not None:
        data["environment"] = environment_payload(transport, dep.environment, base)
    return uploaded


class EndpointInvokeError(OpenAMLError):
    """``invoke`` got an error status; ``status_code`` and the worker's message are kept."""

    code = "endpoint_invoke_failed"

    def __init__(self, message: str, *, status_code: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.status_code = status_code
        self.http_status = status_code


def _fields(entity: Any) -> dict[str, Any]:
    """The fields the user set (so an update changes only those), server fields left out."""
    data = entity.model_dump(mode="json", exclude_unset=True, exclude_none=True, by_alias=True)
    for k in type(entity)._server_fields:
        data.pop(k, None)
    data["name"] = entity.name
    return data


def _endpoint(d: dict[str, Any]) -> ManagedOnlineEndpoint:
    return ManagedOnlineEndpoint.model_validate({k: v for k, v in d.items() if k in ManagedOnlineEndpoint.model_fields})


def _deployment(d: dict[str, Any]) -> ManagedOnlineDeployment:
    return ManagedOnlineDeployment.model_validate(
        {k: v for k, v in d.items() if k in ManagedOnlineDeployment.model_fields})


class DeploymentPoller:
    """What ``online_deployments.begin_create_or_update`` returns: ``result()`` waits for Succeeded.

    Raises (from ``result``): OpenAMLError with the deployment's error and the tail of its logs
    when it ends Failed; TimeoutError after ``timeout`` seconds.
    """

    def __init__(self, ops: OnlineDeploymentOperations, name: str, endpoint_name: str) -> None:
        self._ops, self._name, self._endpoint = ops, name, endpoint_name
        self._last: ManagedOnlineDeployment | None = None

    def status(self) -> str:
        self._last = self._ops.get(self._name, self._endpoint)
        return str(self._last.provisioning_state)

    def done(self) -> bool:
        return self.status() in DeploymentState.TERMINAL

    def wait(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.05
        while not self.done():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"deployment {self._name!r} still {self._last and self._last.provisioning_state} "
                                   f"after {timeout} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def result(self, timeout: float | None = None) -> ManagedOnlineDeployment:
        self.wait(timeout)
        dep = self._last
        assert dep is not None
        if dep.provisioning_state == DeploymentState.FAILED:
            logs = self._ops.get_logs(self._name, self._endpoint, lines=30)
            raise OpenAMLError(f"deployment {self._name!r} of endpoint {self._endpoint!r} failed: {dep.error}\n"
                               f"--- last lines of its logs ---\n{logs}",
                               details={"name": self._name, "endpoint_name": self._endpoint})
        return dep


class OnlineEndpointOperations:
    """Online endpoints, as ``azure.ai.ml.operations.OnlineEndpointOperations``."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._t = client._transport
        self._http: httpx.Client | None = None

    def begin_create_or_update(self, endpoint: ManagedOnlineEndpoint, **kwargs: Any) -> _Done:
        """Create the endpoint, or update the fields set on ``endpoint`` (traffic, mirror_traffic, tags...).

        Raises:
            ValidationError: traffic not totalling 100 or 0 (sums shown), unknown deployments, mirror > 50.
        """
        return _Done(_endpoint(self._t.put(f"/online-endpoints/{endpoint.name}", json=_fields(endpoint))))

    def get(self, name: str, **kwargs: Any) -> ManagedOnlineEndpoint:
        return _endpoint(self._t.get(f"/online-endpoints/{name}"))

    def list(self, **kwargs: Any) -> list[ManagedOnlineEndpoint]:
        return [_endpoint(d) for d in self._t.get("/online-endpoints")]

    def begin_delete(self, name: str, **kwargs: Any) -> _Done:
        self._t.delete(f"/online-endpoints/{name}")
        return _Done(None)

    def get_keys(self, name: str, **kwargs: Any) -> EndpointAuthKeys | EndpointAuthToken:
        d = self._t.post(f"/online-endpoints/{name}/keys")
        return EndpointAuthKeys(**d) if "primary_key" in d else EndpointAuthToken(**d)

    def regenerate_keys(self, name: str, *, key_type: str = "primary", **kwargs: Any) -> _Done:
        d = self._t.post(f"/online-endpoints/{name}/regenerate-keys", params={"key_type": key_type})
        return _Done(EndpointAuthKeys(**d))

    begin_regenerate_keys = regenerate_keys

    def invoke(self, endpoint_name: str, request_file: str | Path | None = None, deployment_name: str | None = None,
               *, request_body: Any = None, **kwargs: Any) -> str:
        """POST ``request_file`` (or ``request_body``) to the scoring URI with the endpoint's key or
        token; ``deployment_name`` targets one deployment. Returns the response text.

        Raises:
            EndpointInvokeError: an error status (its ``status_code`` and message).
        """
        if request_file is not None:
            body = Path(request_file).expanduser().read_bytes()
        elif request_body is not None:
            body = request_body if isinstance(request_body, bytes) else json.dumps(request_body).encode()
        else:
            raise ValidationError("invoke needs request_file=... (a JSON file)", details={"field": "request_file"})
        ep = self.get(endpoint_name)
        creds = self.get_keys(endpoint_name)
        key = creds.primary_key if isinstance(creds, EndpointAuthKeys) else creds.access_token
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        if deployment_name:
            headers["azureml-model-deployment"] = deployment_name
        if self._http is None:
            self._http = httpx.Client(timeout=300, trust_env=False)
        r = self._http.post(str(ep.scoring_uri), content=body, headers=headers)
        if r.status_code >= 400:
            try:
                msg = r.json().get("message", r.text)
            except ValueError:
                msg = r.text
            raise EndpointInvokeError(f"endpoint {endpoint_name!r} answered {r.status_code}: {msg}",
                                      status_code=r.status_code)
        return r.text


class OnlineDeploymentOperations:
    """Online deployments, as ``azure.ai.ml.operations.OnlineDeploymentOperations``."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._t = client._transport

    def _payload(self, dep: ManagedOnlineDeployment) -> dict[str, Any]:
        data = _fields(dep)
        upload_deployment_files(self._t, dep, data, is_local=lambda p: "://" not in p and not p.startswith(
            ("azureml:", "openaml-code:")))
        return data

    def begin_create_or_update(self, deployment: ManagedOnlineDeployment, *, local: bool = False,
                               **kwargs: Any) -> DeploymentPoller:
        """Upload local model/code, create or update; ``result()`` waits for Succeeded (raises on Failed)."""
        if not deployment.endpoint_name:
            raise ValidationError(f"deployment {deployment.name!r}: field 'endpoint_name' is required",
                                  details={"field": "endpoint_name"})
        self._t.put(f"/online-endpoints/{deployment.endpoint_name}/deployments/{deployment.name}",
                    json=self._payload(deployment))
        return DeploymentPoller(self, deployment.name, deployment.endpoint_name)

    def get(self, name: str, endpoint_name: str, **kwargs: Any) -> ManagedOnlineDeployment:
        return _deployment(self._t.get(f"/online-endpoints/{endpoint_name}/deployments/{name}"))

    def list(self, endpoint_name: str, **kwargs: Any) -> list[ManagedOnlineDeployment]:
        return [_deployment(d) for d in self._t.get(f"/online-endpoints/{endpoint_name}/deployments")]

    def get_logs(self, name: str, endpoint_name: str, lines: int | None = None, **kwargs: Any) -> str:
        out = self._t.get(f"/online-endpoints/{endpoint_name}/deployments/{name}/logs", params={"lines": lines})
        return out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out or "")

    def begin_delete(self, name: str, endpoint_name: str, **kwargs: Any) -> _Done:
        """Raises ConflictError while the endpoint still sends the deployment traffic."""
        self._t.delete(f"/online-endpoints/{endpoint_name}/deployments/{name}")
        return _Done(None)
