"""Components: create (new version), list, show, archive/restore."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Body, Request

from openaml.records import ArchivedRecord, ComponentRecord
from openaml.server._requests import ComponentIn
from openaml.server._schemas import ArchivedOut, ComponentOut

if TYPE_CHECKING:
    from openaml.services.components import ComponentService

router = APIRouter(tags=["components"])


def _svc(request: Request) -> ComponentService:
    return request.app.state.ctx.services["components"]


@router.get("/components", response_model=list[ComponentOut])
def list_components(request: Request, name: str | None = None, include_archived: bool = False,
                    archived_only: bool = False, registry: str | None = None) -> list[ComponentRecord]:
    if registry:
        from openaml.rai.registry import builtin_components

        return builtin_components(registry, name)  # type: ignore[return-value]
    return _svc(request).list(name, include_archived=include_archived, archived_only=archived_only)


@router.post("/components", status_code=201, response_model=ComponentOut)
def create_component(request: Request, spec: Annotated[ComponentIn, Body()]) -> ComponentRecord:
    return _svc(request).create_or_update(spec.raw())


@router.get("/components/{name}", response_model=ComponentOut)
def get_component(request: Request, name: str, version: str | None = None, label: str | None = None,
                  registry: str | None = None) -> ComponentRecord:
    return _svc(request).get(name, version, label, registry=registry)


@router.post("/components/{name}/archive", response_model=ArchivedOut)
def archive(request: Request, name: str, version: str | None = None) -> ArchivedRecord:
    return _svc(request).set_archived(name, version, True)


@router.post("/components/{name}/restore", response_model=ArchivedOut)
def restore(request: Request, name: str, version: str | None = None) -> ArchivedRecord:
    return _svc(request).set_archived(name, version, False)
