"""Parallel jobs (azure-ai-ml ``azure.ai.ml.parallel``): ``parallel_run_function`` and ``RunFunction``.

``parallel_run_function(...)`` builds a :class:`ParallelJob` (``type: parallel``): submit it with
``ml_client.jobs.create_or_update(job)``, or call it inside a ``@dsl.pipeline`` function to make a
pipeline node. The engine that runs it (mini-batches, workers, retries, thresholds, ``append_row``
output, progress, resume) is :mod:`openaml.parallel._openaml_parallel`; its rules are in docs/guide/batch.md.
"""

from __future__ import annotations

from typing import Any

from openaml.parallel._entity import ParallelJob, ParallelTask, RetrySettings, parse_mini_batch_size

__all__ = ["ParallelJob", "RunFunction", "RetrySettings", "parallel_run_function", "parse_mini_batch_size"]


class RunFunction(ParallelTask):
    """``RunFunction(code=..., entry_script=..., program_arguments=..., environment=...,
    append_row_to=...)``: the ``task`` of a parallel job (``type: run_function``), as in azure-ai-ml."""

    def __init__(self, *, code: str | None = None, entry_script: str | None = None, program_arguments: str | None = None,
                 model: Any = None, append_row_to: str | None = None, environment: Any = None, **kwargs: Any) -> None:
        super().__init__(type="run_function", code=code, entry_script=entry_script,
                         program_arguments=program_arguments, model=model, append_row_to=append_row_to,
                         environment=environment, **kwargs)


def parallel_run_function(*, name: str | None = None, description: str | None = None, tags: dict[str, str] | None = None,
                          properties: dict[str, str] | None = None, display_name: str | None = None,
                          experiment_name: str | None = None, compute: str | None = None,
                          retry_settings: Any = None, environment_variables: dict[str, str] | None = None,
                          logging_level: str | None = None, max_concurrency_per_instance: int | None = None,
                          error_threshold: int | None = None, mini_batch_error_threshold: int | None = None,
                          task: RunFunction | ParallelTask | dict[str, Any] | None = None,
                          mini_batch_size: int | str | None = None, partition_keys: list[str] | None = None,
                          input_data: str | None = None, inputs: dict[str, Any] | None = None,
                          outputs: dict[str, Any] | None = None, instance_count: int | None = None,
                          instance_type: str | None = None, docker_args: str | None = None,
                          shm_size: str | None = None, identity: Any = None, is_deterministic: bool = True,
                          **kwargs: Any) -> ParallelJob:
    """A parallel job (azure-ai-ml ``parallel_run_function``; spec 5.3).

    ``retry_settings``: a dict ``{max_retries, timeout}`` or a :class:`RetrySettings` (azure-ai-ml's
    ``RetrySettings``). ``mini_batch_size``: a file count for a uri_folder, a size ("10kb", "1MB")
    for tabular inputs. ``instance_count`` x ``max_concurrency_per_instance`` workers run ``task``.

    Raises:
        ValidationError: a field of the wrong shape (a malformed ``mini_batch_size``...), naming it.
    """
    resources: dict[str, Any] = {}
    for key, value in (("instance_count", instance_count), ("instance_type", instance_type),
                       ("docker_args", docker_args), ("shm_size", shm_size)):
        if value is not None:
            resources[key] = value
    if retry_settings is not None and not isinstance(retry_settings, (dict, RetrySettings)):
        retry_settings = {"max_retries": getattr(retry_settings, "max_retries", None),
                          "timeout": getattr(retry_settings, "timeout", None)}
    fields: dict[str, Any] = {
        "name": name, "description": description, "tags": tags or {}, "properties": properties or {},
        "display_name": display_name, "experiment_name": experiment_name, "compute": compute,
        "retry_settings": retry_settings, "environment_variables": environment_variables or {},
        "logging_level": logging_level, "max_concurrency_per_instance": max_concurrency_per_instance,
        "error_threshold": error_threshold, "mini_batch_error_threshold": mini_batch_error_threshold,
        "task": task, "mini_batch_size": mini_batch_size, "partition_keys": partition_keys,
        "input_data": input_data, "inputs": inputs or {}, "outputs": outputs or {},
        "resources": resources or None, "identity": identity if isinstance(identity, dict) or identity is None else None,
        "is_deterministic": is_deterministic,
    }
    if isinstance(task, ParallelTask):
        fields["task"] = task.model_dump(exclude_none=True)
    import pydantic

    from openaml.entities._base import validation_error_from_pydantic

    try:
        return ParallelJob.model_validate({k: v for k, v in fields.items() if v is not None})
    except pydantic.ValidationError as exc:  # openaml's own error naming the field, as everywhere else
        raise validation_error_from_pydantic(exc, source=None, lines=None, kind="parallel_run_function",
                                             model=ParallelJob) from None
