"""Typed records: the shape of what each service returns, one ``TypedDict`` per noun.

A service builds a plain ``dict`` (no conversion, no validation: zero cost at run time) and
declares it as one of these, so mypy checks every key a service writes or a caller reads, and the
route's response schema (:mod:`openaml.server._schemas`, ``<Noun>Out``) names the same fields
(``tests/test_records.py`` fails when the two drift, and checks a real server's answers carry
every required key).

Conventions:

- ``Required[...]`` keys are in every record of that noun; the others (``total=False``) are there
  when the resource has them (a sweep's ``trials``, a pipeline's ``steps``); a required key may hold
  None (a job's ``end_time`` until it ended).
- Records built from a user's spec (a job's YAML, a data asset, an environment ...) hold that
  spec's fields too; the keys declared here are the server's and those clients rely on, the rest
  of the spec passes through unchanged (a ``TypedDict`` allows extra keys at run time).
- Times: ``datetime`` values are timezone-aware UTC (written ISO 8601 with the offset on the
  wire); ``str`` times are ISO 8601 strings in UTC; ``*_utc`` numbers are seconds since the epoch.
- Free-form values (tags, properties, a user's inputs/outputs mappings, an environment's conda
  file) stay ``dict[str, Any]``/``Any``: they are what the user wrote.

Field names and meanings follow the Azure ML v2 resources as azure-ai-ml exposes them
(``creation_context``, ``provisioning_state``, ``scoring_uri``, ``status`` values of
``azure.ai.ml.entities.Job`` ...) and MLflow's model registry for models.

This module imports nothing of openaml: entities, services and the server all may import it.
"""

# no ``from __future__ import annotations`` here: on Python 3.11 a TypedDict's string annotations
# hide ``Required[...]`` from ``__required_keys__`` (what tests/test_records.py and any runtime
# reader rely on); every annotation below is evaluated at import, which costs nothing noticeable
from datetime import datetime
from typing import Any, NotRequired, Required, TypedDict

__all__ = [
    "CreationContextRecord", "StatusChangeRecord", "JobRecord", "SweepTrialRecord", "JobLogRecord", "DataVersionRecord",
    "ArchivedRecord", "EnvironmentStateRecord", "EnvironmentRecord", "EnvironmentBuildRecord", "ComponentRecord",
    "ModelRecord", "DatastoreRecord", "ComputeRecord", "EndpointRecord", "DeploymentRecord", "EndpointKeysRecord",
    "ScheduleRecord", "ScheduleTriggerRecord", "UserRecord", "PrincipalRecord", "WorkspaceRecord",
    "HealthRecord", "UploadRecord", "RunnerSpecRecord", "RunnerReplyRecord", "RunnerLogRecord",
    "RunnerOutputRecord", "DeletedRecord", "BatchEndpointRecord", "BatchDeploymentRecord",
]


class CreationContextRecord(TypedDict, total=False):
    """Azure ML's ``creation_context``: when (ISO 8601 string, UTC) and by whom a resource was
    created or last changed (``created_by_type`` ``User``)."""

    created_at: str | None
    created_by: str
    created_by_type: str
    last_modified_at: str | None


class StatusChangeRecord(TypedDict):
    """One entry of a job's ``status_history``: the status entered and when (ISO 8601 string, UTC)."""

    status: str
    time: str


