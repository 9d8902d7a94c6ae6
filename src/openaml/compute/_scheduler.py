"""The scheduler: queue -> compute slots -> runners; follows runners; reconciles after a restart.

One thread per server. Each pass (every ``settings.scheduler_interval`` seconds, or at once when
woken): (1) follow every active job from its row: the state its runner reported over HTTP
(``runtime["runner"]``, written by the runner routes), the time of its last report
(``runtime["runner_heartbeat"]``) and whether the backend still has its runner (the
:class:`~openaml.compute.JobHandle` in ``runtime["handle"]``). So a restarted server re-attaches
to live runners, fails jobs whose runner died and jobs whose runner stopped reporting (no
heartbeat for ``settings.heartbeat_timeout`` seconds: killed, Failed with the reason). (2) start
queued jobs whose type is in :attr:`Scheduler.leaf_types`, oldest first, while their compute has
free slots (the backend's :meth:`~openaml.compute.ComputeBackend.capacity`).

It depends on the store, tracking and the backend registry only; what needs the services comes
in as callbacks (:class:`SchedulerCallbacks`: the job's scoped token, registering outputs).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from openaml._settings import Settings
from openaml.compute._base import ComputeBackend, ComputeUnavailable, JobHandle, JobSpec, RunnerStatus
from openaml.compute._registry import BackendRegistry
from openaml.constants import TERMINAL_JOB_STATUSES, JobStatus
from openaml.errors import NotFoundError, OpenAMLError
from openaml.store import MetadataStore, utcnow
from openaml.tracking import Tracking
from openaml.workspace import WorkspaceLayout

__all__ = ["ACTIVE", "Scheduler", "SchedulerCallbacks", "SchedulerContext"]

log = logging.getLogger("openaml.scheduler")

ACTIVE = (JobStatus.PREPARING, JobStatus.RUNNING, JobStatus.FINALIZING, JobStatus.CANCEL_REQUESTED)
CANCEL_GRACE_SECONDS = 15.0
LAUNCH_GRACE_SECONDS = 60.0
#: how long a job whose compute did not answer waits Queued before it is tried again
UNAVAILABLE_RETRY_SECONDS = 10.0
LOG_TAIL_LINES = 30


class SchedulerContext(Protocol):
    """The parts of the workspace context the scheduler uses (``WorkspaceContext`` has them)."""

    settings: Settings
    layout: WorkspaceLayout
    store: MetadataStore
    tracking: Tracking
    url: str


@dataclass
class SchedulerCallbacks:
    """What the services give the scheduler.

    Attributes:
        job_token: the scoped token of a job row (``UserService.job_token``), handed to its runner.
        register_outputs: registers a completed job's outputs that name a data asset or model;
            returns the error that fails the job, or None.
        job_ended: called with a job's name when it ends (before the terminal hooks), so that
            its token is refused from then on.
    """

    job_token: Callable[[dict[str, Any]], str]
    register_outputs: Callable[[dict[str, Any]], str | None]
    job_ended: Callable[[str], None] | None = None


def _ts(x: float | None) -> datetime | None:
    return datetime.fromtimestamp(x, tz=UTC) if x else None


def job_slots(job: dict[str, Any]) -> int:
    """The compute slots a job holds while active: its processes (``instance_count`` x
    ``process_count_per_instance``, or ``worker_count`` + ``parameter_server_count``), at least 1."""
    from openaml.entities._distribution import process_count

    spec = job.get("spec") or {}
    try:
        return max(1, process_count(spec.get("distribution"), int((spec.get("resources") or {}).get("instance_count") or 1)))
    except (TypeError, ValueError):
        return 1


def tail_lines(path: Path, n: int = LOG_TAIL_LINES) -> list[str]:
    """The last ``n`` lines of a text file (its last 16 KiB), [] when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return data.splitlines()[-n:]


def _kill(backend: ComputeBackend, handle: JobHandle) -> None:
    try:
        backend.kill(handle)
    except Exception:  # noqa: BLE001 - the job still ends; what is left is in the server log
        log.exception("killing the runner %s failed", handle)


