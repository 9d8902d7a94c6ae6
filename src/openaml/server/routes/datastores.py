"""Datastores: list, show, create_or_update."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from openaml.server._requests import DatastoreIn
from openaml.server._schemas import DatastoreOut

router = APIRouter(tags=["datastores"])


def _svc(request: Request) -> Any:
    return request.app.state.ctx.services["datastores"]


@router.get("/datastores", response_model=list[DatastoreOut])
def list_datastores(request: Request) -> list[dict[str, Any]]:
    return _svc(request).list()


@router.get("/datastores/{name}", response_model=DatastoreOut)
def get_datastore(request: Request, name: str) -> dict[str, Any]:
    return _svc(request).get(name)


@router.put("/datastores/{name}", response_model=DatastoreOut)
def put_datastore(request: Request, name: str, spec: Annotated[DatastoreIn, Body()]) -> dict[str, Any]:
    return _svc(request).create_or_update({**spec.raw(), "name": name})
