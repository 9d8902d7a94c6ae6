"""Users of a workspace and Azure ML's built-in workspace roles.

Azure ML grants access through role assignments on the workspace; openaml keeps the four
built-in roles (https://learn.microsoft.com/azure/machine-learning/how-to-assign-roles):

- ``Reader``: read everything, change nothing;
- ``AzureML Data Scientist``: everything in the workspace except creating or changing computes,
  datastores, the workspace's settings, and users or role assignments;
- ``Contributor``: everything except users and role assignments;
- ``Owner``: everything, users and role assignments included.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import field_validator

from openaml.entities._base import Entity
from openaml.errors import ValidationError

__all__ = ["ROLES", "User", "canonical_role"]

ROLES: tuple[str, ...] = ("Reader", "AzureML Data Scientist", "Contributor", "Owner")
_ALIASES = {re.sub(r"[^a-z]", "", r.lower()): r for r in ROLES}
_ALIASES["datascientist"] = "AzureML Data Scientist"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")


def canonical_role(value: str) -> str:
    """The built-in role named by ``value`` (case, spaces, ``-`` and ``_`` ignored; ``DataScientist`` too).

    Raises:
        ValidationError: not one of :data:`ROLES` (they are listed).
    """
    role = _ALIASES.get(re.sub(r"[^a-z]", "", str(value).lower()))
    if role is None:
        raise ValidationError(f"role {value!r} is not a built-in workspace role; roles: {', '.join(ROLES)}",
                              details={"field": "role", "value": value, "allowed": list(ROLES)})
    return role


class User(Entity):
    """A workspace user: ``name``, ``role`` (one of :data:`ROLES`), who created it and when.

    ``token`` is set only in the answer to the creation (it is shown once; the server keeps a hash).
    """

    name: str
    role: str
    created_at: datetime | None = None
    created_by: str | None = None
    token: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("a user name is 1-64 letters, digits, '_', '.', '@' or '-', starting with a letter "
                             "or digit")
        return v

    @field_validator("role")
    @classmethod
    def _role(cls, v: str) -> str:
        try:
            return canonical_role(v)
        except ValidationError as exc:
            raise ValueError(exc.message) from None
