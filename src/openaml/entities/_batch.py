"""Batch endpoints and deployments (spec section 11), named as ``azure.ai.ml.entities``.

A ``BatchEndpoint`` is a name, an auth mode and ``defaults.deployment_name``; invoking it runs a
batch scoring job (a ``type: parallel`` job built from the deployment, output ``score``).

Deployments come in the three shapes Azure ML accepts (spec 11.2):

- ``type: model`` with a ``settings:`` block (``ModelBatchDeployment``, the current CLI shape);
- the flat shape the SDK's ``BatchDeployment(...)`` produces, the settings at top level;
- ``type: pipeline`` (``PipelineComponentBatchDeployment``: a pipeline ``component`` or a ``job_definition``).

The server stores every model deployment flat (:func:`flatten_deployment`); ``type: model`` is kept so
that ``show`` says which shape it is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from openaml.constants import BatchDeploymentOutputAction
from openaml.entities._assets import Model
from openaml.entities._base import Entity, load_entity, stringify_values, strip_azureml_prefix
from openaml.entities._endpoint import CodeConfiguration
from openaml.entities._environment import Environment

__all__ = [
    "BatchDeployment",
    "BatchDeploymentOutputAction",
    "BatchDeploymentSettings",
    "BatchEndpoint",
    "BatchEndpointDefaults",
    "BatchRetrySettings",
    "ModelBatchDeployment",
    "ModelBatchDeploymentSettings",
    "PipelineComponentBatchDeployment",
    "flatten_deployment",
    "load_batch_deployment",
    "load_batch_endpoint",
    "parse_mini_batch_size",
]

# Azure ML's rule for endpoint and deployment names (azure-ai-ml ``validate_endpoint_or_deployment_name``):
# 3-32 characters, a letter first, then letters, digits or hyphens, a letter or digit last
_NAME_RE = re.compile(r"^[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?$")


def name_problem(name: Any, what: str) -> str | None:
    """Why ``name`` breaks Azure ML's endpoint/deployment name rule (``what``: "batch endpoint" or
    "batch deployment"), or None."""
    text = str(name)
    if not 3 <= len(text) <= 32:
        return (f"{what} name {text!r} is {len(text)} characters long; it must be 3 to 32 characters (a letter "
                "first, then letters, digits or hyphens, not ending with a hyphen)")
    if not _NAME_RE.match(text):
        return (f"{what} name {text!r} breaks the naming rule: it must start with a letter, hold only letters, "
                "digits and hyphens, and end with a letter or digit (3 to 32 characters)")
    return None


def _check_name(value: Any, what: str) -> Any:
    if isinstance(value, str) and (problem := name_problem(value, what)):
        raise ValueError(problem)
    return value
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$", re.IGNORECASE)


LOGGING_LEVELS = ("debug", "info", "warning", "error", "critical")


def check_logging_level(value: Any) -> Any:
    """``logging_level`` as Azure ML takes it: one of :data:`LOGGING_LEVELS`, any case (None passes).

    Raises ValueError naming the value and the levels."""
    if value is None or (isinstance(value, str) and value.strip().lower() in LOGGING_LEVELS):
        return value.strip() if isinstance(value, str) else value
    raise ValueError(f"{value!r} is not a logging level; use one of {', '.join(LOGGING_LEVELS)}")


def parse_mini_batch_size(value: Any, field: str = "mini_batch_size") -> int | str:
    """A mini-batch size: a positive file count (int or digits) or a size like ``"10kb"``/``1MB``.

    Returns the int count, or the size string as given (validated). Raises ValueError naming
    ``field`` and the value: 0, negative, or not a count nor a size.
    """
    if isinstance(value, bool):
        raise ValueError(f"{field} {value!r} is not a count of files nor a size like '10kb'")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"{field} is {value}; it must be at least 1 (files per mini-batch) or a size like '10kb'")
        return value
    text = str(value).strip()
    if text.isdigit():
        return parse_mini_batch_size(int(text), field)
    m = _SIZE.match(text)
    if m is None or not m.group(2):
        raise ValueError(f"{field} {value!r} is not a count of files nor a size like '10kb' or '1MB'")
    if float(m.group(1)) <= 0:
        raise ValueError(f"{field} is {value!r}; a size must be above 0")
    return text


class BatchRetrySettings(Entity):
    """``max_retries`` tries of a failed mini-batch after the first; ``timeout`` seconds per
    mini-batch (azure-ai-ml ``BatchRetrySettings`` defaults: 3 and 30)."""

    max_retries: int = Field(default=3, ge=0)
    timeout: int = Field(default=30, ge=1)


class BatchEndpointDefaults(Entity):
    """``defaults.deployment_name``: the deployment an invoke without ``deployment_name`` runs."""

    deployment_name: str | None = None


class BatchEndpoint(Entity):
    """A batch endpoint (azure-ai-ml ``BatchEndpoint``).

    ``auth_mode`` is ``aad_token`` (Azure's only batch mode: the caller's token; here the
    workspace user's token). ``scoring_uri`` is where a REST client POSTs an invocation.
    ``defaults`` is always a :class:`BatchEndpointDefaults` (as azure-ai-ml's, on a new and on a
    fetched endpoint), so ``endpoint.defaults.deployment_name = "dep"`` sets the default; assigning
    a dict (``{"deployment_name": "dep"}``), a name or None is converted on assignment.
    """

    model_config = {**Entity.model_config, "validate_assignment": True}  # type: ignore[misc]

    _server_fields = ("scoring_uri", "openapi_uri", "provisioning_state", "id", "creation_context")

    name: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    auth_mode: Literal["aad_token", "AADToken", "key", "aml_token"] = "aad_token"
    defaults: BatchEndpointDefaults = Field(default_factory=BatchEndpointDefaults)
    identity: dict[str, Any] | None = None
    location: str | None = None
    # server-populated
    scoring_uri: str | None = None
    openapi_uri: str | None = None
    provisioning_state: str | None = None
    id: str | None = None
    creation_context: dict[str, Any] | None = None

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, v: Any) -> Any:
        return _check_name(v, "batch endpoint")

    @field_validator("defaults", mode="before")
    @classmethod
    def _defaults(cls, v: Any) -> Any:
        # azure-ai-ml's SDK accepts defaults={"deployment_name": ...} and a BatchEndpointDefaults
        if v is None:
            return BatchEndpointDefaults()
        return {"deployment_name": v} if isinstance(v, str) else v

    @field_validator("auth_mode", mode="after")
    @classmethod
    def _auth(cls, v: str) -> str:
        return "aad_token" if v == "AADToken" else v

    @field_validator("tags", "properties", mode="before")
    @classmethod
    def _str_map(cls, v: Any) -> Any:
        return stringify_values(v)


class _Resources(Entity):
    model_config = {**Entity.model_config, "extra": "allow"}  # type: ignore[misc]

    instance_count: int = Field(default=1, ge=1)
    instance_type: str | None = None
    properties: dict[str, Any] | None = None


class ModelBatchDeploymentSettings(Entity):
    """The ``settings:`` block of a ``type: model`` deployment (azure-ai-ml
    ``ModelBatchDeploymentSettings``); the defaults are Azure's."""

    max_concurrency_per_instance: int | None = Field(default=None, ge=1)
    instance_count: int | None = Field(default=None, ge=1)
    mini_batch_size: int | str | None = None
    output_action: Literal["append_row", "summary_only"] | None = None
    output_file_name: str | None = None
    retry_settings: BatchRetrySettings | None = None
    error_threshold: int | None = Field(default=None, ge=-1)
    logging_level: str | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)

    @field_validator("mini_batch_size", mode="before")
    @classmethod
    def _mbs(cls, v: Any) -> Any:
        return None if v is None else parse_mini_batch_size(v)

    @field_validator("output_action", mode="before")
    @classmethod
    def _action(cls, v: Any) -> Any:
        return _norm_action(v)

    @field_validator("logging_level", mode="before")
    @classmethod
    def _level(cls, v: Any) -> Any:
        return check_logging_level(v)

    @field_validator("environment_variables", mode="before")
    @classmethod
    def _env(cls, v: Any) -> Any:
        return stringify_values(v)


