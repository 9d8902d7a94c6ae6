"""Workspace and datastore entities (spec section 9)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from openaml.entities._base import Entity

__all__ = ["Workspace", "Datastore", "AzureBlobDatastore", "AccountKeyConfiguration", "SasTokenConfiguration"]


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


class AccountKeyConfiguration(Entity):
    account_key: str | None = None


class SasTokenConfiguration(Entity):
    sas_token: str | None = None


class Datastore(Entity):
    """A datastore. ``local`` (a folder) and ``fsspec`` URLs work; Azure types are kept as metadata."""

    name: str
    type: Literal["local", "fsspec", "azure_blob", "azure_file", "azure_data_lake_gen1",
                  "azure_data_lake_gen2", "one_lake", "hdfs"] = "local"
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    path: str | None = None
    url: str | None = None
    account_name: str | None = None
    container_name: str | None = None
    file_share_name: str | None = None
    filesystem: str | None = None
    endpoint: str | None = None
    protocol: str | None = None
    credentials: dict[str, Any] | None = None
    is_default: bool = False
    id: str | None = None


class AzureBlobDatastore(Datastore):
    type: Literal["azure_blob"] = "azure_blob"  # type: ignore[assignment]
