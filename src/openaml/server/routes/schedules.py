"""Schedules: create or update, list, show, update (--set), enable, disable, trigger, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from openaml.records import ScheduleRecord, ScheduleTriggerRecord
from openaml.server._requests import ScheduleIn
from openaml.server._schemas import ScheduleOut, ScheduleTriggerOut

if TYPE_CHECKING:
    from openaml.services.schedules import ScheduleService

router = APIRouter(tags=["schedules"])


def _svc(request: Request) -> ScheduleService:
    return request.app.state.ctx.services["schedules"]


@router.get("/schedules", response_model=list[ScheduleOut])
def list_schedules(request: Request, list_view_type: str | None = None) -> list[ScheduleRecord]:
    return _svc(request).list(list_view_type)


@router.put("/schedules/{name}", response_model=ScheduleOut)
def create_or_update(request: Request, name: str, spec: Annotated[ScheduleIn, Body()],
                     source: str | None = None) -> ScheduleRecord:
    return _svc(request).create_or_update({**spec.raw(), "name": name}, source=source)


@router.get("/schedules/{name}", response_model=ScheduleOut)
def get_schedule(request: Request, name: str) -> ScheduleRecord:
    return _svc(request).get(name)


@router.patch("/schedules/{name}", response_model=ScheduleOut)
def update(request: Request, name: str, fields: Annotated[dict[str, Any], Body()]) -> ScheduleRecord:
    return _svc(request).update(name, fields)


@router.post("/schedules/{name}/enable", response_model=ScheduleOut)
def enable(request: Request, name: str) -> ScheduleRecord:
    return _svc(request).set_enabled(name, True)


@router.post("/schedules/{name}/disable", response_model=ScheduleOut)
def disable(request: Request, name: str) -> ScheduleRecord:
    return _svc(request).set_enabled(name, False)


@router.post("/schedules/{name}/trigger", response_model=ScheduleTriggerOut)
def trigger(request: Request, name: str, schedule_time: str | None = None) -> ScheduleTriggerRecord:
    return _svc(request).trigger(name, schedule_time)


@router.delete("/schedules/{name}", status_code=204)
def delete(request: Request, name: str) -> Response:
    _svc(request).delete(name)
    return Response(status_code=204)
