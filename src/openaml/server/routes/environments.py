"""Environments: create (new version), list, show, archive/restore, build, resolve."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Request

from openaml.records import ArchivedRecord, EnvironmentBuildRecord, EnvironmentRecord
from openaml.server._requests import EnvironmentIn
from openaml.server._schemas import ArchivedOut, EnvironmentBuildOut, EnvironmentOut

if TYPE_CHECKING:
    from openaml.services.environments import EnvironmentService

router = APIRouter(tags=["environments"])


def _svc(request: Request) -> EnvironmentService:
    return request.app.state.ctx.services["environments"]


@router.get("/environments", response_model=list[EnvironmentOut])
def list_environments(request: Request, name: str | None = None, include_archived: bool = False,
                      archived_only: bool = False) -> list[EnvironmentRecord]:
    return _svc(request).list(name, include_archived=include_archived, archived_only=archived_only)


@router.post("/environments", status_code=201, response_model=EnvironmentOut)
def create_environment(request: Request, spec: Annotated[EnvironmentIn, Body()]) -> EnvironmentRecord:
    return _svc(request).create_or_update(spec.raw())


@router.post("/environments/resolve")
def resolve_environment(request: Request, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Body ``{"environment": <reference string | inline mapping | null>}``. The answer is the resolved
    environment the runner gets (the spec's own fields with the EnvSpec's: free-form, no schema)."""
    return _svc(request).resolve_for_job(body.get("environment"))


@router.get("/environments/{name}", response_model=EnvironmentOut)
def get_environment(request: Request, name: str, version: str | None = None,
                    label: str | None = None) -> EnvironmentRecord:
    return _svc(request).get(name, version, label)


@router.get("/environments/{name}/versions", response_model=list[EnvironmentOut])
def list_versions(request: Request, name: str, include_archived: bool = False) -> list[EnvironmentRecord]:
    return _svc(request).list(name, include_archived=include_archived)


@router.get("/environments/{name}/versions/{version}", response_model=EnvironmentOut)
def get_version(request: Request, name: str, version: str) -> EnvironmentRecord:
    return _svc(request).get(name, version)


@router.post("/environments/{name}/archive", response_model=ArchivedOut)
def archive(request: Request, name: str, version: str | None = None) -> ArchivedRecord:
    return _svc(request).set_archived(name, version, True)


@router.post("/environments/{name}/restore", response_model=ArchivedOut)
def restore(request: Request, name: str, version: str | None = None) -> ArchivedRecord:
    return _svc(request).set_archived(name, version, False)


@router.post("/environments/{name}/versions/{version}/build", response_model=EnvironmentBuildOut)
def build(request: Request, name: str, version: str) -> EnvironmentBuildRecord:
    """Build the environment's virtualenv now (blocking) so jobs start without waiting."""
    return _svc(request).build(name, version)


@router.post("/environments/{name}/build", response_model=EnvironmentBuildOut)
def build_latest(request: Request, name: str, label: str | None = "latest") -> EnvironmentBuildRecord:
    return _svc(request).build(name, None, label)
