"""``ml_client.batch_endpoints`` and ``ml_client.batch_deployments`` (azure-ai-ml v2 names).

``batch_endpoints.invoke`` uploads a local input and returns the batch scoring job (a ``parallel``
job whose output ``score`` holds the results: ``ml_client.jobs.download(name, output_name="score")``).
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

from openaml.entities._batch import (
    BatchDeployment,
    BatchEndpoint,
    ModelBatchDeployment,
    PipelineComponentBatchDeployment,
    flatten_deployment,
)
from openaml.entities._io import Input, Output
from openaml.errors import ValidationError
from openaml.sdk._client import Poller as _Done
from openaml.sdk._endpoints import upload_deployment_files

__all__ = ["BatchDeploymentOperations", "BatchEndpointOperations"]

_LOCAL_MARKERS = ("azureml:", "azureml://", "openaml-code:", "runs:/", "http://", "https://", "wasbs://",
                  "abfss://", "adl://", "s3://", "gs://", "/subscriptions/")


def _is_local(path: str) -> bool:
    return not path.startswith(_LOCAL_MARKERS)


def _fields(entity: Any) -> dict[str, Any]:
    data = entity.model_dump(mode="json", exclude_unset=True, exclude_none=True, by_alias=True)
    for k in type(entity)._server_fields:
        data.pop(k, None)
    data["name"] = entity.name
    if isinstance(entity, BatchEndpoint) and entity.defaults.deployment_name:
        # ``endpoint.defaults.deployment_name = "dep"`` on a new endpoint (the nested object's change
        # is not an outer field set)
        data["defaults"] = {"deployment_name": entity.defaults.deployment_name}
    return data


def _endpoint(d: dict[str, Any]) -> BatchEndpoint:
    return BatchEndpoint.model_validate({k: v for k, v in d.items() if k in BatchEndpoint.model_fields})


def _deployment(d: dict[str, Any]) -> BatchDeployment | PipelineComponentBatchDeployment:
    cls: Any = PipelineComponentBatchDeployment if d.get("type") == "pipeline" else BatchDeployment
    return cls.model_validate({k: v for k, v in d.items() if k in cls.model_fields})


# keywords ``invoke`` takes besides its named parameters: the older SDK's output_path (Azure's docs),
# and the deployment settings an invocation may change for its job (as --set / params_override)
_INVOKE_KEYWORDS = ("output_path", "output_file_name", "mini_batch_size", "instance_count",
                    "max_concurrency_per_instance", "output_action", "error_threshold", "logging_level",
                    "retry_settings", "environment_variables", "display_name", "tags")


def _invoke_extras(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keywords of ``invoke`` beyond its parameters, JSON-ready.

    Raises:
        TypeError: an unknown keyword (a typo, or a setting an invocation cannot change), naming it
        and the keywords ``invoke`` takes: nothing is silently dropped.
    """
    unknown = sorted(k for k in kwargs if k not in _INVOKE_KEYWORDS)
    if unknown:
        raise TypeError(f"batch_endpoints.invoke() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
                        "it takes endpoint_name, deployment_name, input, inputs, outputs, params_override, job_name, "
                        f"experiment_name and {', '.join(_INVOKE_KEYWORDS)}")
    out: dict[str, Any] = {}
    for k, v in kwargs.items():
        if v is None:
            continue
        out[k] = v.model_dump(mode="json", exclude_none=True) if hasattr(v, "model_dump") and k != "output_path" else v
    return out


