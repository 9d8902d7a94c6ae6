"""Command components (spec 5.1, 5.2): reusable, versioned command definitions with typed ports.

A component is callable like a function inside ``@dsl.pipeline``: ``prep(raw=data)`` returns a
pipeline node whose ``.outputs.<name>`` can feed other nodes (azure-ai-ml behaviour).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from openaml.entities._base import Entity, stringify_values
from openaml.entities._environment import Environment
from openaml.entities._io import Input, Output, normalize_inputs, normalize_outputs
from openaml.errors import ValidationError

__all__ = ["CommandComponent", "Component", "PipelineComponent", "COMPONENT_NAME_PATTERN", "as_component",
           "command_job_component"]

# azure-ai-ml: lowercase letters, digits and underscores, starting with a letter (spec 1.4)
COMPONENT_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,254}$"


def component_name_problem(name: str | None) -> str | None:
    """Why ``name`` cannot name a registered component (None when it can)."""
    if name is None or re.fullmatch(COMPONENT_NAME_PATTERN, name):
        return None
    return (f"{name!r} cannot name a registered component: use lowercase letters, digits and underscores, "
            f"starting with a letter (pattern '{COMPONENT_NAME_PATTERN}'; e.g. "
            f"{re.sub(r'[^a-z0-9_]', '_', name.lower())!r}); "
            "inline components used by a pipeline job may keep any name")


class _ComponentBase(Entity):
    """What command and pipeline components share: identity, ports and the server's fields."""

    # the name rule (COMPONENT_NAME_PATTERN) applies to registered components only, as in Azure ML: an
    # inline or file component used by a pipeline job may be named my-train-pipeline
    name: str | None = None
    version: str | None = None
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    is_deterministic: bool = True
    inputs: dict[str, Input] = Field(default_factory=dict)
    outputs: dict[str, Output] = Field(default_factory=dict)
    # server-populated
    id: str | None = None
    archived: bool = False
    created_at: str | None = None
    creation_context: dict[str, Any] | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, v: Any) -> Any:
        return None if v is None else str(v)

    @field_validator("tags", "properties", mode="before")
    @classmethod
    def _str_values(cls, v: Any) -> Any:
        return stringify_values(v)

    @field_validator("inputs", mode="before")
    @classmethod
    def _inputs(cls, v: Any) -> Any:
        return normalize_inputs(v)

    @field_validator("outputs", mode="before")
    @classmethod
    def _outputs(cls, v: Any) -> Any:
        return normalize_outputs(v)


class CommandComponent(_ComponentBase):
    """``type: command`` component. ``name`` is required to register it, not to use it inline."""

    type: Literal["command"] = "command"
    command: str
    code: str | None = None
    environment: str | Environment | None = None
    additional_includes: list[str] = Field(default_factory=list)
    resources: dict[str, Any] | None = None
    distribution: dict[str, Any] | None = None
    queue_settings: dict[str, Any] | None = None
    @field_validator("inputs", mode="before")
    @classmethod
    def _inputs(cls, v: Any) -> Any:
        out = {}
        for key, value in (v or {}).items():
            if isinstance(value, dict) and value.get("type") == "path":  # legacy port type
                value = {**value, "type": "uri_folder"}
            out[key] = value
        return normalize_inputs(out)

    @field_validator("environment", mode="before")
    @classmethod
    def _env(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return Environment.model_validate(v)
        return v

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """A pipeline node running this component with ``kwargs`` bound to its inputs."""
        from openaml.entities._node import make_node

        if args:
            raise TypeError(f"component {self.name or 'command'}: pass inputs by keyword, e.g. comp(data=...)")
        return make_node(self, kwargs)


class PipelineComponent(_ComponentBase):
    """``type: pipeline`` component (spec 5.4): a graph of nodes with its own ports, usable as a
    node of another pipeline (``type: pipeline`` node, ``component: ./x.yml``), nested to any depth.

    Its nodes bind to its own ports with ``${{parent.inputs.x}}`` / ``${{parent.outputs.y}}`` as a
    pipeline job's nodes do. ``name`` is required to register it, not to use it from a file.
    """

    type: Literal["pipeline"] = "pipeline"
    jobs: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] | None = None  # default_compute applies to its nodes that name none

    @field_validator("jobs", mode="before")
    @classmethod
    def _jobs(cls, v: Any) -> Any:
        from openaml.entities._pipeline import PipelineNode

        out = {}
        for key, value in (v or {}).items():
            out[key] = value if isinstance(value, PipelineNode) else PipelineNode.model_validate(value or {})
        return out

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """A ``type: pipeline`` node running this component with ``kwargs`` bound to its inputs."""
        from openaml.entities._node import make_node

        if args:
            raise TypeError(f"component {self.name or 'pipeline'}: pass inputs by keyword, e.g. comp(data=...)")
        return make_node(self, kwargs)


Component = CommandComponent


def as_component(obj: Any) -> CommandComponent:
    """A ``CommandComponent`` from a component or a ``command(...)`` job (azure-ai-ml lets both register)."""
    from openaml.entities import CommandJob

    if isinstance(obj, CommandComponent):
        return obj
    if isinstance(obj, CommandJob):
        return command_job_component(obj)
    raise ValidationError(f"expected a component, got {type(obj).__name__}")


def command_job_component(job: Any) -> CommandComponent:
    """The component a ``command(...)`` builder describes (its inputs become ports with defaults)."""
    from openaml.entities import Input

    inputs: dict[str, Any] = {}
    for k, inp in job.inputs.items():
        if inp.is_primitive:
            value = inp.value if inp.value is not None else inp.default
            inputs[k] = Input(type=inp.type, default=value, optional=inp.optional, min=inp.min, max=inp.max,
                              enum=inp.enum, description=inp.description)
        else:
            inputs[k] = Input(type=inp.type, path=inp.path, mode=inp.mode, optional=inp.optional,
                              description=inp.description)
    name = job.name if job.name and job.name.islower() and "-" not in job.name else None
    comp = CommandComponent(name=name, display_name=job.display_name, description=job.description,
                            command=job.command, code=job.code, environment=job.environment, inputs=inputs,
                            outputs=dict(job.outputs), tags=dict(job.tags), distribution=job.distribution,
                            resources=job.resources.model_dump(exclude_none=True) if job.resources else None)
    comp._base_path = job._base_path
    comp._source = job._source
    return comp