# ---------------------------------------------------------------------------- jobs
class JobRecord(TypedDict, total=False):
    """A job (command, sweep or pipeline) as ``job show`` answers it: the job's spec as submitted
    (its YAML fields: ``command``, ``inputs``, ``search_space``, ``jobs`` ... pass through) with the
    server's fields. Source: azure-ai-ml ``Job`` (``status`` one of NotStarted, Queued, Preparing,
    Running, Finalizing, CancelRequested, Completed, Failed, Canceled), plus openaml's ``log_tail``
    (the last lines of the log), ``status_history``, ``output_uris`` (output -> ``azureml://`` URI),
    ``metrics``/``params`` (the MLflow run's latest values; in ``job show`` only, not in lists).

    Times: ``created_at``, ``start_time``, ``end_time`` are UTC ``datetime`` (None until reached);
    ``creation_context.created_at`` and ``status_history[].time`` ISO 8601 strings.

    Kind fields: a sweep adds ``trials`` (best first: index, name, status, params, metric,
    duration ...), ``trial_counts`` (status -> count) and ``best_child_run_id``; a pipeline's
    ``steps`` carry each node's live ``status``, ``reused``, ``reason`` and ``duration_s`` (seconds).
    """

    name: Required[str]
    type: Required[str]
    status: Required[str]
    experiment_name: Required[str]
    compute: Required[str | None]
    display_name: Required[str]
    created_at: Required[datetime | None]
    start_time: Required[datetime | None]
    end_time: Required[datetime | None]
    error: Required[str | None]
    exit_code: Required[int | None]
    archived: Required[bool]
    log_tail: Required[list[str] | None]
    status_history: Required[list[StatusChangeRecord]]
    studio_url: Required[str]
    id: Required[str]
    creation_context: Required[CreationContextRecord]
    output_uris: Required[dict[str, str]]
    services: Required[dict[str, dict[str, str]]]
    description: str
    command: str
    code: str
    environment: Any  # a reference string or an inline environment mapping, as the user wrote it
    environment_variables: dict[str, str]
    inputs: dict[str, Any]  # free-form: the user's input mappings and literals
    outputs: dict[str, Any]
    tags: dict[str, Any]  # free-form
    properties: dict[str, Any]  # free-form
    parent_job_name: str
    resources: dict[str, Any]  # command and trial fields as the user wrote them (azure-ai-ml CommandJob)
    distribution: dict[str, Any]
    limits: dict[str, Any]  # a command's timeout, a sweep's max_total_trials ...
    trial: Any  # sweep (azure-ai-ml SweepJob): a command or a component reference
    search_space: dict[str, Any]
    objective: dict[str, Any]  # {"primary_metric", "goal"}
    sampling_algorithm: Any  # a name or a mapping
    early_termination: Any
    jobs: dict[str, Any]  # pipeline (azure-ai-ml PipelineJob): its nodes as written
    settings: dict[str, Any]
    warnings: list[str]
    metrics: dict[str, float]
    params: dict[str, str]
    trials: list["SweepTrialRecord"]
    trial_counts: dict[str, int]
    best_child_run_id: str
    steps: dict[str, dict[str, Any]]


class SweepTrialRecord(TypedDict):
    """One trial of a sweep job (in its ``trials``, best first): the child job's ``name``, ``index``
    (its place in the sampling order), ``status``, ``params`` (the sampled values), ``metric`` (the
    primary metric's last value; None if never logged), ``duration_s`` (seconds; None until it
    started), ``terminated`` (the early-termination policy stopped it), ``note`` and ``error``."""

    name: str
    index: int
    status: str
    params: dict[str, Any]
    metric: float | None
    duration_s: float | None
    terminated: bool | None
    note: str | None
    error: str | None


class JobLogRecord(TypedDict):
    """A chunk of a job's log (``user_logs/std_log.txt``): ``data`` (UTF-8 text) from a byte offset;
    ``offset`` where the next read starts (bytes); ``terminal`` once the job ended and all was read."""

    data: str
    offset: int
    status: str
    terminal: bool
    error: str | None


# ---------------------------------------------------------------------------- assets
class DataVersionRecord(TypedDict, total=False):
    """A data asset version (azure-ai-ml ``Data``): ``type`` uri_file, uri_folder or mltable,
    ``path`` an ``azureml://datastores/...`` or ``azureml://jobs/...`` URI (or a remote URL),
    ``created_at`` an ISO 8601 string (UTC)."""

    name: Required[str]
    version: Required[str]
    type: str
    path: Required[str]
    description: str
    tags: dict[str, Any]  # free-form
    properties: dict[str, Any]  # free-form
    id: Required[str]
    archived: Required[bool]
    creation_context: Required[CreationContextRecord]
    warnings: list[str]  # in the answer to its creation only: what was accepted with a caveat


