"""POST /uploads: a tar stream of files (code snapshots, local data)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(tags=["uploads"])


@router.post("/uploads")
async def upload(request: Request, target: str = "datastore", name: str = "upload", is_file: bool = False,
                 datastore: str | None = None) -> dict[str, Any]:
    svc = request.app.state.ctx.services["uploads"]
    return await svc.receive(request.stream(), target=target, name=name, is_file=is_file, datastore=datastore)
