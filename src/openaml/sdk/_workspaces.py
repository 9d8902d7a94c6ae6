"""``ml_client.workspaces``: get, list."""

from __future__ import annotations

from typing import Any

from openaml.entities import Workspace

__all__ = ["WorkspaceOperations"]


class WorkspaceOperations:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._t = client._transport

    def get(self, name: str | None = None, **kwargs: Any) -> Workspace:
        """The workspace this client is connected to (``name`` must match it when given)."""
        info = self._t.get("/workspace")
        if name and name != info["name"]:
            from openaml.errors import NotFoundError

            raise NotFoundError(f"this client is connected to workspace {info['name']!r}, not {name!r}")
        return Workspace.model_validate({k: v for k, v in info.items() if k in Workspace.model_fields})

    def get_rai_gate(self) -> dict[str, Any]:
        """The workspace's RAI gate on promotion (openaml extension): ``{"require", "protected_tags",
        "protected_stages", "deployments"}``."""
        return dict(self._t.get("/workspace/rai-gate"))

    def update_rai_gate(self, **changes: Any) -> dict[str, Any]:
        """Change fields of the RAI gate, e.g. ``update_rai_gate(require="pass", protected_tags=["production"])``
        (``require=None`` turns it off). Needs the Contributor or Owner role.

        Raises:
            ValidationError: an unknown field or bad value (named ``rai_gate.<field>``).
        """
        return dict(self._t.request("PATCH", "/workspace/rai-gate", json=changes))

    def list(self, **kwargs: Any) -> list[Workspace]:
        from openaml.workspace import list_workspaces

        return [Workspace(name=w["name"], path=w["path"]) for w in list_workspaces()]