BatchDeploymentSettings = ModelBatchDeploymentSettings


def _norm_action(v: Any) -> Any:
    if isinstance(v, str):  # the SDK's enum spells them AppendRow / SummaryOnly
        return {"appendrow": "append_row", "append_row": "append_row", "summaryonly": "summary_only",
                "summary_only": "summary_only"}.get(v.replace("-", "_").lower(), v)
    return v


class BatchDeployment(Entity):
    """A model batch deployment in the flat shape (azure-ai-ml ``BatchDeployment``).

    ``model``: ``azureml:<name>:<version>`` or an inline ``Model`` (local path, registered on
    create). An MLflow model needs no ``code_configuration`` nor ``environment`` (no-code: a
    built-in driver scores it). ``compute`` must exist. ``mini_batch_size`` is files per
    mini-batch (default 10); ``retry_settings.timeout`` seconds per mini-batch.
    """

    _server_fields = ("provisioning_state", "id", "creation_context", "scoring_uri")

    name: str
    endpoint_name: str | None = None
    type: Literal["model"] | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    model: str | Model | None = None
    code_configuration: CodeConfiguration | None = None
    code_path: str | None = None  # azure-ai-ml's older keyword, same as code_configuration.code
    scoring_script: str | None = None
    environment: str | Environment | None = None
    compute: str | None = None
    resources: _Resources | None = None
    instance_count: int | None = Field(default=None, ge=1)
    max_concurrency_per_instance: int = Field(default=1, ge=1)
    mini_batch_size: int | str = 10
    output_action: Literal["append_row", "summary_only"] = "append_row"
    output_file_name: str = "predictions.csv"
    retry_settings: BatchRetrySettings = Field(default_factory=BatchRetrySettings)
    error_threshold: int = Field(default=-1, ge=-1)
    logging_level: str = "info"
    environment_variables: dict[str, str] = Field(default_factory=dict)
    # server-populated
    provisioning_state: str | None = None
    id: str | None = None
    creation_context: dict[str, Any] | None = None
    scoring_uri: str | None = None

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, v: Any) -> Any:
        return _check_name(v, "batch deployment")

    @field_validator("mini_batch_size", mode="before")
    @classmethod
    def _mbs(cls, v: Any) -> Any:
        return parse_mini_batch_size(v)

    @field_validator("output_action", mode="before")
    @classmethod
    def _action(cls, v: Any) -> Any:
        return _norm_action(v)

    @field_validator("logging_level", mode="before")
    @classmethod
    def _level(cls, v: Any) -> Any:
        return check_logging_level(v)

    @field_validator("compute", mode="before")
    @classmethod
    def _compute(cls, v: Any) -> Any:
        return strip_azureml_prefix(v)

    @field_validator("environment_variables", "tags", "properties", mode="before")
    @classmethod
    def _str_map(cls, v: Any) -> Any:
        return stringify_values(v)

    @model_validator(mode="after")
    def _code_keywords(self) -> BatchDeployment:
        if self.code_configuration is None and (self.code_path or self.scoring_script):
            self.code_configuration = CodeConfiguration(code=self.code_path, scoring_script=self.scoring_script)
        return self

    @property
    def effective_instance_count(self) -> int:
        if self.resources is not None and "instance_count" in self.resources.model_fields_set:
            return self.resources.instance_count
        return self.instance_count or (self.resources.instance_count if self.resources else 1)


