"""Ports for state: the metadata store (SQLAlchemy + Alembic)."""

from __future__ import annotations

from openaml.store._endpoints import EndpointRepository
from openaml.store._store import MetadataStore, utcnow

__all__ = ["EndpointRepository", "MetadataStore", "utcnow"]