class BatchEndpointOperations:
    """Batch endpoints, as ``azure.ai.ml.operations.BatchEndpointOperations``."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._t = client._transport

    def begin_create_or_update(self, endpoint: BatchEndpoint, **kwargs: Any) -> _Done:
        """Create the endpoint, or update the fields set on ``endpoint`` (description, tags, defaults).

        Raises:
            ValidationError: bad fields, ``defaults.deployment_name`` naming no deployment of it.
        """
        return _Done(_endpoint(self._t.put(f"/batch-endpoints/{endpoint.name}", json=_fields(endpoint))))

    def get(self, name: str, **kwargs: Any) -> BatchEndpoint:
        """Raises NotFoundError listing the batch endpoints."""
        return _endpoint(self._t.get(f"/batch-endpoints/{name}"))

    def list(self, **kwargs: Any) -> list[BatchEndpoint]:
        return [_endpoint(d) for d in self._t.get("/batch-endpoints")]

    def begin_delete(self, name: str, **kwargs: Any) -> _Done:
        """Delete the endpoint and its deployments (its jobs stay)."""
        self._t.delete(f"/batch-endpoints/{name}")
        return _Done(None)

    def invoke(self, endpoint_name: str, *, deployment_name: str | None = None,
               inputs: dict[str, Input] | None = None, input: Input | str | None = None,
               outputs: dict[str, Output] | None = None,
               params_override: builtins.list[dict[str, Any]] | None = None,
               job_name: str | None = None, experiment_name: str | None = None, **kwargs: Any) -> Any:
        """Start a batch scoring job; returns the job (``ml_client.jobs.stream(job.name)`` follows it).

        ``input=Input(type="uri_folder"|"uri_file"|"mltable", path=...)`` (a local path is uploaded
        first; an ``azureml://`` URI or ``azureml:<data>:<version>`` is used as is) or
        ``inputs={name: Input(...)}``; ``outputs={"score": Output(path="azureml://datastores/...")}``
        puts the results there (a ``uri_folder``, the default: the ``output_file_name`` file in it;
        ``Output(type="uri_file", path=".../my.csv")``: that file); ``output_path=`` (a path, or
        ``{"score": Input(path=...)}``) and ``output_file_name=`` are the older SDK's spellings (Azure's
        "use batch endpoints" docs) of the same; ``params_override=[{"mini_batch_size": 20},
        {"output_file_name": "x.csv"}]`` or the setting as a keyword (``mini_batch_size=20``) changes
        the deployment's settings for this job (also ``instance_count``, ``error_threshold``,
        ``max_concurrency_per_instance``, ``logging_level``, ``retry_settings``,
        ``environment_variables``, ``output_action``, ``display_name``, ``tags``).

        Raises:
            TypeError: a keyword an invocation does not take (naming it and those it takes).
            ValidationError: no input, a local path that does not exist, an empty folder, no
                deployment and no default (naming the field). NotFoundError: unknown endpoint/deployment.
        """
        from openaml.sdk._jobs import job_from_dict
        from openaml.sdk._upload import upload_path

        extra = _invoke_extras(kwargs)
        self._t.get(f"/batch-endpoints/{endpoint_name}")  # an unknown endpoint is said before any upload
        given: dict[str, Any] = {}
        if input is not None:
            inp = Input(type="uri_folder", path=input) if isinstance(input, str) else input
            given["input_data"] = inp
        for k, v in (inputs or {}).items():
            given[k] = v
        body: dict[str, Any] = {"inputs": {}, "params_override": list(params_override or [])}
        base = Path.cwd()
        for k, v in given.items():
            d = v.model_dump(mode="json", exclude_none=True) if isinstance(v, Input) else dict(v)
            path = d.get("path")
            if path and _is_local(str(path)):
                local = (base / str(path)).expanduser().resolve()
                if not local.exists():
                    raise ValidationError(f"field 'inputs.{k}.path': {path!r} does not exist (resolved to {local})",
                                          details={"field": f"inputs.{k}.path", "value": str(path)})
                typ = str(d.get("type") or "uri_folder")
                kind = "a file" if local.is_file() else "a folder"
                fix = {"uri_folder": "uri_file" if local.is_file() else None,
                       "uri_file": "uri_folder" if local.is_dir() else None,
                       "mltable": None if (local / "MLTable").is_file() else
                       ("uri_folder, or add an MLTable file to it" if local.is_dir() else "uri_file")}.get(typ)
                if fix:  # said before anything is uploaded, naming the path as given
                    raise ValidationError(f"field 'inputs.{k}.type': {path!r} is {kind}"
                                          f"{' without an MLTable file' if typ == 'mltable' and local.is_dir() else ''}"
                                          f" but the input type is {typ}; use {fix} (--input-type, Input(type=...))",
                                          details={"field": f"inputs.{k}.type", "value": typ})
                if local.is_dir() and not any(local.iterdir()):
                    raise ValidationError(f"field 'inputs.{k}.path': {path!r} is an empty folder; there is nothing "
                                          "to score", details={"field": f"inputs.{k}.path", "value": str(path)})
                d["path"] = upload_path(self._t, local, target="datastore")["uri"]
            body["inputs"][k] = d
        out_path = extra.pop("output_path", None)
        if out_path is not None:
            if isinstance(out_path, dict):
                out_path = out_path.get("score")
            path = getattr(out_path, "path", out_path)
            if (outputs or {}).get("score") is not None:
                raise ValidationError("output_path and outputs={'score': ...} both say where the results go; give one",
                                      details={"field": "output_path"})
            outputs = {**(outputs or {}), "score": Output(type="uri_folder", path=str(path))}
        if outputs:
            body["outputs"] = {k: (v.model_dump(mode="json", exclude_none=True) if isinstance(v, (Input, Output))
                                   else {"path": v} if isinstance(v, str) else dict(v))
                               for k, v in outputs.items()}
        body.update(extra)  # the deployment's settings for this job (the server checks their values)
        for k, value in (("deployment_name", deployment_name), ("job_name", job_name),
                         ("experiment_name", experiment_name)):
            if value:
                body[k] = value
        return job_from_dict(self._t.post(f"/batch-endpoints/{endpoint_name}/jobs", json=body))

    def list_jobs(self, endpoint_name: str, **kwargs: Any) -> builtins.list[Any]:
        """The endpoint's batch scoring jobs."""
        from openaml.sdk._jobs import job_from_dict

        return [job_from_dict(d) for d in self._t.get(f"/batch-endpoints/{endpoint_name}/jobs")]


