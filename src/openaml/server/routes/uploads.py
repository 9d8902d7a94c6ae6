"""POST /uploads: a tar stream of files (code snapshots, local data)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from openaml.records import UploadRecord
from openaml.server._schemas import UploadOut

router = APIRouter(tags=["uploads"])


@router.post("/uploads", response_model=UploadOut)
async def upload(request: Request, target: str = "datastore", name: str = "upload", is_file: bool = False,
                 datastore: str | None = None) -> UploadRecord:
    svc = request.app.state.ctx.services["uploads"]
    return await svc.receive(request.stream(), target=target, name=name, is_file=is_file, datastore=datastore)
