"""Ports for state: the metadata store (SQLAlchemy + Alembic)."""

from __future__ import annotations

from openaml.store._batch_endpoints import BatchEndpointRepository
from openaml.store._endpoints import EndpointRepository
from openaml.store._identity import claim_workspace, redact_url, workspace_of
from openaml.store._job_queries import JOB_SORTS, JobQuery
from openaml.store._leader import Leadership
from openaml.store._secrets import SecretBox
from openaml.store._store import MetadataStore, utcnow
from openaml.store._users import UserRepository

__all__ = ["JOB_SORTS", "BatchEndpointRepository", "EndpointRepository", "JobQuery", "Leadership", "MetadataStore",
           "SecretBox", "UserRepository", "claim_workspace", "redact_url", "utcnow", "workspace_of"]
