"""``ml_client.schedules`` and ``load_schedule``, as azure-ai-ml's ``ScheduleOperations``.

``begin_create_or_update(schedule)`` uploads what the schedule's job needs (its code, local
inputs: the same as ``jobs.create_or_update``) once, then stores the schedule; the server fires
the job at each fire time. ``get``/``list`` return :class:`JobSchedule` with the server's
``next_fire_time``, ``last_fire_time``, ``last_job_name``, ``fire_count`` and ``missed_fires``.
"""

from __future__ import annotations

import builtins
import copy
from typing import Any

from openaml._load import load_schedule
from openaml.entities._base import annotate_lines
from openaml.entities._job import Job
from openaml.entities._schedule import JobSchedule
from openaml.errors import OpenAMLError, ValidationError

__all__ = ["ScheduleOperations", "load_schedule", "schedule_from_dict"]


def schedule_from_dict(d: dict[str, Any]) -> JobSchedule:
    """A :class:`JobSchedule` as the server returns it; ``create_job`` as a job entity when it is one."""
    from openaml.sdk._jobs import job_from_dict

    sched = JobSchedule.model_validate({k: v for k, v in d.items() if k in JobSchedule.model_fields})
    wire = d.get("create_job")
    sched._create_job_wire = copy.deepcopy(wire)
    if isinstance(wire, dict) and "job" not in wire:
        try:
            job = job_from_dict(wire)
        except Exception:  # noqa: BLE001 - keep the raw definition rather than fail a read
            return sched
        object.__setattr__(job, "_schedule_wire", (copy.deepcopy(wire), job.to_dict()))
        sched.create_job = job
    return sched


class ScheduleOperations:
    """Schedule operations, as ``azure.ai.ml.operations.ScheduleOperations``."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._t = client._transport

    def _wire_job(self, job: Any) -> Any:
        if isinstance(job, Job):
            origin = getattr(job, "_schedule_wire", None)
            if origin is not None and job.to_dict() == origin[1]:
                return origin[0]  # read from the server and unchanged: already prepared
            return self._client.jobs.prepare(job)
        if hasattr(job, "_to_job"):  # a pipeline node, as azure-ai-ml allows
            return self._client.jobs.prepare(job._to_job())
        if isinstance(job, (str, dict)):
            return job
        raise ValidationError(f"create_job: expected a job, a job file or azureml:<job name> (got {type(job).__name__})",
                              details={"field": "create_job"})

    def begin_create_or_update(self, schedule: JobSchedule, **kwargs: Any) -> Any:
        """Create or update a schedule; returns a poller whose ``result()`` is the stored schedule.

        Raises:
            ValidationError: bad trigger or job (field named), before anything is stored.
        """
        from openaml.sdk._client import Poller

        if not isinstance(schedule, JobSchedule):
            raise ValidationError(f"expected a JobSchedule, got {type(schedule).__name__}")
        try:
            wire = schedule.model_dump(mode="json", exclude_none=True, exclude={"create_job"})
            wire["create_job"] = self._wire_job(schedule.create_job)
            raw = self._t.put(f"/schedules/{schedule.name}", json=wire, params={"source": schedule._source})
        except OpenAMLError as exc:
            exc.message = annotate_lines(exc.message, schedule._lines)
            exc.args = (exc.message,)
            raise
        return Poller(schedule_from_dict(raw))

    def create_or_update(self, schedule: JobSchedule, **kwargs: Any) -> JobSchedule:
        return self.begin_create_or_update(schedule, **kwargs).result()  # type: ignore[no-any-return]

    def get(self, name: str, **kwargs: Any) -> JobSchedule:
        return schedule_from_dict(self._t.get(f"/schedules/{name}"))

    def get_raw(self, name: str) -> dict[str, Any]:
        return self._t.get(f"/schedules/{name}")  # type: ignore[no-any-return]

    def list(self, *, list_view_type: str | None = None, **kwargs: Any) -> builtins.list[JobSchedule]:
        """``EnabledOnly`` (default, as azure-ai-ml), ``DisabledOnly`` or ``All``."""
        view = str(getattr(list_view_type, "value", list_view_type) or "EnabledOnly")
        return [schedule_from_dict(d) for d in self._t.get("/schedules", params={"list_view_type": view})]

    def list_raw(self, list_view_type: str = "EnabledOnly") -> builtins.list[dict[str, Any]]:
        """The schedules as the server returns them (openaml extension, for the CLI)."""
        return self._t.get("/schedules", params={"list_view_type": list_view_type})  # type: ignore[no-any-return]

    def begin_enable(self, name: str, **kwargs: Any) -> Any:
        from openaml.sdk._client import Poller

        return Poller(schedule_from_dict(self._t.post(f"/schedules/{name}/enable")))

    def begin_disable(self, name: str, **kwargs: Any) -> Any:
        from openaml.sdk._client import Poller

        return Poller(schedule_from_dict(self._t.post(f"/schedules/{name}/disable")))

    def begin_delete(self, name: str, **kwargs: Any) -> Any:
        from openaml.sdk._client import Poller

        self._t.delete(f"/schedules/{name}")
        return Poller(None)

    def trigger(self, name: str, **kwargs: Any) -> Any:
        """Fire once now (``schedule_time=`` an ISO time to record instead); returns an object with ``job_name``."""
        from types import SimpleNamespace

        raw = self._t.post(f"/schedules/{name}/trigger", params={"schedule_time": kwargs.get("schedule_time")})
        return SimpleNamespace(**raw)

    def _update_fields(self, name: str, fields: dict[str, Any]) -> JobSchedule:
        """``schedule update -n NAME --set k=v``: merge fields into the stored definition (server side)."""
        return schedule_from_dict(self._t.request("PATCH", f"/schedules/{name}", json=fields))