class ArchivedRecord(TypedDict, total=False):
    """Result of an archive or restore: ``version`` None means every version of ``name``;
    ``count`` (data assets) how many versions changed."""

    name: Required[str]
    version: Required[str | None]
    archived: Required[bool]
    count: int


class EnvironmentStateRecord(TypedDict, total=False):
    """The state of an environment's cached virtualenv, in :class:`EnvironmentRecord` and
    :class:`EnvironmentBuildRecord`: ``spec_hash`` (its key), ``python`` (version used) and
    ``python_asked``, ``interpreter``, ``lock`` (exact versions installed, once built),
    ``deviations`` and ``warnings`` (asked vs got)."""

    spec_hash: str
    python: str | None
    python_asked: str | None
    interpreter: str
    lock: list[str]
    deviations: list[str]
    warnings: list[str]


class EnvironmentRecord(EnvironmentStateRecord, total=False):
    """An environment version (azure-ai-ml ``Environment``: ``image``, ``conda_file`` inlined,
    ``build``) with its cached virtualenv's state: ``spec_hash`` (its key), ``build_status``
    (``built``, ``not built``, ``building``, ``failed`` or ``invalid: <why>``), ``python``
    (version used) and ``python_asked``, ``interpreter``, ``lock`` (exact versions installed,
    once built), ``deviations`` and ``warnings`` (asked vs got). ``creation_context.created_at``
    is an ISO 8601 string."""

    name: Required[str]
    version: Required[str]
    description: str
    image: str
    conda_file: Any  # free-form: the user's conda file, inlined
    build: dict[str, Any]
    tags: dict[str, Any]  # free-form
    id: Required[str]
    archived: Required[bool]
    creation_context: Required[CreationContextRecord]
    build_status: Required[str]


class EnvironmentBuildRecord(EnvironmentStateRecord, total=False):
    """Result of ``environment build``: the environment's state (as :class:`EnvironmentRecord`)
    with ``kind`` (``venv`` or ``base``), ``status``, ``bin_dir`` (the virtualenv's scripts folder),
    ``build_log`` (its path; None for the base environment) and ``pip`` (the requirements installed)."""

    name: Required[str]
    version: Required[str]
    kind: Required[str]
    status: Required[str]
    bin_dir: Required[str]
    build_log: Required[str | None]
    pip: Required[list[str]]
    build_status: str


class ComponentRecord(TypedDict, total=False):
    """A component version (azure-ai-ml ``CommandComponent``/``PipelineComponent``): ``type``
    command or pipeline, ``inputs``/``outputs`` its ports, ``jobs`` a pipeline component's nodes;
    ``created_at`` an ISO 8601 string (UTC); ``id`` ``azureml:<name>:<version>``."""

    name: Required[str]
    version: Required[str]
    type: str
    display_name: str
    description: str
    command: str
    code: str
    environment: Any  # a reference string or an inline environment, as the user wrote it
    inputs: dict[str, Any]  # free-form port declarations
    outputs: dict[str, Any]
    jobs: dict[str, Any]
    tags: dict[str, Any]  # free-form
    properties: dict[str, Any]  # free-form
    is_deterministic: bool
    additional_includes: list[str]
    archived: Required[bool]
    created_at: Required[str]
    id: Required[str]


