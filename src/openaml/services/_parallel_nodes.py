"""``type: parallel`` pipeline nodes (Azure's parallel node: the parallel job fields inline in
``jobs:``; spec 5.3). The pipeline compiles such a node into a component (``type: parallel``,
``parallel``: its engine settings) and starts it as a child parallel job (``services/kinds/parallel``)
bound to the pipeline's inputs and the other nodes' outputs."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic

from openaml.parallel._entity import ParallelJob

__all__ = ["PARALLEL_FIELDS", "parallel_child_spec", "parallel_node_component", "parallel_node_problems"]

PARALLEL_FIELDS = ("input_data", "mini_batch_size", "partition_keys", "max_concurrency_per_instance",
                   "error_threshold", "mini_batch_error_threshold", "logging_level", "retry_settings")
_REF = re.compile(r"^\s*\$\{\{\s*(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$")


def parallel_node_component(f: str, nd: dict[str, Any], input_type: Callable[[Any], str], errors: Any) -> dict[str, Any] | None:
    """The component of parallel node ``nd`` (field prefix ``f`` = ``jobs.<node>``), or None with the
    problems added to ``errors`` (each naming ``jobs.<node>.<field>``)."""
    fields = {k: nd[k] for k in (*PARALLEL_FIELDS, "task", "resources") if nd.get(k) is not None}
    outputs = {k: (v if isinstance(v, dict) and "type" in v else {"type": "uri_folder"})
               for k, v in (nd.get("outputs") or {}).items()}
    try:
        job = ParallelJob.model_validate({"type": "parallel", **fields})
    except pydantic.ValidationError as exc:
        for e in exc.errors():
            msg = e["msg"].removeprefix("Value error, ")
            errors.add(f"{f}." + ".".join(str(x) for x in e["loc"]), msg)
        return None
    task = job.task
    ok = True
    if task is None:
        errors.add(f"{f}.task", "a parallel node needs task: {type: run_function, code, entry_script, environment}")
        return None
    if task.type != "run_function":
        errors.add(f"{f}.task.type", f"{task.type!r} is not a parallel task type; the only one is run_function")
        ok = False
    m = _REF.match(job.input_data or "")
    if not job.input_data:
        errors.add(f"{f}.input_data", "is missing; give input_data: ${{inputs.<name>}} naming one of the node's inputs")
        ok = False
    elif not m or m.group(1) != "inputs" or m.group(2) not in (nd.get("inputs") or {}):
        errors.add(f"{f}.input_data", f"{job.input_data!r} must be ${{{{inputs.<name>}}}} naming one of the node's "
                                      f"inputs ({', '.join(sorted(nd.get('inputs') or {})) or 'none'})")
        ok = False
    if task.append_row_to:
        m = _REF.match(task.append_row_to)
        if not m or m.group(1) != "outputs" or m.group(2) not in outputs:
            errors.add(f"{f}.task.append_row_to", f"{task.append_row_to!r} must be ${{{{outputs.<name>}}}} naming one "
                                                  f"of the node's outputs ({', '.join(sorted(outputs)) or 'none'})")
            ok = False
    if not task.entry_script:
        errors.add(f"{f}.task.entry_script", "is missing; name the script with init() and run(mini_batch)")
        ok = False
    if not ok:
        return None
    inputs: dict[str, Any] = {}
    for k, v in (nd.get("inputs") or {}).items():
        t = input_type(v)
        inputs[k] = {"type": t, "optional": True}
    data = job.model_dump(mode="json", exclude_none=True)
    settings = {k: data[k] for k in (*PARALLEL_FIELDS, "task") if k in data}
    task_dump = settings["task"]
    code, env = task_dump.pop("code", None), task_dump.pop("environment", None)
    return {"type": "parallel", "inline": True, "inputs": inputs, "outputs": outputs, "code": code,
            "environment": env, "parallel": settings, "resources": data.get("resources"),
            "is_deterministic": nd.get("is_deterministic", True)}


def parallel_node_problems(ctx: Any, comp: dict[str, Any]) -> list[tuple[str, str]]:
    """What a parallel node's component has wrong that needs the workspace: its entry script
    (missing from ``task.code``, or without ``run``), as ``(field, message)`` pairs."""
    from openaml.services._job_resolve import ResolveErrors, resolve_code
    from openaml.services.kinds.parallel import entry_script_problem

    errors = ResolveErrors()
    code_dir = resolve_code(ctx, comp.get("code"), errors)
    out = [("task.code" if f == "code" else f, m) for f, m in errors.items]
    script = comp["parallel"]["task"].get("entry_script")
    if code_dir is None and not comp.get("code"):
        out.append(("task.entry_script", f"{script!r} needs task.code (the folder holding it)"))
    elif code_dir is not None:
        problem = entry_script_problem(Path(code_dir) / script)
        if problem:
            out.append(("task.entry_script", f"{script!r} {problem}"))
    return out


def parallel_child_spec(spec: dict[str, Any], comp: dict[str, Any], env: Any) -> dict[str, Any]:
    """The child parallel job of a pipeline step: ``spec`` (the step's command-job spec: name, parent,
    inputs, outputs, compute...) with the node's parallel settings instead of a command."""
    out = {k: v for k, v in spec.items() if k not in ("command", "code", "environment", "limits", "distribution")}
    settings = copy.deepcopy(comp["parallel"])
    task = settings.pop("task")
    if comp.get("code"):
        task["code"] = comp["code"]
    if env:
        task["environment"] = env
    out.update(settings)
    out["type"] = "parallel"
    out["task"] = task
    # inputs left unbound stay out (an optional input of an inline node)
    out["inputs"] = {k: v for k, v in (out.get("inputs") or {}).items() if not v.get("optional")}
    return out
