"""The workspace context: every port of one workspace, built once at server start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openaml._settings import Settings
from openaml.store import MetadataStore
from openaml.tracking import Tracking
from openaml.workspace import WorkspaceLayout

__all__ = ["WorkspaceContext"]


@dataclass
class WorkspaceContext:
    """Ports and services of one workspace, passed down instead of module globals.

    ``url`` is the server's base URL once bound (used for MLFLOW_TRACKING_URI and studio links).
    ``services`` holds the service objects by noun (``ctx.services["jobs"]``), built by
    :func:`openaml.services.build_services`.
    """

    settings: Settings
    layout: WorkspaceLayout
    store: MetadataStore
    tracking: Tracking
    url: str = ""
    workspace_name: str = ""
    services: dict[str, Any] = field(default_factory=dict)

    def service(self, noun: str) -> Any:
        return self.services[noun]
