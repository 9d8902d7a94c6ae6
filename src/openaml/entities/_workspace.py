"""Workspace entity (spec section 9); the datastore entities live in ``_datastore``."""

from __future__ import annotations

from pydantic import Field

from openaml.entities._base import Entity
from openaml.entities._datastore import (  # noqa: F401  (kept importable from here)
    AccountKeyConfiguration,
    AzureBlobDatastore,
    Datastore,
    SasTokenConfiguration,
)

__all__ = ["Workspace"]


class Workspace(Entity):
    name: str
    description: str | None = None
    display_name: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    location: str = "local"
    resource_group: str = "local"
    id: str | None = None
    path: str | None = None
    mlflow_tracking_uri: str | None = None
    discovery_url: str | None = None
    studio_url: str | None = None
