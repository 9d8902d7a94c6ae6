"""The workspace this server serves."""

from __future__ import annotations

from fastapi import APIRouter, Request

from openaml.records import HealthRecord, WorkspaceRecord
from openaml.server._schemas import HealthOut, WorkspaceOut

router = APIRouter(tags=["workspace"])


@router.get("/workspace", response_model=WorkspaceOut)
def get_workspace(request: Request) -> WorkspaceRecord:
    ctx = request.app.state.ctx
    info = ctx.layout.info()
    return {
        "name": info["name"],
        "id": info.get("id"),
        "description": info.get("description"),
        "path": str(ctx.layout.root),
        "location": "local",
        "resource_group": "local",
        "mlflow_tracking_uri": f"{ctx.url}/mlflow",
        "discovery_url": ctx.url,
        "studio_url": f"{ctx.url}/",
        "created": info.get("created"),
    }


@router.get("/health", response_model=HealthOut)
def health(request: Request) -> HealthRecord:
    """Liveness, for anyone; ``workspace`` (its name) only for an authenticated caller."""
    if getattr(request.state, "principal", None) is None:
        return {"status": "ok"}
    return {"status": "ok", "workspace": request.app.state.ctx.workspace_name}
