"""Jobs: submit, list, show, update, cancel, archive, logs, output downloads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import StreamingResponse

from openaml.records import JobLogRecord, JobRecord
from openaml.server._requests import JobIn
from openaml.server._schemas import TAR_RESPONSE, JobLogOut, JobOut

if TYPE_CHECKING:
    from openaml.services.jobs import JobService

router = APIRouter(tags=["jobs"])


def _svc(request: Request) -> JobService:
    return request.app.state.ctx.services["jobs"]


@router.post("/jobs", response_model=JobOut)
def submit_job(request: Request, spec: Annotated[JobIn, Body()], source: str | None = None) -> JobRecord:
    return _svc(request).submit(spec.raw(), source=source)


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(request: Request, parent_job_name: str | None = None, include_archived: bool = False,
              status: str | None = None, max_results: int | None = None) -> list[JobRecord]:
    return _svc(request).list(parent_job_name=parent_job_name, include_archived=include_archived, status=status,
                              max_results=max_results)


@router.get("/jobs/{name}", response_model=JobOut)
def get_job(request: Request, name: str, metrics: Annotated[bool, Query(
        description="false: leave out the run's metrics and params (and a sweep's trials, a pipeline's "
                    "steps): the status alone, for a client waiting on the job")] = True) -> JobRecord:
    return _svc(request).get(name, with_metrics=metrics)


@router.patch("/jobs/{name}", response_model=JobOut)
def update_job(request: Request, name: str, fields: dict[str, Any] = Body(...)) -> JobRecord:
    return _svc(request).update(name, fields)


@router.post("/jobs/{name}/cancel", response_model=JobOut)
def cancel_job(request: Request, name: str) -> JobRecord:
    return _svc(request).cancel(name)


@router.post("/jobs/{name}/rerun", response_model=JobOut)
def rerun_job(request: Request, name: str) -> JobRecord:
    """A new job with the same spec (write access); answers the new job."""
    return _svc(request).rerun(name)


@router.post("/jobs/{name}/archive", response_model=JobOut)
def archive_job(request: Request, name: str, archived: bool = True) -> JobRecord:
    return _svc(request).archive(name, archived)


@router.get("/jobs/{name}/logs", response_model=JobLogOut)
def job_logs(request: Request, name: str, offset: int = 0, wait: float = 0.0) -> JobLogRecord:
    return _svc(request).read_log(name, offset=offset, wait=wait)


@router.get("/jobs/{name}/outputs/{output}/download", response_class=StreamingResponse, responses=TAR_RESPONSE)
def download_output(request: Request, name: str, output: str) -> StreamingResponse:
    chunks = _svc(request).tar_output(name, output)  # raises before streaming starts
    return StreamingResponse(chunks, media_type="application/x-tar")
