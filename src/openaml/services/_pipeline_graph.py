"""Compiling a submitted pipeline into a plan, validated before anything runs (spec 4).

The plan names, for every node, the resolved component, where each input comes from (a literal,
a data path, or another node's output) and where each output goes. Every problem is reported
at once, naming the node and the field: cycles, bindings to missing nodes/outputs/inputs, type
mismatches, unbound required inputs, unknown component versions, unsupported node types.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from openaml._templates import EXPR
from openaml.constants import DATA_TYPES, MODEL_TYPES, PRIMITIVE_TYPES
from openaml.entities._component import CommandComponent
from openaml.entities._io import _literal_type
from openaml.errors import OpenAMLError
from openaml.services._job_resolve import ResolveErrors, _check_literal
from openaml.services._pipeline_nested import expand_pipeline_nodes

__all__ = ["compile_pipeline", "PARENT_BINDING"]

PARENT_BINDING = re.compile(r"^\$\{\{\s*parent\.(inputs|outputs|jobs)\.([A-Za-z0-9_\-.]+)\s*\}\}$")
_DATA = set(DATA_TYPES) | set(MODEL_TYPES)
_FILE_LIKE = {"uri_file"}


def _compatible(out_type: str, in_type: str) -> bool:
    """Azure loads a uri_file into a uri_folder port and a uri_folder into mltable (spec 1.3);
    a folder cannot feed a file port, and data cannot feed a literal parameter."""
    if in_type in PRIMITIVE_TYPES:
        return out_type in PRIMITIVE_TYPES
    if out_type in PRIMITIVE_TYPES:
        return False
    if in_type in _FILE_LIKE:
        return out_type in _FILE_LIKE
    return True


def compile_pipeline(spec: dict[str, Any], resolve_component: Any, errors: ResolveErrors) -> dict[str, Any]:
    """The execution plan of a validated ``PipelineJob`` dump (see the module docstring).

    Args:
        spec: ``PipelineJob.model_dump(mode="json")`` with components prepared by the SDK.
        resolve_component: ``ref -> component dict`` for ``azureml:`` references (raises NotFoundError).
    """
    p_inputs: dict[str, Any] = spec.get("inputs") or {}
    p_outputs: dict[str, Any] = spec.get("outputs") or {}
    jobs: dict[str, Any] = spec.get("jobs") or {}
    if spec.get("component"):
        if jobs:
            errors.add("component", "a pipeline job has either component (a pipeline component to run) or jobs, "
                                    "not both")
        else:
            p_inputs, p_outputs, jobs = _run_component(spec["component"], p_inputs, p_outputs, resolve_component,
                                                       errors)
    if not jobs:
        errors.add("jobs", "a pipeline needs at least one node under jobs:")
    jobs = expand_pipeline_nodes(copy.deepcopy(jobs), resolve_component, errors)
    components: dict[str, dict[str, Any]] = {}
    for node, nd in jobs.items():
        if nd.pop("_reported", False):
            continue
        comp = _node_component(node, nd, resolve_component, errors)
        if comp is not None:
            components[node] = comp
    plan_nodes: dict[str, Any] = {}
    pipeline_outputs: dict[str, Any] = {}
    for node, nd in jobs.items():
        comp = components.get(node)
        if comp is None:
            continue
        f = f"jobs.{node}"
        inputs: dict[str, Any] = {}
        decl_in = comp.get("inputs") or {}
        for in_name, raw in (nd.get("inputs") or {}).items():
            field = f"{f}.inputs.{in_name}"
            if in_name not in decl_in:
                # Azure ML runs such pipelines (public examples do this): the value is not passed on
                errors.warn(field, f"component {comp.get('name') or node!r} has no input {in_name!r}, so it is "
                                   f"ignored; inputs: {', '.join(sorted(decl_in)) or 'none'}")
                continue
            src = _input_source(raw, decl_in[in_name], field, p_inputs, jobs, components, errors)
            if src is not None:
                inputs[in_name] = src
        space = (nd.get("search_space") or {}) if nd.get("type") == "sweep" else {}
        for key in space:
            if key not in decl_in:
                errors.add(f"{f}.search_space.{key}", f"component {comp.get('name') or node!r} has no input {key!r} "
                                                      "to sweep; a search-space key names an input of the trial "
                                                      f"component; inputs: {', '.join(sorted(decl_in)) or 'none'}")
            elif key in inputs:
                errors.add(f"{f}.inputs.{key}", f"{key!r} is both in search_space and bound in inputs; keep one")
        for in_name, decl in decl_in.items():
            if in_name in inputs or in_name in space:
                continue
            if decl.get("default") is not None:
                inputs[in_name] = {"kind": "literal", "value": decl["default"], "type": decl.get("type")}
            elif decl.get("path") is not None:
                inputs[in_name] = {"kind": "data", "type": decl.get("type"), "path": decl["path"],
                                   "mode": decl.get("mode")}
            elif not decl.get("optional"):
                errors.add(f"{f}.inputs.{in_name}", f"required input {in_name!r} of component "
                                                     f"{comp.get('name') or node!r} is not bound; give it a value "
                                                     "or bind it to ${{parent.inputs.<name>}} or "
                                                     "${{parent.jobs.<node>.outputs.<name>}}")
        outputs: dict[str, Any] = {}
        decl_out = comp.get("outputs") or {}
        for out_name, decl in decl_out.items():
            outputs[out_name] = {"type": decl.get("type") or "uri_folder", "mode": decl.get("mode")}
        for out_name, raw in (nd.get("outputs") or {}).items():
            field = f"{f}.outputs.{out_name}"
            if out_name not in decl_out:
                errors.add(field, f"component {comp.get('name') or node!r} has no output {out_name!r}; outputs: "
                                  f"{', '.join(sorted(decl_out)) or 'none'}")
                continue
            target = outputs[out_name]
            binding = raw if isinstance(raw, str) else (raw or {}).get("path") if isinstance(raw, dict) else None
            m = PARENT_BINDING.match(binding) if isinstance(binding, str) else None
            if m and m.group(1) == "outputs":
                y = m.group(2)
                if y not in p_outputs:
                    errors.add(field, f"binds to pipeline output {y!r}, which is not declared; pipeline outputs: "
                                      f"{', '.join(sorted(p_outputs)) or 'none'}")
                    continue
                pipeline_outputs[y] = {"node": node, "output": out_name}
                po = p_outputs[y] or {}
                for k in ("path", "mode"):
                    if po.get(k):
                        target[k] = po[k]
                if isinstance(raw, dict):
                    target.update({k: v for k, v in raw.items() if k in ("mode", "name", "version") and v})
            elif isinstance(raw, dict):
                target.update({k: v for k, v in raw.items() if k in ("path", "mode", "type", "name", "version") and v})
            elif isinstance(raw, str) and raw.strip():
                errors.add(field, f"{raw!r} is not an output binding; use ${{{{parent.outputs.<name>}}}} or a "
                                  "mapping with path/mode")
        deps = sorted({s["node"] for s in inputs.values() if s["kind"] == "node"})
        env_vars = {str(k): "" if v is None else str(v) for k, v in (nd.get("environment_variables") or {}).items()}
        plan_nodes[node] = {
            "component": comp, "inputs": inputs, "outputs": outputs, "depends_on": deps,
            "compute": _node_compute(nd.get("compute"), p_inputs),
            "environment_variables": env_vars, "limits": nd.get("limits"), "resources": nd.get("resources"),
            "distribution": nd.get("distribution") or comp.get("distribution"),
            "display_name": nd.get("display_name") or node,
        }
        if nd.get("type") == "automl":
            plan_nodes[node]["limits"] = None
            plan_nodes[node]["automl"] = nd.get("automl") or {}
        if nd.get("type") == "sweep":
            plan_nodes[node]["limits"] = None
            plan_nodes[node]["sweep"] = {k: nd.get(k) for k in ("search_space", "objective", "sampling_algorithm",
                                                                 "early_termination", "limits") if nd.get(k)}
            if not space:
                errors.add(f"{f}.search_space", "a sweep node needs a search_space over inputs of its trial")
            if not nd.get("objective"):
                errors.add(f"{f}.objective", "a sweep node needs objective: {goal: maximize|minimize, "
                                             "primary_metric: <metric>}")
            elif space:
                _check_sweep(f, comp, plan_nodes[node]["sweep"], errors)
    for y in p_outputs:
        if y not in pipeline_outputs and jobs:
            errors.add(f"outputs.{y}", f"pipeline output {y!r} is not bound by any node "
                                       "(a node output must say ${{parent.outputs." + y + "}})")
    order = _topological(plan_nodes, errors)
    return {"nodes": plan_nodes, "order": order, "outputs": pipeline_outputs}


def _run_component(ref: Any, given_in: dict[str, Any], given_out: dict[str, Any], resolve: Any,
                   errors: ResolveErrors) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A pipeline job with ``component:`` (spec 4): the component's nodes, its ports as the job's
    inputs and outputs, the job's ``inputs``/``outputs`` giving their values and settings."""
    comp = ref
    if isinstance(ref, str):
        try:
            comp = resolve(ref)
        except OpenAMLError as exc:
            errors.add("component", exc.message)
            return given_in, given_out, {}
    if not isinstance(comp, dict) or comp.get("type") != "pipeline":
        errors.add("component", "a pipeline job's component must be a pipeline component (type: pipeline)")
        return given_in, given_out, {}
    ports_in, ports_out = comp.get("inputs") or {}, comp.get("outputs") or {}
    for k in given_in:
        if k not in ports_in:
            errors.add(f"inputs.{k}", f"the pipeline component has no input {k!r}; inputs: "
                                      f"{', '.join(sorted(ports_in)) or 'none'}")
    for k in given_out:
        if k not in ports_out:
            errors.add(f"outputs.{k}", f"the pipeline component has no output {k!r}; outputs: "
                                       f"{', '.join(sorted(ports_out)) or 'none'}")
    inputs = {k: {**(port or {}), **(given_in.get(k) or {}), **({"type": port["type"]} if (port or {}).get("type")
                                                                 else {})}
              for k, port in ports_in.items()}
    outputs = {k: {**(port or {}), **(given_out.get(k) or {})} for k, port in ports_out.items()}
    return inputs, outputs, copy.deepcopy(comp.get("jobs") or {})


