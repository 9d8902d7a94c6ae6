"""The scheduler: queue -> compute slots -> runners; monitors runners; reconciles after restart.

One thread per server. Each pass (every ``settings.scheduler_interval`` seconds, or at once when
woken): (1) monitor every active job by reading its runner's ``state.json`` and checking that
the runner process lives, so a server restarted while jobs ran re-attaches to live runners and
fails jobs whose runner died, with the reason; (2) start queued jobs, oldest first, while the
compute has free slots (``max_instances``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from openaml.compute import LocalBackend, RunnerHandle
from openaml.constants import TERMINAL_JOB_STATUSES, JobStatus
from openaml.runner._hide import server_secret_files
from openaml.runner._main import read_state, tail_lines
from openaml.services._context import WorkspaceContext
from openaml.store import utcnow
from openaml.workspace import atomic_write_json

if TYPE_CHECKING:
    from openaml.services.jobs import JobService

__all__ = ["Scheduler"]

log = logging.getLogger("openaml.scheduler")

ACTIVE = (JobStatus.PREPARING, JobStatus.RUNNING, JobStatus.FINALIZING, JobStatus.CANCEL_REQUESTED)
CANCEL_GRACE_SECONDS = 15.0
LAUNCH_GRACE_SECONDS = 60.0


def _ts(x: float | None) -> datetime | None:
    return datetime.fromtimestamp(x, tz=UTC) if x else None


class Scheduler:
    def __init__(self, ctx: WorkspaceContext, jobs: JobService) -> None:
        self.ctx = ctx
        self.jobs = jobs
        self.backend = LocalBackend()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pass_lock = threading.Lock()
        self.terminal_hooks: list[Any] = []  # callables(job_row) run when a job ends (sweeps, pipelines)
        self.tick_hooks: list[Any] = []  # callables() run after every pass (schedules fire from here)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="openaml-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        # short passes while jobs are active (a finished job is noticed within ~50 ms), long ones when
        # idle (submissions and cancels wake the loop at once)
        busy = min(0.05, self.ctx.settings.scheduler_interval)
        idle = max(1.0, self.ctx.settings.scheduler_interval)
        while not self._stop.is_set():
            active = 0
            try:
                active = self.run_pass()
            except Exception:  # noqa: BLE001 - the loop must survive any one bad job
                log.exception("scheduler pass failed")
            for hook in list(self.tick_hooks):
                try:
                    hook()
                except Exception:  # noqa: BLE001
                    log.exception("scheduler tick hook failed")
            self._wake.wait(busy if active else idle)
            self._wake.clear()

    def run_pass(self) -> int:
        """One pass; returns the number of jobs that were active or queued (0 = idle)."""
        with self._pass_lock:
            active = self._monitor()
            return active + self._dispatch()

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self) -> int:
        """Start queued jobs on free slots; returns how many were queued."""
        store = self.ctx.store
        queued = store.list_jobs(status=[JobStatus.QUEUED], ascending=True, include_archived=True)
        if not queued:
            return 0
        free: dict[str, int] = {}
        for job in queued:
            compute = job["compute"]
            if compute not in free:
                try:
                    slots = self.ctx.services["computes"].slots(compute)
                except Exception:  # noqa: BLE001 - compute deleted under a queued job
                    store.transition_job(job["name"], JobStatus.FAILED, from_statuses=[JobStatus.QUEUED],
                                         error=f"compute {compute!r} no longer exists", end_time=utcnow())
                    continue
                # parent jobs (sweeps, pipelines) hold no slot: only what runs (command jobs) does
                free[compute] = slots - store.count_jobs(status=ACTIVE, compute=compute, types=("command",))
            if free[compute] <= 0:
                continue
            if job["type"] != "command":
                continue  # parent jobs (sweep, pipeline) are driven by their controllers
            if self._launch(job):
                free[compute] -= 1
        return len(queued)

    def _launch(self, job: dict[str, Any]) -> bool:
        name = job["name"]
        row = self.ctx.store.transition_job(name, JobStatus.PREPARING, from_statuses=[JobStatus.QUEUED],
                                            start_time=utcnow())
        if row is None:
            return False
        job_dir = self.ctx.layout.job_dir(name)
        job_dir.mkdir(parents=True, exist_ok=True)
        rt = row["runtime"]
        spec = row["spec"]
        runner_spec = {
            "job_name": name,
            "workspace_name": self.ctx.workspace_name,
            "server_url": self.ctx.url,
            "tracking_uri": f"{self.ctx.url}/mlflow",
            # never the server's token: one limited to this job's run, valid while it runs
            "token": self.ctx.services["users"].job_token(row),
            "run_id": name,
            "experiment_id": rt.get("experiment_id"),
            "experiment_name": row["experiment_name"],
            "compute": row["compute"],
            "command": spec["command"],
            "code_dir": rt.get("code_dir"),
            "inputs": rt.get("inputs") or {},
            "outputs": rt.get("outputs") or {},
            "environment": rt.get("environment") or {"kind": "base"},
            "environment_variables": spec.get("environment_variables") or {},
            "resources": spec.get("resources") or {},
            "distribution": spec.get("distribution"),
            "timeout": rt.get("timeout"),
            "artifact_dir": str(self.ctx.tracking.artifact_dir(rt["artifact_uri"])),
            "envs_dir": str(self.ctx.layout.envs),
            "hidden_files": server_secret_files(self.ctx.settings),  # beside the workspace's own
        }
        atomic_write_json(job_dir / "runner.json", runner_spec)
        (job_dir / "state.json").unlink(missing_ok=True)
        try:
            self.ctx.tracking.set_run_running(name)
            handle = self.backend.launch(job_dir)
        except Exception as exc:  # noqa: BLE001
            log.exception("launching %s failed", name)
            self._end(name, JobStatus.FAILED, error=f"could not start the job's runner: {exc}")
            return False
        self.ctx.store.update_job(name, runtime_update={"runner_pid": handle.pid,
                                                         "runner_create_time": handle.create_time,
                                                         "launched_at": time.time()})
        return True

    # ------------------------------------------------------------------ monitor
    def _monitor(self) -> int:
        store = self.ctx.store
        jobs = store.list_jobs(status=[*ACTIVE, JobStatus.NOT_STARTED], include_archived=True)
        for job in jobs:
            try:
                self._check(job)
            except Exception:  # noqa: BLE001
                log.exception("monitoring %s failed", job["name"])
        return len(jobs)

    def _check(self, job: dict[str, Any]) -> None:
        name = job["name"]
        rt = job["runtime"]
        if job["status"] == JobStatus.NOT_STARTED:
            age = (utcnow() - job["created_at"]).total_seconds()
            if age > LAUNCH_GRACE_SECONDS:  # submission interrupted before it was queued
                self._end(name, JobStatus.FAILED, error="the submission was interrupted before the job was queued")
            return
        if job["type"] != "command":
            return
        job_dir = self.ctx.layout.job_dir(name)
        state = read_state(job_dir) or {}
        handle = RunnerHandle(int(rt.get("runner_pid") or 0), float(rt.get("runner_create_time") or 0.0))
        alive = handle.pid > 0 and self.backend.is_alive(handle)
        self._record_env_warnings(job, state)
        if state.get("terminal"):
            self._finish_from_state(job, state)
            return
        if not alive:
            if handle.pid == 0:
                launched = job["start_time"]
                if launched is None or (utcnow() - launched).total_seconds() > LAUNCH_GRACE_SECONDS:
                    # the server stopped between taking the slot and starting the runner: nothing ran
                    self.ctx.store.transition_job(name, JobStatus.QUEUED, from_statuses=[JobStatus.PREPARING])
                return
            time.sleep(0.05)
            state = read_state(job_dir) or {}
            if state.get("terminal"):
                self._finish_from_state(job, state)
                return
            self.backend.kill(handle, [p for p in (state.get("user_pgid"),) if p])
            # re-read: a cancel may have arrived after this pass listed the job (its SIGTERM can end a
            # runner that had not yet installed its handler) — that is a cancel, not a failure
            rt = self.ctx.store.get_job(name)["runtime"]
            if rt.get("cancel_requested") or (job_dir / "cancel").exists():
                self._end(name, JobStatus.CANCELED, error=rt.get("cancel_reason") or "canceled",
                          log_tail=tail_lines(job_dir / "user_logs" / "std_log.txt"))
            else:
                last = state.get("status", job["status"])
                self._end(name, JobStatus.FAILED,
                          error=f"the job's runner process ended unexpectedly while the job was {last} "
                                "(killed from outside, or the machine ran out of memory)",
                          log_tail=tail_lines(job_dir / "user_logs" / "std_log.txt"))
            return
        status = state.get("status")
        if rt.get("cancel_requested"):
            if time.time() - float(rt["cancel_requested"]) > CANCEL_GRACE_SECONDS:
                self.backend.kill(handle, [p for p in (state.get("user_pgid"),) if p])
            return
        if status in (JobStatus.RUNNING, JobStatus.FINALIZING) and status != job["status"]:
            fields: dict[str, Any] = {}
            if status == JobStatus.RUNNING and state.get("start_time"):
                fields["start_time"] = _ts(state["start_time"])
            self.ctx.store.transition_job(name, status, from_statuses=ACTIVE, **fields)

    def _record_env_warnings(self, job: dict[str, Any], state: dict[str, Any]) -> None:
        """Deviations found while building the job's environment (relaxed pins) join its warnings."""
        found = state.get("env_warnings") or []
        known = list(job["runtime"].get("warnings") or [])
        new = [w for w in found if w not in known]
        if new:
            self.ctx.store.update_job(job["name"], runtime_update={"warnings": known + new})
            job["runtime"]["warnings"] = known + new

    def _finish_from_state(self, job: dict[str, Any], state: dict[str, Any]) -> None:
        status = state.get("status", JobStatus.FAILED)
        if status not in TERMINAL_JOB_STATUSES:
            status = JobStatus.FAILED
        error = state.get("error")
        if status == JobStatus.COMPLETED:
            error = self._register_outputs(job, state) or None
            if error:
                status = JobStatus.FAILED
        self._end(job["name"], status, error=error, exit_code=state.get("exit_code"),
                  log_tail=state.get("log_tail"), end_time=_ts(state.get("end_time")))

    def _register_outputs(self, job: dict[str, Any], state: dict[str, Any]) -> str | None:
        outputs = job["runtime"].get("outputs") or {}
        for out_name, out in outputs.items():
            reg = out.get("register")
            if not reg:
                continue
            try:
                if out["type"] in ("custom_model", "mlflow_model", "triton_model"):
                    self.ctx.services["models"].register_from_path(
                        reg["name"], reg.get("version"), out["type"], out["local_path"], reg.get("description"),
                        {}, job["name"])
                else:
                    self.ctx.services["data"].create({
                        "name": reg["name"], "version": reg.get("version"), "type": out["type"],
                        "path": out["uri"], "description": reg.get("description") or f"output {out_name} of job {job['name']}",
                    })
            except Exception as exc:  # noqa: BLE001
                msg = getattr(exc, "message", None) or str(exc)
                return f"registering output {out_name!r} as {reg['name']} failed: {msg}"
        return None

    def _end(self, name: str, status: str, *, error: str | None = None, exit_code: int | None = None,
             log_tail: list[str] | None = None, end_time: datetime | None = None) -> None:
        row = self.ctx.store.transition_job(
            name, status, from_statuses=[JobStatus.NOT_STARTED, JobStatus.QUEUED, *ACTIVE],
            error=error, exit_code=exit_code, end_time=end_time or utcnow(),
            runtime_update={"log_tail": log_tail} if log_tail is not None else None)
        if row is None:
            return
        self.ctx.tracking.end_run(name, status)
        self.after_terminal(row)

    def after_terminal(self, row: dict[str, Any]) -> None:
        for hook in list(self.terminal_hooks):
            try:
                hook(row)
            except Exception:  # noqa: BLE001
                log.exception("terminal hook failed for %s", row["name"])
        self.wake()

    # ------------------------------------------------------------------ cancel
    def request_cancel(self, name: str, reason: str) -> None:
        job = self.ctx.store.get_job(name)
        if job["status"] in TERMINAL_JOB_STATUSES:
            return
        job_dir = self.ctx.layout.job_dir(name)
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / "cancel").write_text(reason, encoding="utf-8")
        row = self.ctx.store.transition_job(name, JobStatus.CANCEL_REQUESTED, from_statuses=ACTIVE,
                                            runtime_update={"cancel_requested": time.time(), "cancel_reason": reason})
        if row is None:
            return
        rt = row["runtime"]
        handle = RunnerHandle(int(rt.get("runner_pid") or 0), float(rt.get("runner_create_time") or 0.0))
        if handle.pid:
            self.backend.terminate(handle)
        else:
            self._end(name, JobStatus.CANCELED, error=reason)
        self.wake()


_ = json