class ModelRecord(TypedDict, total=False):
    """A model version of the workspace's MLflow model registry, as azure-ai-ml ``Model``: ``type``
    custom_model or mlflow_model; ``path`` where its files are (an ``azureml://`` or
    ``mlflow-artifacts:`` URI), ``source`` MLflow's immutable source; ``job_name`` the MLflow run
    that logged it (None when registered from files); ``flavors`` of an MLflow model's ``MLmodel``;
    ``stage`` MLflow's stage tag. ``creation_context`` times are ISO 8601 strings."""

    name: Required[str]
    version: Required[str]
    type: Required[str]
    path: Required[str]
    description: Required[str | None]
    tags: Required[dict[str, str]]
    properties: Required[dict[str, str]]
    stage: Required[str | None]
    flavors: Required[dict[str, Any] | None]  # as MLflow's MLmodel file writes them
    job_name: Required[str | None]
    archived: Required[bool]
    id: Required[str]
    creation_context: Required[CreationContextRecord]
    source: Required[str]
    local_path: str  # in resolve_reference's answer (jobs, deployments): the model's local file or folder


# ---------------------------------------------------------------------------- compute and datastores
class DatastoreRecord(TypedDict, total=False):
    """A datastore without its secrets (Azure's GET omits them too): ``type`` ``local`` (a folder)
    or a cloud type; ``credentials`` only its kind and non-secret fields; ``local_path`` (absolute)
    for local ones."""

    name: Required[str]
    type: Required[str]
    description: str
    path: str
    is_default: bool
    local_path: str
    credentials: dict[str, Any]
    bucket: str
    endpoint_url: str
    region: str
    account_name: str
    container_name: str
    endpoint: str
    protocol: str
    warnings: list[str]  # the answer to a create only (e.g. it could not be checked from here)
    tags: dict[str, Any]  # free-form
    properties: dict[str, Any]  # free-form


class ComputeRecord(TypedDict, total=False):
    """A compute (azure-ai-ml ``AmlCompute``): ``max_instances`` its concurrent job slots;
    ``backend`` the compute backend that runs its jobs; ``running_jobs``/``queued_jobs`` counts."""

    name: Required[str]
    type: Required[str]
    description: str
    size: str
    min_instances: int
    max_instances: Required[int]
    provisioning_state: Required[str]
    backend: Required[str]
    running_jobs: Required[int]
    queued_jobs: Required[int]
    address: str  # type: ray (an openaml extension): the cluster's Jobs API URL
    runtime_env: dict[str, Any]  # type: ray: runtime_env defaults of its jobs
    resources: dict[str, Any]  # type: ray: what one job's runner reserves (num_cpus, num_gpus, memory, custom)
class EndpointRecord(TypedDict, total=False):
    """An online endpoint (azure-ai-ml ``ManagedOnlineEndpoint``): ``traffic`` and
    ``mirror_traffic`` in percent per deployment; ``scoring_uri`` where to POST requests;
    ``creation_context`` times ISO 8601 strings."""

    name: Required[str]
    description: str
    tags: dict[str, Any]  # free-form
    properties: dict[str, Any]  # free-form
    auth_mode: str
    traffic: dict[str, int]
    mirror_traffic: dict[str, int]
    provisioning_state: Required[str]
    scoring_uri: Required[str]
    swagger_uri: Required[str]
    openapi_uri: Required[str]
    id: Required[str]
    creation_context: Required[CreationContextRecord]


class DeploymentRecord(TypedDict, total=False):
    """A deployment of an online endpoint (azure-ai-ml ``ManagedOnlineDeployment``):
    ``instance_count`` worker processes serving ``model``; ``provisioning_state`` Creating,
    Updating, Succeeded, Failed or Deleting, with ``error`` when it failed."""

    name: Required[str]
    endpoint_name: Required[str]
    description: str
    model: Any  # a reference string or an inline model, as the user wrote it
    code_configuration: dict[str, Any]
    environment: Any
    instance_type: str
    instance_count: int
    request_settings: dict[str, Any]
    provisioning_state: Required[str]
    error: Required[str | None]
    id: Required[str]
    scoring_uri: Required[str]
    creation_context: Required[CreationContextRecord]


