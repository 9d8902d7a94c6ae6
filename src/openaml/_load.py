"""``load_job``, ``load_data``, ``load_model``, ``load_environment``, ``load_compute``, ``load_datastore``.

Each reads a v2 YAML file (``source``) with optional ``params_override`` (the SDK form of
``--set``) and returns the entity, with relative paths kept relative to the YAML's folder.

Raises:
    ValidationError: naming the file, line, field path and value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openaml.entities import AmlCompute, Data, Datastore, Environment, Model, load_entity
from openaml.errors import ValidationError

__all__ = ["load_job", "load_component", "load_schedule",
           "load_data", "load_model", "load_environment", "load_compute", "load_datastore"]


def load_data(source: str | Path, *, params_override: list[Any] | None = None, **kwargs: Any) -> Data:
    return load_entity(Data, source, params_override=params_override, kind="data")


def load_model(source: str | Path, *, params_override: list[Any] | None = None, **kwargs: Any) -> Model:
    return load_entity(Model, source, params_override=params_override, kind="model")


def load_environment(source: str | Path, *, params_override: list[Any] | None = None, **kwargs: Any) -> Environment:
    return load_entity(Environment, source, params_override=params_override, kind="environment")


def load_compute(source: str | Path, *, params_override: list[Any] | None = None, **kwargs: Any) -> AmlCompute:
    return load_entity(AmlCompute, source, params_override=params_override, kind="compute")


def load_datastore(source: str | Path, *, params_override: list[Any] | None = None, **kwargs: Any) -> Datastore:
    """A datastore YAML as the class of its ``type`` (``AzureBlobDatastore``, ...), as azure-ai-ml."""
    from openaml.entities._datastore import load_datastore as _load_datastore

    return _load_datastore(source, params_override=params_override)


# job types registered by later capabilities (sweep, pipeline, ...): type -> entity class
JOB_TYPES: dict[str, Any] = {}


def _pipeline_job_type() -> None:
    from openaml.entities._pipeline import PipelineJob

    JOB_TYPES["pipeline"] = PipelineJob


_pipeline_job_type()


def _register_sweep() -> None:
    from openaml.entities._sweep import SweepJob

    JOB_TYPES["sweep"] = SweepJob


_register_sweep()


def load_job(source: str | Path, *, params_override: list[Any] | None = None, **kwargs: Any) -> Any:
    """Load a job YAML; ``type`` defaults to ``command`` (hello-world.yml has none)."""
    from openaml._yaml import load_yaml_with_lines
    from openaml.entities import CommandJob

    data, _ = load_yaml_with_lines(source)
    job_type = data.get("type", "command")
    for item in params_override or []:
        if isinstance(item, dict) and "type" in item:
            job_type = item["type"]
    if job_type == "command":
        return load_entity(CommandJob, source, params_override=params_override, kind="command job")
    if job_type in JOB_TYPES:
        return load_entity(JOB_TYPES[job_type], source, params_override=params_override, kind=f"{job_type} job")
    known = ", ".join(["command", *JOB_TYPES])
    raise ValidationError(f"{source}: field 'type': job type {job_type!r} is not supported; supported: {known}",
                          details={"file": str(source), "field": "type", "value": job_type})


def load_schedule(source: str | Path, *, params_override: list[Any] | None = None, **kwargs: Any) -> Any:
    """Load a schedule YAML (``JobSchedule``); see :func:`openaml.sdk._schedules.load_schedule`."""
    from openaml.sdk._schedules import load_schedule as _load_schedule

    return _load_schedule(source, params_override=params_override)


def load_component(source: str | Path | None = None, *, params_override: list[Any] | None = None,
                   **kwargs: Any) -> Any:
    """Load a component YAML: ``type: command`` (the default) or ``type: pipeline`` (spec 5.4).

    Raises:
        ValidationError: unknown field, bad name (lowercase letters, digits, underscores), no
            command; naming the file, line and field.
    """
    from openaml._yaml import load_yaml_with_lines
    from openaml.entities._component import CommandComponent

    if source is None:
        raise ValidationError("load_component needs a YAML file path")
    data, _ = load_yaml_with_lines(source)
    ctype = data.get("type", "command")
    if ctype == "pipeline":
        from openaml.entities._component import PipelineComponent

        pcomp = load_entity(PipelineComponent, source, params_override=params_override, kind="pipeline component")
        _check_component_name(pcomp, source)
        return pcomp
    if ctype != "command":
        raise ValidationError(f"{source}: field 'type': {ctype!r} components are not supported yet; supported: "
                              "command, pipeline", details={"file": str(source), "field": "type", "value": ctype})
    comp = load_entity(CommandComponent, source, params_override=params_override, kind="command component")
    if not comp.name:
        raise ValidationError(f"{source}: field 'name' is required (lowercase letters, digits, underscores)",
                              details={"file": str(source), "field": "name"})
    _check_component_name(comp, source)
    return comp


def _check_component_name(comp: Any, source: str | Path) -> None:
    """A component loaded on its own follows the registered-name rule, as azure-ai-ml's
    ``load_component`` does; inline components inside a pipeline job are not loaded through here."""
    from openaml.entities._base import annotate_lines
    from openaml.entities._component import component_name_problem

    problem = component_name_problem(comp.name)
    if problem:
        raise ValidationError(annotate_lines(f"{source}: field 'name': {problem}", comp._lines),
                              details={"file": str(source), "field": "name", "value": comp.name})
