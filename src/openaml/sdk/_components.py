"""``ml_client.components``: create_or_update, get, list, archive, restore.

Before sending, a component is made self-contained as azure-ai-ml does: its local ``code``
folder (with ``additional_includes``) is uploaded as a content-addressed snapshot, and an
inline environment's conda file is inlined.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openaml.entities._component import CommandComponent, as_component, command_job_component
from openaml.errors import ValidationError

__all__ = ["ComponentOperations", "component_payload", "component_from_dict", "as_component",
           "command_job_component"]

_LOCAL_MARKERS = ("azureml:", "azureml://", "openaml-code:", "http://", "https://", "git+")


def component_from_dict(d: dict[str, Any]) -> Any:
    """A ``CommandComponent``, or a ``PipelineComponent`` for ``type: pipeline``."""
    from openaml.entities._component import PipelineComponent

    cls = PipelineComponent if d.get("type") == "pipeline" else CommandComponent
    known = {k: v for k, v in d.items() if k in cls.model_fields}
    return cls.model_validate(known)


def component_payload(client: Any, comp: CommandComponent, *, base: Path | None = None,
                      progress: bool = False) -> dict[str, Any]:
    """The component as the server stores it: code uploaded, environment inlined.

    Args:
        base: folder relative ``code``/``additional_includes`` are read from (default: the
            component YAML's folder, else the current folder).

    Raises:
        ValidationError: a code folder or additional include that does not exist (path named).
    """
    from openaml.sdk._jobs import _inline_environment
    from openaml.sdk._upload import upload_code

    base = base or comp.base_path
    src = comp._source or f"component {comp.name or ''}".strip()
    data = comp.model_dump(mode="json", exclude_none=True,
                           exclude={"id", "archived", "created_at", "creation_context", "additional_includes"})
    if comp.code and not comp.code.startswith(_LOCAL_MARKERS):
        code_path = (base / comp.code).resolve()
        if not code_path.exists():
            raise ValidationError(f"{src}: field 'code': {comp.code!r} does not exist (resolved to {code_path})",
                                  details={"file": src, "field": "code", "value": comp.code})
        data["code"] = "openaml-code:" + upload_code(client._transport, code_path, base=base,
                                                     additional_includes=comp.additional_includes,
                                                     progress=progress)
    elif comp.additional_includes and not comp.code:
        raise ValidationError(f"{src}: field 'additional_includes' needs 'code' (the folder they are copied into)",
                              details={"file": src, "field": "additional_includes"})
    env = comp.environment
    if env is not None and not (isinstance(env, str) and not env.startswith("file:")):
        data["environment"] = _inline_environment(client, env, base)
    return data


class ComponentOperations:
    """Component operations, as ``azure.ai.ml.operations.ComponentOperations``."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._t = client._transport

    def create_or_update(self, component: Any, *, version: str | None = None, progress: bool = False,
                         **kwargs: Any) -> CommandComponent:
        """Register a component version (a ``CommandComponent``, or a ``command(...)`` job).

        Raises:
            ValidationError: no name, a bad name (lowercase letters, digits, underscores), missing code.
            ConflictError: that version exists with different content.
        """
        from openaml.entities._component import PipelineComponent
        from openaml.sdk._pipelines import pipeline_component_payload

        self._read_only()
        comp = component if isinstance(component, PipelineComponent) else as_component(component)
        if version is not None:
            comp.version = str(version)
        if not comp.name:
            raise ValidationError("component: field 'name' is required to register a component",
                                  details={"field": "name"})
        if isinstance(comp, PipelineComponent):
            payload = pipeline_component_payload(self, comp, progress=progress)
        else:
            payload = component_payload(self._client, comp, progress=progress)
        return component_from_dict(self._t.post("/components", json=payload))

    def get(self, name: str, version: str | None = None, label: str | None = None, **kwargs: Any) -> CommandComponent:
        params = {"version": version, "label": label, "registry": getattr(self._client, "registry_name", None)}
        return component_from_dict(self._t.get(f"/components/{name}", params=params))

    def list(self, name: str | None = None, *, list_view_type: str | None = None, **kwargs: Any) -> list[CommandComponent]:
        view = (list_view_type or "ActiveOnly").replace("_", "").lower()
        params = {"name": name, "include_archived": view == "all", "archived_only": view == "archivedonly",
                  "registry": getattr(self._client, "registry_name", None)}
        return [component_from_dict(d) for d in self._t.get("/components", params=params)]

    def _read_only(self) -> None:
        if getattr(self._client, "registry_name", None):
            raise ValidationError(f"registry {self._client.registry_name!r} is read-only here (its components are "
                                  "built in); register, archive and restore components in a workspace: MLClient() "
                                  "without registry_name", details={"field": "registry_name"})

    def archive(self, name: str, version: str | None = None, label: str | None = None, **kwargs: Any) -> None:
        self._read_only()
        self._t.post(f"/components/{name}/archive", params={"version": version})

    def restore(self, name: str, version: str | None = None, label: str | None = None, **kwargs: Any) -> None:
        self._read_only()
        self._t.post(f"/components/{name}/restore", params={"version": version})
