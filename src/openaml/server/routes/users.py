"""Workspace users and their roles (who may do what is checked by ``server/_auth.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from openaml.records import PrincipalRecord, UserRecord
from openaml.server._requests import UserIn
from openaml.server._schemas import PrincipalOut, UserOut
from openaml.services._actor import OWNER

if TYPE_CHECKING:
    from openaml.services.users import UserService

router = APIRouter(tags=["users"])


def _svc(request: Request) -> UserService:
    return request.app.state.ctx.services["users"]


def _principal(request: Request) -> Any:
    return request.scope.get("state", {}).get("principal") or OWNER


@router.get("/users", response_model=list[UserOut])
def list_users(request: Request) -> list[UserRecord]:
    return _svc(request).list()


@router.get("/users/me", response_model=PrincipalOut)
def whoami(request: Request) -> PrincipalRecord:
    """The caller: ``{name, role, kind}`` (``kind`` owner, user or job; ``job`` for a job's token)."""
    p = _principal(request)
    me: PrincipalRecord = {"name": p.name, "role": p.role, "kind": p.kind}
    if p.job:
        me["job"] = p.job
    return me


@router.get("/users/{name}", response_model=UserOut)
def get_user(request: Request, name: str) -> UserRecord:
    return _svc(request).get(name)


@router.post("/users", status_code=201, response_model=UserOut)
def create_user(request: Request, spec: Annotated[UserIn, Body()]) -> UserRecord:
    """Create a user; the answer's ``token`` is shown this once (the server keeps only its hash)."""
    return _svc(request).create(spec.raw(), created_by=_principal(request))


@router.delete("/users/{name}", status_code=204)
def delete_user(request: Request, name: str) -> Response:
    _svc(request).delete(name)
    return Response(status_code=204)
