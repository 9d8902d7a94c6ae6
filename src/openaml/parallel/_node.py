"""``parallel_run_function(...)(**inputs)`` inside ``@dsl.pipeline``: a ``type: parallel`` node
(azure-ai-ml's ``Parallel`` node) bound to pipeline inputs and other nodes' outputs."""

from __future__ import annotations

from typing import Any

from openaml.entities._node import Node, current_builder
from openaml.errors import ValidationError
from openaml.parallel._entity import ParallelJob

__all__ = ["ParallelNode", "make_parallel_node"]


class ParallelNode(Node):
    """A parallel node: the job's parallel fields, its declared inputs (bound or with their own
    path) and outputs; ``compute``, ``display_name``, ``environment_variables`` as any node."""

    component: ParallelJob

    def _to_node(self) -> dict[str, Any]:
        nd = super()._to_node()
        nd.pop("component", None)
        nd.pop("limits", None)
        job = self.component
        data = job.model_dump(mode="json", exclude_none=True)
        nd["type"] = "parallel"
        for key in ("input_data", "mini_batch_size", "partition_keys", "max_concurrency_per_instance",
                    "error_threshold", "mini_batch_error_threshold", "logging_level", "retry_settings", "task",
                    "resources", "is_deterministic"):
            if key in data:
                nd[key] = data[key]
        for k, inp in data.get("inputs", {}).items():  # declared inputs not bound at the call keep their own value
            if k not in nd["inputs"] and any(inp.get(x) is not None for x in ("path", "value", "default")):
                nd["inputs"][k] = inp
        for k, out in data.get("outputs", {}).items():
            cur = nd["outputs"].get(k)
            nd["outputs"][k] = {**out, **cur} if isinstance(cur, dict) else (cur or out)
        if self.compute is None and job.compute:
            nd["compute"] = job.compute
        if job.environment_variables and not self.environment_variables:
            nd["environment_variables"] = dict(job.environment_variables)
        return nd


def make_parallel_node(job: ParallelJob, kwargs: dict[str, Any]) -> ParallelNode:
    """Bind ``kwargs`` to ``job``'s declared inputs.

    Raises:
        ValidationError: an input the parallel job does not declare.
    """
    unknown = sorted(set(kwargs) - set(job.inputs))
    if unknown:
        raise ValidationError(f"parallel {job.name or 'job'}: no input(s) {', '.join(unknown)}; inputs: "
                              f"{', '.join(job.inputs) or 'none'}", details={"field": f"inputs.{unknown[0]}"})
    node = ParallelNode(job, {k: v for k, v in kwargs.items() if v is not None})
    builder = current_builder()
    if builder is not None:
        builder.add(node)
    return node
