"""Online endpoints and deployments: CRUD, keys, logs (the scoring path is ``server/_scoring.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import PlainTextResponse

from openaml.records import DeletedRecord, DeploymentRecord, EndpointKeysRecord, EndpointRecord
from openaml.server._requests import OnlineDeploymentIn, OnlineEndpointIn
from openaml.server._schemas import DeletedOut, EndpointKeysOut, OnlineDeploymentOut, OnlineEndpointOut

if TYPE_CHECKING:
    from openaml.services.endpoints import EndpointService

router = APIRouter(tags=["online endpoints"])


def _svc(request: Request) -> EndpointService:
    return request.app.state.ctx.services["endpoints"]


@router.get("/online-endpoints", response_model=list[OnlineEndpointOut])
def list_endpoints(request: Request) -> list[EndpointRecord]:
    return _svc(request).list_endpoints()


@router.put("/online-endpoints/{name}", response_model=OnlineEndpointOut)
def put_endpoint(request: Request, name: str, spec: Annotated[OnlineEndpointIn, Body()]) -> EndpointRecord:
    return _svc(request).create_or_update_endpoint({**spec.raw(), "name": name})


@router.get("/online-endpoints/{name}", response_model=OnlineEndpointOut)
def get_endpoint(request: Request, name: str) -> EndpointRecord:
    return _svc(request).get_endpoint(name)


@router.delete("/online-endpoints/{name}", response_model=DeletedOut)
def delete_endpoint(request: Request, name: str) -> DeletedRecord:
    _svc(request).delete_endpoint(name)
    return {"name": name, "deleted": True}


@router.post("/online-endpoints/{name}/keys", response_model=EndpointKeysOut)
def get_keys(request: Request, name: str) -> EndpointKeysRecord:
    return _svc(request).get_keys(name)


@router.post("/online-endpoints/{name}/regenerate-keys", response_model=EndpointKeysOut)
def regenerate_keys(request: Request, name: str, key_type: str = "primary") -> EndpointKeysRecord:
    return _svc(request).regenerate_keys(name, key_type)


@router.get("/online-endpoints/{name}/deployments", response_model=list[OnlineDeploymentOut])
def list_deployments(request: Request, name: str) -> list[DeploymentRecord]:
    return _svc(request).list_deployments(name)


@router.put("/online-endpoints/{name}/deployments/{deployment}", response_model=OnlineDeploymentOut)
def put_deployment(request: Request, name: str, deployment: str,
                   spec: Annotated[OnlineDeploymentIn, Body()]) -> DeploymentRecord:
    return _svc(request).create_or_update_deployment(name, {**spec.raw(), "name": deployment})


@router.get("/online-endpoints/{name}/deployments/{deployment}", response_model=OnlineDeploymentOut)
def get_deployment(request: Request, name: str, deployment: str) -> DeploymentRecord:
    return _svc(request).get_deployment(name, deployment)


@router.delete("/online-endpoints/{name}/deployments/{deployment}", response_model=DeletedOut)
def delete_deployment(request: Request, name: str, deployment: str) -> DeletedRecord:
    _svc(request).delete_deployment(name, deployment)
    return {"name": deployment, "endpoint_name": name, "deleted": True}


@router.get("/online-endpoints/{name}/deployments/{deployment}/logs", response_class=PlainTextResponse)
def get_logs(request: Request, name: str, deployment: str, lines: int | None = None) -> str:
    return _svc(request).get_logs(name, deployment, lines)