def _check_sweep(f: str, comp: dict[str, Any], sweep: dict[str, Any], errors: ResolveErrors) -> None:
    """The sweep job a sweep node will submit, checked now by the sweep's own rules (spec 3)."""
    import pydantic

    from openaml.entities._sweep import SweepJob, sweep_problems

    try:
        job = SweepJob.model_validate({"trial": {"command": comp.get("command") or "true"}, **sweep})
    except pydantic.ValidationError as exc:
        for e in exc.errors():
            errors.add(f"{f}." + ".".join(str(x) for x in e["loc"]), e["msg"])
        return
    for problem in sweep_problems(job)[0]:
        m = re.match(r"field '([^']+)': (.*)", problem, re.S)
        errors.add(f"{f}.{m.group(1)}" if m else f, m.group(2) if m else problem)


def _node_compute(value: Any, p_inputs: dict[str, Any]) -> str | None:
    if isinstance(value, str):
        m = PARENT_BINDING.match(value)
        if m and m.group(1) == "inputs" and m.group(2) in p_inputs:
            value = p_inputs[m.group(2)].get("value") or p_inputs[m.group(2)].get("default")
    if isinstance(value, str) and value.startswith("azureml:"):
        value = value[len("azureml:"):]
    return value or None


def _node_component(node: str, nd: dict[str, Any], resolve: Any, errors: ResolveErrors) -> dict[str, Any] | None:
    f = f"jobs.{node}"
    ntype = nd.get("type") or "command"
    if ntype == "parallel":
        from openaml.services._parallel_nodes import parallel_node_component

        return parallel_node_component(f, nd, _inline_input_type, errors)
    if ntype == "automl":
        from openaml.services._pipeline_automl import automl_node_component

        return automl_node_component(f, nd, errors)
    if ntype not in ("command", "sweep"):
        errors.add(f"{f}.type", f"node type {ntype!r} is not supported in pipelines yet; supported: command, "
                                "sweep, parallel, pipeline, automl")
        return None
    ref = nd.get("component")
    if ntype == "sweep":
        ref = nd.get("trial") or ref
        if ref is None:
            errors.add(f"{f}.trial", "a sweep node needs 'trial': a component file, azureml:name:version or an "
                                     "inline command component")
            return None
    if ref is None:
        if not nd.get("command"):
            errors.add(f, "a node needs 'component' (file, azureml:name:version or inline) or an inline 'command'")
            return None
        inline_inputs = {}
        for k, v in (nd.get("inputs") or {}).items():
            t = _inline_input_type(v)
            inline_inputs[k] = {"type": "string" if t == "binding" else t, "optional": True}
        data = {"command": nd["command"], "code": nd.get("code"), "environment": nd.get("environment"),
                "inputs": inline_inputs, "outputs": {k: (v if isinstance(v, dict) and "type" in v else {})
                                                     for k, v in (nd.get("outputs") or {}).items()},
                "is_deterministic": nd.get("is_deterministic", True)}
        try:
            inline = CommandComponent.model_validate({k: v for k, v in data.items() if v is not None})
        except Exception as exc:  # noqa: BLE001 - pydantic error text names the field
            errors.add(f, str(exc).splitlines()[0])
            return None
        out: dict[str, Any] = inline.model_dump(mode="json", exclude_none=True)
        out["inline"] = True
        for k, v in (nd.get("inputs") or {}).items():  # inline nodes take the binding's type at run time
            if _inline_input_type(v) == "binding":
                out["inputs"][k]["type"] = "binding"
        return out
    if isinstance(ref, str):
        try:
            comp = resolve(ref)
        except OpenAMLError as exc:
            errors.add(f"{f}.trial" if ntype == "sweep" else f"{f}.component", exc.message)
            return None
        comp = dict(comp)
        comp["ref"] = f"{comp.get('name')}:{comp.get('version')}"
    elif isinstance(ref, dict):
        comp = dict(ref)
    else:
        errors.add(f"{f}.component", f"unexpected component {type(ref).__name__}")
        return None
    if comp.get("type", "command") != "command":
        errors.add(f"{f}.component", f"{comp.get('type')!r} components are not supported in pipelines yet")
        return None
    if nd.get("is_deterministic") is not None:
        comp["is_deterministic"] = nd["is_deterministic"]
    for key in ("command", "code", "environment"):
        if nd.get(key) is not None and key != "command":
            comp[key] = nd[key]
    return comp


