"""``ml_client.users``: workspace users and their roles (an openaml addition; Azure ML assigns roles in
Azure RBAC, outside the workspace API)."""

from __future__ import annotations

from typing import Any

from openaml.entities._user import User

__all__ = ["UserOperations"]


class UserOperations:
    def __init__(self, client: Any) -> None:
        self._t = client._transport

    def create(self, name: str, role: str, **kwargs: Any) -> User:
        """Create a user with a built-in role; the returned ``User.token`` is shown this once.

        Raises:
            ValidationError: an unknown role (the roles are listed). ConflictError: the user exists.
            OpenAMLError: 403 unless the caller is the workspace owner or an Owner.
        """
        return User.model_validate(self._t.post("/users", json={"name": name, "role": role}))

    def list(self, **kwargs: Any) -> list[User]:
        return [User.model_validate(u) for u in self._t.get("/users")]

    def get(self, name: str, **kwargs: Any) -> User:
        return User.model_validate(self._t.get(f"/users/{name}"))

    def delete(self, name: str, **kwargs: Any) -> None:
        """Delete the user: its token stops working at once; jobs it submitted run on until they end (as in Azure ML)."""
        self._t.delete(f"/users/{name}")

    def whoami(self) -> dict[str, Any]:
        """The caller as the server sees it: ``{name, role, kind}``."""
        return self._t.get("/users/me")
