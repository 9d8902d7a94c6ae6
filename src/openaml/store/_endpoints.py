"""Online endpoints and deployments in the metadata store (tables and repository methods).

``EndpointRepository(store)`` works over a started :class:`openaml.store.MetadataStore`, with
its contract (thread-safe, plain dicts out, UTC datetimes, read-modify-write under the write
lock; tested on every backend by ``tests/contracts/test_store_endpoints_contract.py``). Importing this
module registers the tables on the store's metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from openaml.errors import ConflictError, NotFoundError
from openaml.store._tables import Base

__all__ = ["DeploymentRow", "EndpointRepository", "EndpointRow", "EndpointTablesRepository"]


class EndpointRow(Base):
    """An online endpoint; ``spec`` is the entity's fields, ``auth`` its keys and token secret."""

    __tablename__ = "online_endpoints"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    provisioning_state: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict] = mapped_column(JSON)
    auth: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeploymentRow(Base):
    """An online deployment of one endpoint; ``runtime`` is what the server resolved for it."""

    __tablename__ = "online_deployments"
    __table_args__ = (UniqueConstraint("endpoint_name", "name", name="uq_deployment_endpoint_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_name: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    provisioning_state: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict] = mapped_column(JSON)
    runtime: Mapped[dict] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _ep(row: EndpointRow) -> dict[str, Any]:
    return {"name": row.name, "provisioning_state": row.provisioning_state, "spec": dict(row.spec),
            "auth": dict(row.auth), "created_at": _aware(row.created_at), "updated_at": _aware(row.updated_at)}


def _dep(row: DeploymentRow) -> dict[str, Any]:
    return {"name": row.name, "endpoint_name": row.endpoint_name, "provisioning_state": row.provisioning_state,
            "spec": dict(row.spec), "runtime": dict(row.runtime or {}), "error": row.error,
            "created_at": _aware(row.created_at), "updated_at": _aware(row.updated_at)}


class EndpointTablesRepository:
    """What online and batch endpoint repositories share: a table of endpoints (``name`` the key)
    and a table of their deployments (``endpoint_name`` + ``name`` unique), read and written under
    the store's contract. A subclass names its tables (``endpoint_table``, ``deployment_table``),
    the fields ``update_endpoint`` may set, how rows become dicts (``_ep``, ``_dep``) and its
    not-found messages (``_no_endpoint``, ``_no_deployment``)."""

    endpoint_table: Any
    deployment_table: Any
    endpoint_fields: tuple[str, ...] = ("spec", "provisioning_state")

    def __init__(self, store: Any) -> None:
        self._store = store
        self._write: Callable[..., Any] = store._write
        self._session: Callable[..., Any] = store._session

    # ------------------------------------------------------------------ subclass hooks
    def _ep(self, row: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _dep(self, row: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _set_endpoint_field(self, row: Any, key: str, value: Any) -> None:
        setattr(row, key, value)

    def _no_endpoint(self, name: str, names: str | None) -> NotFoundError:
        raise NotImplementedError

    def _no_deployment(self, endpoint_name: str, name: str, names: str | None) -> NotFoundError:
        raise NotImplementedError

    # ------------------------------------------------------------------ endpoints
    def get_endpoint(self, name: str) -> dict[str, Any]:
        """Raises NotFoundError listing the endpoints that exist."""
        t = self.endpoint_table
        with self._session() as s:
            row = s.get(t, name)
            if row is None:
                raise self._no_endpoint(name, ", ".join(s.scalars(select(t.name).order_by(t.name))) or "(none)")
            return self._ep(row)

    def list_endpoints(self) -> list[dict[str, Any]]:
        t = self.endpoint_table
        with self._session() as s:
            return [self._ep(r) for r in s.scalars(select(t).order_by(t.name))]

    def update_endpoint(self, name: str, fn: Callable[[dict[str, Any]], dict[str, Any] | None]) -> dict[str, Any]:
        """Read-modify-write: ``fn(endpoint)`` returns the fields to set (``endpoint_fields``)."""
        with self._write() as s:
            row = s.get(self.endpoint_table, name, with_for_update=True)
            if row is None:
                raise self._no_endpoint(name, None)
            changes = fn(self._ep(row)) or {}
            for key in self.endpoint_fields:
                if key in changes:
                    self._set_endpoint_field(row, key, changes[key])
            row.updated_at = _now()
            s.flush()
            return self._ep(row)

    def delete_endpoint(self, name: str) -> None:
        """Delete the endpoint and its deployments (one transaction)."""
        d = self.deployment_table
        with self._write() as s:
            for dep in s.scalars(select(d).where(d.endpoint_name == name)):
                s.delete(dep)
            row = s.get(self.endpoint_table, name)
            if row is not None:
                s.delete(row)

    # ------------------------------------------------------------------ deployments
    def _deployment_query(self, endpoint_name: str, name: str) -> Any:
        d = self.deployment_table
        return select(d).where(d.endpoint_name == endpoint_name, d.name == name)

    def get_deployment(self, endpoint_name: str, name: str) -> dict[str, Any]:
        """Raises NotFoundError listing the endpoint's deployments."""
        d = self.deployment_table
        with self._session() as s:
            row = s.scalar(self._deployment_query(endpoint_name, name))
            if row is None:
                names = ", ".join(s.scalars(select(d.name).where(d.endpoint_name == endpoint_name)
                                            .order_by(d.name))) or "(none)"
                raise self._no_deployment(endpoint_name, name, names)
            return self._dep(row)

    def list_deployments(self, endpoint_name: str | None = None) -> list[dict[str, Any]]:
        """The deployments of ``endpoint_name`` (of every endpoint when None), in creation order."""
        d = self.deployment_table
        with self._session() as s:
            q = select(d)
            if endpoint_name is not None:
                q = q.where(d.endpoint_name == endpoint_name)
            return [self._dep(r) for r in s.scalars(q.order_by(d.endpoint_name, d.id))]

    def delete_deployment(self, endpoint_name: str, name: str) -> None:
        with self._write() as s:
            row = s.scalar(self._deployment_query(endpoint_name, name))
            if row is not None:
                s.delete(row)


class EndpointRepository(EndpointTablesRepository):
    """Repository of ``online_endpoints`` and ``online_deployments`` over a metadata store."""

    endpoint_table = EndpointRow
    deployment_table = DeploymentRow
    endpoint_fields = ("spec", "auth", "provisioning_state")

    # ``auth`` (keys, token secret) is encrypted at rest when the store has a secret box
    def _seal(self, auth: dict[str, Any]) -> dict[str, Any]:
        box = getattr(self._store, "secret_box", None)
        return box.seal_tree(auth) if box is not None else auth

    def _ep(self, row: EndpointRow) -> dict[str, Any]:
        ep = _ep(row)
        box = getattr(self._store, "secret_box", None)
        if box is not None:
            ep["auth"] = box.open_tree(ep["auth"])
        return ep

    def _dep(self, row: DeploymentRow) -> dict[str, Any]:
        return _dep(row)

    def _set_endpoint_field(self, row: Any, key: str, value: Any) -> None:
        setattr(row, key, self._seal(value) if key == "auth" else value)

    def _no_endpoint(self, name: str, names: str | None) -> NotFoundError:
        return NotFoundError(f"online endpoint {name!r} not found" + (f"; endpoints: {names}" if names else ""),
                             details={"name": name})

    def _no_deployment(self, endpoint_name: str, name: str, names: str | None) -> NotFoundError:
        return NotFoundError(f"deployment {name!r} of online endpoint {endpoint_name!r} not found"
                             + (f"; its deployments: {names}" if names else ""),
                             details={"name": name, "endpoint": endpoint_name})

    def seal_plain(self) -> int:
        """Encrypt endpoint keys stored in clear (by an older version); returns how many endpoints."""
        n = 0
        with self._write() as s:
            for row in s.scalars(select(EndpointRow)):
                sealed = self._seal(dict(row.auth or {}))
                if sealed != row.auth:
                    row.auth = sealed
                    n += 1
        return n

    # ------------------------------------------------------------------ endpoints
    def create_endpoint(self, name: str, spec: dict[str, Any], auth: dict[str, Any], state: str) -> dict[str, Any]:
        """Raises ConflictError when the endpoint exists."""
        now = _now()
        try:
            with self._write() as s:
                row = EndpointRow(name=name, provisioning_state=state, spec=spec, auth=self._seal(auth), created_at=now,
                                  updated_at=now)
                s.add(row)
                s.flush()
                return self._ep(row)
        except IntegrityError:
            raise ConflictError(f"online endpoint {name!r} already exists", details={"name": name}) from None

    # ------------------------------------------------------------------ deployments
    def create_deployment(self, endpoint_name: str, name: str, spec: dict[str, Any], state: str) -> dict[str, Any]:
        now = _now()
        try:
            with self._write() as s:
                row = DeploymentRow(endpoint_name=endpoint_name, name=name, provisioning_state=state, spec=spec,
                                    runtime={}, created_at=now, updated_at=now)
                s.add(row)
                s.flush()
                return _dep(row)
        except IntegrityError:
            raise ConflictError(f"deployment {name!r} of endpoint {endpoint_name!r} already exists",
                                details={"name": name}) from None

    def update_deployment(self, endpoint_name: str, name: str, **fields: Any) -> dict[str, Any]:
        """Set ``spec``, ``runtime``, ``provisioning_state`` and/or ``error``."""
        unknown = set(fields) - {"spec", "runtime", "provisioning_state", "error"}
        if unknown:
            raise TypeError(f"update_deployment() cannot set {', '.join(sorted(unknown))}")
        with self._write() as s:
            row = s.scalar(self._deployment_query(endpoint_name, name).with_for_update())
            if row is None:
                raise self._no_deployment(endpoint_name, name, None)
            for key, value in fields.items():
                setattr(row, key, value)
            row.updated_at = _now()
            s.flush()
            return _dep(row)
