"""Jobs (spec section 2): the command job, its resources, limits and services."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from openaml.entities._base import Entity, check_env_var_names, stringify_values, strip_azureml_prefix
from openaml.entities._environment import Environment
from openaml.entities._io import Input, Output, normalize_inputs, normalize_outputs

__all__ = ["CommandJob", "JobResources", "CommandJobLimits", "JobService", "Job", "GenericJob"]


class JobResources(Entity):
    instance_count: int = Field(default=1, ge=1)
    instance_type: str | None = None
    shm_size: str | None = None
    docker_args: str | list[str] | None = None
    properties: dict[str, Any] | None = None
    locations: list[str] | None = None
    max_instance_count: int | None = None


class CommandJobLimits(Entity):
    timeout: int | None = Field(default=None, gt=0, description="seconds")


class JobService(Entity):
    type: str | None = None
    endpoint: str | None = None
    port: int | None = None
    nodes: str | None = None
    status: str | None = None
    properties: dict[str, Any] | None = None
    log_dir: str | None = None
    ssh_public_keys: str | None = None


class Job(Entity):
    """Fields every job type has."""

    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,254}$")
    display_name: str | None = None
    experiment_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    compute: str | None = None
    services: dict[str, JobService] | None = None
    identity: dict[str, Any] | None = None
    queue_settings: dict[str, Any] | None = None
    parent_job_name: str | None = None
    # server-populated
    id: str | None = None
    status: str | None = None
    creation_context: dict[str, Any] | None = None
    studio_url: str | None = None
    created_at: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    error: str | None = None
    exit_code: int | None = None
    log_tail: list[str] | None = None
    archived: bool = False
    output_uris: dict[str, str] | None = None
    status_history: list[dict[str, Any]] | None = None

    @field_validator("tags", "properties", mode="before")
    @classmethod
    def _str_values(cls, v: Any) -> Any:
        return stringify_values(v)

    @field_validator("compute", mode="before")
    @classmethod
    def _strip_prefix(cls, v: Any) -> Any:
        return strip_azureml_prefix(v)


class CommandJob(Job):
    """A command job (``type: command``; ``type`` may be omitted, as in hello-world.yml)."""

    type: Literal["command"] = "command"
    command: str
    code: str | None = None
    environment: str | Environment | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    inputs: dict[str, Input] = Field(default_factory=dict)
    outputs: dict[str, Output] = Field(default_factory=dict)
    resources: JobResources | None = None
    limits: CommandJobLimits | None = None
    distribution: dict[str, Any] | None = None

    _search_space: dict[str, Any] | None = PrivateAttr(default=None)

    def __call__(self, **kwargs: Any) -> CommandJob:
        """``job(C=Choice([...]))``: a copy with a search space (see :mod:`openaml.sweep`); inside a
        ``@dsl.pipeline`` function, a pipeline node bound to ``kwargs`` (azure-ai-ml behaviour)."""
        from openaml.entities._node import current_builder, make_node

        if current_builder() is not None:
            return make_node(self, kwargs)  # type: ignore[return-value]
        from openaml.entities._sweep import command_with_search_space

        return command_with_search_space(self, kwargs)  # type: ignore[no-any-return]

    def sweep(self, **kwargs: Any) -> Any:
        """A ``SweepJob`` over this command (azure-ai-ml ``Command.sweep``)."""
        from openaml.entities._sweep import command_to_sweep

        return command_to_sweep(self, **kwargs)

    @field_validator("inputs", mode="before")
    @classmethod
    def _inputs(cls, v: Any) -> Any:
        return normalize_inputs(v)

    @field_validator("outputs", mode="before")
    @classmethod
    def _outputs(cls, v: Any) -> Any:
        return normalize_outputs(v)

    @field_validator("distribution", mode="before")
    @classmethod
    def _distribution(cls, v: Any) -> Any:
        from openaml.entities._distribution import distribution_to_dict

        return distribution_to_dict(v)

    @field_validator("environment_variables", mode="before")
    @classmethod
    def _env_str(cls, v: Any) -> Any:
        check_env_var_names(v)
        if isinstance(v, dict):
            bad = [k for k, x in v.items() if isinstance(x, (dict, list))]
            if bad:
                raise ValueError(f"environment variable {bad[0]!r} must be a string, number or boolean")
            return {str(k): "" if x is None else (str(x).lower() if isinstance(x, bool) else str(x)) for k, x in v.items()}
        return v

    @field_validator("environment", mode="before")
    @classmethod
    def _env(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return Environment.model_validate(v)
        return v


class GenericJob(Job):
    """A job of a type this client has no entity for (a kind a server plugin adds, e.g. ``type: toy``).

    Keeps the common fields typed (name, status, display_name, experiment_name, creation_context,
    services, properties, tags...) and every other field of the wire record or YAML as it came
    (``job.raw_fields``), so that list/show/stream/cancel/download work and ``create`` passes the
    spec through to the server, which knows its kinds and validates it (azure-ai-ml has no such
    entity: its client refuses types it does not know).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, arbitrary_types_allowed=True, defer_build=True)

    type: str

    @property
    def raw_fields(self) -> dict[str, Any]:
        """The fields that are not common to every job, as the server (or the YAML) gave them."""
        return dict(self.model_extra or {})
