"""Datastores: list, show, create_or_update, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Body, Query, Request, Response

from openaml.records import DatastoreRecord
from openaml.server._requests import DatastoreIn
from openaml.server._schemas import DatastoreOut

if TYPE_CHECKING:
    from openaml.services.datastores import DatastoreService

router = APIRouter(tags=["datastores"])


def _svc(request: Request) -> DatastoreService:
    return request.app.state.ctx.services["datastores"]


@router.get("/datastores", response_model=list[DatastoreOut])
def list_datastores(request: Request) -> list[DatastoreRecord]:
    return _svc(request).list()


@router.get("/datastores/{name}", response_model=DatastoreOut)
def get_datastore(request: Request, name: str) -> DatastoreRecord:
    return _svc(request).get(name)


@router.put("/datastores/{name}", response_model=DatastoreOut)
def put_datastore(request: Request, name: str, spec: Annotated[DatastoreIn, Body()],
                  skip_validation: Annotated[bool, Query()] = False) -> DatastoreRecord:
    """``skip_validation``: register an ``s3``/``azure_blob`` datastore without the listing call
    that proves it (one this server cannot reach); the answer's ``warnings`` say so."""
    return _svc(request).create_or_update({**spec.raw(), "name": name}, skip_validation=skip_validation)


@router.delete("/datastores/{name}", status_code=204)
def delete_datastore(request: Request, name: str) -> Response:
    """Remove the registration only (the files stay); 409 for the workspace's own or default datastore
    and for one that data assets still use, 404 naming the datastores that exist."""
    _svc(request).delete(name)
    return Response(status_code=204)
