"""Computes: list, show, create_or_update, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Body, Request, Response

from openaml.records import ComputeRecord
from openaml.server._requests import ComputeIn
from openaml.server._schemas import ComputeOut

if TYPE_CHECKING:
    from openaml.services.computes import ComputeService

router = APIRouter(tags=["computes"])


def _svc(request: Request) -> ComputeService:
    return request.app.state.ctx.services["computes"]


@router.get("/computes", response_model=list[ComputeOut])
def list_computes(request: Request) -> list[ComputeRecord]:
    return _svc(request).list()


@router.get("/computes/{name}", response_model=ComputeOut)
def get_compute(request: Request, name: str) -> ComputeRecord:
    return _svc(request).get(name)


@router.put("/computes/{name}", response_model=ComputeOut)
def put_compute(request: Request, name: str, spec: Annotated[ComputeIn, Body()]) -> ComputeRecord:
    return _svc(request).create_or_update({**spec.raw(), "name": name})


@router.delete("/computes/{name}", status_code=204)
def delete_compute(request: Request, name: str) -> Response:
    _svc(request).delete(name)
    return Response(status_code=204)
