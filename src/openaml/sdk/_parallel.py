"""The client side of a parallel job's submission: upload ``task.code`` and local inputs, inline
the task's environment (as the command job's preparation does), return the wire spec."""

from __future__ import annotations

from typing import Any

from openaml.errors import ValidationError
from openaml.parallel._entity import ParallelJob

__all__ = ["prepare_parallel"]


def prepare_parallel(ops: Any, job: ParallelJob, *, progress: bool = False) -> dict[str, Any]:
    """The wire spec of ``job`` (``ops``: the SDK's ``JobOperations``).

    Raises:
        ValidationError: a local ``task.code`` or input path that does not exist (field named).
    """
    from openaml.entities import Environment
    from openaml.sdk._jobs import _default_experiment, _inline_environment, _is_local
    from openaml.sdk._upload import upload_code, upload_path

    base = job.base_path
    src = job._source or "job"
    data = job.model_dump(mode="json", exclude_none=True)
    for key in ("status", "creation_context", "studio_url", "id", "created_at", "start_time", "end_time"):
        data.pop(key, None)
    task = job.task
    if task is not None and task.code and _is_local(task.code):
        code_path = (base / task.code).resolve()
        if not code_path.exists():
            raise ValidationError(f"{src}: field 'task.code': {task.code!r} does not exist (resolved to {code_path})",
                                  details={"file": src, "field": "task.code", "value": task.code})
        data["task"]["code"] = "openaml-code:" + upload_code(ops._t, code_path, base=base, progress=progress)
    for name, inp in data.get("inputs", {}).items():
        path = inp.get("path")
        if path and _is_local(str(path)) and inp.get("type") not in ("string", "number", "integer", "boolean"):
            local = (base / str(path)).resolve()
            if not local.exists():
                raise ValidationError(f"{src}: field 'inputs.{name}.path': {path!r} does not exist (resolved to {local})",
                                      details={"file": src, "field": f"inputs.{name}.path", "value": path})
            inp["path"] = upload_path(ops._t, local, progress=progress)["uri"]
    env = task.environment if task is not None else None
    if isinstance(env, Environment) or (isinstance(env, str) and env.startswith("file:")):
        data["task"]["environment"] = _inline_environment(ops._client, env, base)
    if not job.experiment_name:
        data["experiment_name"] = _default_experiment(job)
    return data


def prepare_parallel_node(ops: Any, nd: dict[str, Any], *, base: Any, src: str, field: str,
                          progress: bool = False) -> None:
    """A ``type: parallel`` pipeline node's wire form, in place: its local ``task.code`` uploaded
    and its ``task.environment`` inlined (``field``: ``jobs.<node>``, for messages).

    Raises:
        ValidationError: ``task.code`` does not exist (field named).
    """
    from openaml.sdk._jobs import _inline_environment, _is_local
    from openaml.sdk._upload import upload_code

    task = nd.get("task") or {}
    code = task.get("code")
    if code and _is_local(code) and not code.startswith("openaml-code:"):
        code_path = (base / code).resolve()
        if not code_path.exists():
            raise ValidationError(f"{src}: field '{field}.task.code': {code!r} does not exist (resolved to {code_path})",
                                  details={"file": src, "field": f"{field}.task.code", "value": code})
        task["code"] = "openaml-code:" + upload_code(ops._t, code_path, base=base, progress=progress)
    env = task.get("environment")
    if env is not None and not (isinstance(env, str) and not env.startswith("file:")):
        from openaml.entities import Environment

        task["environment"] = _inline_environment(ops._client, Environment.model_validate(env)
                                                  if isinstance(env, dict) else env, base)


_NODE_FIELDS = ("input_data", "mini_batch_size", "partition_keys", "resources", "max_concurrency_per_instance",
                "error_threshold", "mini_batch_error_threshold", "logging_level", "retry_settings", "task",
                "environment_variables", "is_deterministic")


def inline_parallel_component(nd: dict[str, Any], comp: Any, *, base: Any, src: str, field: str) -> tuple[dict[str, Any], Any]:
    """A ``type: parallel`` node naming a parallel component (a YAML file, as Azure's
    ``component: ./predict.yml``, or an inline mapping), made an inline parallel node: the
    component's fields, then the node's over them (``retry_settings``, ``resources`` and
    ``environment_variables`` merged key by key), its declared inputs with a default or path that
    the node does not bind, its declared outputs. Returns (the node, the folder its ``task.code``
    and conda file are relative to).

    Raises:
        ValidationError: the file does not exist, is not a parallel component, or is a registered
            component reference (``azureml:``; registered parallel components are not supported).
    """
    from pathlib import Path

    from openaml._yaml import parse_yaml_with_lines

    where = Path(base)
    if isinstance(comp, str):
        if comp.startswith("azureml:"):
            raise ValidationError(f"{src}: field '{field}.component': {comp!r}: registered parallel components are not "
                                  "supported; give the component's YAML file (or inline the parallel fields in the node)",
                                  details={"file": src, "field": f"{field}.component", "value": comp})
        path = (where / comp.removeprefix("file:")).resolve()
        if not path.is_file():
            raise ValidationError(f"{src}: field '{field}.component': file {comp!r} not found (resolved to {path})",
                                  details={"file": src, "field": f"{field}.component", "value": comp})
        spec, _ = parse_yaml_with_lines(path.read_text(encoding="utf-8"), source=str(path))
        where = path.parent
    elif hasattr(comp, "model_dump"):
        spec = comp.model_dump(mode="json", exclude_none=True)
    else:
        spec = dict(comp or {})
    if spec.get("type") != "parallel":
        raise ValidationError(f"{src}: field '{field}.component': a parallel node needs a parallel component "
                              f"(type: parallel); this one is type {spec.get('type')!r}",
                              details={"file": src, "field": f"{field}.component"})
    out = {k: v for k, v in nd.items() if k != "component"}
    for key in _NODE_FIELDS:
        mine, theirs = out.get(key), spec.get(key)
        if isinstance(mine, dict) and isinstance(theirs, dict) and key != "task":
            out[key] = {**theirs, **mine}
        elif (mine is None or mine == {}) and theirs is not None:
            out[key] = theirs
    inputs = dict(out.get("inputs") or {})
    for name, decl in (spec.get("inputs") or {}).items():
        if name in inputs or not isinstance(decl, dict):
            continue
        if decl.get("path") is not None:
            p = str(decl["path"])
            inputs[name] = {**decl, "path": str((where / p).resolve()) if "://" not in p and ":" not in p[:8] else p}
        elif decl.get("default") is not None:
            inputs[name] = decl["default"]
    outputs = dict(out.get("outputs") or {})
    for name, decl in (spec.get("outputs") or {}).items():
        given = outputs.get(name)
        if given is None:
            outputs[name] = {"type": (decl or {}).get("type", "uri_folder")}
        elif isinstance(given, dict) and "type" not in given:
            outputs[name] = {"type": (decl or {}).get("type", "uri_folder"), **given}
    out["inputs"], out["outputs"] = inputs, outputs
    out["type"] = "parallel"
    return out, where