class ModelBatchDeployment(BatchDeployment):
    """A ``type: model`` deployment with a ``settings:`` block (azure-ai-ml ``ModelBatchDeployment``)."""

    type: Literal["model"] | None = "model"
    settings: ModelBatchDeploymentSettings | None = None


class PipelineComponentBatchDeployment(Entity):
    """A ``type: pipeline`` deployment (azure-ai-ml ``PipelineComponentBatchDeployment``):
    invoking it runs ``component`` (a pipeline component file, object or ``azureml:`` reference)
    or the pipeline of ``job_definition`` (``azureml:<job name>``) with the invocation's inputs.
    ``settings``: ``default_compute``, ``continue_on_step_failure``, ``default_datastore``."""

    _server_fields = ("provisioning_state", "id", "creation_context", "scoring_uri")

    name: str
    endpoint_name: str | None = None
    type: Literal["pipeline"] = "pipeline"
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    component: Any = None
    job_definition: Any = None
    settings: dict[str, Any] = Field(default_factory=dict)
    # server-populated
    provisioning_state: str | None = None
    id: str | None = None
    creation_context: dict[str, Any] | None = None
    scoring_uri: str | None = None

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, v: Any) -> Any:
        return _check_name(v, "batch deployment")

    @field_validator("tags", "properties", mode="before")
    @classmethod
    def _str_map(cls, v: Any) -> Any:
        return stringify_values(v)

    @model_validator(mode="after")
    def _one_source(self) -> PipelineComponentBatchDeployment:
        if (self.component is None) == (self.job_definition is None):
            raise ValueError("a pipeline deployment needs exactly one of 'component' (a pipeline component) or "
                             "'job_definition' (azureml:<pipeline job name>)")
        return self


