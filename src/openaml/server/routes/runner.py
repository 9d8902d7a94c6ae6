"""A job's runner reports here, with its job's scoped token (the only token these routes accept:
``server/_auth.py``): its spec, its state, heartbeats and log chunks (``services/runners.py``); and,
for a runner that cannot see the server's disk, its code snapshot and inputs as tar streams and
its declared outputs sent as tar streams (``services/_runner_files.py``)."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import StreamingResponse

from openaml.errors import ValidationError
from openaml.records import RunnerLogRecord, RunnerOutputRecord, RunnerReplyRecord, RunnerSpecRecord
from openaml.server._requests import RunnerLogIn, RunnerStateIn
from openaml.server._schemas import TAR_RESPONSE, RunnerLogOut, RunnerOutputOut, RunnerReplyOut, RunnerSpecOut

if TYPE_CHECKING:
    from openaml.services.runners import RunnerService

router = APIRouter(tags=["runner"])


def _svc(request: Request) -> RunnerService:
    return request.app.state.ctx.services["runners"]


@router.get("/jobs/{name}/runner/spec", response_model=RunnerSpecOut)
def runner_spec(request: Request, name: str) -> RunnerSpecRecord:
    return _svc(request).spec(name)


@router.post("/jobs/{name}/runner/state", response_model=RunnerReplyOut)
def runner_state(request: Request, name: str, state: Annotated[RunnerStateIn, Body()]) -> RunnerReplyRecord:
    return _svc(request).report(name, state.model_dump(exclude_none=True))


@router.post("/jobs/{name}/runner/heartbeat", response_model=RunnerReplyOut)
def runner_heartbeat(request: Request, name: str) -> RunnerReplyRecord:
    return _svc(request).heartbeat(name)


@router.post("/jobs/{name}/runner/logs", response_model=RunnerLogOut)
def runner_logs(request: Request, name: str, chunk: Annotated[RunnerLogIn, Body()]) -> RunnerLogRecord:
    try:
        data = base64.b64decode(chunk.data, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("field 'data': not base64") from None
    return _svc(request).append_log(name, chunk.stream, chunk.offset, data)


@router.get("/jobs/{name}/runner/code", response_class=StreamingResponse, responses=TAR_RESPONSE)
def runner_code(request: Request, name: str) -> StreamingResponse:
    chunks = _svc(request).code_tar(name)  # raises before streaming starts
    return StreamingResponse(chunks, media_type="application/x-tar")


@router.get("/jobs/{name}/runner/inputs/{input_name}", response_class=StreamingResponse, responses=TAR_RESPONSE)
def runner_input(request: Request, name: str, input_name: str) -> StreamingResponse:
    chunks = _svc(request).input_tar(name, input_name)
    return StreamingResponse(chunks, media_type="application/x-tar")


@router.put("/jobs/{name}/runner/outputs/{output}", response_model=RunnerOutputOut)
async def runner_output(request: Request, name: str, output: str) -> RunnerOutputRecord:
    """The body is a tar stream of the output (a ``uri_file``: its one file)."""
    return await _svc(request).receive_output(name, output, request.stream())