class BatchEndpointRecord(TypedDict, total=False):
    """A batch endpoint (azure-ai-ml ``BatchEndpoint``): ``defaults.deployment_name`` the deployment
    an invocation without one runs; ``scoring_uri`` where a REST client POSTs an invocation (with the
    workspace token, Azure's ``aad_token``); ``creation_context`` times ISO 8601 strings."""

    name: Required[str]
    description: str
    tags: dict[str, Any]  # free-form
    properties: dict[str, Any]  # free-form
    auth_mode: str
    defaults: dict[str, Any]
    provisioning_state: Required[str]
    scoring_uri: Required[str]
    openapi_uri: Required[str]
    id: Required[str]
    creation_context: Required[CreationContextRecord]


class BatchDeploymentRecord(TypedDict, total=False):
    """A batch deployment (azure-ai-ml ``BatchDeployment``/``ModelBatchDeployment``, stored flat, or
    ``PipelineComponentBatchDeployment`` with ``type: pipeline``): the settings an invocation's
    scoring job runs with; ``model`` the registered model's ``azureml:<name>:<version>``."""

    name: Required[str]
    endpoint_name: Required[str]
    type: str
    description: str
    model: str
    code_configuration: dict[str, Any]
    environment: Any
    compute: str
    resources: dict[str, Any]
    max_concurrency_per_instance: int
    mini_batch_size: int | str
    output_action: str
    output_file_name: str
    retry_settings: dict[str, Any]
    error_threshold: int
    logging_level: str
    component: Any
    settings: dict[str, Any]
    provisioning_state: Required[str]
    id: Required[str]
    scoring_uri: Required[str]
    creation_context: Required[CreationContextRecord]


class EndpointKeysRecord(TypedDict, total=False):
    """An endpoint's credentials: ``key`` auth: ``primary_key``/``secondary_key``; ``aml_token``
    auth: ``access_token``, ``token_type`` (Bearer), ``expiry_time_utc`` and
    ``refresh_after_time_utc`` (seconds since the epoch). Source: azure-ai-ml ``EndpointAuthKeys``
    and ``EndpointAuthToken``."""

    primary_key: str
    secondary_key: str
    access_token: str
    token_type: str
    expiry_time_utc: float
    refresh_after_time_utc: float


class DeletedRecord(TypedDict, total=False):
    """Result of a delete that answers with a body."""

    name: Required[str]
    endpoint_name: str
    deleted: Required[bool]


# ---------------------------------------------------------------------------- schedules
class ScheduleRecord(TypedDict, total=False):
    """A job schedule (azure-ai-ml ``JobSchedule``): ``trigger`` (cron or recurrence, as written),
    ``create_job`` (the job it submits: a reference or an inline job), ``is_enabled``, and the
    server's state: ``next_fire_time`` (None when disabled), ``last_fire_time`` (ISO 8601 strings,
    UTC), ``last_job_name``, ``last_error``, ``fire_count`` and ``missed_fires`` (fires skipped while
    the server was down)."""

    name: Required[str]
    display_name: str
    description: str
    tags: dict[str, Any]  # free-form
    properties: dict[str, Any]  # free-form
    trigger: dict[str, Any]
    create_job: Any  # a job reference or an inline job spec, as the user wrote it
    id: Required[str]
    is_enabled: Required[bool]
    provisioning_state: Required[str]
    creation_context: Required[CreationContextRecord]
    next_fire_time: Required[str | None]
    last_fire_time: Required[str | None]
    last_job_name: Required[str | None]
    last_error: Required[str | None]
    fire_count: Required[int]
    missed_fires: Required[int]


class ScheduleTriggerRecord(TypedDict):
    """``schedules.trigger``: the job created, and the action (``CreateJob``)."""

    job_name: str
    schedule_action_type: str


