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
