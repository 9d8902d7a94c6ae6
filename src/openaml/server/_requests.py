"""Request body schemas of the REST API, one per noun: what ``/openapi.json`` describes.

They name and type the fields of Azure ML's v2 YAML/REST shapes that clients send. A body is
not rejected by its schema: routes pass ``body.raw()`` (the JSON as received) to the service,
whose validation against the entities gives the precise error (file, field, value, fix); a body
the schema does not describe still reaches it (see :class:`openaml.server._schemas.WireModel`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openaml.server._schemas import WireModel

__all__ = ["JobIn", "ComponentIn", "DataIn", "EnvironmentIn", "ModelIn", "ComputeIn", "DatastoreIn",
           "ScheduleIn", "OnlineEndpointIn", "OnlineDeploymentIn", "RunnerStateIn", "RunnerLogIn", "BatchEndpointIn",
           "BatchDeploymentIn", "BatchInvokeIn"]


class _AssetIn(WireModel):
    name: str | None = None
    version: str | int | None = None
    description: str | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None


class JobIn(WireModel):
    """A job as the SDK prepares it: ``type`` command (default), sweep or pipeline; local code and
    inputs already uploaded (``openaml-code:`` / ``azureml://`` references)."""

    type: str | None = None
    name: str | None = None
    display_name: str | None = None
    description: str | None = None
    experiment_name: str | None = None
    command: str | None = None
    code: str | None = None
    environment: Any = None
    environment_variables: dict[str, Any] | None = None
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    compute: str | None = None
    resources: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None
    distribution: dict[str, Any] | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    trial: Any = None
    search_space: dict[str, Any] | None = None
    objective: dict[str, Any] | None = None
    sampling_algorithm: Any = None
    early_termination: Any = None
    jobs: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None


class ComponentIn(_AssetIn):
    """A component version: ``type`` command (default) or pipeline, its ports and command or jobs."""

    type: str | None = None
    display_name: str | None = None
    command: str | None = None
    code: str | None = None
    environment: Any = None
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    jobs: dict[str, Any] | None = None
    is_deterministic: bool | None = None


class DataIn(_AssetIn):
    """A data asset version: ``type`` uri_file, uri_folder or mltable; ``path`` a URI or upload."""

    type: str | None = None
    path: str | None = None


class EnvironmentIn(_AssetIn):
    """An environment version: ``image`` with ``conda_file``, or a ``build`` context."""

    image: str | None = None
    conda_file: Any = None
    build: Any = None
    os_type: str | None = None
    inference_config: Any = None


class ModelIn(_AssetIn):
    """A model version: ``type`` custom_model or mlflow_model; ``path`` an upload, ``runs:/`` or ``azureml://`` URI."""

    type: str | None = None
    path: str | None = None
    stage: str | None = None
    job_name: str | None = None


class ComputeIn(WireModel):
    """A compute: ``max_instances`` is its number of concurrent job slots."""

    name: str | None = None
    type: str | None = None
    description: str | None = None
    size: str | None = None
    min_instances: int | None = None
    max_instances: int | None = None
    address: str | None = None  # type: ray (an openaml extension): the cluster's Jobs API URL


class DatastoreIn(WireModel):
    """A datastore: ``type`` and where it points."""

    name: str | None = None
    type: str | None = None
    description: str | None = None
    path: str | None = None


class ScheduleIn(WireModel):
    """A job schedule: ``trigger`` (cron or recurrence) and ``create_job`` (a job or ``azureml:<job>``)."""

    name: str | None = None
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    trigger: dict[str, Any] | None = None
    create_job: Any = None


class OnlineEndpointIn(WireModel):
    """An online endpoint: ``auth_mode``, ``traffic`` and ``mirror_traffic`` (percent per deployment)."""

    name: str | None = None
    description: str | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    auth_mode: str | None = None
    traffic: dict[str, Any] | None = None
    mirror_traffic: dict[str, Any] | None = None


class OnlineDeploymentIn(WireModel):
    """A deployment: the model, its scoring code and environment, ``instance_count`` workers."""

    name: str | None = None
    endpoint_name: str | None = None
    description: str | None = None
    model: Any = None
    code_configuration: Any = None
    environment: Any = None
    environment_variables: dict[str, Any] | None = None
    instance_type: str | None = None
    instance_count: int | None = None
    request_settings: Any = None
    liveness_probe: Any = None
    readiness_probe: Any = None


class BatchEndpointIn(WireModel):
    """A batch endpoint: ``auth_mode`` and ``defaults.deployment_name``."""

    name: str | None = None
    description: str | None = None
    tags: dict[str, Any] | None = None
    auth_mode: str | None = None
    defaults: dict[str, Any] | None = None


class BatchDeploymentIn(WireModel):
    """A batch deployment in any of Azure's three shapes (``type: model`` with ``settings``, flat,
    ``type: pipeline``); local model and code already uploaded by the SDK."""

    name: str | None = None
    endpoint_name: str | None = None
    type: str | None = None
    model: Any = None
    code_configuration: Any = None
    environment: Any = None
    compute: str | None = None
    settings: dict[str, Any] | None = None
    mini_batch_size: int | str | None = None
    component: Any = None


class BatchInvokeIn(WireModel):
    """An invocation: ``inputs`` ``{name: {type, path}}``, ``outputs`` ``{score: {path}}``,
    ``deployment_name`` and overrides of the deployment's settings."""

    deployment_name: str | None = None
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    job_name: str | None = None
    experiment_name: str | None = None
    mini_batch_size: int | str | None = None
    instance_count: int | None = None
    output_file_name: str | None = None
    params_override: list[Any] | None = None


class UserIn(WireModel):
    """A user to create: ``name`` and ``role`` (a built-in role; see ``openaml.entities._user``)."""

    name: str | None = None
    role: str | None = None


# ---------------------------------------------------------------------------- runner reports (a job's own token)
class RunnerStateIn(BaseModel):
    """A runner's state (``POST /jobs/{name}/runner/state``): its phase, then its end (``terminal``)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["Preparing", "Running", "Finalizing", "Completed", "Failed", "Canceled"]
    terminal: bool = False
    exit_code: int | None = None
    error: str | None = Field(default=None, max_length=20000)
    log_tail: list[Annotated[str, Field(max_length=20000)]] | None = Field(default=None, max_length=200)
    env_warnings: list[Annotated[str, Field(max_length=20000)]] | None = Field(default=None, max_length=200)
    runner_pid: int | None = None
    user_pid: int | None = None
    user_pgid: int | None = None
    start_time: float | None = None
    end_time: float | None = None
    outputs: dict[str, str] | None = None


class RunnerLogIn(BaseModel):
    """A chunk of a runner's log (``POST /jobs/{name}/runner/logs``): ``data`` (base64) written at byte
    ``offset`` of the ``user`` (user_logs/std_log.txt) or ``system`` (system_logs/runner.log) log."""

    model_config = ConfigDict(extra="forbid")

    stream: Literal["user", "system"] = "user"
    offset: int = Field(ge=0)
    data: str = Field(max_length=2 * 1024 * 1024)