# ---------------------------------------------------------------------------- users and workspace
class UserRecord(TypedDict, total=False):
    """A workspace user and its built-in role (Reader, AzureML Data Scientist, Contributor, Owner);
    ``created_at`` an ISO 8601 string (UTC); ``token`` only in the answer to its creation (shown
    once; the server keeps a hash)."""

    name: Required[str]
    role: Required[str]
    created_by: Required[str | None]
    created_at: Required[str]
    token: str


class PrincipalRecord(TypedDict, total=False):
    """The caller: ``kind`` owner, user or job (``job`` names the job of a job's token)."""

    name: Required[str]
    role: Required[str]
    kind: Required[str]
    job: str


class WorkspaceRecord(TypedDict):
    """The workspace a server serves (azure-ai-ml ``Workspace``): ``path`` its folder,
    ``created`` an ISO 8601 string (None for a workspace made before it was recorded)."""

    name: str
    id: str | None
    description: str | None
    path: str
    location: str
    resource_group: str
    mlflow_tracking_uri: str
    discovery_url: str
    studio_url: str
    created: str | None


class HealthRecord(TypedDict):
    """``GET /health``: ``status`` ``ok`` when the server answers; for an authenticated caller only,
    ``workspace`` (its name), ``role`` (``leader``: this server runs the scheduler and the
    deployments; ``standby``: another server of the PostgreSQL workspace does) and ``leader`` (the
    URL of the server that does; "" while none does)."""

    status: str
    workspace: NotRequired[str]
    role: NotRequired[str]
    leader: NotRequired[str]


class UploadRecord(TypedDict, total=False):
    """After an upload: a code snapshot's ``code_id`` (its content hash), or a datastore upload's
    ``uri`` (``azureml://datastores/<ds>/paths/LocalUpload/<hash>/<name>``) and ``is_file``;
    ``files`` the number of files received."""

    code_id: str
    uri: str
    is_file: bool
    files: Required[int]


# ---------------------------------------------------------------------------- runner reports
class RunnerSpecRecord(TypedDict):
    """What a job's runner runs: the resolved command, inputs, outputs and environment, the MLflow
    run (``run_id`` is the job's name), where artifacts and environments are, ``timeout`` and
    ``heartbeat_seconds`` (seconds), ``command_token`` (the token its command gets: scope ``job``)."""

    job_name: str
    workspace_name: str
    server_url: str
    tracking_uri: str
    run_id: str
    experiment_id: str | None
    experiment_name: str
    compute: str
    command: str
    code_dir: str | None
    inputs: dict[str, Any]  # input name -> the runner's resolved input record
    outputs: dict[str, Any]
    environment: dict[str, Any]  # the resolved environment (an EnvSpec as a mapping)
    environment_variables: dict[str, str]
    resources: dict[str, Any]
    distribution: dict[str, Any] | None
    timeout: float | None
    artifact_dir: str
    envs_dir: str
    hidden_files: list[str]
    read_only_dirs: list[str]
    workspace: dict[str, str | None]
    heartbeat_seconds: float
    servers: list[str]  # the workspace's live servers, the leader first (where to report if this one stops)
    command_token: str
    warm_process: str | None  # "rai" | "automl": a step of openaml's own code a warm process serves (services._warm_steps)


class RunnerReplyRecord(TypedDict):
    """The answer to a runner's report or heartbeat: the job's ``status``, ``cancel`` (the reason)
    when the job is to be canceled, ``heartbeat_seconds``: how often to report (seconds)."""

    status: str
    cancel: str | None
    heartbeat_seconds: float
    servers: list[str]  # the workspace's live servers, the leader first (where to report if this one stops)


class RunnerLogRecord(TypedDict):
    """After a log chunk: ``offset``, the log's size in bytes, where the next chunk starts."""

    offset: int


class RunnerOutputRecord(TypedDict):
    """After a declared output's upload: where it ``landed`` (the datastore's local path, or its
    URI) and how many ``files``."""

    landed: str
    files: int
