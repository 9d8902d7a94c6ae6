"""Batch endpoints and deployments in the metadata store (tables and repository methods).

``BatchEndpointRepository(store)`` works over a started :class:`openaml.store.MetadataStore` with its
contract (thread-safe, plain dicts out, UTC datetimes, read-modify-write under the write lock). A
batch deployment holds no process: its row is the deployment's (flat) spec, what an invocation
turns into a batch scoring job. Importing this module registers the tables on the store's metadata
(migration ``0005_batch_endpoints``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from openaml.errors import ConflictError, NotFoundError
from openaml.store._endpoints import EndpointTablesRepository, _now
from openaml.store._tables import Base

__all__ = ["BatchDeploymentRow", "BatchEndpointRepository", "BatchEndpointRow"]


class BatchEndpointRow(Base):
    """A batch endpoint; ``spec`` is the entity's fields (``defaults.deployment_name`` among them)."""

    __tablename__ = "batch_endpoints"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    provisioning_state: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BatchDeploymentRow(Base):
    """A batch deployment of one endpoint; ``runtime`` is what the server resolved (model reference)."""

    __tablename__ = "batch_deployments"
    __table_args__ = (UniqueConstraint("endpoint_name", "name", name="uq_batch_deployment_endpoint_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_name: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    provisioning_state: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict] = mapped_column(JSON)
    runtime: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _ep(row: BatchEndpointRow) -> dict[str, Any]:
    return {"name": row.name, "provisioning_state": row.provisioning_state, "spec": dict(row.spec),
            "created_at": _aware(row.created_at), "updated_at": _aware(row.updated_at)}


def _dep(row: BatchDeploymentRow) -> dict[str, Any]:
    return {"name": row.name, "endpoint_name": row.endpoint_name, "provisioning_state": row.provisioning_state,
            "spec": dict(row.spec), "runtime": dict(row.runtime or {}),
            "created_at": _aware(row.created_at), "updated_at": _aware(row.updated_at)}


class BatchEndpointRepository(EndpointTablesRepository):
    """Repository of ``batch_endpoints`` and ``batch_deployments`` over a metadata store (reads,
    updates and deletes shared with online endpoints: :class:`EndpointTablesRepository`)."""

    endpoint_table = BatchEndpointRow
    deployment_table = BatchDeploymentRow

    def _ep(self, row: BatchEndpointRow) -> dict[str, Any]:
        return _ep(row)

    def _dep(self, row: BatchDeploymentRow) -> dict[str, Any]:
        return _dep(row)

    def _no_endpoint(self, name: str, names: str | None) -> NotFoundError:
        return NotFoundError(f"Batch endpoint {name} not found"
                             + (f"; the workspace's batch endpoints: {names}" if names else ""), details={"name": name})

    def _no_deployment(self, endpoint_name: str, name: str, names: str | None) -> NotFoundError:
        return NotFoundError(f"Batch deployment {name} not found in batch endpoint {endpoint_name}"
                             + (f"; its deployments: {names}" if names else ""),
                             details={"name": name, "endpoint": endpoint_name})

    def create_endpoint(self, name: str, spec: dict[str, Any], state: str) -> dict[str, Any]:
        """Raises ConflictError when the endpoint exists."""
        now = _now()
        try:
            with self._write() as s:
                row = BatchEndpointRow(name=name, provisioning_state=state, spec=spec, created_at=now, updated_at=now)
                s.add(row)
                s.flush()
                return _ep(row)
        except IntegrityError:
            raise ConflictError(f"Batch endpoint {name} already exists", details={"name": name}) from None

    def put_deployment(self, endpoint_name: str, name: str, spec: dict[str, Any], runtime: dict[str, Any],
                       state: str) -> dict[str, Any]:
        """Create the deployment or replace its spec and runtime (one transaction)."""
        now = _now()
        with self._write() as s:
            row = s.scalar(self._deployment_query(endpoint_name, name).with_for_update())
            if row is None:
                row = BatchDeploymentRow(endpoint_name=endpoint_name, name=name, provisioning_state=state, spec=spec,
                                         runtime=runtime, created_at=now, updated_at=now)
                s.add(row)
            else:
                row.spec, row.runtime, row.provisioning_state, row.updated_at = spec, runtime, state, now
            s.flush()
            return _dep(row)