def _inline_input_type(v: Any) -> str:
    if isinstance(v, str) and PARENT_BINDING.match(v):
        return "binding"
    if isinstance(v, dict):
        if isinstance(v.get("path"), str) and PARENT_BINDING.match(v["path"]):
            return v.get("type") or "binding"
        return v.get("type") or ("uri_folder" if "path" in v else _literal_type(v.get("value", v.get("default"))))
    return _literal_type(v)


def _input_source(raw: Any, decl: dict[str, Any], field: str, p_inputs: dict[str, Any], jobs: dict[str, Any],
                  components: dict[str, Any], errors: ResolveErrors) -> dict[str, Any] | None:
    in_type = decl.get("type") or "uri_folder"
    mode = None
    binding = raw
    if isinstance(raw, dict):
        mode = raw.get("mode")
        if isinstance(raw.get("path"), str) and PARENT_BINDING.match(raw["path"]):
            binding = raw["path"]
        elif "path" in raw:
            return {"kind": "data", "type": raw.get("type") or (in_type if in_type in _DATA else "uri_folder"),
                    "path": raw["path"], "mode": mode}
        elif "value" in raw or "default" in raw:
            binding = raw.get("value", raw.get("default"))
    if isinstance(binding, str):
        m = PARENT_BINDING.match(binding)
        if m:
            kind, rest = m.group(1), m.group(2)
            if kind == "inputs":
                if rest not in p_inputs:
                    errors.add(field, f"binds to pipeline input {rest!r}, which is not declared; pipeline inputs: "
                                      f"{', '.join(sorted(p_inputs)) or 'none'}")
                    return None
                pin = p_inputs[rest]
                ptype = pin.get("type") or "uri_folder"
                if ptype in _DATA:
                    if in_type not in ("binding",) and not _compatible(ptype, in_type):
                        errors.add(field, f"type mismatch: pipeline input {rest!r} is {ptype} but the input is {in_type}")
                        return None
                    if pin.get("path") is None:
                        if pin.get("optional") or decl.get("optional"):
                            return None
                        errors.add(field, f"pipeline input {rest!r} has no path")
                        return None
                    return {"kind": "data", "type": ptype, "path": pin["path"], "mode": mode or pin.get("mode")}
                value = pin.get("value", pin.get("default"))
                if value is None:
                    if not (pin.get("optional") or decl.get("optional")):
                        _unbound(field, rest, errors)
                    return None
                return _literal(value, decl, field, errors)
            if kind == "outputs":
                errors.add(field, "an input cannot bind to a pipeline output; bind to "
                                  "${{parent.jobs.<node>.outputs.<name>}}")
                return None
            node, _, out = rest.partition(".outputs.")
            if not out:
                errors.add(field, f"{binding!r}: expected ${{{{parent.jobs.<node>.outputs.<name>}}}}")
                return None
            if node not in jobs:
                errors.add(field, f"binds to node {node!r}, which does not exist; nodes: {', '.join(sorted(jobs))}")
                return None
            up = components.get(node)
            if up is None:
                return None  # that node's own error is reported
            up_outs = up.get("outputs") or {}
            if out not in up_outs:
                errors.add(field, f"binds to output {out!r} of node {node!r}, which has no such output; outputs: "
                                  f"{', '.join(sorted(up_outs)) or 'none'}")
                return None
            out_type = (up_outs[out] or {}).get("type") or "uri_folder"
            node_out = (jobs[node].get("outputs") or {}).get(out)
            if isinstance(node_out, dict) and node_out.get("type"):
                out_type = node_out["type"]
            if in_type != "binding" and not _compatible(out_type, in_type):
                errors.add(field, f"type mismatch: output {out!r} of node {node!r} is {out_type} but the input "
                                  f"is {in_type}")
                return None
            return {"kind": "node", "node": node, "output": out, "type": out_type, "mode": mode}
        if "${{parent." in binding:  # a literal with embedded parent inputs: "prefix-${{parent.inputs.x}}"
            def sub(mm: re.Match[str]) -> str:
                expr = mm.group(1)
                if expr.startswith("parent.inputs.") and expr[len("parent.inputs."):] in p_inputs:
                    pin = p_inputs[expr[len("parent.inputs."):]]
                    return str(pin.get("value", pin.get("default")))
                errors.add(field, f"${{{{{expr}}}}} cannot be embedded in a string; only parent.inputs can")
                return ""
            binding = EXPR.sub(sub, binding)
    if in_type in _DATA:
        if isinstance(binding, str):
            return {"kind": "data", "type": in_type, "path": binding, "mode": mode}
        errors.add(field, f"type mismatch: {binding!r} given to a {in_type} input; give a path")
        return None
    return _literal(binding, decl, field, errors)


