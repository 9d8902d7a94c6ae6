"""Models: list, show (by version or label), create, archive/restore, download, resolve a reference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict

from openaml.records import ArchivedRecord, ModelRecord
from openaml.server._requests import ModelIn
from openaml.server._schemas import TAR_RESPONSE, ArchivedOut, ModelOut

if TYPE_CHECKING:
    from openaml.services.models import ModelService

router = APIRouter(tags=["models"])


def _svc(request: Request) -> ModelService:
    return request.app.state.ctx.services["models"]


@router.get("/models", response_model=list[ModelOut])
def list_models(request: Request, name: str | None = None, list_view_type: str = "ActiveOnly") -> list[ModelRecord]:
    return _svc(request).list(name, list_view_type=list_view_type)


@router.get("/models/resolve", response_model=ModelOut)
def resolve_model(request: Request, reference: str) -> ModelRecord:
    return _svc(request).resolve_reference(reference)


@router.post("/models/{name}/versions", response_model=ModelOut)
def create_model(request: Request, name: str, spec: Annotated[ModelIn, Body()]) -> ModelRecord:
    return _svc(request).create_or_update({**spec.raw(), "name": name})


class ModelUpdateIn(BaseModel):
    """A version's mutable fields (``az ml model update --set``): tags added or changed, description, stage."""

    model_config = ConfigDict(extra="forbid")

    tags: dict[str, str] | None = None
    description: str | None = None
    stage: str | None = None


@router.patch("/models/{name}/versions/{version}", response_model=ModelOut)
def update_model(request: Request, name: str, version: str, changes: Annotated[ModelUpdateIn, Body()]) -> ModelRecord:
    return _svc(request).update(name, version, **changes.model_dump(exclude_none=True))


@router.get("/models/{name}/versions/{version}", response_model=ModelOut)
def get_model(request: Request, name: str, version: str) -> ModelRecord:
    return _svc(request).get(name, version=version)


@router.get("/models/{name}/labels/{label}", response_model=ModelOut)
def get_model_by_label(request: Request, name: str, label: str) -> ModelRecord:
    return _svc(request).get(name, label=label)


@router.post("/models/{name}/archive", response_model=ArchivedOut)
def archive_model(request: Request, name: str, version: str | None = None) -> ArchivedRecord:
    _svc(request).archive(name, version)
    return {"name": name, "version": version, "archived": True}


@router.post("/models/{name}/restore", response_model=ArchivedOut)
def restore_model(request: Request, name: str, version: str | None = None) -> ArchivedRecord:
    _svc(request).restore(name, version)
    return {"name": name, "version": version, "archived": False}


@router.get("/models/{name}/versions/{version}/download", response_class=StreamingResponse, responses=TAR_RESPONSE)
def download_model(request: Request, name: str, version: str) -> StreamingResponse:
    chunks = _svc(request).download_archive(name, version)  # raises before streaming starts
    return StreamingResponse(chunks, media_type="application/x-tar")
