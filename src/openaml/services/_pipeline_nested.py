"""Pipeline components used as nodes (spec 5.4), expanded into the parent's graph before compiling.

A ``type: pipeline`` node runs the nodes of its component. Here they become nodes of the parent
graph named ``<node>-<inner node>`` (nested to any depth: ``outer-inner-step``), their
``${{parent.inputs.x}}`` replaced by what the pipeline node binds to ``x`` (or the port's default),
their ``${{parent.jobs.k...}}`` renamed, and their ``${{parent.outputs.y}}`` given what the pipeline
node does with its output ``y``. A binding to ``${{parent.jobs.<node>.outputs.y}}`` then names the
inner node that writes ``y``. Steps are therefore ordinary child jobs of the top pipeline: reuse,
restart, cancel and slots work the same for them; ``job show`` indents them under their node.

Azure ML runs a pipeline component as a nested pipeline job; the graph and the outputs are the same.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from openaml._templates import EXPR
from openaml.constants import DATA_TYPES, MODEL_TYPES
from openaml.errors import OpenAMLError
from openaml.services._job_resolve import ResolveErrors

__all__ = ["expand_pipeline_nodes", "NODE_NAME", "SEP"]

PARENT = re.compile(r"^\$\{\{\s*parent\.(inputs|outputs|jobs)\.([A-Za-z0-9_\-.]+)\s*\}\}$")
NODE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SEP = "-"  # not allowed in node names, allowed in job names: unambiguous
_DATA = set(DATA_TYPES) | set(MODEL_TYPES)
_MAX_DEPTH = 10
_DROP = object()


def expand_pipeline_nodes(jobs: dict[str, Any], resolve: Any, errors: ResolveErrors,
                          where: str = "jobs", depth: int = 0) -> dict[str, Any]:
    """``jobs`` with every pipeline-component node replaced by its (recursively expanded) nodes.

    Args:
        jobs: node name -> node dict (a pipeline job's or component's ``jobs``).
        resolve: ``ref -> component dict`` for ``azureml:`` references.
        where: the field path of ``jobs`` in messages (``jobs.outer.component.jobs`` when nested).

    Problems (node names, unknown or unbound ports, outputs no inner node writes) go to ``errors``.
    """
    flat: dict[str, Any] = {}
    aliases: dict[tuple[str, str], Any] = {}
    pipeline_nodes: dict[str, dict[str, Any]] = {}
    for node, nd in jobs.items():
        if not NODE_NAME.fullmatch(node):
            errors.add(f"{where}.{node}", "node names are letters, digits and underscores, starting with a letter")
            continue
        comp = _pipeline_component(node, nd, resolve, errors, where)
        if comp is None:
            flat[node] = nd
            continue
        if depth >= _MAX_DEPTH:
            errors.add(f"{where}.{node}.component", f"pipeline components nest deeper than {_MAX_DEPTH} levels")
            continue
        pipeline_nodes[node] = comp
        inner = expand_pipeline_nodes(copy.deepcopy(comp.get("jobs") or {}), resolve, errors,
                                      f"{where}.{node}.component.jobs", depth + 1)
        lifted, outs = _lift(node, nd, comp, inner, errors, f"{where}.{node}")
        flat.update(lifted)
        for y, binding in outs.items():
            aliases[(node, y)] = binding
    for node, nd in flat.items():
        nd["inputs"] = {k: _rename_refs(v, aliases, pipeline_nodes, errors, f"{where}.{node}.inputs.{k}")
                        for k, v in (nd.get("inputs") or {}).items()}
    return flat


def _pipeline_component(node: str, nd: dict[str, Any], resolve: Any, errors: ResolveErrors,
                        where: str) -> dict[str, Any] | None:
    ref = nd.get("component")
    comp: Any = None
    if isinstance(ref, dict):
        comp = ref
    elif isinstance(ref, str) and (nd.get("type") == "pipeline" or ref.startswith("azureml:")):
        try:
            comp = resolve(ref)
        except OpenAMLError as exc:
            if nd.get("type") == "pipeline":
                errors.add(f"{where}.{node}.component", exc.message)
                nd["_reported"] = True
            return None
    if isinstance(comp, dict) and (comp.get("type") == "pipeline" or "jobs" in comp):
        return comp
    if nd.get("type") == "pipeline" and not nd.get("_reported"):
        errors.add(f"{where}.{node}.component", "a type: pipeline node needs a pipeline component "
                                                 "(type: pipeline, with inputs, outputs and jobs)")
        nd["_reported"] = True
    return None


def _lift(node: str, nd: dict[str, Any], comp: dict[str, Any], inner: dict[str, Any], errors: ResolveErrors,
          where: str) -> tuple[dict[str, Any], dict[str, str]]:
    ports_in: dict[str, Any] = comp.get("inputs") or {}
    ports_out: dict[str, Any] = comp.get("outputs") or {}
    given: dict[str, Any] = nd.get("inputs") or {}
    cname = comp.get("name") or comp.get("display_name") or node
    for k in given:
        if k not in ports_in:
            errors.add(f"{where}.inputs.{k}", f"pipeline component {cname!r} has no input {k!r}; inputs: "
                                              f"{', '.join(sorted(ports_in)) or 'none'}")
    bind: dict[str, Any] = {}
    for k, port in ports_in.items():
        port = port or {}
        if k in given and given[k] is not None:
            value = given[k]
            if port.get("type") in _DATA and isinstance(value, (int, float, bool)):
                errors.add(f"{where}.inputs.{k}", f"type mismatch: {value!r} given to the {port['type']} input "
                                                  f"{k!r} of pipeline component {cname!r}; give a path or a binding")
            bind[k] = value
        elif port.get("default") is not None:
            bind[k] = port["default"]
        elif port.get("path") is not None:
            bind[k] = {"type": port.get("type") or "uri_folder", "path": port["path"]}
        elif port.get("optional"):
            bind[k] = _DROP
        else:
            errors.add(f"{where}.inputs.{k}", f"required input {k!r} of pipeline component {cname!r} is not bound; "
                                              "give it a value or bind it to ${{parent.inputs.<name>}} or "
                                              "${{parent.jobs.<node>.outputs.<name>}}")
            bind[k] = _DROP
    node_outs: dict[str, Any] = nd.get("outputs") or {}
    for y in node_outs:
        if y not in ports_out:
            errors.add(f"{where}.outputs.{y}", f"pipeline component {cname!r} has no output {y!r}; outputs: "
                                               f"{', '.join(sorted(ports_out)) or 'none'}")
    lifted: dict[str, Any] = {}
    writers: dict[str, str] = {}
    for k, snd in inner.items():
        new = f"{node}{SEP}{k}"
        snd = dict(snd)
        snd["inputs"] = {i: v for i, v in ((i, _subst(v, bind, node)) for i, v in (snd.get("inputs") or {}).items())
                         if v is not _DROP}
        if isinstance(snd.get("compute"), str):
            c = _subst(snd["compute"], bind, node)
            snd["compute"] = None if c is _DROP or not isinstance(c, str) else c
        default_compute = nd.get("compute") or (comp.get("settings") or {}).get("default_compute")
        if not snd.get("compute") and default_compute:
            snd["compute"] = default_compute
        outs: dict[str, Any] = {}
        for o, v in (snd.get("outputs") or {}).items():
            target = v.get("path") if isinstance(v, dict) else v
            m = PARENT.match(target) if isinstance(target, str) else None
            if m and m.group(1) == "outputs":
                y = m.group(2)
                if y not in ports_out:
                    errors.add(f"{where}.component.jobs.{k}.outputs.{o}",
                               f"binds to output {y!r} of pipeline component {cname!r}, which it does not declare; "
                               f"outputs: {', '.join(sorted(ports_out)) or 'none'}")
                    continue
                writers[y] = f"${{{{parent.jobs.{new}.outputs.{o}}}}}"
                outer = node_outs.get(y)
                mode = (v.get("mode") if isinstance(v, dict) else None) or (ports_out.get(y) or {}).get("mode")
                if isinstance(outer, str) and outer.strip():
                    outs[o] = outer
                elif isinstance(outer, dict):
                    outs[o] = {**({"mode": mode} if mode else {}), **outer}
                else:
                    outs[o] = {"mode": mode} if mode else {}
            else:
                outs[o] = v
        snd["outputs"] = outs
        lifted[new] = snd
    for y in ports_out:
        if y not in writers:
            errors.add(f"{where}.component.outputs.{y}", f"output {y!r} of pipeline component {cname!r} is not "
                                                         "written by any of its nodes (a node output must say "
                                                         "${{parent.outputs." + y + "}})")
    return lifted, writers


def _subst(value: Any, bind: dict[str, Any], node: str) -> Any:
    """One inner input (or compute) with the component's ``${{parent.inputs.x}}`` replaced."""
    if isinstance(value, str):
        m = PARENT.match(value)
        if m and m.group(1) == "inputs":
            return bind.get(m.group(2), _DROP) if m.group(2) in bind else value
        if m and m.group(1) == "jobs":
            return f"${{{{parent.jobs.{node}{SEP}{m.group(2)}}}}}"
        if "${{parent.inputs." in value:
            def sub(mm: re.Match[str]) -> str:
                expr = mm.group(1)
                if expr.startswith("parent.inputs.") and expr[len("parent.inputs."):] in bind:
                    b = bind[expr[len("parent.inputs."):]]
                    return "" if b is _DROP else str(b) if not isinstance(b, dict) else str(b.get("path", ""))
                return str(mm.group(0))
            return EXPR.sub(sub, value)
        return value
    if isinstance(value, dict) and isinstance(value.get("path"), str) and PARENT.match(value["path"]):
        got = _subst(value["path"], bind, node)
        if got is _DROP:
            return _DROP
        if isinstance(got, dict):
            return {**got, **{k: v for k, v in value.items() if k not in ("path", "type") and v is not None}}
        return {**value, "path": got}
    return value


def _rename_refs(value: Any, aliases: dict[tuple[str, str], str], pipeline_nodes: dict[str, Any],
                 errors: ResolveErrors, field: str) -> Any:
    """``${{parent.jobs.<pipeline node>.outputs.y}}`` -> the inner node output that writes ``y``."""
    target = value.get("path") if isinstance(value, dict) else value
    m = PARENT.match(target) if isinstance(target, str) else None
    if not m or m.group(1) != "jobs":
        return value
    pnode, _, out = m.group(2).partition(".outputs.")
    if pnode not in pipeline_nodes or not out:
        return value
    binding = aliases.get((pnode, out))
    if binding is None:
        ports = pipeline_nodes[pnode].get("outputs") or {}
        if out not in ports:
            errors.add(field, f"binds to output {out!r} of node {pnode!r}, which has no such output; outputs: "
                              f"{', '.join(sorted(ports)) or 'none'}")
        return value if out not in ports else None
    return {**value, "path": binding} if isinstance(value, dict) else binding
