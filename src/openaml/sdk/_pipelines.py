"""Preparing a pipeline job for submission: components loaded and uploaded, local inputs uploaded.

``component: ./x.yml`` / ``file:./x.yml`` paths are read relative to the pipeline YAML's folder and
sent inline (code uploaded as a snapshot); ``azureml:name:version`` / ``@latest`` references are
left for the server to resolve. Inline command nodes have their ``code`` uploaded too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openaml.entities._component import CommandComponent, PipelineComponent
from openaml.errors import ValidationError

__all__ = ["pipeline_component_payload", "prepare_jobs", "prepare_pipeline", "stream_pipeline"]

_PRIMITIVE = ("string", "number", "integer", "boolean")


def _is_file_ref(ref: str) -> bool:
    return ref.startswith("file:") or (not ref.startswith("azureml:") and ref.endswith((".yml", ".yaml")))


def prepare_pipeline(ops: Any, job: Any, *, progress: bool = False) -> dict[str, Any]:
    """The wire spec of a ``PipelineJob`` (see the module docstring).

    Raises:
        ValidationError: a component file, code folder or local input that does not exist
            (node and field named).
    """
    from openaml.sdk._jobs import _default_experiment

    base: Path = job.base_path
    src = job._source or "pipeline"
    data = job.model_dump(mode="json", exclude_none=True, exclude={"jobs"})
    data["jobs"] = {}

    for name, inp in (data.get("inputs") or {}).items():
        _upload_input(ops, src, f"inputs.{name}", inp, base, progress)
    data["jobs"] = prepare_jobs(ops, job.jobs, base=base, src=src, where="jobs", progress=progress)
    comp = job.component
    if isinstance(comp, str) and _is_file_ref(comp):  # a pipeline component run as the job (spec 4)
        from openaml._load import load_component

        path = (base / comp.removeprefix("file:")).resolve()
        if not path.is_file():
            raise ValidationError(f"{src}: field 'component': file {comp!r} not found (resolved to {path})",
                                  details={"file": src, "field": "component", "value": comp})
        comp = load_component(path)
    elif isinstance(comp, dict):
        from openaml.entities._base import load_entity

        comp = load_entity(PipelineComponent, data=comp, relative_origin=base, kind="component")
    if isinstance(comp, PipelineComponent):
        data["component"] = pipeline_component_payload(ops, comp, base=comp._base_path or base, progress=progress)
    if not job.experiment_name:
        data["experiment_name"] = _default_experiment(job)
    return data


def _upload_input(ops: Any, src: str, field: str, inp: dict[str, Any], where: Path, progress: bool) -> None:
    from openaml.sdk._jobs import _is_local
    from openaml.sdk._upload import upload_path

    path = inp.get("path")
    if not path or inp.get("type") in _PRIMITIVE or not _is_local(str(path)) or str(path).startswith("${{"):
        return
    local = (where / str(path)).resolve()
    if not local.exists():
        raise ValidationError(f"{src}: field '{field}.path': {path!r} does not exist (resolved to {local})",
                              details={"file": src, "field": f"{field}.path", "value": path})
    inp["path"] = upload_path(ops._t, local, progress=progress)["uri"]


def prepare_jobs(ops: Any, jobs: dict[str, Any], *, base: Path, src: str, where: str,
                 progress: bool = False) -> dict[str, Any]:
    """The wire form of ``jobs`` (a pipeline's or a pipeline component's): component files loaded,
    code and local inputs uploaded, pipeline components prepared recursively (their own folder
    is the base of their relative paths)."""
    from openaml._load import load_component
    from openaml.entities._base import load_entity
    from openaml.sdk._components import as_component, component_payload
    from openaml.sdk._jobs import _inline_environment, _is_local
    from openaml.sdk._upload import upload_code

    client = ops._client
    out: dict[str, Any] = {}
    for node_name, node in jobs.items():
        field = f"{where}.{node_name}"
        nd = node.model_dump(mode="json", exclude_none=True, exclude={"component", "inputs", "outputs", "trial"})
        nd["inputs"] = {k: _plain(v) for k, v in node.inputs.items()}
        nd["outputs"] = {k: _plain(v) for k, v in node.outputs.items()}
        comp = node.trial if node.type == "sweep" and node.trial is not None else node.component
        parallel_base = base
        if node.type == "parallel" and comp is not None:  # a parallel component: inlined into the node
            from openaml.sdk._parallel import inline_parallel_component

            nd, parallel_base = inline_parallel_component(nd, comp, base=base, src=src, field=field)
            comp = None
        if isinstance(comp, str) and _is_file_ref(comp):
            path = (base / comp[len("file:"):] if comp.startswith("file:") else base / comp).resolve()
            if not path.is_file():
                raise ValidationError(f"{src}: field '{field}.component': file {comp!r} not found (resolved to "
                                      f"{path})", details={"file": src, "field": f"{field}.component", "value": comp})
            comp = load_component(path)
        elif isinstance(comp, dict):
            kind = PipelineComponent if comp.get("type") == "pipeline" or "jobs" in comp else CommandComponent
            comp = load_entity(kind, data=comp, relative_origin=base, kind=f"{field}.component")
        if isinstance(comp, PipelineComponent):
            nd["component"] = pipeline_component_payload(ops, comp, base=comp._base_path or base, progress=progress)
            nd["type"] = "pipeline"
        elif comp is not None and not isinstance(comp, str):
            comp = as_component(comp)
            nd["component"] = component_payload(client, comp, base=comp._base_path or base, progress=progress)
        elif comp is not None:
            nd["component"] = comp
        elif node.type == "parallel":  # task.code uploaded, task.environment inlined
            from openaml.sdk._parallel import prepare_parallel_node

            prepare_parallel_node(ops, nd, base=parallel_base, src=src, field=field, progress=progress)
        else:  # inline command node
            if node.code and _is_local(node.code) and not node.code.startswith("openaml-code:"):
                code_path = (base / node.code).resolve()
                if not code_path.exists():
                    raise ValidationError(f"{src}: field '{field}.code': {node.code!r} does not exist",
                                          details={"file": src, "field": f"{field}.code", "value": node.code})
                nd["code"] = "openaml-code:" + upload_code(ops._t, code_path, base=base, progress=progress)
            env = node.environment
            if env is not None and not (isinstance(env, str) and not env.startswith("file:")):
                nd["environment"] = _inline_environment(client, env, base)
        for k, v in nd["inputs"].items():
            if isinstance(v, dict):
                _upload_input(ops, src, f"{field}.inputs.{k}", v, base, progress)
        if node.type == "automl":  # an AutoML node's local data folders (its own fields, not inputs)
            for key in ("training_data", "validation_data", "test_data"):
                value = (nd.get("automl") or {}).get(key)
                if isinstance(value, str) and not value.startswith("${{"):
                    value = nd["automl"][key] = {"type": "mltable", "path": value}
                if isinstance(value, dict):
                    _upload_input(ops, src, f"{field}.{key}", value, base, progress)
        if node.type == "sweep" and "component" in nd:
            nd["trial"] = nd.pop("component")
        out[node_name] = nd
    return out


def pipeline_component_payload(ops: Any, comp: PipelineComponent, *, base: Path | None = None,
                               progress: bool = False) -> dict[str, Any]:
    """A ``PipelineComponent`` as the server takes it: its nodes prepared (see :func:`prepare_jobs`).

    Raises:
        ValidationError: a component file, code folder or local input of a node that does not exist.
    """
    base = base or comp.base_path
    src = comp._source or f"pipeline component {comp.name or ''}".strip()
    data = comp.model_dump(mode="json", exclude_none=True, exclude={"id", "archived", "created_at",
                                                                     "creation_context", "jobs"})
    for name, inp in (data.get("inputs") or {}).items():
        _upload_input(ops, src, f"inputs.{name}", inp, base, progress)
    data["jobs"] = prepare_jobs(ops, comp.jobs, base=base, src=src, where="jobs", progress=progress)
    return data


def _plain(v: Any) -> Any:
    if hasattr(v, "model_dump"):
        return v.model_dump(mode="json", exclude_none=True)
    if hasattr(v, "_binding"):
        return v._binding()
    return v


def stream_pipeline(ops: Any, job: dict[str, Any], out: Any, *, poll: float = 0.5) -> dict[str, Any]:
    """Follow every step of a pipeline until it ends (``job stream <pipeline>``).

    Each log line is prefixed with its step (``[train] epoch 1``; a sweep node's trials as
    ``[tune/<trial>]``), steps' logs interleaved as they are written; a line says when a step
    ends (with its reuse reason when it was reused). Returns the pipeline's final raw job.
    """
    import time

    from openaml.constants import TERMINAL_JOB_STATUSES

    name = job["name"]
    out.write(f"RunId: {name}\nWeb View: {job['studio_url']}\n\nStreaming the logs of every step\n"
              "================================\n\n")
    out.flush()
    offsets: dict[str, int] = {}
    partial: dict[str, str] = {}
    done: set[str] = set()
    ended: set[str] = set()

    def label(child: dict[str, Any], parent: str, prefix: str) -> str:
        short = child["name"][len(parent) + 1:] if child["name"].startswith(parent + "-") else child["name"]
        return f"{prefix}{short}"

    def follow(parent: str, prefix: str) -> bool:
        """One pass over the children of ``parent``; True while any may still write."""
        busy = False
        children = ops._t.get("/jobs", params={"parent_job_name": parent, "include_archived": True})
        # in the order the steps were created (the list is newest first): upstream steps before downstream ones
        for child in sorted(children, key=lambda c: str(c.get("created_at") or "")):
            cname, tag = child["name"], label(child, parent, prefix)
            if child.get("type") == "sweep":
                busy |= follow(cname, f"{tag}/")
            if cname in done:
                continue
            if child.get("type") == "command":
                chunk = ops._t.get(f"/jobs/{cname}/logs", params={"offset": offsets.get(cname, 0), "wait": 0})
                text = partial.get(cname, "") + chunk["data"]
                offsets[cname] = chunk["offset"]
                lines = text.split("\n")
                partial[cname] = lines.pop()
                for line in lines:
                    out.write(f"[{tag}] {line}\n")
                # the log can end while the job is still Finalizing (outputs being saved): wait for its status
                terminal = chunk["terminal"] and child["status"] in TERMINAL_JOB_STATUSES
            else:
                terminal = child["status"] in TERMINAL_JOB_STATUSES
            if terminal and cname not in ended:
                if partial.get(cname):
                    out.write(f"[{tag}] {partial.pop(cname)}\n")
                props = child.get("properties") or {}
                why = f" ({props['openaml.reason']})" if props.get("azureml.isreused") == "true" else ""
                err = f": {child['error']}" if child.get("error") and child["status"] != "Completed" else ""
                out.write(f"[{tag}] step {child['status']}{why}{err}\n")
                ended.add(cname)
                done.add(cname)
            elif not terminal:
                busy = True
        out.flush()
        return busy

    while True:
        raw = ops.get_raw(name)
        busy = follow(name, "")
        if raw["status"] in TERMINAL_JOB_STATUSES and not busy:
            follow(name, "")
            break
        time.sleep(poll)
    final = ops.get_raw(name)
    out.write(f"\nExecution Summary\n=================\nRunId: {name}\nStatus: {final['status']}\n")
    if final.get("error"):
        out.write(f"Error: {final['error']}\n")
    out.flush()
    return final
