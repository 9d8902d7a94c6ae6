"""Pipeline jobs (spec 4): a graph of nodes bound with ``${{parent...}}`` expressions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from openaml.entities._base import Entity, strip_azureml_prefix
from openaml.entities._io import Input, Output, normalize_inputs, normalize_outputs
from openaml.entities._job import Job

__all__ = ["PipelineJob", "PipelineJobSettings", "PipelineNode"]


class PipelineJobSettings(Entity):
    """``settings:``; unknown keys are kept, as Azure does (``3a_basic_pipeline`` misspells one)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    default_compute: str | None = None
    default_datastore: str | None = None
    continue_on_step_failure: bool | None = None
    force_rerun: bool | None = None
    default_environment: str | None = None

    @field_validator("default_compute", "default_datastore", mode="before")
    @classmethod
    def _strip_prefix(cls, v: Any) -> Any:
        return strip_azureml_prefix(v)


_AUTOML_NODE_KEYS = ("type", "compute", "display_name", "description", "tags", "properties", "comment", "name",
                     "experiment_name", "outputs", "inputs")


class PipelineNode(Entity):
    """One node of ``jobs:``. ``component`` is a file path (``file:``/relative), ``azureml:name:version``,
    ``azureml:name@latest``, an inline mapping or a component object; without it the node is an
    inline command (``command``, ``code``, ``environment``)."""

    type: str = "command"
    component: Any = None
    command: str | None = None
    code: str | None = None
    environment: Any = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    compute: str | None = None
    resources: dict[str, Any] | None = None
    distribution: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None
    environment_variables: dict[str, Any] = Field(default_factory=dict)
    services: dict[str, Any] | None = None
    identity: dict[str, Any] | None = None
    queue_settings: dict[str, Any] | None = None
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    comment: str | None = None
    name: str | None = None
    experiment_name: str | None = None
    is_deterministic: bool | None = None
    # type: sweep nodes (spec 3, "Sweep as a pipeline node"): the trial is a component whose inputs
    # named in search_space are swept; limits are the sweep's
    trial: Any = None
    search_space: dict[str, Any] | None = None
    objective: dict[str, Any] | None = None
    sampling_algorithm: Any = None
    early_termination: dict[str, Any] | None = None
    # type: parallel nodes (spec 5.3): Azure's parallel job fields (openaml.parallel)
    input_data: str | None = None
    mini_batch_size: int | str | None = None
    partition_keys: list[str] | None = None
    max_concurrency_per_instance: int | None = None
    error_threshold: int | None = None
    mini_batch_error_threshold: int | None = None
    logging_level: str | None = None
    retry_settings: dict[str, Any] | None = None
    task: dict[str, Any] | None = None
    # type: automl nodes (spec 6.1): the AutoML job's own fields (task, training_data, limits ...)
    automl: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _automl_fields(cls, v: Any) -> Any:
        """A ``type: automl`` node's AutoML fields are gathered under ``automl`` (checked by the AutoML
        job's own rules when the pipeline compiles)."""
        if not isinstance(v, dict) or v.get("type") != "automl" or "automl" in v:
            return v
        node = {k: x for k, x in v.items() if k in _AUTOML_NODE_KEYS}
        node["automl"] = {k: x for k, x in v.items() if k not in _AUTOML_NODE_KEYS}
        return node

    @field_validator("inputs", "outputs", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v

    @field_validator("compute", mode="before")
    @classmethod
    def _strip_prefix(cls, v: Any) -> Any:
        return strip_azureml_prefix(v)


class PipelineJob(Job):
    """``type: pipeline`` job: ``jobs`` (nodes), pipeline ``inputs``/``outputs`` and ``settings``."""

    type: Literal["pipeline"] = "pipeline"
    jobs: dict[str, PipelineNode] = Field(default_factory=dict)
    inputs: dict[str, Input] = Field(default_factory=dict)
    outputs: dict[str, Output] = Field(default_factory=dict)
    settings: PipelineJobSettings = Field(default_factory=PipelineJobSettings)
    component: Any = None

    @field_validator("inputs", mode="before")
    @classmethod
    def _inputs(cls, v: Any) -> Any:
        return normalize_inputs(v)

    @field_validator("outputs", mode="before")
    @classmethod
    def _outputs(cls, v: Any) -> Any:
        return normalize_outputs(v)

    @field_validator("settings", mode="before")
    @classmethod
    def _settings(cls, v: Any) -> Any:
        return {} if v is None else v