def handle_of(runtime: dict[str, Any]) -> JobHandle | None:
    """The runner handle stored on a job's runtime (also the pid fields of rows written before the
    compute port: a local runner)."""
    handle = JobHandle.from_record(runtime.get("handle"))
    if handle is None and runtime.get("runner_pid"):
        handle = JobHandle("local", json.dumps({"pid": int(runtime["runner_pid"]),
                                                "create_time": float(runtime.get("runner_create_time") or 0.0)}))
    return handle


class Scheduler:
    """Starts and follows the runners of leaf jobs (``leaf_types``, default ``{"command"}``).

    Public surface (the job services use it): :meth:`start`, :meth:`stop`, :meth:`wake`,
    :meth:`run_pass`, :meth:`request_cancel`, :meth:`after_terminal`, ``terminal_hooks``
    (callables(job_row) run when a job ends), ``tick_hooks`` (callables() run after every pass),
    ``leaf_types`` and ``backends`` (the :class:`BackendRegistry`).
    """

    def __init__(self, ctx: SchedulerContext, callbacks: SchedulerCallbacks,
                 backends: BackendRegistry | None = None) -> None:
        self.ctx = ctx
        self.callbacks = callbacks
        self.backends = backends or BackendRegistry()
        self.leaf_types: set[str] = {"command"}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pass_lock = threading.Lock()
        self._started_at = time.time()
        self.terminal_hooks: list[Any] = []  # callables(job_row) run when a job ends (sweeps, pipelines)
        self.ending_hooks: list[Any] = []  # callables(job_name) run before a job's terminal status is stored
        self.tick_hooks: list[Any] = []  # callables() run after every pass (schedules fire from here)

    def start(self) -> None:
        """Start the loop (again after :meth:`stop`: a server that takes the workspace's lead back)."""
        self._stop.clear()
        self._started_at = time.time()
        self._thread = threading.Thread(target=self._loop, name="openaml-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10)

    @property
    def running(self) -> bool:
        """True while this server runs the scheduler loop (it leads the workspace)."""
        return self._thread is not None

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        # Submissions, cancels and runner reports (a job's end among them) wake the loop at once. Between
        # wakes while jobs are active: short passes (50 ms) right after a change, doubling while nothing
        # changes up to 0.5 s (the kinds' and schedules' tick, JobCore.tick_interval; how often a runner
        # that died without a report, or a report to another server of the workspace, is seen). Steady
        # 50 ms passes cost ~10 % of a core for as long as a job runs: CPU taken from the job itself (a
        # DDP job on as many processes as cores waits on its slowest rank; bench/distributed.py).
        busy = min(0.05, self.ctx.settings.scheduler_interval)
        steady = max(busy, 0.5)
        idle = max(1.0, self.ctx.settings.scheduler_interval)
        delay, last = busy, -1
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
            delay = busy if active != last else min(delay * 2, steady)
            last = active
            woken = self._wake.wait(delay if active else idle)
            self._wake.clear()
            if woken:
                delay = busy

    def run_pass(self) -> int:
        """One pass; returns the number of jobs that were active or queued (0 = idle)."""
        with self._pass_lock:
            active = self._monitor()
            return active + self._dispatch()

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self) -> int:
        """Start queued leaf jobs on free slots; returns how many jobs were queued."""
        store = self.ctx.store
        queued = store.list_jobs(status=[JobStatus.QUEUED], ascending=True, include_archived=True)
        if not queued:
            return 0
        free: dict[str, int] = {}
        total: dict[str, int] = {}
        probed: dict[str, str | None] = {}
        now = time.time()
        for job in queued:
            if job["type"] not in self.leaf_types:
                continue  # parent jobs (sweep, pipeline) hold no slot: their controllers drive them
            compute = job["compute"]
            waiting = job["runtime"].get("waiting") or {}
            if waiting:  # its compute did not answer (ComputeUnavailable): asked again after a while
                if float(waiting.get("until") or 0) > now:
                    continue
                if compute not in probed:
                    probed[compute] = self._probe(compute)
                if probed[compute]:
                    self._wait(job, str(probed[compute]), requeue=False)
                    continue
            if compute not in free:
                try:
                    record = store.get_compute(compute)
                    slots = self.backends.for_compute(record).capacity(record)
                except NotFoundError:  # compute deleted under a queued job
                    self._end(job["name"], JobStatus.FAILED, error=f"compute {compute!r} no longer exists")
                    continue
                except OpenAMLError as exc:  # a type no backend runs, a backend that cannot load
                    self._end(job["name"], JobStatus.FAILED, error=exc.message)
                    continue
                # a distributed job holds one slot per process (its instances are processes of this machine)
                free[compute] = slots - sum(job_slots(j) for j in store.list_jobs(
                    status=ACTIVE, compute=compute, include_archived=True) if j["type"] in self.leaf_types)
                total[compute] = slots
            # a job bigger than its compute (resized after submission) runs when the compute is idle
            need = min(job_slots(job), total[compute])
            if free[compute] <= 0 or need > free[compute]:
                continue
            if self._launch(job):
                free[compute] -= need
        return len(queued)

    def _launch(self, job: dict[str, Any]) -> bool:
        name = job["name"]
        # a fresh report slate: nothing a runner of an earlier attempt said counts for this one
        row = self.ctx.store.transition_job(name, JobStatus.PREPARING, from_statuses=[JobStatus.QUEUED],
                                            start_time=utcnow(),
                                            runtime_update={"runner": {}, "runner_heartbeat": None, "handle": None,
                                                            "runner_pid": None, "launched_at": None})
        if row is None:
            return False
        job_dir = self.ctx.layout.job_dir(name)
        job_dir.mkdir(parents=True, exist_ok=True)
        try:
            record = self.ctx.store.get_compute(row["compute"])
            backend = self.backends.for_compute(record)
            spec = JobSpec(job_name=name, compute=record, server_url=self.ctx.url,
                           token=self.callbacks.job_token(row), work_dir=str(job_dir),
                           resources=dict(row["spec"].get("resources") or {}),
                           distribution=row["spec"].get("distribution") or None)
            self.ctx.tracking.set_run_running(name)
            handle = backend.submit(spec)
        except ComputeUnavailable as exc:  # back to Queued with the reason; tried again later, never failed for it
            self._wait(row, str(exc))
            return False
        except Exception as exc:  # noqa: BLE001
            log.exception("launching %s failed", name)
            msg = getattr(exc, "message", None) or str(exc)
            self._end(name, JobStatus.FAILED, error=f"could not start the job's runner: {msg}")
            return False
        update: dict[str, Any] = {"handle": handle.to_record(), "launched_at": time.time(),
                                  **self.wait_over(row["runtime"])}
        self.ctx.store.update_job(name, runtime_update=update)
        return True

    def _probe(self, compute: str) -> str | None:
        """Why ``compute`` cannot take a runner now (:meth:`ComputeBackend.probe`), or None."""
        try:
            record = self.ctx.store.get_compute(compute)
            self.backends.for_compute(record).probe(record)
        except ComputeUnavailable as exc:
            return str(exc)
        except Exception:  # noqa: BLE001 - the launch says what is wrong
            return None
        return None

    @staticmethod
    def wait_over(runtime: dict[str, Any]) -> dict[str, Any]:
        """The runtime update that ends a job's wait for its compute (:meth:`_wait`): its reason leaves
        the job's warnings; ``{}`` when it was not waiting."""
        waited = (runtime.get("waiting") or {}).get("reason")
        if not waited:
            return {}
        return {"waiting": None, "warnings": [w for w in runtime.get("warnings") or [] if w != waited]}

    def _wait(self, row: dict[str, Any], why: str, *, requeue: bool = True) -> None:
        """The job's compute does not answer: Queued (again, ``requeue``: from Preparing), the reason
        among its warnings (``job show``), tried again after :data:`UNAVAILABLE_RETRY_SECONDS`."""
        rt = row["runtime"]
        reason = (f"{why}; the job waits Queued and starts when the compute answers (tried every "
                  f"{UNAVAILABLE_RETRY_SECONDS:g} s)")
        old = (rt.get("waiting") or {}).get("reason")
        warnings = [w for w in rt.get("warnings") or [] if w not in (old, reason)] + [reason]
        if old != reason:
            log.warning("job %s waits: %s", row["name"], reason)
        update = {"waiting": {"reason": reason, "until": time.time() + UNAVAILABLE_RETRY_SECONDS}, "warnings": warnings}
        if requeue:
            self.ctx.store.transition_job(row["name"], JobStatus.QUEUED, from_statuses=[JobStatus.PREPARING],
                                          start_time=None, runtime_update=update)
        else:
            self.ctx.store.update_job(row["name"], runtime_update=update)

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
        if job["type"] not in self.leaf_types:
            return
        state = rt.get("runner") or {}
        self._record_env_warnings(job, state)
        if state.get("terminal"):
            self._finish_from_state(job, state)
            return
        handle = handle_of(rt)
        if handle is None:
            launched = job["start_time"]
            if launched is None or (utcnow() - launched).total_seconds() > LAUNCH_GRACE_SECONDS:
                # the server stopped between taking the slot and starting the runner: nothing ran
                self.ctx.store.transition_job(name, JobStatus.QUEUED, from_statuses=[JobStatus.PREPARING])
            return
        try:
            backend = self.backends.for_handle(handle)
        except OpenAMLError as exc:  # its backend is gone from this server (an optional dependency removed)
            self._end(name, JobStatus.FAILED, error=f"the job's runner cannot be followed: {exc.message}")
            return
        try:
            alive = backend.status(handle) == RunnerStatus.ALIVE
        except Exception:  # noqa: BLE001 - the backend cannot tell now (a cluster unreachable): the heartbeat decides
            log.exception("status of %s's runner", name)
            alive = True
        if not alive:
            self._runner_gone(job, handle)
            return
        if rt.get("cancel_requested"):
            if time.time() - float(rt["cancel_requested"]) > CANCEL_GRACE_SECONDS:
                _kill(backend, handle)
            return
        timeout = float(self.ctx.settings.heartbeat_timeout)
        # a server that was down heard nothing meanwhile: the runner gets a full timeout from its start
        last = max(float(rt.get("runner_heartbeat") or 0), float(rt.get("launched_at") or 0), self._started_at)
        if timeout > 0 and time.time() - last > timeout:
            _kill(backend, handle)
            if not state and not rt.get("runner_heartbeat"):  # never heard from: it did not start
                error = (f"the job's runner did not start within {timeout:g} s of its launch on compute "
                         f"{job['compute']!r} (no report from it; on a Ray compute, Ray keeps a job PENDING while "
                         "no live node has the compute's resources); it was stopped")
            else:
                error = (f"the job's runner stopped reporting (no heartbeat for {time.time() - last:.0f} s, the "
                         f"limit is {timeout:g} s) while the job was {state.get('status', job['status'])}; it was "
                         "killed (its machine or its link to the server may be down)")
            self._end(name, JobStatus.FAILED, error=error, log_tail=tail_lines(self._log(name)))
            return
        status = state.get("status")
        if status in (JobStatus.RUNNING, JobStatus.FINALIZING) and status != job["status"]:
            fields: dict[str, Any] = {}
            if status == JobStatus.RUNNING and state.get("start_time"):
                fields["start_time"] = _ts(state["start_time"])
            # never from CancelRequested: a cancel that came after this pass listed the job stands
            self.ctx.store.transition_job(name, status, from_statuses=[JobStatus.PREPARING, JobStatus.RUNNING,
                                                                        JobStatus.FINALIZING], **fields)

    def _runner_gone(self, job: dict[str, Any], handle: JobHandle) -> None:
        """The runner is not there: its end if it reported one, else the job was lost."""
        name = job["name"]
        row = self.ctx.store.get_job(name)  # it may have reported its end since this pass listed the job
        state = row["runtime"].get("runner") or {}
        if state.get("terminal"):
            self._finish_from_state(row, state)
            return
        if row["status"] not in ACTIVE:
            return
        backend = self.backends.for_handle(handle)
        _kill(backend, handle)  # what the runner started may outlive it
        rt = row["runtime"]
        if rt.get("cancel_requested"):
            # a cancel's SIGTERM can end a runner that had not yet installed its handler: a cancel, not a failure
            self._end(name, JobStatus.CANCELED, error=rt.get("cancel_reason") or "canceled",
                      log_tail=tail_lines(self._log(name)))
            return
        last = state.get("status", job["status"])
        error = (f"the job's runner process ended unexpectedly while the job was {last}, without reporting "
                 "its end (killed from outside, the machine out of memory, or its reports refused: see its last output)")
        said = [ln for ln in backend.logs(handle).splitlines() if ln.strip()]
        if said:  # a local runner's output ends with how it ended (its exit code or signal)
            error += "; its last output: " + " / ".join(ln.strip()[:300] for ln in said[-3:])
        self._end(name, JobStatus.FAILED, error=error, log_tail=tail_lines(self._log(name)))

    def _log(self, name: str) -> Path:
        return self.ctx.layout.job_dir(name) / "user_logs" / "std_log.txt"

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
        if status == JobStatus.CANCELED and job["runtime"].get("cancel_reason"):
            error = job["runtime"]["cancel_reason"]  # the reason given with the cancel, wherever the runner ran
        if status == JobStatus.COMPLETED:
            error = self.callbacks.register_outputs(job) or None
            if error:
                status = JobStatus.FAILED
        self._end(job["name"], status, error=error, exit_code=state.get("exit_code"),
                  log_tail=state.get("log_tail"), end_time=_ts(state.get("end_time")))

    def _end(self, name: str, status: str, *, error: str | None = None, exit_code: int | None = None,
             log_tail: list[str] | None = None, end_time: datetime | None = None) -> None:
        for hook in list(self.ending_hooks):  # its files where other servers read them (workspace_files)
            try:
                hook(name)
            except Exception:  # noqa: BLE001
                log.exception("ending hook failed for %s", name)
        row = self.ctx.store.transition_job(
            name, status, from_statuses=[JobStatus.NOT_STARTED, JobStatus.QUEUED, *ACTIVE],
            error=error, exit_code=exit_code, end_time=end_time or utcnow(),
            runtime_update={"log_tail": log_tail} if log_tail is not None else None)
        if row is None:
            return
        self.ctx.tracking.end_run(name, status)
        self.after_terminal(row)

    def after_terminal(self, row: dict[str, Any]) -> None:
        """Run when a job ended (any kind, however it ended): the ``job_ended`` callback, then ``terminal_hooks``."""
        if self.callbacks.job_ended is not None:
            try:
                self.callbacks.job_ended(row["name"])
            except Exception:  # noqa: BLE001
                log.exception("job_ended callback failed for %s", row["name"])
        for hook in list(self.terminal_hooks):
            try:
                hook(row)
            except Exception:  # noqa: BLE001
                log.exception("terminal hook failed for %s", row["name"])
        self.wake()

    # ------------------------------------------------------------------ cancel
    def request_cancel(self, name: str, reason: str) -> None:
        """Cancel a running job: CancelRequested with the reason (the runner's heartbeat answer
        carries it), and the backend's ``cancel`` (local: SIGTERM to the runner)."""
        job = self.ctx.store.get_job(name)
        if job["status"] in TERMINAL_JOB_STATUSES:
            return
        row = self.ctx.store.transition_job(name, JobStatus.CANCEL_REQUESTED, from_statuses=ACTIVE,
                                            runtime_update={"cancel_requested": time.time(), "cancel_reason": reason})
        if row is None:
            return
        handle = handle_of(row["runtime"])
        if handle is not None and not self.running:
            # a standby server (another leads the workspace): the runner may be on another host; the
            # leader's pass and the runner's next heartbeat answer carry the cancel
            pass
        elif handle is not None:
            try:
                self.backends.for_handle(handle).cancel(handle)
            except OpenAMLError:  # a backend that cannot load: the runner learns it from its heartbeat
                log.exception("canceling %s through its backend failed", name)
        else:
            self._end(name, JobStatus.CANCELED, error=reason)
        self.wake()