def _unbound(field: str, name: str, errors: ResolveErrors) -> None:
    errors.add(field, f"pipeline input {name!r} has no value")
    return None


def _literal(value: Any, decl: dict[str, Any], field: str, errors: ResolveErrors) -> dict[str, Any] | None:
    in_type = decl.get("type") or _literal_type(value)
    if in_type == "binding":
        in_type = _literal_type(value)
    if in_type == "number" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if in_type in ("integer", "number") and isinstance(value, str):
        try:
            value = int(value) if in_type == "integer" else float(value)
        except ValueError:
            pass
    if in_type == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    problem = _check_literal(in_type, value, decl)
    if problem:
        errors.add(field, f"type mismatch: {problem}")
        return None
    return {"kind": "literal", "value": value, "type": in_type}


def _topological(nodes: dict[str, Any], errors: ResolveErrors) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}
    reported = False

    def visit(n: str, path: list[str]) -> None:
        nonlocal reported
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            if not reported:
                cyc = path[path.index(n):] + [n]
                errors.add(f"jobs.{n}", f"the graph has a cycle: {' -> '.join(cyc)}")
                reported = True
            return
        state[n] = 1
        for d in nodes[n]["depends_on"]:
            if d in nodes:
                visit(d, [*path, n])
        state[n] = 2
        order.append(n)

    for n in nodes:
        visit(n, [])
    return order
