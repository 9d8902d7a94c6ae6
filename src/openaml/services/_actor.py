"""Who is acting: the principal of the request being served, for the services to record.

The server's auth layer (``server/_auth.py``) sets :data:`current_actor` around each request;
services read it through :func:`actor` to record who created what (``creation_context.created_by``
of jobs, models). Work started by the server itself (schedules, a sweep's trials, a pipeline's
steps) has no request: :func:`actor` then answers ``None`` and the record inherits from its parent.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["Principal", "current_actor", "actor", "OWNER"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``kind``: ``owner`` (the server token holder, or anyone on a loopback server started without a
    token: the workspace owner), ``user`` (a workspace user with ``role``) or ``job`` (a running
    job's scoped token: ``job``, ``run_id`` and ``experiment_id`` name what it may touch; ``role`` is
    its submitter's role and ``name`` its submitter's name). ``scope`` of a job's token: ``job`` (the
    token its command gets: its run, its record) or ``runner`` (the token its runner reports with:
    also the job's runner routes, which refuse a ``job`` token); None for the others.
    """

    name: str
    role: str
    kind: str
    job: str | None = None
    run_id: str | None = None
    experiment_id: str | None = None
    scope: str | None = None

    def record(self) -> dict[str, str]:
        """What a created object keeps about its creator: ``{name, role, kind}``."""
        return {"name": self.name, "role": self.role, "kind": "owner" if self.kind == "owner" else "user"}


OWNER = Principal(name="owner", role="Owner", kind="owner")

current_actor: ContextVar[Principal | None] = ContextVar("openaml_actor", default=None)


def actor() -> Principal | None:
    return current_actor.get()
