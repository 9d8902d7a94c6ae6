"""Online endpoints and deployments (spec section 10), named as ``azure.ai.ml.entities``.

``ManagedOnlineEndpoint`` routes scoring requests to its ``ManagedOnlineDeployment``s by
``traffic`` (percent per deployment, summing to 100 or 0) and copies a share of them to
``mirror_traffic`` deployments. openaml extension: ``micro_batching`` on a deployment.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from openaml.entities._assets import Model
from openaml.entities._base import Entity, check_env_var_names
from openaml.entities._environment import Environment

__all__ = [
    "CodeConfiguration",
    "DeploymentState",
    "EndpointAuthKeys",
    "EndpointAuthToken",
    "ManagedOnlineDeployment",
    "ManagedOnlineEndpoint",
    "MicroBatching",
    "OnlineRequestSettings",
    "ProbeSettings",
    "check_schema",
    "check_traffic",
]

_NAME = r"^[A-Za-z][A-Za-z0-9\-]{1,31}$"
_DEP_NAME = r"^[A-Za-z0-9][A-Za-z0-9\-]{0,31}$"


class DeploymentState:
    """Provisioning states of endpoints and deployments (Azure ML's names)."""

    CREATING = "Creating"
    UPDATING = "Updating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DELETING = "Deleting"
    TERMINAL = frozenset({SUCCEEDED, FAILED})


def _percentages(v: Any) -> Any:
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if isinstance(x, bool) or not isinstance(x, (int, str)) or not str(x).strip().isdigit():
                raise ValueError(f"traffic for {k!r} must be an integer percentage 0-100, got {x!r}")
            out[str(k)] = int(x)
        return out
    return v


def check_traffic(traffic: dict[str, int], mirror: dict[str, int]) -> list[str]:
    """Problems with an endpoint's traffic maps (empty when valid): Azure ML's rules.

    ``traffic`` must total 100, or 0 (no live deployment); each value is 0-100. ``mirror_traffic``
    shares are at most 50 each and go to deployments without live traffic.
    """
    problems = []
    for k, v in {**traffic, **mirror}.items():
        if not 0 <= v <= 100:
            problems.append(f"traffic for {k!r} is {v}; percentages are 0-100")
    total = sum(traffic.values())
    if total not in (0, 100):
        shown = " + ".join(f"{k}={v}" for k, v in traffic.items())
        problems.append(f"traffic must total 100 (or 0 for no live deployment), got {shown} = {total}")
    for k, v in mirror.items():
        if v > 50:
            problems.append(f"mirror_traffic for {k!r} is {v}; a deployment can receive at most 50 % mirrored traffic")
        if v and traffic.get(k):
            problems.append(f"deployment {k!r} has both live ({traffic[k]} %) and mirrored ({v} %) traffic; "
                            "mirror only to a deployment with 0 % live traffic")
    return problems


# Azure ML's published YAML schemas (azuremlschemas.azureedge.net/latest/<name>.schema.json), by what they describe
_SCHEMA_KINDS = {
    "managedonlineendpoint": "online endpoint", "kubernetesonlineendpoint": "online endpoint",
    "managedonlinedeployment": "online deployment", "kubernetesonlinedeployment": "online deployment",
    "batchendpoint": "batch endpoint", "batchdeployment": "batch deployment",
    "modelbatchdeployment": "batch deployment", "pipelinecomponentbatchdeployment": "batch deployment",
    "commandjob": "job", "pipelinejob": "job", "paralleljob": "job", "sweepjob": "job", "sparkjob": "job", "automljob": "job",
    "commandcomponent": "component", "pipelinecomponent": "component", "parallelcomponent": "component",
    "environment": "environment", "data": "data asset", "model": "model", "schedule": "schedule",
    "amlcompute": "compute", "computeinstance": "compute", "workspace": "workspace",
    "azureblob": "datastore", "azurefile": "datastore", "azuredatalakegen1": "datastore",
    "azuredatalakegen2": "datastore",
}
_SCHEMA_FOR = {"online endpoint": "managedOnlineEndpoint", "online deployment": "managedOnlineDeployment",
               "batch endpoint": "batchEndpoint", "batch deployment": "modelBatchDeployment"}


def check_schema(source: str, kind: str) -> None:
    """Refuse a YAML file whose ``$schema`` is Azure ML's schema of another kind (``kind`` is
    "online endpoint", "online deployment", "batch endpoint" or "batch deployment"): ``az ml``
    validates the file against that schema, so
    a batch endpoint file never becomes an online endpoint. A ``$schema`` this table does not know is
    let through.

    Raises:
        ValidationError: naming the file, the ``$schema`` value, what it describes and the fix.
    """
    import re

    from openaml.errors import ValidationError

    # the top-level `$schema:` line only: the file is parsed once, by the (bounded) YAML loader, after this
    try:
        with open(source, encoding="utf-8") as fh:
            head = fh.read(1 << 20)
    except (OSError, UnicodeDecodeError):
        return  # the loader reports these
    m = re.search(r"""^\$schema\s*:\s*["']?([^"'#\s]+)""", head, flags=re.MULTILINE)
    if m is None:
        return
    schema = m.group(1)
    name = schema.strip().rsplit("/", 1)[-1].lower().removesuffix(".json").removesuffix(".schema")
    described = _SCHEMA_KINDS.get(name)
    if described is None or described == kind:
        return
    noun = {"batch endpoint": "batch-endpoint", "batch deployment": "batch-deployment", "job": "job",
            "data asset": "data"}.get(described, described.replace(" ", "-"))
    raise ValidationError(
        f"{source}: field '$schema': {schema!r} is the schema of {_a(described)}, not of {_a(kind)}; create it with "
        f"`openaml {noun} create --file {source}`, or use $schema: https://azuremlschemas.azureedge.net/latest/"
        f"{_SCHEMA_FOR[kind]}.schema.json", details={"file": source, "field": "$schema", "value": schema})


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


class ManagedOnlineEndpoint(Entity):
    """An online endpoint: ``scoring_uri`` is ``<server>/endpoints/<name>/score``.

    ``auth_mode``: ``key`` (primary/secondary keys) or ``aml_token`` (expiring tokens from
    ``get-credentials``); ``aad_token`` is accepted and behaves as ``aml_token``.
    """

    _server_fields = ("scoring_uri", "openapi_uri", "swagger_uri", "provisioning_state", "id", "creation_context")

    name: str = Field(pattern=_NAME)
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    auth_mode: Literal["key", "aml_token", "aad_token", "Key", "AMLToken", "AADToken"] = "key"
    traffic: dict[str, int] = Field(default_factory=dict)
    mirror_traffic: dict[str, int] = Field(default_factory=dict)
    identity: dict[str, Any] | None = None
    public_network_access: Literal["enabled", "disabled"] | None = None
    kind: str | None = None
    location: str | None = None
    # server-populated
    scoring_uri: str | None = None
    openapi_uri: str | None = None
    swagger_uri: str | None = None
    provisioning_state: str | None = None
    id: str | None = None
    creation_context: dict[str, Any] | None = None

    @field_validator("traffic", "mirror_traffic", mode="before")
    @classmethod
    def _norm_traffic(cls, v: Any) -> Any:
        return _percentages(v)

    @field_validator("auth_mode", mode="after")
    @classmethod
    def _auth(cls, v: str) -> str:
        return {"Key": "key", "AMLToken": "aml_token", "AADToken": "aad_token"}.get(v, v)

    @field_validator("tags", "properties", mode="before")
    @classmethod
    def _str_map(cls, v: Any, info: Any) -> Any:
        if info.field_name == "environment_variables":
            check_env_var_names(v)
        return {str(k): "" if x is None else str(x) for k, x in v.items()} if isinstance(v, dict) else v


class CodeConfiguration(Entity):
    """``code`` (folder, uploaded by the SDK/CLI) and ``scoring_script`` (path inside it)."""

    code: str | None = None
    scoring_script: str | None = None


class OnlineRequestSettings(Entity):
    """Per-instance request limits (azure-ai-ml defaults).

    ``max_concurrent_requests_per_instance`` requests run at once per worker; more wait up to
    ``max_queue_wait_ms`` and then get 429; a request running longer than ``request_timeout_ms``
    gets 408. ``max_request_size_bytes`` (openaml extension) answers 413 above it.
    """

    request_timeout_ms: int = Field(default=5000, ge=1, le=180000)
    max_concurrent_requests_per_instance: int = Field(default=1, ge=1, le=1000)
    max_queue_wait_ms: int = Field(default=500, ge=0, le=600000)
    max_request_size_bytes: int = Field(default=100 * 1024 * 1024, ge=1)


class ProbeSettings(Entity):
    """Liveness/readiness probe settings, seconds (azure-ai-ml defaults).

    A worker's ``init()`` is awaited up to ``initial_delay + period * failure_threshold``.
    """

    initial_delay: int = Field(default=10, ge=0)
    period: int = Field(default=10, ge=1)
    timeout: int = Field(default=2, ge=1)
    success_threshold: int = Field(default=1, ge=1)
    failure_threshold: int = Field(default=30, ge=1)


class MicroBatching(Entity):
    """openaml extension: score concurrent requests together in one predict call.

    On by default for MLflow deployments; a score.py opts in by defining ``batch_run(list)``.
    A batch closes at ``max_batch_size`` rows or after ``max_wait_ms`` (whichever first).
    """

    enabled: bool = True
    max_batch_size: int = Field(default=64, ge=1)
    max_wait_ms: float = Field(default=2.0, ge=0)


class ManagedOnlineDeployment(Entity):
    """A deployment: ``instance_count`` worker processes serving one model.

    ``model`` is an ``azureml:<name>:<version>`` reference or an inline ``Model`` (local path
    uploaded by the SDK/CLI). An MLflow model needs neither ``code_configuration`` nor
    ``environment`` (no-code deployment). ``instance_type`` is accepted and only recorded.
    """

    _server_fields = ("provisioning_state", "id", "creation_context", "error", "scoring_uri")

    name: str = Field(pattern=_DEP_NAME)
    endpoint_name: str | None = None
    type: Literal["managed", "kubernetes"] | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    model: str | Model | None = None
    code_configuration: CodeConfiguration | None = None
    environment: str | Environment | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    app_insights_enabled: bool | None = None
    instance_type: str | None = None
    instance_count: int = Field(default=1, ge=1, le=64)
    scale_settings: dict[str, Any] | None = None
    request_settings: OnlineRequestSettings | None = None
    liveness_probe: ProbeSettings | None = None
    readiness_probe: ProbeSettings | None = None
    model_mount_path: str | None = None
    data_collector: dict[str, Any] | None = None
    egress_public_network_access: str | None = None
    private_network_connection: bool | None = None
    resources: dict[str, Any] | None = None
    micro_batching: MicroBatching | None = None
    # server-populated
    provisioning_state: str | None = None
    error: str | None = None
    id: str | None = None
    creation_context: dict[str, Any] | None = None
    scoring_uri: str | None = None

    @field_validator("environment_variables", "tags", "properties", mode="before")
    @classmethod
    def _str_map(cls, v: Any, info: Any) -> Any:
        if info.field_name == "environment_variables":
            check_env_var_names(v)
        return {str(k): "" if x is None else str(x) for k, x in v.items()} if isinstance(v, dict) else v


class EndpointAuthKeys(Entity):
    """``get_keys`` of a ``key`` endpoint."""

    primary_key: str
    secondary_key: str


class EndpointAuthToken(Entity):
    """``get_keys`` of an ``aml_token`` endpoint: ``expiry_time_utc`` in seconds since the epoch."""

    access_token: str
    expiry_time_utc: float
    refresh_after_time_utc: float
    token_type: str = "Bearer"
