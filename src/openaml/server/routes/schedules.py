"""Schedules: create or update, list, show, update (--set), enable, disable, trigger, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

router = APIRouter(tags=["schedules"])


def _svc(request: Request) -> Any:
    return request.app.state.ctx.services["schedules"]


@router.get("/schedules")
def list_schedules(request: Request, list_view_type: str | None = None) -> list[dict[str, Any]]:
    return _svc(request).list(list_view_type)


@router.put("/schedules/{name}")
def create_or_update(request: Request, name: str, spec: Annotated[dict[str, Any], Body()],
                     source: str | None = None) -> dict[str, Any]:
    return _svc(request).create_or_update({**spec, "name": name}, source=source)


@router.get("/schedules/{name}")
def get_schedule(request: Request, name: str) -> dict[str, Any]:
    return _svc(request).get(name)


@router.patch("/schedules/{name}")
def update(request: Request, name: str, fields: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    return _svc(request).update(name, fields)


@router.post("/schedules/{name}/enable")
def enable(request: Request, name: str) -> dict[str, Any]:
    return _svc(request).set_enabled(name, True)


@router.post("/schedules/{name}/disable")
def disable(request: Request, name: str) -> dict[str, Any]:
    return _svc(request).set_enabled(name, False)


@router.post("/schedules/{name}/trigger")
def trigger(request: Request, name: str, schedule_time: str | None = None) -> dict[str, Any]:
    return _svc(request).trigger(name, schedule_time)


@router.delete("/schedules/{name}", status_code=204)
def delete(request: Request, name: str) -> Response:
    _svc(request).delete(name)
    return Response(status_code=204)
