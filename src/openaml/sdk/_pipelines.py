"""Preparing a pipeline job for submission: components loaded and uploaded, local inputs uploaded.

``component: ./x.yml`` / ``file:./x.yml`` paths are read relative to the pipeline YAML's folder and
sent inline (code uploaded as a snapshot); ``azureml:name:version`` / ``@latest`` references are
left for the server to resolve. Inline command nodes have their ``code`` uploaded too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openaml.entities._component import CommandComponent
from openaml.errors import ValidationError

__all__ = ["prepare_pipeline"]

_PRIMITIVE = ("string", "number", "integer", "boolean")


def _is_file_ref(ref: str) -> bool:
    return ref.startswith("file:") or (not ref.startswith("azureml:") and ref.endswith((".yml", ".yaml")))


def prepare_pipeline(ops: Any, job: Any, *, progress: bool = False) -> dict[str, Any]:
    """The wire spec of a ``PipelineJob`` (see the module docstring).

    Raises:
        ValidationError: a component file, code folder or local input that does not exist
            (node and field named).
    """
    from openaml._load import load_component
    from openaml.sdk._components import as_component, component_payload
    from openaml.sdk._jobs import _default_experiment, _inline_environment, _is_local
    from openaml.sdk._upload import upload_code, upload_path

    client = ops._client
    base: Path = job.base_path
    src = job._source or "pipeline"
    data = job.model_dump(mode="json", exclude_none=True, exclude={"jobs"})
    data["jobs"] = {}

    def upload_input(field: str, inp: dict[str, Any], where: Path) -> None:
        path = inp.get("path")
        if not path or inp.get("type") in _PRIMITIVE or not _is_local(str(path)) or str(path).startswith("${{"):
            return
        local = (where / str(path)).resolve()
        if not local.exists():
            raise ValidationError(f"{src}: field '{field}.path': {path!r} does not exist (resolved to {local})",
                                  details={"file": src, "field": f"{field}.path", "value": path})
        inp["path"] = upload_path(ops._t, local, progress=progress)["uri"]

    for name, inp in (data.get("inputs") or {}).items():
        upload_input(f"inputs.{name}", inp, base)
    for node_name, node in job.jobs.items():
        field = f"jobs.{node_name}"
        nd = node.model_dump(mode="json", exclude_none=True, exclude={"component", "inputs", "outputs"})
        nd["inputs"] = {k: _plain(v) for k, v in node.inputs.items()}
        nd["outputs"] = {k: _plain(v) for k, v in node.outputs.items()}
        comp = node.component
        comp_base = base
        if isinstance(comp, str) and _is_file_ref(comp):
            path = (base / comp[len("file:"):] if comp.startswith("file:") else base / comp).resolve()
            if not path.is_file():
                raise ValidationError(f"{src}: field '{field}.component': file {comp!r} not found (resolved to "
                                      f"{path})", details={"file": src, "field": f"{field}.component", "value": comp})
            comp = load_component(path)
        elif isinstance(comp, dict):
            from openaml.entities._base import load_entity

            comp = load_entity(CommandComponent, data=comp, relative_origin=base, kind=f"{field}.component")
        if comp is not None and not isinstance(comp, str):
            comp = as_component(comp)
            comp_base = comp._base_path or base
            nd["component"] = component_payload(client, comp, base=comp_base, progress=progress)
        elif comp is not None:
            nd["component"] = comp
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
                upload_input(f"{field}.inputs.{k}", v, base)
        data["jobs"][node_name] = nd
    if not job.experiment_name:
        data["experiment_name"] = _default_experiment(job)
    return data


def _plain(v: Any) -> Any:
    if hasattr(v, "model_dump"):
        return v.model_dump(mode="json", exclude_none=True)
    if hasattr(v, "_binding"):
        return v._binding()
    return v
