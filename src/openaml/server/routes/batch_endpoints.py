"""Batch endpoints and deployments: CRUD, invocation (a batch scoring job) and the endpoint's jobs.

``POST /batch-endpoints/{name}/jobs`` is the endpoint's ``scoring_uri``: a REST client invokes it
with the workspace token (Azure ML's batch endpoints take the caller's ``aad_token``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Body, Request

from openaml.records import BatchDeploymentRecord, BatchEndpointRecord, DeletedRecord, JobRecord
from openaml.server._requests import BatchDeploymentIn, BatchEndpointIn, BatchInvokeIn
from openaml.server._schemas import BatchDeploymentOut, BatchEndpointOut, DeletedOut, JobOut

if TYPE_CHECKING:
    from openaml.services.batch_endpoints import BatchEndpointService

router = APIRouter(tags=["batch endpoints"])


def _svc(request: Request) -> BatchEndpointService:
    return request.app.state.ctx.services["batch_endpoints"]


@router.get("/batch-endpoints", response_model=list[BatchEndpointOut])
def list_endpoints(request: Request) -> list[BatchEndpointRecord]:
    return _svc(request).list_endpoints()


@router.put("/batch-endpoints/{name}", response_model=BatchEndpointOut)
def put_endpoint(request: Request, name: str, spec: Annotated[BatchEndpointIn, Body()]) -> BatchEndpointRecord:
    return _svc(request).create_or_update_endpoint({**spec.raw(), "name": name})


@router.get("/batch-endpoints/{name}", response_model=BatchEndpointOut)
def get_endpoint(request: Request, name: str) -> BatchEndpointRecord:
    return _svc(request).get_endpoint(name)


@router.delete("/batch-endpoints/{name}", response_model=DeletedOut)
def delete_endpoint(request: Request, name: str) -> DeletedRecord:
    _svc(request).delete_endpoint(name)
    return {"name": name, "deleted": True}


@router.post("/batch-endpoints/{name}/jobs", response_model=JobOut)
def invoke(request: Request, name: str, body: Annotated[BatchInvokeIn, Body()]) -> JobRecord:
    return _svc(request).invoke(name, body.raw())


@router.get("/batch-endpoints/{name}/jobs", response_model=list[JobOut])
def list_jobs(request: Request, name: str, deployment_name: str | None = None) -> list[JobRecord]:
    return _svc(request).list_jobs(name, deployment_name)


@router.get("/batch-endpoints/{name}/deployments", response_model=list[BatchDeploymentOut])
def list_deployments(request: Request, name: str) -> list[BatchDeploymentRecord]:
    return _svc(request).list_deployments(name)


@router.put("/batch-endpoints/{name}/deployments/{deployment}", response_model=BatchDeploymentOut)
def put_deployment(request: Request, name: str, deployment: str,
                   spec: Annotated[BatchDeploymentIn, Body()]) -> BatchDeploymentRecord:
    return _svc(request).create_or_update_deployment(name, {**spec.raw(), "name": deployment})


@router.get("/batch-endpoints/{name}/deployments/{deployment}", response_model=BatchDeploymentOut)
def get_deployment(request: Request, name: str, deployment: str) -> BatchDeploymentRecord:
    return _svc(request).get_deployment(name, deployment)


@router.delete("/batch-endpoints/{name}/deployments/{deployment}", response_model=DeletedOut)
def delete_deployment(request: Request, name: str, deployment: str) -> DeletedRecord:
    _svc(request).delete_deployment(name, deployment)
    return {"name": deployment, "endpoint_name": name, "deleted": True}
