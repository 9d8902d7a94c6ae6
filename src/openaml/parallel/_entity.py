"""The parallel job entity (azure-ai-ml ``ParallelJob`` / YAML ``type: parallel``; spec 5.3).

The YAML shape is Azure's parallel job schema: ``inputs``, ``outputs``, ``input_data:
${{inputs.x}}``, ``mini_batch_size`` (a file count for folders, a size such as ``"10kb"`` or
``"1MB"`` for tabular inputs), ``partition_keys``, ``resources.instance_count``,
``max_concurrency_per_instance``, ``error_threshold``, ``mini_batch_error_threshold``,
``retry_settings {max_retries, timeout}``, ``logging_level``, ``environment_variables`` and
``task {type: run_function, code, entry_script, environment, program_arguments, append_row_to}``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from openaml.entities._base import Entity
from openaml.entities._environment import Environment
from openaml.entities._io import Input, Output, normalize_inputs, normalize_outputs
from openaml.entities._job import Job, JobResources

__all__ = ["ParallelJob", "ParallelTask", "RetrySettings", "parse_mini_batch_size", "check_output_file_name",
           "append_row_file_name", "DEFAULTS"]

# Azure ML's defaults for a parallel job (azure-ai-ml ``parallel_run_function`` and PRS)
DEFAULTS: dict[str, Any] = {
    "mini_batch_size_files": 10, "mini_batch_size_tabular": "1MB", "max_concurrency_per_instance": 1,
    "error_threshold": -1, "mini_batch_error_threshold": -1, "max_retries": 3, "timeout": 60,
    "logging_level": "INFO", "output_file_name": "parallel_run_step.txt",
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def check_output_file_name(value: Any) -> str | None:
    """The problem with an ``append_row`` output file name, or None when it is a plain file name.

    The file is written inside the output folder: a name with a folder part (``/``, ``\\``), ``.``
    or ``..``, or an empty one, would land elsewhere or nowhere (review: ``../x.csv`` was reported
    written while the output stayed empty).
    """
    name = "" if value is None else str(value)
    if not name.strip():
        return "is empty; give a file name such as predictions.csv"
    if "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        return f"{name!r} is not a plain file name (no folders, '.' or '..'): the file is written in the output folder"
    return None


def append_row_file_name(program_arguments: str | None) -> tuple[bool, str | None]:
    """Whether ``program_arguments`` gives ``--append_row_file_name`` (Azure's PRS flag) and its
    value (None when the flag has no value)."""
    import shlex

    try:
        args = shlex.split(program_arguments or "")
    except ValueError:
        args = (program_arguments or "").split()
    for i, a in enumerate(args):
        if a == "--append_row_file_name":
            nxt = args[i + 1] if i + 1 < len(args) else None
            return True, None if nxt is None or nxt.startswith("--") else nxt
        if a.startswith("--append_row_file_name="):
            return True, a.split("=", 1)[1]
    return False, None


def parse_mini_batch_size(value: Any) -> tuple[str, int]:
    """``("count", n)`` for a file count (``10``, ``"10"``) or ``("bytes", n)`` for a size
    (``"10kb"``, ``"1MB"``, ``"1.5 mb"``; units b, kb, mb, gb, powers of 1024 as Azure's PRS).

    Raises:
        ValueError: 0, a negative number, a bool, or a string that is neither (the message says which forms work).
    """
    hint = "give a file count (e.g. 10) for uri_folder inputs or a size (e.g. \"10kb\", \"1MB\") for tabular inputs"
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not a mini-batch size; {hint}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"{value} must be at least 1; {hint}")
        return "count", value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a mini-batch size; {hint}")
    number, unit = float(m.group(1)), (m.group(2) or "").lower()
    if not unit:
        if not m.group(1).isdigit() or int(m.group(1)) < 1:
            raise ValueError(f"{value!r} must be a whole number of at least 1; {hint}")
        return "count", int(m.group(1))
    size = int(number * _UNITS[unit])
    if size < 1:
        raise ValueError(f"{value!r} must be at least 1 byte; {hint}")
    return "bytes", size


class RetrySettings(Entity):
    """``retry_settings``: ``max_retries`` (tries after the first) and ``timeout`` (seconds one
    ``run()`` call may take; the worker is killed and the mini-batch retried after it)."""

    max_retries: int | None = Field(default=None, ge=0)
    timeout: int | None = Field(default=None, ge=1)


class ParallelTask(Entity):
    """``task``: what each worker runs (``type: run_function``: ``init()`` once, ``run()`` per mini-batch)."""

    type: str = "run_function"
    code: str | None = None
    entry_script: str | None = None
    environment: str | Environment | None = None
    program_arguments: str | None = None
    append_row_to: str | None = None
    model: Any = None
    environment_variables: dict[str, str] | None = None

    @field_validator("environment", mode="before")
    @classmethod
    def _env(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return Environment.model_validate(v)
        return v


class ParallelJob(Job):
    """A parallel job (``type: parallel``): ``run()`` of ``task.entry_script`` over mini-batches of
    ``input_data``, by ``resources.instance_count x max_concurrency_per_instance`` workers
    (:mod:`openaml.parallel`, engine rules in docs/guide/batch.md)."""

    # filled by the server (not listed as fields a user may set in an unknown-field error)
    _server_fields = ("status", "id", "creation_context", "studio_url", "created_at", "start_time", "end_time",
                      "error", "exit_code", "log_tail", "output_uris", "status_history", "warnings")

    type: Literal["parallel"] = "parallel"
    inputs: dict[str, Input] = Field(default_factory=dict)
    outputs: dict[str, Output] = Field(default_factory=dict)
    input_data: str | None = None
    mini_batch_size: int | str | None = None
    partition_keys: list[str] | None = None
    resources: JobResources | None = None
    max_concurrency_per_instance: int | None = Field(default=None, ge=1)
    error_threshold: int | None = Field(default=None, ge=-1)
    mini_batch_error_threshold: int | None = Field(default=None, ge=-1)
    logging_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] | None = None
    retry_settings: RetrySettings | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    task: ParallelTask | None = None
    is_deterministic: bool | None = None

    def __call__(self, **kwargs: Any) -> Any:
        """Inside a ``@dsl.pipeline`` function: a pipeline node bound to ``kwargs`` (azure-ai-ml's
        ``Parallel`` node)."""
        from openaml.entities._node import current_builder
        from openaml.parallel._node import make_parallel_node

        if current_builder() is None:
            raise TypeError("a parallel job is called inside a @dsl.pipeline function only (to make a node); "
                            "submit it with ml_client.jobs.create_or_update(job)")
        return make_parallel_node(self, kwargs)

    @field_validator("inputs", mode="before")
    @classmethod
    def _inputs(cls, v: Any) -> Any:
        return normalize_inputs(v)

    @field_validator("outputs", mode="before")
    @classmethod
    def _outputs(cls, v: Any) -> Any:
        return normalize_outputs(v)

    @field_validator("logging_level", mode="before")
    @classmethod
    def _level(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("mini_batch_size", mode="before")
    @classmethod
    def _mbs(cls, v: Any) -> Any:
        if v is None:
            return v
        parse_mini_batch_size(v)  # raises ValueError: the error names mini_batch_size
        return v

    @field_validator("environment_variables", mode="before")
    @classmethod
    def _env_str(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): "" if x is None else (str(x).lower() if isinstance(x, bool) else str(x)) for k, x in v.items()}
        return v
