"""Data assets: create a version, get, list, archive/restore, resolve a reference.

``POST /data/{name}/versions`` (body: ``Data`` fields; no ``version`` = the next integer),
``GET /data?name=&view=active|archived|all``, ``GET /data/{name}/versions/{version}``,
``GET /data/{name}/labels/latest``, ``POST /data/{name}/archive|restore?version=``,
``GET /data/_resolve?ref=azureml:<name>:<version>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Body, Request

from openaml.records import ArchivedRecord, DataVersionRecord
from openaml.server._requests import DataIn
from openaml.server._schemas import ArchivedOut, DataOut

if TYPE_CHECKING:
    from openaml.services.data import DataService

router = APIRouter(tags=["data"])


def _svc(request: Request) -> DataService:
    return request.app.state.ctx.services["data"]


@router.get("/data", response_model=list[DataOut])
def list_data(request: Request, name: str | None = None, view: str = "active") -> list[DataVersionRecord]:
    return _svc(request).list(name, view=view)


@router.get("/data/_resolve", response_model=DataOut)
def resolve_data(request: Request, ref: str) -> DataVersionRecord:
    return _svc(request).resolve_reference(ref)


@router.post("/data/{name}/versions", status_code=201, response_model=DataOut)
def create_data(request: Request, name: str, spec: Annotated[DataIn, Body()],
                source: str | None = None) -> DataVersionRecord:
    return _svc(request).create({**spec.raw(), "name": name}, source=source)


@router.get("/data/{name}/versions", response_model=list[DataOut])
def list_versions(request: Request, name: str, view: str = "active") -> list[DataVersionRecord]:
    return _svc(request).list(name, view=view)


@router.get("/data/{name}/versions/{version}", response_model=DataOut)
def get_version(request: Request, name: str, version: str) -> DataVersionRecord:
    return _svc(request).get(name, version=version)


@router.get("/data/{name}/labels/{label}", response_model=DataOut)
def get_label(request: Request, name: str, label: str) -> DataVersionRecord:
    return _svc(request).get(name, label=label)


@router.post("/data/{name}/archive", response_model=ArchivedOut)
def archive(request: Request, name: str, version: str | None = None) -> ArchivedRecord:
    return _svc(request).set_archived(name, version, True)


@router.post("/data/{name}/restore", response_model=ArchivedOut)
def restore(request: Request, name: str, version: str | None = None) -> ArchivedRecord:
    return _svc(request).set_archived(name, version, False)
