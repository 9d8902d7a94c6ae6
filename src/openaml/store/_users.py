"""Workspace users in the metadata store (table and repository).

Only a SHA-256 hash of each user's token is stored (tokens are >= 32 random bytes, so a plain
hash is enough: there is nothing to brute-force). ``UserRepository(store)`` follows the store's
contract (thread-safe, plain dicts out, UTC datetimes).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from openaml.errors import ConflictError, NotFoundError
from openaml.store._tables import Base

__all__ = ["UserRepository", "UserRow"]


class UserRow(Base):
    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _user(row: UserRow) -> dict[str, Any]:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return {"name": row.name, "role": row.role, "created_by": row.created_by, "created_at": created}


class UserRepository:
    """Repository of ``users`` over a started :class:`openaml.store.MetadataStore`."""

    def __init__(self, store: Any) -> None:
        self._write: Callable[..., Any] = store._write
        self._session: Callable[..., Any] = store._session

    def create(self, name: str, role: str, token_hash: str, created_by: str | None) -> dict[str, Any]:
        """Raises ConflictError when a user ``name`` exists."""
        try:
            with self._write() as s:
                row = UserRow(name=name, role=role, token_hash=token_hash, created_by=created_by,
                              created_at=datetime.now(UTC))
                s.add(row)
                s.flush()
                return _user(row)
        except IntegrityError:
            raise ConflictError(f"user {name!r} already exists; delete it first to issue a new token "
                                f"(openaml user delete --name {name})", details={"name": name}) from None

    def by_token_hash(self, token_hash: str) -> dict[str, Any] | None:
        with self._session() as s:
            row = s.scalar(select(UserRow).where(UserRow.token_hash == token_hash))
            return _user(row) if row else None

    def get(self, name: str) -> dict[str, Any] | None:
        with self._session() as s:
            row = s.get(UserRow, name)
            return _user(row) if row else None

    def list(self) -> list[dict[str, Any]]:
        with self._session() as s:
            return [_user(r) for r in s.scalars(select(UserRow).order_by(UserRow.name))]

    def delete(self, name: str) -> None:
        """Raises NotFoundError (listing the users) when there is no user ``name``."""
        with self._write() as s:
            row = s.get(UserRow, name)
            if row is None:
                names = ", ".join(s.scalars(select(UserRow.name).order_by(UserRow.name))) or "(none)"
                raise NotFoundError(f"user {name!r} not found; users: {names}", details={"name": name})
            s.delete(row)
