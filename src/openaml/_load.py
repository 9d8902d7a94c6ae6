"""``load_job``, ``load_component``, ``load_schedule``, ``load_data``, ``load_model``,
``load_environment``, ``load_compute``, ``load_datastore``: YAML files to entities (the client
layer, above the entities and below the SDK, which re-exports them).

Each reads a v2 YAML file (``source``) with optional ``params_override`` (the SDK form of
``--set``) and returns the entity, with relative paths kept relative to the YAML's folder.

Raises:
    ValidationError: naming the file, line, field path and value.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openaml import entities
from openaml.entities import load_entity
from openaml.entities._job_types import job_class, job_type_names
from openaml.errors import ValidationError

if TYPE_CHECKING:
    from openaml.entities import AmlCompute, Data, Datastore, Environment, Model

# entity classes are read from the package when a loader runs (``entities.Data``: its lazy export),
# so that ``load_job`` (``openaml job create``) does not build the data, model, compute and
# datastore entity modules

__all__ = ["load_job", "load_component", "load_schedule",
           "load_data", "load_model", "load_environment", "load_compute", "load_datastore"]


def load_data(source: str | Path, *, params_override: list[Any] | None = None, **kwargs: Any) -> Data:
    return load_entity(entities.Data, source, params_override=params_override, kind="data")


def load_model(source: str | Path, *, params_override: list[Any] | None = None, **kwargs: Any) -> Model:
    return load_entity(entities.Model, source, params_override=params_override, kind="model")


def load_environment(source: str | Path, *, params_override: list[Any] | None = None, **kwargs: Any) -> Environment:
    return load_entity(entities.Environment, source, params_override=params_override, kind="environment")


def load_compute(source: str | Path, *, params_override: list[Any] | None = None, **kwargs: Any) -> AmlCompute:
    """A compute YAML as the class of its ``type`` (``AmlCompute``; ``type: ray``: ``RayCompute``)."""
    from openaml.entities._compute import load_compute as _load_compute

    return _load_compute(source, params_override=params_override)  # type: ignore[return-value]


def load_datastore(source: str | Path, *, params_override: list[Any] | None = None, **kwargs: Any) -> Datastore:
    """A datastore YAML as the class of its ``type`` (``AzureBlobDatastore``, ...), as azure-ai-ml."""
    from openaml.entities._datastore import load_datastore as _load_datastore

    return _load_datastore(source, params_override=params_override)


def load_job(source: str | Path, *, params_override: list[Any] | None = None, **kwargs: Any) -> Any:
    """Load a job YAML; ``type`` defaults to ``command`` (hello-world.yml has none)."""
    from openaml._yaml import load_yaml_with_lines

    data, _ = load_yaml_with_lines(source)
    job_type = data.get("type", "command")
    for item in params_override or []:
        if isinstance(item, dict) and "type" in item:
            job_type = item["type"]
    cls = job_class(job_type)
    if cls is not None:
        return load_entity(cls, source, params_override=params_override, kind=f"{job_type} job")
    if not isinstance(job_type, str) or not job_type:
        known = ", ".join(job_type_names())
        raise ValidationError(f"{source}: field 'type': {job_type!r} is not a job type; supported: {known}",
                              details={"file": str(source), "field": "type", "value": job_type})
    # a type this client has no entity for (a server plugin's kind): kept as it is and passed to the
    # server, which knows its kinds and refuses one it does not know, listing the supported types
    from openaml.entities import GenericJob

    return load_entity(GenericJob, source, params_override=params_override, kind=f"{job_type} job")


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


# ---------------------------------------------------------------------------- schedules
def _merge(base: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in updates.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _job_file(ref: str, base: Path, src: str, field: str) -> Path:
    path = ref[len("file:"):] if ref.startswith("file:") else ref
    p = (base / path).resolve()
    if not p.is_file():
        raise ValidationError(f"{src}: field '{field}': job file {ref!r} does not exist (resolved to {p}); give a "
                              "job YAML path relative to the schedule file, or azureml:<job name>",
                              details={"file": src, "field": field, "value": ref})
    return p


def _load_create_job(value: Any, base: Path, src: str) -> Any:
    """``create_job`` of a schedule YAML as an entity: a job file loaded (and merged with the
    mapping's fields, as azure-ai-ml does), an inline job, or an ``azureml:`` reference kept as is."""
    from openaml._yaml import load_yaml_with_lines

    if isinstance(value, str):
        if value.startswith("azureml:"):
            return value
        return load_job(_job_file(value, base, src, "create_job"))
    if not isinstance(value, dict):
        raise ValidationError(f"{src}: field 'create_job': expected a job file path, azureml:<job name> or a "
                              f"mapping (got {value!r})", details={"file": src, "field": "create_job"})
    if "job" not in value:  # an inline job definition
        jtype = value.get("type", "command")
        cls = job_class(jtype)
        if cls is None:
            raise ValidationError(f"{src}: field 'create_job.type': job type {jtype!r} is not supported; supported: "
                                  f"{', '.join(job_type_names())}", details={"file": src, "field": "create_job.type"})
        return load_entity(cls, data=value, relative_origin=base, kind=f"create_job of {src}")
    ref = value["job"]
    updates = {k: v for k, v in value.items() if k != "job"}
    if isinstance(ref, str) and ref.startswith("azureml:"):
        return dict(value)  # the server merges the updates into the existing job
    if not isinstance(ref, str):
        raise ValidationError(f"{src}: field 'create_job.job': expected a job file path or azureml:<job name>",
                              details={"file": src, "field": "create_job.job"})
    path = _job_file(ref, base, src, "create_job.job")
    data, _ = load_yaml_with_lines(path)
    merged = _merge(data, updates)
    merged.pop("$schema", None)
    jtype = merged.get("type", "command")
    cls = job_class(jtype)
    if cls is None:
        raise ValidationError(f"{src}: field 'create_job.type': job type {jtype!r} is not supported",
                              details={"file": src, "field": "create_job.type", "value": str(jtype)})
    job = load_entity(cls, data=merged, relative_origin=path.parent, kind=f"create_job of {src} (job {path.name})")
    job._source = str(path)
    return job


def load_schedule(source: str | Path, *, params_override: list[Any] | None = None, **kwargs: Any) -> Any:
    """Load a schedule YAML (``$schema: .../schedule.schema.json``) as ``azure.ai.ml.load_schedule``.

    Raises:
        ValidationError: unknown field, bad trigger (cron expression, time zone, frequency,
            interval, pattern, end before start) or a ``create_job`` file that does not exist;
            naming the file, line, field and value.
    """
    from openaml._yaml import apply_set_overrides, load_yaml_with_lines
    from openaml.entities._schedule import validate_schedule

    data, lines = load_yaml_with_lines(source)
    src = str(source)
    data.pop("$schema", None)
    apply_set_overrides(data, params_override)
    sched = validate_schedule(data, source=src, lines=lines)
    sched._base_path = Path(source).resolve().parent
    sched._source = src
    sched._lines = lines or None
    sched.create_job = _load_create_job(sched.create_job, sched.base_path, src)
    return sched
