"""AutoML inside ``@dsl.pipeline`` (azure-ai-ml behaviour): ``automl.classification(...)`` called in
a pipeline function is a ``type: automl`` node.

Its data arguments may be other nodes' outputs or pipeline inputs; ``set_limits``,
``set_training``, ``set_featurization``, ``set_data`` and ``set_forecast_settings`` configure it
as they do a standalone AutoML job; ``node.outputs.best_model`` (``mlflow_model``: the best
trial's MLflow model) feeds later nodes. The server side is :mod:`openaml.services._pipeline_automl`.
"""

from __future__ import annotations

from typing import Any

from openaml.entities._automl import AutoMLJob
from openaml.entities._io import Output
from openaml.entities._node import Node, NodeOutput, PipelineInput

__all__ = ["AutoMLNode", "DATA_KEYS", "is_binding"]

DATA_KEYS = ("training_data", "validation_data", "test_data")


def is_binding(v: Any) -> bool:
    return isinstance(v, (NodeOutput, PipelineInput))


class _AutoMLPorts:
    """The component an AutoML node stands for: no name, one output ``best_model``."""

    name = None
    display_name = None
    type = "automl"

    def __init__(self) -> None:
        self.inputs = dict.fromkeys(DATA_KEYS)
        self.outputs = {"best_model": Output(type="mlflow_model")}


class AutoMLNode(Node):
    """A ``type: automl`` node wrapping an :class:`AutoMLJob` (``job``); the job's methods and
    fields are reachable on the node (``node.set_limits(...)``, ``node.task``)."""

    def __init__(self, job: AutoMLJob, data: dict[str, Any]) -> None:
        super().__init__(_AutoMLPorts(), data)
        self.job = job
        self.compute = job.compute
        self.display_name = job.display_name

    def __getattr__(self, name: str) -> Any:
        if name == "job" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.job, name)

    def set_data(self, **kw: Any) -> None:
        """As ``AutoMLJob.set_data``; node outputs and pipeline inputs bind the data."""
        for key in DATA_KEYS:
            if is_binding(kw.get(key)):
                self.inputs[key] = kw.pop(key)
        if kw.get("training_data") is None and "training_data" in self.inputs:
            kw["training_data"] = {"type": "mltable", "path": "./bound-in-pipeline"}
        self.job.set_data(**kw)
        for key in DATA_KEYS:
            value = getattr(self.job, key, None)
            if value is not None and not str(value.path).startswith("./bound-in-pipeline") \
                    and not is_binding(self.inputs.get(key)):
                self.inputs[key] = value

    def _to_node(self) -> dict[str, Any]:
        nd: dict[str, Any] = {"type": "automl", **self.job.model_dump(
            mode="json", exclude_none=True, exclude={"type", "outputs", "name", "compute", "display_name",
                                                     *DATA_KEYS})}
        for key, v in self.inputs.items():
            if is_binding(v):
                nd[key] = {"type": "mltable", "path": v._binding()}
            elif v is not None:
                nd[key] = v.model_dump(mode="json", exclude_none=True) if hasattr(v, "model_dump") else v
        outs = {k: o._override() for k, o in self.outputs.items() if o._override()}
        if outs:
            nd["outputs"] = outs
        compute = self.compute or self.job.compute
        if compute:
            nd["compute"] = compute
        if self.display_name:
            nd["display_name"] = self.display_name
        return nd