_SETTINGS = ("max_concurrency_per_instance", "mini_batch_size", "output_action", "output_file_name",
             "retry_settings", "error_threshold", "logging_level")


def flatten_deployment(data: dict[str, Any]) -> dict[str, Any]:
    """A model deployment dict in the flat shape: the ``settings:`` block's fields moved to the top
    (they win over top-level ones), ``settings.instance_count`` into ``resources``, environment
    variables merged. A pipeline deployment is returned unchanged."""
    if data.get("type") == "pipeline" or not isinstance(data.get("settings"), dict):
        return dict(data)
    out = {k: v for k, v in data.items() if k != "settings"}
    s = dict(data["settings"])
    for k in _SETTINGS:
        if s.get(k) is not None:
            out[k] = s[k]
    if s.get("instance_count") is not None:
        out["resources"] = {**(out.get("resources") or {}), "instance_count": s["instance_count"]}
    if s.get("environment_variables"):
        out["environment_variables"] = {**(out.get("environment_variables") or {}), **s["environment_variables"]}
    return out


def load_batch_endpoint(source: str | Path, *, params_override: list[Any] | None = None, **_: Any) -> BatchEndpoint:
    """Load a batch endpoint YAML (``az ml batch-endpoint create --file``).

    Raises ValidationError naming the file and field, and a file whose ``$schema`` is another kind's.
    """
    from openaml.entities._endpoint import check_schema

    check_schema(str(source), "batch endpoint")
    return load_entity(BatchEndpoint, source, params_override=params_override, kind="batch endpoint")


def load_batch_deployment(source: str | Path, *, params_override: list[Any] | None = None,
                          **_: Any) -> BatchDeployment | PipelineComponentBatchDeployment:
    """Load a batch deployment YAML in any of the three shapes, dispatching on ``type`` as ``az ml``
    does: ``pipeline`` -> :class:`PipelineComponentBatchDeployment`; ``model`` or none ->
    :class:`ModelBatchDeployment` (a ``settings:`` block allowed) / :class:`BatchDeployment` (flat).

    Raises ValidationError naming the file, line and field.
    """
    from openaml._yaml import load_yaml_with_lines
    from openaml.entities._endpoint import check_schema

    check_schema(str(source), "batch deployment")
    data, _lines = load_yaml_with_lines(source)
    typ = (data or {}).get("type") if isinstance(data, dict) else None
    for o in params_override or []:  # `--set type=pipeline` decides as the file would
        if isinstance(o, dict) and "type" in o:
            typ = o["type"]
    cls: type[Entity]
    if typ == "pipeline":
        cls = PipelineComponentBatchDeployment
    elif isinstance(data, dict) and "settings" in data:
        cls = ModelBatchDeployment
    else:
        cls = BatchDeployment
    return load_entity(cls, source, params_override=params_override, kind="batch deployment")  # type: ignore[return-value]
