"""The workspace this server serves."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from openaml.records import HealthRecord, WorkspaceRecord
from openaml.server._schemas import HealthOut, WorkspaceOut
from openaml.services.rai_gate import RaiGatePolicy, RaiGateService

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


@router.get("/workspace/rai-gate", response_model=RaiGatePolicy)
def get_rai_gate(request: Request) -> RaiGatePolicy:
    """The workspace's RAI gate on promotion (openaml extension; services/rai_gate.py)."""
    return RaiGateService(request.app.state.ctx).get_policy()


@router.patch("/workspace/rai-gate", response_model=RaiGatePolicy)
def update_rai_gate(request: Request, changes: Annotated[dict[str, Any], Body()]) -> RaiGatePolicy:
    """Change fields of the RAI gate (``require``, ``protected_tags``, ``protected_stages``, ``deployments``)."""
    return RaiGateService(request.app.state.ctx).update_policy(changes)


def health_of(ctx: Any, request: Request) -> HealthRecord:
    """``GET /health`` (and ``/api/v1/health``): liveness for anyone; for an authenticated caller the
    workspace's name, this server's ``role`` (``leader`` runs the scheduler and the deployments,
    ``standby`` another server of the PostgreSQL workspace does) and the ``leader``'s URL."""
    if getattr(request.state, "principal", None) is None:
        return {"status": "ok"}
    work = ctx.services.get("background")
    role = "leader" if work is None or work.leading else "standby"
    leader = ctx.url if work is None else (work.leader_url() or "")
    return {"status": "ok", "workspace": ctx.workspace_name, "role": role, "leader": leader}


@router.get("/health", response_model=HealthOut)
def health(request: Request) -> HealthRecord:
    """Liveness, for anyone; the workspace, role and leader only for an authenticated caller."""
    return health_of(request.app.state.ctx, request)
