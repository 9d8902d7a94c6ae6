"""``command(...)``: the azure-ai-ml builder for command jobs."""

from __future__ import annotations

from typing import Any

from openaml.entities import CommandJob

__all__ = ["command"]


def command(*, command: str, code: str | None = None, inputs: dict[str, Any] | None = None,
            outputs: dict[str, Any] | None = None, environment: Any = None, compute: str | None = None,
            name: str | None = None, display_name: str | None = None, description: str | None = None,
            tags: dict[str, str] | None = None, properties: dict[str, str] | None = None,
            experiment_name: str | None = None, environment_variables: dict[str, str] | None = None,
            instance_count: int | None = None, instance_type: str | None = None,
            distribution: dict[str, Any] | None = None, timeout: int | None = None,
            resources: Any = None, limits: Any = None, **kwargs: Any) -> CommandJob:
    """Build a command job, as ``azure.ai.ml.command``.

    Inputs may be ``Input`` objects or literals; ``environment`` an ``Environment`` or a
    reference string (``name@latest``, ``name:version``, curated names). Relative ``code`` and
    input paths are resolved against the current folder when the job is submitted.

    Raises:
        ValidationError: unknown keyword arguments, or invalid field values.
    """
    if kwargs:
        from openaml.errors import ValidationError

        raise ValidationError(f"command() got unknown arguments: {', '.join(sorted(kwargs))}")
    data: dict[str, Any] = {"command": command}
    for key, value in (("code", code), ("inputs", inputs), ("outputs", outputs), ("environment", environment),
                       ("compute", compute), ("name", name), ("display_name", display_name),
                       ("description", description), ("tags", tags), ("properties", properties),
                       ("experiment_name", experiment_name), ("environment_variables", environment_variables),
                       ("distribution", distribution), ("resources", resources), ("limits", limits)):
        if value is not None:
            data[key] = value
    if instance_count is not None or instance_type is not None:
        res = dict(data.get("resources") or {})
        if instance_count is not None:
            res["instance_count"] = instance_count
        if instance_type is not None:
            res["instance_type"] = instance_type
        data["resources"] = res
    if timeout is not None:
        data["limits"] = {"timeout": timeout}
    from openaml.entities._base import load_entity

    return load_entity(CommandJob, data=data, kind="command()")
