"""The job types: ``type`` of a job YAML or wire record -> its entity class, imported on first use.

A table rather than imports so that reading a command job (the CLI's ``job list``, the runner)
does not import the sweep and pipeline entities. A new job kind adds one line here.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["JOB_TYPE_PATHS", "job_class", "job_type_names"]

# type -> "module:class"; the order is the one error messages list
JOB_TYPE_PATHS: dict[str, str] = {
    "command": "openaml.entities._job:CommandJob",
    "pipeline": "openaml.entities._pipeline:PipelineJob",
    "sweep": "openaml.entities._sweep:SweepJob",
    "parallel": "openaml.parallel._entity:ParallelJob",
    "automl": "openaml.entities._automl:AutoMLJob",
}


def job_class(job_type: str | None) -> Any:
    """The entity class of ``job_type`` (``None`` means ``command``, as in Azure ML), or None if unknown."""
    path = JOB_TYPE_PATHS.get(job_type or "command")
    if path is None:
        return None
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def job_type_names() -> list[str]:
    """The supported job types, for error messages."""
    return list(JOB_TYPE_PATHS)
