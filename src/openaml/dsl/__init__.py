"""``from openaml import dsl``: ``@dsl.pipeline`` builds a pipeline job from a Python function.

As in azure-ai-ml, calling components inside the function creates nodes (named after the local
variables they are assigned to, else after the component), the function's parameters become
pipeline inputs (bound as ``${{parent.inputs.<name>}}``), and the returned dict of node outputs
becomes the pipeline's outputs. Calling the decorated function returns a ``PipelineJob``, the same
graph a YAML ``type: pipeline`` file gives, ready for ``ml_client.jobs.create_or_update``.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
from collections.abc import Callable
from typing import Any

from openaml.dsl._node import _BUILDERS, Node, NodeOutput, PipelineInput

__all__ = ["pipeline"]


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[Node] = []

    def add(self, node: Node) -> None:
        self.nodes.append(node)


def pipeline(func: Callable[..., Any] | None = None, *, name: str | None = None, display_name: str | None = None,
             description: str | None = None, experiment_name: str | None = None, compute: str | None = None,
             default_compute: str | None = None, default_datastore: str | None = None,
             continue_on_step_failure: bool | None = None, force_rerun: bool | None = None,
             tags: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """Decorator: ``@dsl.pipeline(compute="local", description="...")``.

    Raises:
        ValidationError: a component called with an input it does not declare.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def build(*args: Any, **call_kwargs: Any) -> Any:
            from openaml.dsl._node import current_builder
            from openaml.entities import Input
            from openaml.entities._pipeline import PipelineJob

            bound = sig.bind(*args, **call_kwargs)
            bound.apply_defaults()
            jobs, outputs, _ = _trace(fn, {k: PipelineInput(k, v) for k, v in bound.arguments.items()})
            if current_builder() is not None:  # called inside another @dsl.pipeline: a pipeline component node
                return _as_component_node(fn, sig, bound.arguments, jobs, outputs, display_name or name,
                                          description)
            inputs: dict[str, Any] = {}
            for k, v in bound.arguments.items():
                if v is None:
                    continue
                inputs[k] = v if isinstance(v, Input) else Input(type=_literal_type(v), value=v) \
                    if not isinstance(v, dict) else v
            settings = {k: v for k, v in (("default_compute", default_compute or compute),
                                          ("default_datastore", default_datastore),
                                          ("continue_on_step_failure", continue_on_step_failure),
                                          ("force_rerun", force_rerun)) if v is not None}
            data = {"jobs": jobs, "inputs": inputs, "outputs": outputs, "settings": settings,
                    "display_name": display_name or name or fn.__name__, "description": description or fn.__doc__,
                    "experiment_name": experiment_name, "tags": tags or {}}
            job = PipelineJob.model_validate({k: v for k, v in data.items() if v is not None})
            return job

        build._is_dsl_pipeline = True  # type: ignore[attr-defined]
        return build

    if func is not None:
        return decorate(func)
    return decorate


def _trace(fn: Callable[..., Any], placeholders: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """Run the pipeline function once: its nodes (named after the local variables holding them) as
    ``jobs``, and the outputs it returns (each bound to the node output that writes it)."""
    builder = _Builder()
    captured: dict[str, Any] = {}

    def tracer(frame: Any, event: str, arg: Any) -> None:
        if event == "return" and frame.f_code is fn.__code__:
            captured.update(frame.f_locals)

    _BUILDERS.append(builder)
    old = sys.getprofile()
    sys.setprofile(tracer)
    try:
        result = fn(**placeholders)
    finally:
        sys.setprofile(old)
        _BUILDERS.pop()
    names: dict[int, str] = {id(v): k for k, v in captured.items() if isinstance(v, Node)}
    used: set[str] = set()
    for node in builder.nodes:
        base = names.get(id(node)) or node.component.name or getattr(node.component, "display_name", None) or "node"
        cand, i = base, 1
        while cand in used:
            cand, i = f"{base}_{i}", i + 1
        node.name = cand
        used.add(cand)
    outputs: dict[str, Any] = {}
    out_bindings: dict[tuple[str, str], str] = {}
    if isinstance(result, dict):
        for y, out in result.items():
            if not isinstance(out, NodeOutput):
                raise TypeError(f"pipeline output {y!r} must be a node output, got {type(out).__name__}")
            outputs[y] = {"type": out.type or out._node.component.outputs[out._port].type,
                          **({"mode": out.mode} if out.mode else {}),
                          **({"path": out.path} if out.path else {})}
            out_bindings[(out._node.name or "", out._port)] = y
    jobs: dict[str, Any] = {}
    for node in builder.nodes:
        nd = node._to_node()
        for port in list(node.component.outputs):
            y = out_bindings.get((node.name or "", port))
            if y:
                nd["outputs"][port] = f"${{{{parent.outputs.{y}}}}}"
        jobs[node.name or ""] = nd
    return jobs, outputs, result


def _as_component_node(fn: Callable[..., Any], sig: inspect.Signature, args: dict[str, Any], jobs: dict[str, Any],
                       outputs: dict[str, Any], display_name: str | None, description: str | None) -> Node:
    """A ``@dsl.pipeline`` function called inside another: a node running it as a pipeline component
    (azure-ai-ml behaviour), its parameters the component's inputs, bound to the arguments given."""
    from openaml.dsl._node import make_node
    from openaml.entities import Input
    from openaml.entities._component import COMPONENT_NAME_PATTERN, PipelineComponent

    ports: dict[str, Any] = {}
    for k, v in args.items():
        typ = _port_type(v)
        if typ is None:
            ann = sig.parameters[k].annotation
            typ = "uri_folder" if ann is Input else {int: "integer", float: "number", bool: "boolean",
                                                     str: "string"}.get(ann)
        ports[k] = {k2: v2 for k2, v2 in (("type", typ), ("optional", True if v is None else None)) if v2 is not None}
    cname = fn.__name__ if re.fullmatch(COMPONENT_NAME_PATTERN, fn.__name__) else None
    comp = PipelineComponent(name=cname, display_name=display_name or fn.__name__,
                             description=description or fn.__doc__, inputs=ports, outputs=outputs, jobs=jobs)
    return make_node(comp, {k: v for k, v in args.items() if v is not None})


def _port_type(v: Any) -> str | None:
    from openaml.entities import Input

    if isinstance(v, PipelineInput):
        return _port_type(v._value)
    if isinstance(v, NodeOutput):
        return v.type or v._node.component.outputs[v._port].type
    if isinstance(v, Input):
        return v.type
    if v is None or isinstance(v, dict):
        return None
    return _literal_type(v)


def _literal_type(v: Any) -> str:
    from openaml.entities._io import _literal_type as lt

    return lt(v)