class BatchDeploymentOperations:
    """Batch deployments, as ``azure.ai.ml.operations.BatchDeploymentOperations``."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._t = client._transport

    def _payload(self, dep: BatchDeployment | PipelineComponentBatchDeployment) -> dict[str, Any]:

        data = _fields(dep)
        base = dep.base_path
        if isinstance(dep, PipelineComponentBatchDeployment):
            data["type"] = "pipeline"  # a default, which exclude_unset leaves out: the server dispatches on it
            comp = dep.component
            if isinstance(comp, dict):
                raise ValidationError(f"deployment {dep.name!r}: field 'component': give a pipeline component file "
                                      "(component: ./pipeline.yml) or a registered one (azureml:<name>@latest)",
                                      details={"field": "component"})
            if comp is not None and not (isinstance(comp, str) and comp.startswith("azureml:")):
                # a component file or object: registered first, deployed by reference (as az ml does)
                from openaml import load_component

                entity = load_component(str(base / comp)) if isinstance(comp, str) else comp
                reg = self._client.components.create_or_update(entity)
                data["component"] = f"azureml:{reg.name}:{reg.version}"
            return data
        data = flatten_deployment(data)
        if upload_deployment_files(self._t, dep, data, is_local=_is_local):
            data.pop("code_path", None)
            data.pop("scoring_script", None)
        return data

    def begin_create_or_update(self, deployment: BatchDeployment | ModelBatchDeployment |
                               PipelineComponentBatchDeployment, **kwargs: Any) -> _Done:
        """Upload local model and code, validate and store the deployment; ``result()`` is it.

        Raises:
            ValidationError: naming the field (unknown compute, mini_batch_size, scoring script
                without run, ...). NotFoundError: unknown endpoint, model or environment.
        """
        if not deployment.endpoint_name:
            raise ValidationError(f"deployment {deployment.name!r}: field 'endpoint_name' is required",
                                  details={"field": "endpoint_name"})
        d = self._t.put(f"/batch-endpoints/{deployment.endpoint_name}/deployments/{deployment.name}",
                        json=self._payload(deployment))
        return _Done(_deployment(d))

    def get(self, name: str, endpoint_name: str, **kwargs: Any) -> BatchDeployment | PipelineComponentBatchDeployment:
        return _deployment(self._t.get(f"/batch-endpoints/{endpoint_name}/deployments/{name}"))

    def list(self, endpoint_name: str, **kwargs: Any) -> list[BatchDeployment | PipelineComponentBatchDeployment]:
        return [_deployment(d) for d in self._t.get(f"/batch-endpoints/{endpoint_name}/deployments")]

    def list_jobs(self, endpoint_name: str, *, name: str, **kwargs: Any) -> builtins.list[Any]:
        """The batch scoring jobs of deployment ``name`` (azure-ai-ml ``list_jobs(endpoint_name, name=)``)."""
        from openaml.sdk._jobs import job_from_dict

        return [job_from_dict(d) for d in self._t.get(f"/batch-endpoints/{endpoint_name}/jobs",
                                                      params={"deployment_name": name})]

    def begin_delete(self, name: str, endpoint_name: str, **kwargs: Any) -> _Done:
        self._t.delete(f"/batch-endpoints/{endpoint_name}/deployments/{name}")
        return _Done(None)
