"""AutoML as a pipeline node (spec 6.1, Azure ML's ``type: automl`` step in a pipeline job).

A node ``type: automl`` carries the AutoML job's fields (``task``, ``target_column_name``,
``training_data``, ``limits`` ...; gathered under ``automl`` by ``PipelineNode``). Its data
inputs (``training_data``/``validation_data``/``test_data``) bind like any node input
(``${{parent.jobs.<node>.outputs.<name>}}``, ``${{parent.inputs.<name>}}`` or a path); its one
output is ``best_model`` (``mlflow_model``): the best trial's ``outputs/mlflow-model`` folder,
which later steps consume. At run time the node is an AutoML job (``<pipeline>-<node>``, a child
of the pipeline) whose trials are its own child jobs, as in Azure ML.
"""

from __future__ import annotations

import re
from typing import Any

from openaml.services._job_resolve import ResolveErrors

__all__ = ["AUTOML_DATA", "automl_node_component", "automl_node_spec"]

AUTOML_DATA = ("training_data", "validation_data", "test_data")


def automl_node_component(f: str, nd: dict[str, Any], errors: ResolveErrors) -> dict[str, Any] | None:
    """The component a ``type: automl`` node stands for: its data fields as ``mltable`` inputs (moved
    from ``nd["automl"]`` to ``nd["inputs"]`` so they bind as any input) and the output
    ``best_model`` (``mlflow_model``). The AutoML fields are checked now by the AutoML job's rules
    (:func:`openaml.entities._automl.automl_problems`), each problem named ``jobs.<node>.<field>``."""
    import pydantic

    from openaml.entities._automl import AutoMLJob, automl_problems

    settings = dict(nd.get("automl") or {})
    inputs = dict(nd.get("inputs") or {})
    for key in AUTOML_DATA:
        if key in settings:
            inputs[key] = settings.pop(key)
    for key in list(inputs):
        if key not in AUTOML_DATA:
            errors.add(f"{f}.inputs.{key}", f"an automl node takes only {', '.join(AUTOML_DATA)} as inputs")
            inputs.pop(key)
    nd["inputs"] = inputs
    nd["automl"] = settings
    outputs = nd.get("outputs") or {}
    for key in outputs:
        if key != "best_model":
            errors.add(f"{f}.outputs.{key}", "an automl node has one output, best_model (mlflow_model)")
    placeholder = {k: {"type": "mltable", "path": "./placeholder"} for k in inputs}
    try:
        job = AutoMLJob.model_validate({**settings, **placeholder})
    except pydantic.ValidationError as exc:
        for e in exc.errors():
            errors.add(f"{f}." + ".".join(str(x) for x in e["loc"]), e["msg"])
        return None
    for problem in automl_problems(job)[0]:
        m = re.match(r"field '([^']+)'[: ]+(.*)", problem, re.S)
        errors.add(f"{f}.{m.group(1)}" if m else f, m.group(2) if m else problem)
    return {"name": None, "display_name": f.removeprefix("jobs."), "type": "command",
            "inputs": {k: {"type": "mltable", "optional": k != "training_data"} for k in AUTOML_DATA},
            "outputs": {"best_model": {"type": "mlflow_model"}}, "automl": True}


def automl_node_spec(row: dict[str, Any], node: str, nd: dict[str, Any], inputs: dict[str, Any],
                     outputs: dict[str, Any], reason: str) -> dict[str, Any]:
    """The AutoML job a started ``type: automl`` node submits (named ``<pipeline>-<node>``): the
    node's AutoML fields, its bound data inputs, its compute (the node's, else the pipeline's
    default) and its ``best_model`` output settings."""
    name = row["name"]
    spec: dict[str, Any] = {
        **(nd.get("automl") or {}), "type": "automl", "name": f"{name}-{node}",
        "experiment_name": row["experiment_name"], "display_name": nd.get("display_name") or node,
        "properties": {"azureml.isreused": "false", "openaml.reason": reason, "openaml.pipeline_node": node},
        "tags": {"openaml.pipeline": name, "openaml.node": node},
    }
    for key in AUTOML_DATA:
        if key in inputs and inputs[key].get("path"):
            spec[key] = {k: v for k, v in inputs[key].items() if k in ("type", "path", "mode")}
    if nd.get("compute"):
        spec["compute"] = nd["compute"]
    best = {k: v for k, v in (outputs.get("best_model") or {}).items() if v is not None}
    spec["outputs"] = {"best_model": {"type": "mlflow_model", **best}}
    return spec
