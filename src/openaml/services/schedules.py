"""Job schedules: validated create/update, enable/disable, delete, and firing from the scheduler.

A schedule (azure-ai-ml ``JobSchedule``) creates a job at each fire time of its trigger. Firing
runs in the server's scheduler thread (the job core's tick calls :meth:`ScheduleService.tick`):

- a fire creates the job named ``<schedule>-<YYYYMMDDThhmmssZ>`` (the fire time in UTC), which is
  also its display name, the form Azure ML gives jobs triggered by a schedule. The name makes a
  fire idempotent: a job that exists already (another server, or a crash between the submit and
  the state update) is not created twice;
- the job's properties record ``openaml.schedule.name``, ``openaml.schedule.time`` (the fire time)
  and ``openaml.schedule.fired_at``; in ``create_job`` inputs ``${{name}}`` becomes the job name
  and ``${{creation_context.trigger_time}}`` the fire time;
- missed fires (server down, or disabled-then-enabled is NOT one: enabling starts afresh): when
  several fire times passed unseen, the schedule fires ONCE, for the latest of them, with
  ``openaml.schedule.catch_up = "true"`` and ``openaml.schedule.missed_fires = <n skipped>``; a
  single fire that is late by more than :data:`CATCH_UP_AFTER` is marked the same way;
- a disabled schedule does not fire; past ``end_time`` it has no next fire time.

State (``schedule show``): ``next_fire_time``, ``last_fire_time``, ``last_job_name``,
``last_error``, ``fire_count``, ``missed_fires``.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pydantic

from openaml.entities._base import validation_error_from_pydantic
from openaml.entities._job_types import job_class, job_type_names
from openaml.entities._schedule import READ_ONLY_FIELDS as _READ_ONLY
from openaml.entities._schedule import validate_schedule
from openaml.errors import ConflictError, NotFoundError, OpenAMLError, ValidationError
from openaml.records import JobRecord, ScheduleRecord, ScheduleTriggerRecord
from openaml.services._actor import Principal, actor, current_actor
from openaml.services._context import WorkspaceContext
from openaml.services._schedule_times import FireClock
from openaml.store import utcnow

__all__ = ["ScheduleService", "validate_schedule", "CATCH_UP_AFTER"]

log = logging.getLogger("openaml.schedules")

CATCH_UP_AFTER = timedelta(seconds=10)
_TICK_SECONDS = 0.5
_JOB_SERVER_KEYS = ("name", "steps", "status", "id", "creation_context", "studio_url", "created_at", "start_time",
                    "end_time", "error", "exit_code", "log_tail", "output_uris", "status_history", "archived",
                    "parent_job_name", "metrics", "params")


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat() if dt is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _fire_name(schedule: str, t: datetime) -> str:
    return f"{schedule}-{t.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def _substitute(value: Any, macros: dict[str, str]) -> Any:
    """``${{name}}`` and ``${{creation_context.trigger_time}}`` in create_job values."""
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            return macros.get(m.group(1), m.group(0))

        return re.sub(r"\$\{\{\s*([A-Za-z_.]+)\s*\}\}", repl, value)
    if isinstance(value, dict):
        return {k: _substitute(v, macros) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, macros) for v in value]
    return value


def _merge(base: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of mappings (azure-ai-ml merges a schedule's create_job updates into the job this way)."""
    out = copy.deepcopy(base)
    for k, v in updates.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class ScheduleService:
    def __init__(self, ctx: WorkspaceContext) -> None:
        self.ctx = ctx
        self._last_tick = 0.0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ create / update
    def create_or_update(self, spec: dict[str, Any], *, source: str | None = None) -> ScheduleRecord:
        """Create a schedule, or replace the definition of an existing one (keeping enabled and history).

        Raises:
            ValidationError: bad trigger or create_job (field named), before anything is stored.
        """
        sched = validate_schedule(spec, source=source)
        data = sched.model_dump(mode="json", exclude_none=True, exclude=set(_READ_ONLY))
        data["create_job"] = self._check_create_job(data["create_job"], source)
        now = utcnow()
        with self._lock:
            try:
                row = self.ctx.store.get_schedule(sched.name)
            except NotFoundError:
                row = None
            anchor = _parse(row["state"].get("anchor")) if row else now
            clock = FireClock(data["trigger"], anchor or now)
            who = actor()  # its jobs are submitted as whoever last defined it (their rights, their name)
            by = {"created_by": who.record()} if who is not None else {}
            if row is None:
                nxt = clock.next_after(now, inclusive=True)
                state = {"anchor": _iso(now), "next_fire_time": _iso(nxt), "fire_count": 0, "missed_fires": 0, **by}
                self.ctx.store.put_schedule(sched.name, data, enabled=True, state=state)
            else:
                nxt = clock.next_after(now, inclusive=True) if row["enabled"] else None
                self.ctx.store.put_schedule(sched.name, data)
                self.ctx.store.update_schedule(sched.name, state_update={"next_fire_time": _iso(nxt), **by})
        self.ctx.services["jobs"].wake()
        return self.get(sched.name)

    def update(self, name: str, fields: dict[str, Any]) -> ScheduleRecord:
        """``schedule update --set``: merge ``fields`` (dotted paths already expanded) into the stored definition."""
        row = self.ctx.store.get_schedule(name)
        spec = _merge(row["spec"], fields)
        spec["name"] = name
        return self.create_or_update(spec)

    def _check_create_job(self, job: Any, source: str | None) -> Any:
        """The wire ``create_job`` checked: a referenced job exists; an inline job validates."""
        prefix = f"{source}: " if source else ""
        if isinstance(job, str):
            self._source_job(job, prefix)
            return job
        if not isinstance(job, dict):
            raise ValidationError(f"{prefix}field 'create_job': expected a job, a job file or azureml:<job name> "
                                  f"(got {type(job).__name__})", details={"field": "create_job"})
        if "job" in job:
            ref = job["job"]
            if not isinstance(ref, str) or not ref.startswith("azureml:"):
                raise ValidationError(f"{prefix}field 'create_job.job': {ref!r} must be azureml:<job name> here "
                                      "(a job file is loaded by the client before it is sent)",
                                      details={"field": "create_job.job", "value": str(ref)})
            row = self._source_job(ref, prefix)
            if job.get("type") and job["type"] != row["type"]:
                raise ValidationError(f"{prefix}field 'create_job.type': {job['type']!r} does not match the type "
                                      f"of job {row['name']!r} ({row['type']})",
                                      details={"field": "create_job.type", "value": job["type"]})
            self._validate_job_spec(self._job_spec(job, 0), prefix)
            return job
        self._validate_job_spec(job, prefix)
        return job

    def _source_job(self, ref: str, prefix: str) -> dict[str, Any]:
        if not ref.startswith("azureml:"):
            raise ValidationError(f"{prefix}field 'create_job': {ref!r} is not azureml:<job name>",
                                  details={"field": "create_job", "value": ref})
        name = ref[len("azureml:"):].rstrip("/").split("/")[-1]
        try:
            return self.ctx.store.get_job(name)
        except NotFoundError:
            raise ValidationError(f"{prefix}field 'create_job': job {name!r} not found; give the name of an "
                                  "existing job (openaml job list) or a job YAML file",
                                  details={"field": "create_job", "value": ref}) from None

    def _validate_job_spec(self, spec: dict[str, Any], prefix: str) -> None:
        jtype = spec.get("type", "command")
        cls = job_class(jtype)
        if cls is None:
            raise ValidationError(f"{prefix}field 'create_job.type': job type {jtype!r} cannot be scheduled; "
                                  f"types: {', '.join(job_type_names())}",
                                  details={"field": "create_job.type", "value": str(jtype)})
        body = {k: v for k, v in spec.items() if k not in _JOB_SERVER_KEYS}
        try:
            cls.model_validate(body)
        except pydantic.ValidationError as exc:
            err = validation_error_from_pydantic(exc, source=None, lines=None, kind=f"{jtype} job")
            msg = err.message.replace(f"{jtype} job: field '", "field 'create_job.")
            raise ValidationError(prefix + msg, details=err.details) from None
        if jtype == "pipeline":  # the whole graph, as a submit would check it (nodes, bindings, versions)
            try:
                self.ctx.services["jobs"].core.kind("pipeline").compile(body)
            except ValidationError as exc:
                msg = exc.message.replace("field '", "field 'create_job.")
                raise ValidationError(prefix + msg, details=exc.details) from None
            return
        if jtype == "command":  # what a fire would resolve: the environment and registered inputs exist
            from openaml.services._job_resolve import ResolveErrors, resolve_inputs

            errors = ResolveErrors()
            if body.get("environment") is not None:
                try:
                    self.ctx.services["environments"].resolve_for_job(body["environment"])
                except (ValidationError, NotFoundError) as exc:
                    errors.add("create_job.environment", exc.message)
            registered = {k: v for k, v in (body.get("inputs") or {}).items()
                          if isinstance(v, dict) and str(v.get("path") or "").startswith("azureml:")
                          and not str(v["path"]).startswith("azureml://") and "${{" not in str(v["path"])}
            inner = ResolveErrors()
            resolve_inputs(self.ctx, registered, inner)
            for field, message in inner.items:
                errors.add(f"create_job.{field}", message)
            errors.raise_if_any(prefix.removesuffix(": ") or None)
        compute = body.get("compute") or (body.get("settings") or {}).get("default_compute")
        if compute:
            try:
                self.ctx.services["computes"].canonical_name(compute)
            except NotFoundError as exc:
                raise ValidationError(f"{prefix}field 'create_job.compute': {exc.message}",
                                      details={"field": "create_job.compute", "value": str(compute)}) from None

    def _job_spec(self, create_job: Any, _fire: int) -> dict[str, Any]:
        """The job definition a fire submits (before the per-fire name, properties and macros)."""
        if isinstance(create_job, str) or (isinstance(create_job, dict) and "job" in create_job):
            ref = create_job if isinstance(create_job, str) else create_job["job"]
            row = self._source_job(ref, "")
            base = {k: v for k, v in row["spec"].items() if k not in _JOB_SERVER_KEYS}
            if isinstance(create_job, dict):
                base = _merge(base, {k: v for k, v in create_job.items() if k != "job"})
            return base
        return copy.deepcopy(create_job)

    # ------------------------------------------------------------------ queries
    def view(self, row: dict[str, Any]) -> ScheduleRecord:
        spec = dict(row["spec"])
        st = row["state"]
        spec.update({
            "id": f"azureml:/workspaces/{self.ctx.workspace_name}/schedules/{row['name']}",
            "is_enabled": row["enabled"], "provisioning_state": "Succeeded",
            "creation_context": {"created_at": row["created_at"].isoformat() if row["created_at"] else None,
                                 **({"created_by": st["created_by"]["name"]} if st.get("created_by") else {})},
            "next_fire_time": st.get("next_fire_time") if row["enabled"] else None,
            "last_fire_time": st.get("last_fire_time"), "last_job_name": st.get("last_job_name"),
            "last_error": st.get("last_error"), "fire_count": st.get("fire_count", 0),
            "missed_fires": st.get("missed_fires", 0),
        })
        return cast(ScheduleRecord, spec)  # the schedule's YAML fields pass through (see openaml.records)

    def get(self, name: str) -> ScheduleRecord:
        return self.view(self.ctx.store.get_schedule(name))

    def list(self, list_view_type: str | None = None) -> list[ScheduleRecord]:
        """``EnabledOnly`` (the default, as azure-ai-ml), ``DisabledOnly`` or ``All``."""
        kind = (list_view_type or "EnabledOnly").replace("_", "").lower()
        if kind not in ("enabledonly", "disabledonly", "all"):
            raise ValidationError(f"list_view_type {list_view_type!r} is not one of EnabledOnly, DisabledOnly, All",
                                  details={"field": "list_view_type", "value": list_view_type})
        rows = self.ctx.store.list_schedules()
        if kind == "enabledonly":
            rows = [r for r in rows if r["enabled"]]
        elif kind == "disabledonly":
            rows = [r for r in rows if not r["enabled"]]
        return [self.view(r) for r in rows]

    # ------------------------------------------------------------------ enable / disable / delete
    def set_enabled(self, name: str, enabled: bool) -> ScheduleRecord:
        """Disable: no more fires. Enable: fires resume from now (times passed while disabled are not caught up)."""
        row = self.ctx.store.get_schedule(name)
        nxt = None
        if enabled:
            anchor = _parse(row["state"].get("anchor")) or utcnow()
            nxt = FireClock(row["spec"]["trigger"], anchor).next_after(utcnow(), inclusive=True)
        self.ctx.store.update_schedule(name, enabled=enabled, state_update={"next_fire_time": _iso(nxt)})
        self.ctx.services["jobs"].wake()
        return self.get(name)

    def delete(self, name: str) -> None:
        """Delete the schedule; jobs it created stay."""
        self.ctx.store.delete_schedule(name)

    # ------------------------------------------------------------------ firing
    def trigger(self, name: str, schedule_time: str | None = None) -> ScheduleTriggerRecord:
        """Fire once now (azure-ai-ml ``schedules.trigger``); the regular fire times are unchanged."""
        row = self.ctx.store.get_schedule(name)
        when = utcnow()
        if schedule_time:
            try:
                when = datetime.fromisoformat(schedule_time)
            except ValueError:
                raise ValidationError(f"field 'schedule_time': {schedule_time!r} is not an ISO 8601 date-time",
                                      details={"field": "schedule_time", "value": schedule_time}) from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
        from openaml.services.jobs import generate_job_name

        job_name = f"{_fire_name(name, when)}-{generate_job_name().rsplit('_', 1)[-1][:6]}"
        job = self._submit(row, when, job_name, {"openaml.schedule.manual": "true"})
        self.ctx.store.update_schedule(name, state_update={"last_job_name": job["name"]})
        return {"job_name": job["name"], "schedule_action_type": "CreateJob"}

    def _submit(self, row: dict[str, Any], when: datetime, job_name: str, extra: dict[str, str]) -> JobRecord:
        spec = self._job_spec(row["spec"]["create_job"], 0)
        macros = {"name": job_name, "creation_context.trigger_time": _iso(when) or ""}
        for key in ("inputs", "outputs"):
            if key in spec:
                spec[key] = _substitute(spec[key], macros)
        spec["name"] = job_name
        spec["display_name"] = _fire_name(row["name"], when)
        spec["properties"] = {**(spec.get("properties") or {}), "openaml.schedule.name": row["name"],
                              "openaml.schedule.time": _iso(when) or "", "openaml.schedule.fired_at": _iso(utcnow()) or "",
                              **extra}
        rec = (row.get("state") or {}).get("created_by")
        if actor() is not None or not rec:
            return self.ctx.services["jobs"].submit(spec, source=f"schedule {row['name']}")  # type: ignore[no-any-return]
        reset = current_actor.set(Principal(name=str(rec["name"]), role=str(rec["role"]), kind=str(rec["kind"])))
        try:
            return self.ctx.services["jobs"].submit(spec, source=f"schedule {row['name']}")  # type: ignore[no-any-return]
        finally:
            current_actor.reset(reset)

    def tick(self) -> None:
        """Fire every enabled schedule whose next fire time has come (called by the scheduler loop)."""
        if time.monotonic() - self._last_tick < _TICK_SECONDS:
            return
        self._last_tick = time.monotonic()
        now = utcnow()
        for row in self.ctx.store.list_schedules():
            nxt = _parse(row["state"].get("next_fire_time"))
            if not row["enabled"] or nxt is None or nxt > now:
                continue
            try:
                self._fire_due(row, nxt, now)
            except Exception:  # noqa: BLE001 - one bad schedule must not stop the others
                log.exception("firing schedule %s failed", row["name"])

    def _fire_due(self, row: dict[str, Any], due_from: datetime, now: datetime) -> None:
        name = row["name"]
        st = row["state"]
        clock = FireClock(row["spec"]["trigger"], _parse(st.get("anchor")) or now)
        due = list(clock.between(due_from, now, limit=10_000))
        new_next = clock.next_after(now)
        expect = {"next_fire_time": st.get("next_fire_time")}
        if not due:  # the trigger changed under a stale next time: move on
            self.ctx.store.update_schedule(name, state_update={"next_fire_time": _iso(new_next)}, expect_state=expect)
            return
        latest = due[-1]
        missed = len(due) - 1
        catch_up = missed > 0 or now - latest > CATCH_UP_AFTER
        extra = {"openaml.schedule.catch_up": "true", "openaml.schedule.missed_fires": str(missed)} if catch_up else {}
        job_name = _fire_name(name, latest)
        error = None
        try:
            self._submit(row, latest, job_name, extra)
        except ConflictError:
            pass  # this fire was submitted already (a crash before the state update, or another server)
        except OpenAMLError as exc:
            error = f"fire at {_iso(latest)}: {exc.message}"
            log.warning("schedule %s could not create its job: %s", name, exc.message)
        update = {"next_fire_time": _iso(new_next), "last_fire_time": _iso(latest), "last_error": error,
                  "missed_fires": int(st.get("missed_fires", 0)) + missed}
        if error is None:
            update.update(last_job_name=job_name, fire_count=int(st.get("fire_count", 0)) + 1)
        if self.ctx.store.update_schedule(name, state_update=update, expect_state=expect) is None:
            log.info("schedule %s: fire at %s recorded by another scheduler", name, _iso(latest))
