"""Response schemas of the REST API, one per noun: what ``/openapi.json`` describes.

Routes declare these as ``response_model``. The services build the records (plain dicts typed by
:mod:`openaml.records`, one ``<Noun>Record`` per ``<Noun>Out`` with the same field names:
``tests/test_records.py``); a schema names and types the fields a client may rely on, and lets the rest through unchanged:
every schema allows extra fields and, when serialized, writes exactly the keys it was given, in
the order it was given them (no defaults added, nothing dropped), so the wire format the SDK
reads is the one the service produced.

Field names and meanings follow the Azure ML v2 REST resources as azure-ai-ml exposes them
(``creation_context``, ``provisioning_state``, ``scoring_uri`` ...), with openaml's additions
(``log_tail``, ``status_history``, ``build_status`` ...).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pydantic
from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

__all__ = [
    "WireModel", "CreationContext", "WorkspaceOut", "HealthOut", "DatastoreOut", "DataOut", "EnvironmentOut",
    "ComputeOut", "SweepTrialOut", "JobOut", "JobLogOut", "ComponentOut", "ModelOut", "ScheduleOut", "ScheduleTriggerOut",
    "OnlineEndpointOut", "OnlineDeploymentOut", "EndpointKeysOut", "ArchivedOut", "DeletedOut", "UserOut",
    "PrincipalOut", "RunnerSpecOut", "RunnerReplyOut", "RunnerLogOut",
    "RunnerOutputOut", "EnvironmentBuildOut", "UploadOut", "TAR_RESPONSE", "BatchEndpointOut", "BatchDeploymentOut",
]

log = logging.getLogger("openaml.server")

# OpenAPI description of a route that streams a tar archive (downloads)
TAR_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "A tar archive, streamed.",
          "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}}},
}

# a time as the service gives it: an ISO 8601 string, or a datetime (written ISO 8601, UTC as 'Z'),
# never converted from one to the other
Time = str | datetime | None


class WireModel(BaseModel):
    """A response record: typed known fields, extra fields kept, keys written as received."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    _keys: list[str] = PrivateAttr(default_factory=list)
    _raw: dict[str, Any] | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_keys(cls, data: Any, handler: Any) -> Any:
        try:
            obj = handler(data)
        except pydantic.ValidationError as exc:
            if not isinstance(data, dict):
                raise
            # a record the schema does not describe (a field's shape changed): the client still gets
            # the record as the service made it; the mismatch is logged for the schema to be fixed
            log.warning("response does not match %s, sent unchanged: %s", cls.__name__, exc.errors()[:3])
            obj = cls.model_construct(**data)
        if isinstance(data, dict):
            obj._keys = list(data)
            obj._raw = data
        return obj

    def raw(self) -> dict[str, Any]:
        """The mapping as received (a request body goes to its service unchanged: the service's own
        validation gives the precise errors)."""
        return dict(self._raw) if self._raw is not None else self.model_dump()

    # no return annotation on purpose: pydantic would take it as the serialized schema ({} for Any)
    # and /openapi.json would lose the fields
    @model_serializer(mode="wrap")
    def _as_received(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        if not isinstance(self, BaseModel):  # a nested value of a record sent unchanged (see above)
            return self
        out = handler(self)
        if not self._keys or not isinstance(out, dict):
            return out
        return {k: out[k] for k in self._keys if k in out}


class CreationContext(WireModel):
    """When (ISO 8601, UTC) and by whom a resource was created or last changed."""

    created_at: Time = None
    created_by: str | None = None
    created_by_type: str | None = None
    last_modified_at: Time = None


# ---------------------------------------------------------------------------- workspace
class WorkspaceOut(WireModel):
    """The workspace this server serves (``GET /workspace``)."""

    name: str
    id: str | None = None
    description: str | None = None
    path: str | None = None
    location: str | None = None
    resource_group: str | None = None
    mlflow_tracking_uri: str | None = None
    discovery_url: str | None = None
    studio_url: str | None = None
    created: Time = None


class HealthOut(WireModel):
    """``GET /health``: ``status`` is ``ok`` when the server answers."""

    status: str
    workspace: str | None = None
    role: str | None = None
    leader: str | None = None


# ---------------------------------------------------------------------------- assets
class DatastoreOut(WireModel):
    """A datastore: ``type`` ``local`` (a folder) or a cloud store; ``local_path`` for local ones."""

    name: str
    type: str | None = None
    description: str | None = None
    path: str | None = None
    is_default: bool | None = None
    local_path: str | None = None
    credentials: dict[str, Any] | None = None
    bucket: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    account_name: str | None = None
    container_name: str | None = None
    endpoint: str | None = None
    protocol: str | None = None
    warnings: list[str] | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None


class DataOut(WireModel):
    """A data asset version: ``type`` uri_file, uri_folder or mltable; ``path`` an ``azureml://`` URI."""

    name: str
    version: str | None = None
    type: str | None = None
    path: str | None = None
    description: str | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    id: str | None = None
    archived: bool | None = None
    creation_context: CreationContext | None = None
    warnings: list[str] | None = None


class EnvironmentStateOut(WireModel):
    """The state of an environment's cached virtualenv (in :class:`EnvironmentOut` and
    :class:`EnvironmentBuildOut`): ``spec_hash`` names it; asked vs got in ``deviations``."""

    spec_hash: str | None = None
    python: Any = None
    python_asked: str | None = None
    interpreter: str | None = None
    lock: list[str] | None = None
    deviations: list[str] | None = None
    warnings: list[str] | None = None


class EnvironmentOut(EnvironmentStateOut):
    """An environment version; ``build_status`` (``built``, ``not built``, ``building``, ``failed`` or
    ``invalid: <why>``) and ``spec_hash`` name its cached virtualenv."""

    name: str
    version: str | None = None
    description: str | None = None
    image: str | None = None
    conda_file: Any = None
    build: Any = None
    tags: dict[str, Any] | None = None
    id: str | None = None
    archived: bool | None = None
    creation_context: CreationContext | None = None
    build_status: str | None = None


class EnvironmentBuildOut(EnvironmentStateOut):
    """``environment build``: ``kind`` venv or base, ``status``, ``bin_dir`` (the virtualenv's
    scripts folder), ``build_log`` (its path) and the state of :class:`EnvironmentOut`."""

    name: str
    version: str
    kind: str
    status: str
    bin_dir: str
    build_log: str | None = None
    pip: list[str] | None = None
    build_status: str | None = None


class ComponentOut(WireModel):
    """A component version: ``type`` command or pipeline; ``inputs``/``outputs`` its ports."""

    name: str
    version: str | None = None
    type: str | None = None
    display_name: str | None = None
    description: str | None = None
    command: str | None = None
    code: str | None = None
    environment: Any = None
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    jobs: dict[str, Any] | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    is_deterministic: bool | None = None
    additional_includes: list[str] | None = None
    archived: bool | None = None
    created_at: Time = None
    id: str | None = None


class ModelOut(WireModel):
    """A model version in the workspace's MLflow registry: ``type`` custom_model or mlflow_model;
    ``path``/``source`` its artifact URI; ``job_name`` the run that logged it."""

    name: str
    version: str | None = None
    type: str | None = None
    path: str | None = None
    description: str | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    stage: str | None = None
    flavors: dict[str, Any] | None = None
    job_name: str | None = None
    archived: bool | None = None
    id: str | None = None
    creation_context: CreationContext | None = None
    source: str | None = None
    local_path: str | None = None


class ArchivedOut(WireModel):
    """Result of archive/restore: ``version`` None means every version."""

    name: str
    version: str | None = None
    archived: bool
    count: int | None = None


# ---------------------------------------------------------------------------- compute and jobs
class ComputeOut(WireModel):
    """A compute: ``max_instances`` is its number of concurrent job slots."""

    name: str
    type: str | None = None
    description: str | None = None
    size: str | None = None
    min_instances: int | None = None
    max_instances: int | None = None
    provisioning_state: str | None = None
    backend: str | None = None
    running_jobs: int | None = None
    queued_jobs: int | None = None
    address: str | None = None  # type: ray (an openaml extension): the cluster's Jobs API URL
    runtime_env: dict[str, Any] | None = None
    resources: dict[str, Any] | None = None


class StatusChange(WireModel):
    """One entry of a job's ``status_history``: the status and when (ISO 8601) it was entered."""

    status: str
    time: Time = None


class SweepTrialOut(WireModel):
    """One trial of a sweep (``JobOut.trials``, best first): ``params`` sampled, ``metric`` the primary
    metric's last value, ``duration_s`` in seconds."""

    name: str
    index: int | None = None
    status: str | None = None
    params: dict[str, Any] | None = None
    metric: int | float | None = None  # both: the value is written as the service gave it
    duration_s: int | float | None = None
    terminated: bool | None = None
    note: str | None = None
    error: str | None = None


class JobOut(WireModel):
    """A job (command, sweep or pipeline) as Azure ML's job resource, plus openaml's fields:
    ``log_tail`` (last lines), ``status_history``, ``output_uris``, ``metrics``/``params`` (one job)."""

    name: str
    type: str | None = None
    display_name: str | None = None
    description: str | None = None
    experiment_name: str | None = None
    status: str | None = None
    command: str | None = None
    code: str | None = None
    environment: Any = None
    environment_variables: dict[str, Any] | None = None
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    compute: str | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    archived: bool | None = None
    parent_job_name: str | None = None
    created_at: Time = None
    start_time: Time = None
    end_time: Time = None
    error: str | dict[str, Any] | None = None
    exit_code: int | None = None
    log_tail: list[str] | None = None
    status_history: list[StatusChange] | None = None
    studio_url: str | None = None
    id: str | None = None
    creation_context: CreationContext | None = None
    output_uris: dict[str, Any] | None = None
    services: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    resources: dict[str, Any] | None = None
    distribution: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None
    trial: Any = None
    search_space: dict[str, Any] | None = None
    objective: dict[str, Any] | None = None
    sampling_algorithm: Any = None
    early_termination: Any = None
    jobs: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None
    warnings: list[str] | None = None
    trials: list[SweepTrialOut] | None = None
    trial_counts: dict[str, int] | None = None
    best_child_run_id: str | None = None
    steps: dict[str, Any] | None = None


class JobLogOut(WireModel):
    """A chunk of a job's log: ``data`` from byte ``offset`` on; read again from the returned ``offset``
    until ``terminal``."""

    data: str
    offset: int
    status: str | None = None
    terminal: bool | None = None
    error: str | dict[str, Any] | None = None


# ---------------------------------------------------------------------------- schedules
class ScheduleOut(WireModel):
    """A job schedule: ``trigger`` (cron or recurrence), ``create_job`` (the job it submits) and the
    server's state (``next_fire_time``, ``last_fire_time``, ``fire_count``, ``missed_fires`` ...)."""

    name: str
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    trigger: dict[str, Any] | None = None
    create_job: Any = None
    id: str | None = None
    is_enabled: bool | None = None
    provisioning_state: str | None = None
    creation_context: CreationContext | None = None
    next_fire_time: Time = None
    last_fire_time: Time = None
    last_job_name: str | None = None
    last_error: str | None = None
    fire_count: int | None = None
    missed_fires: int | None = None


class ScheduleTriggerOut(WireModel):
    """``POST /schedules/{name}/trigger``: the job created."""

    job_name: str
    schedule_action_type: str | None = None


# ---------------------------------------------------------------------------- online endpoints
class OnlineEndpointOut(WireModel):
    """An online endpoint: ``traffic`` and ``mirror_traffic`` in percent per deployment."""

    name: str
    description: str | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    auth_mode: str | None = None
    traffic: dict[str, int] | None = None
    mirror_traffic: dict[str, int] | None = None
    provisioning_state: str | None = None
    scoring_uri: str | None = None
    swagger_uri: str | None = None
    openapi_uri: str | None = None
    id: str | None = None
    creation_context: CreationContext | None = None


class OnlineDeploymentOut(WireModel):
    """A deployment of an online endpoint: ``instance_count`` worker processes serving ``model``."""

    name: str
    endpoint_name: str | None = None
    description: str | None = None
    model: Any = None
    code_configuration: Any = None
    environment: Any = None
    instance_type: str | None = None
    instance_count: int | None = None
    request_settings: Any = None
    provisioning_state: str | None = None
    error: str | dict[str, Any] | None = None
    id: str | None = None
    scoring_uri: str | None = None
    creation_context: CreationContext | None = None


# ---------------------------------------------------------------------------- batch endpoints
class BatchEndpointOut(WireModel):
    """A batch endpoint: ``defaults.deployment_name``, ``scoring_uri`` (POST an invocation there)."""

    name: str
    description: str | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    auth_mode: str | None = None
    defaults: dict[str, Any] | None = None
    provisioning_state: str | None = None
    scoring_uri: str | None = None
    openapi_uri: str | None = None
    id: str | None = None
    creation_context: CreationContext | None = None


class BatchDeploymentOut(WireModel):
    """A batch deployment: the model, scoring code, compute and the settings of its scoring jobs."""

    name: str
    endpoint_name: str | None = None
    type: str | None = None
    description: str | None = None
    model: str | None = None
    code_configuration: Any = None
    environment: Any = None
    compute: str | None = None
    resources: dict[str, Any] | None = None
    max_concurrency_per_instance: int | None = None
    mini_batch_size: int | str | None = None
    output_action: str | None = None
    output_file_name: str | None = None
    retry_settings: dict[str, Any] | None = None
    error_threshold: int | None = None
    logging_level: str | None = None
    component: Any = None
    settings: dict[str, Any] | None = None
    provisioning_state: str | None = None
    id: str | None = None
    scoring_uri: str | None = None
    creation_context: CreationContext | None = None


class EndpointKeysOut(WireModel):
    """``key`` endpoints: ``primary_key``/``secondary_key``; ``aml_token`` ones: ``access_token``,
    ``expiry_time_utc`` (seconds since the epoch) and ``refresh_after_time_utc``."""

    primary_key: str | None = None
    secondary_key: str | None = None
    access_token: str | None = None
    token_type: str | None = None
    expiry_time_utc: int | float | None = None
    refresh_after_time_utc: int | float | None = None


class UserOut(WireModel):
    """A workspace user and its built-in role (Reader, AzureML Data Scientist, Contributor, Owner);
    ``token`` only in the answer to its creation (shown once; the server keeps a hash)."""

    name: str
    role: str
    created_by: str | None = None
    created_at: Time = None
    token: str | None = None


class PrincipalOut(WireModel):
    """The caller: ``kind`` owner, user or job (``job`` names the job of a job's token)."""

    name: str
    role: str
    kind: str
    job: str | None = None


class DeletedOut(WireModel):
    """Result of a delete that answers with a body."""

    name: str
    endpoint_name: str | None = None
    deleted: bool


# ---------------------------------------------------------------------------- runner reports (a job's own token)
class RunnerSpecOut(WireModel):
    """What a job's runner runs (``GET /jobs/{name}/runner/spec``): the resolved command, inputs,
    outputs and environment, the MLflow run, where artifacts and environments are, how often to
    report, and ``command_token``: the token its command gets (scope ``job``; the runner routes refuse it)."""

    job_name: str
    command: str
    run_id: str
    server_url: str
    tracking_uri: str
    workspace_name: str | None = None
    experiment_id: str | None = None
    experiment_name: str | None = None
    compute: str | None = None
    code_dir: str | None = None
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    environment: dict[str, Any] | None = None
    environment_variables: dict[str, Any] | None = None
    resources: dict[str, Any] | None = None
    distribution: dict[str, Any] | None = None
    timeout: float | None = None
    artifact_dir: str | None = None
    envs_dir: str | None = None
    hidden_files: list[str] | None = None
    read_only_dirs: list[str] | None = None
    workspace: dict[str, Any] | None = None
    heartbeat_seconds: float | None = None
    servers: list[str] | None = None  # the workspace's live servers, the leader first
    command_token: str | None = None
    warm_process: str | None = None  # "rai" | "automl": served by a warm process (services._warm_steps)


class RunnerReplyOut(WireModel):
    """The answer to a runner's state report or heartbeat: the job's ``status``, and ``cancel`` (the
    reason) when the job is to be canceled; ``heartbeat_seconds``: how often to report."""

    status: str
    cancel: str | None = None
    heartbeat_seconds: float | None = None
    servers: list[str] | None = None  # the workspace's live servers, the leader first


class RunnerOutputOut(WireModel):
    """After a declared output's upload (``PUT /jobs/{name}/runner/outputs/{output}``): where it
    ``landed`` (the datastore's local path, or its URI) and how many ``files``."""

    landed: str
    files: int


class RunnerLogOut(WireModel):
    """After a log chunk: ``offset``, the log's size on the server, where the next chunk starts."""

    offset: int


# ---------------------------------------------------------------------------- uploads
class UploadOut(WireModel):
    """``POST /uploads``: a code snapshot's ``code_id`` (its content hash), or a datastore upload's
    ``uri`` and ``is_file``; ``files`` the number of files received."""

    files: int
    code_id: str | None = None
    uri: str | None = None
    is_file: bool | None = None
