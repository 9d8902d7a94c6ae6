"""Ports for state: the metadata store (SQLAlchemy + Alembic)."""

from __future__ import annotations

from openaml.store._store import MetadataStore, utcnow

__all__ = ["MetadataStore", "utcnow"]
