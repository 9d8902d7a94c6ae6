"""The job core: one submission path, one controller loop and one reconcile pass for every job kind.

- **Submission** (:meth:`JobCore.submit`, what ``POST /api/v1/jobs``, schedules, sweep trials and
  pipeline steps all call): the kind validates the spec (nothing is stored when it fails); the
  core names the job (the explicit ``name``, or an Azure-style generated one); then, under one
  lock, it checks the name is free, creates the MLflow run (run id = job name, Azure ML behaviour)
  and the store row (``NotStarted``); then the kind starts the job (:meth:`JobKind.start`). A
  start that fails ends the job ``Failed`` with the reason, so no row stays ``NotStarted`` and no
  MLflow run stays open; a row that cannot be written ends its fresh MLflow run ``Failed``.
- **Controller**: the core registers ONE terminal hook and ONE tick hook with the scheduler. A job
  that ends is handed to its own kind (:meth:`JobKind.on_terminal`) and to its parent's kind
  (:meth:`JobKind.on_child_terminal`); each tick fires the schedules and calls
  :meth:`JobKind.on_tick` for every ``Running`` job of a kind that does not run on compute
  (sweeps, pipelines), at most every :attr:`JobCore.tick_interval` seconds or at once after a child
  ended. Every few seconds it also cancels children still active under a parent that ended.
- **Reconcile**: at server start, :meth:`JobKind.reconcile` for every job not in a terminal state.
- **Several servers** (PostgreSQL metadata, :mod:`openaml.services._leadership`): only the leading
  server drives a job that does not run on compute (sweep, pipeline, AutoML). One sent to a standby
  server is stored ``NotStarted`` and not started there; the leader's controller pass starts it
  (:meth:`JobCore.run_pass`), so its trials or steps are submitted once and its own log is written
  by the leader only (regression: both servers submitted a sweep's trials, ``duplicate key run_pk``).

``scheduler.leaf_types`` is set from the kinds whose ``runs_on_compute`` is true: the job types the
scheduler launches runners for.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

from openaml.compute._scheduler import Scheduler
from openaml.constants import TERMINAL_JOB_STATUSES, JobStatus
from openaml.errors import ConflictError, NotFoundError, ValidationError
from openaml.records import JobRecord
from openaml.services._actor import actor
from openaml.services._context import WorkspaceContext
from openaml.services._job_resolve import ResolveErrors
from openaml.services.kinds import ACTIVE_STATUSES, JobKind, JobPlan, kind_class, kind_types
from openaml.store import utcnow

__all__ = ["JobCore", "generate_job_name"]

log = logging.getLogger("openaml.jobs")

_ADJECTIVES = ("amber", "bold", "brave", "calm", "clever", "cool", "eager", "fancy", "gentle", "happy", "jolly",
               "keen", "kind", "lively", "lucid", "merry", "neat", "nice", "polite", "proud", "quick", "quiet",
               "sharp", "shiny", "silly", "sincere", "stoic", "sunny", "swift", "tender", "tidy", "witty")
_NOUNS = ("apple", "badger", "basket", "cloud", "coconut", "engine", "feather", "garden", "island", "kettle",
          "lemon", "lion", "mango", "needle", "ocean", "orange", "pepper", "pillow", "plum", "river", "rocket",
          "shark", "spoon", "stone", "sugar", "tiger", "tomato", "tree", "vase", "whale", "window", "yacht")

# fields the server sets: never taken from a submitted spec (a re-submitted `job show` record)
SERVER_FIELDS = ("status", "id", "creation_context", "studio_url", "created_at", "start_time", "end_time", "error",
                 "exit_code", "log_tail", "output_uris", "status_history")
ORPHAN_CHECK_SECONDS = 5.0


def generate_job_name() -> str:
    """An Azure-style job name: ``<adjective>_<noun>_<10 base-36 chars>``."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    suffix = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}_{suffix}"


class JobCore:
    """What every job kind shares; built once per server by the job service.

    ``scheduler``: the compute scheduler (``wake``, ``after_terminal``, ``request_cancel``,
    ``terminal_hooks``, ``tick_hooks``, ``leaf_types``).
    """

    tick_interval = 0.5  # seconds between two controller passes over Running parent jobs

    def __init__(self, ctx: WorkspaceContext, scheduler: Scheduler) -> None:
        self.ctx = ctx
        self.scheduler = scheduler
        self._submit_lock = threading.Lock()
        self._starting: set[str] = set()  # submitted here, being started inline: the pass leaves them
        self._kinds: dict[str, JobKind] = {}
        self._kinds_lock = threading.Lock()
        self._due = threading.Event()
        self._last_tick = 0.0
        self._orphans_checked = 0.0
        self.leaf_types = {t for t in kind_types() if getattr(self._class_or_none(t), "runs_on_compute", False)}
        scheduler.leaf_types = set(self.leaf_types)
        scheduler.terminal_hooks.append(self._on_terminal)
        scheduler.tick_hooks.append(self._on_tick)

    @property
    def jobs(self) -> Any:
        return self.ctx.services["jobs"]

    # ------------------------------------------------------------------ kinds
    def kind(self, job_type: str | None) -> JobKind:
        """The kind instance of ``job_type`` (``None`` = ``command``).

        Raises:
            ValidationError: no kind has that type (the supported types listed).
        """
        job_type = job_type or "command"
        found = self.find_kind(job_type)
        if found is None:
            raise ValidationError(f"field 'type': job type {job_type!r} is not supported; supported: "
                                  f"{', '.join(kind_types())}", details={"field": "type", "value": str(job_type)})
        return found

    @staticmethod
    def _class_or_none(job_type: str) -> type[JobKind] | None:
        """The kind class, or None (logged) when a plugin's module cannot be imported: the server
        still starts, and jobs of that type are refused as unsupported."""
        try:
            return kind_class(job_type)
        except Exception:  # noqa: BLE001
            log.exception("job kind %r could not be loaded", job_type)
            return None

    def find_kind(self, job_type: str) -> JobKind | None:
        with self._kinds_lock:
            k = self._kinds.get(job_type)
            if k is None:
                cls = self._class_or_none(job_type) if isinstance(job_type, str) else None
                if cls is None:
                    return None
                k = self._kinds[job_type] = cls(self)
            return k

    # ------------------------------------------------------------------ submission
    def submit(self, spec: dict[str, Any], *, source: str | None = None,
               parent_name: str | None = None) -> JobRecord:
        """Validate, name, record and start a job of any kind; returns its ``job show`` record.

        ``parent_name``: the parent job of a child submission (a pipeline's sweep node); it becomes the
        spec's ``parent_job_name``, which the kinds read (a child may write under its parent's
        ``azureml/<parent>/`` output folder).

        Raises:
            ValidationError: every problem found (file, field and value named), before anything is stored.
            ConflictError: a job with that name exists.
            NotFoundError: unknown compute, asset or component.
        """
        spec = dict(spec)
        if parent_name:
            spec["parent_job_name"] = parent_name
        kind = self.kind(spec.get("type"))
        raw = spec.get("name")
        if raw not in (None, "") and not isinstance(raw, str):
            prefix = f"{source}: " if source else ""
            raise ValidationError(f"{prefix}field 'name': {raw!r} is not a string; give a job name such as "
                                  "my_job_1, or omit it to get a generated one", details={"field": "name", "value": raw})
        name = raw if isinstance(raw, str) and raw else generate_job_name()
        plan = kind.validate(spec, source=source, name=name)
        if not kind.runs_on_compute and not self.leading():  # the leader's pass starts it (run_pass)
            self._create(kind, name, plan, parent_name=parent_name)
            return self.jobs.get(name)  # type: ignore[no-any-return]
        with self._submit_lock:
            self._starting.add(name)
        try:
            self._start(kind, self._create(kind, name, plan, parent_name=parent_name))
        finally:
            with self._submit_lock:
                self._starting.discard(name)
        return self.jobs.get(name)  # type: ignore[no-any-return]

    def _start(self, kind: JobKind, row: dict[str, Any]) -> None:
        """The kind starts the job; a start that fails ends it ``Failed`` with the reason."""
        try:
            kind.start(row)
        except Exception as exc:  # noqa: BLE001 - nothing may stay NotStarted: the job fails with the reason
            log.exception("starting job %s failed", row["name"])
            msg = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self.finish(row["name"], JobStatus.FAILED, error=f"the job could not be started: {msg}",
                        from_statuses=ACTIVE_STATUSES)

    def leading(self) -> bool:
        """True when this server drives parent jobs: it leads the workspace, or it is the only server."""
        work = self.ctx.services.get("background")
        return work is None or bool(work.leading)

    def record_done(self, job_type: str, name: str, plan: JobPlan) -> dict[str, Any]:
        """Record a job that is done when it is created (a pipeline step reused from an earlier run):
        the same name check, MLflow run and row as :meth:`submit`, ``Completed`` at once, no start.

        Raises:
            ConflictError: a job with that name exists.
        """
        self._create(self.kind(job_type), name, plan, status=JobStatus.COMPLETED)
        now = utcnow()
        self.ctx.tracking.end_run(name, JobStatus.COMPLETED)
        return self.ctx.store.update_job(name, start_time=now, end_time=now)

    def _create(self, kind: JobKind, name: str, plan: JobPlan, *, parent_name: str | None = None,
                status: str = JobStatus.NOT_STARTED) -> dict[str, Any]:
        """Under the submit lock: the name is free, then the MLflow run, then the row."""
        data = {k: v for k, v in plan.data.items() if k not in SERVER_FIELDS}
        data.update(name=name, experiment_name=plan.experiment)
        runtime = dict(plan.runtime)
        who = actor()
        if who is not None:  # who submitted it: recorded, and the rights its scoped token has
            runtime["created_by"] = who.record()
        with self._submit_lock:
            try:
                self.ctx.store.get_job(name)
            except NotFoundError:
                pass
            else:
                raise ConflictError(f"a job named {name!r} already exists; job names are unique, omit name to get a "
                                    "generated one", details={"field": "name", "value": name})
            return self._record(kind, name, plan, data, runtime, parent_name or plan.parent_name, status)

    def _record(self, kind: JobKind, name: str, plan: JobPlan, data: dict[str, Any], runtime: dict[str, Any],
                parent: str | None, status: str) -> dict[str, Any]:
        """The MLflow run, then the row (under the submit lock)."""
        tags = {"openaml.job_type": kind.type, **plan.tags}
        run = self.ctx.tracking.create_run(name, plan.experiment, run_name=plan.display_name or name, tags=tags,
                                           parent_run_id=plan.parent_run_id)
        runtime.update(experiment_id=run["experiment_id"], artifact_uri=run["artifact_uri"])
        try:
            return self.ctx.store.create_job(name=name, type_=kind.type, status=status,
                                             experiment_name=plan.experiment, compute=plan.compute, spec=data,
                                             display_name=plan.display_name, parent_name=parent, runtime=runtime)
        except Exception:
            self.ctx.tracking.end_run(name, JobStatus.FAILED)  # no row: its run must not stay open
            raise

    # ------------------------------------------------------------------ shared steps of kinds
    def compute_name(self, name: str | None, errors: ResolveErrors, field: str = "compute") -> str:
        """The canonical name of compute ``name`` (None = the default); a missing one goes to ``errors``."""
        try:
            return str(self.ctx.services["computes"].canonical_name(name))
        except NotFoundError as exc:
            errors.add(field, exc.message)
            return str(name)

    def runner_environment(self, env: Any, errors: ResolveErrors, field: str = "environment") -> dict[str, Any]:
        """The runner's environment record of ``env``; a problem goes to ``errors`` (and ``{}`` back)."""
        svc = self.ctx.services["environments"]
        try:
            if not hasattr(svc, "runner_environment"):  # until environments land: the base interpreter
                return {"kind": "base", "warnings": []}
            return svc.runner_environment(env)  # type: ignore[no-any-return]
        except (ValidationError, NotFoundError) as exc:
            errors.add(field, exc.message)
            return {}

    def finish(self, name: str, status: str, *, error: str | None,
               from_statuses: tuple[str, ...] = (JobStatus.RUNNING, JobStatus.CANCEL_REQUESTED),
               **fields: Any) -> dict[str, Any] | None:
        """End a job that has no runner (a parent, or one that failed to start): the status (if the job
        is still in ``from_statuses``), its MLflow run, then the terminal hooks. Returns the ended row,
        or None when another path ended it first."""
        done = self.ctx.store.transition_job(name, status, from_statuses=list(from_statuses), error=error,
                                             end_time=utcnow(), **fields)
        if done is None:
            return None
        self.ctx.tracking.end_run(name, status)
        self.scheduler.after_terminal(done)
        return done

    def cancel_own(self, row: dict[str, Any], reason: str) -> None:
        """Cancel one job (not its children): not started or queued -> ``Canceled`` at once; otherwise
        the scheduler stops its runner (a job without one ends at once). A queued job's wait for its
        compute ("the job waits Queued ...") leaves its warnings: it waits no more."""
        update = Scheduler.wait_over(row.get("runtime") or {}) or None
        done = self.ctx.store.transition_job(row["name"], JobStatus.CANCELED,
                                             from_statuses=[JobStatus.NOT_STARTED, JobStatus.QUEUED],
                                             error=reason, end_time=utcnow(), runtime_update=update)
        if done is not None:
            self.ctx.tracking.end_run(row["name"], JobStatus.CANCELED)
            self.scheduler.after_terminal(done)
            return
        self.scheduler.request_cancel(row["name"], reason)

    def cancel_children(self, name: str, reason: str) -> None:
        """Cancel every child of ``name`` not yet in a terminal state."""
        for child in self.ctx.store.list_jobs(parent_name=name, include_archived=True):
            if child["status"] not in TERMINAL_JOB_STATUSES:
                self.jobs.cancel(child["name"], reason=reason)

    def append_log(self, name: str, *lines: str) -> None:
        """Append ``lines`` to job ``name``'s own log (``user_logs/std_log.txt``); informative only,
        so a write error is logged, never raised."""
        path = self.ctx.layout.job_dir(name) / "user_logs" / "std_log.txt"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                f.writelines(f"{line}\n" for line in lines)
        except OSError:
            log.warning("job %s: could not write its log", name)
            return
        from openaml.services.workspace_files import files_of

        files = files_of(self.ctx)
        if files is not None:  # other servers of the workspace read it from the default datastore
            files.log_written(name)

    def request_tick(self) -> None:
        """Run the controller pass at once (next scheduler loop), not at the next interval."""
        self._due.set()
        self.scheduler.wake()

    # ------------------------------------------------------------------ the controller
    def _on_terminal(self, row: dict[str, Any]) -> None:
        """The scheduler's terminal hook: the job's own kind, then its parent's kind."""
        own = self.find_kind(row["type"])
        if own is not None:
            try:
                own.on_terminal(row)
            except Exception:  # noqa: BLE001 - the parent must still hear of it
                log.exception("job %s: on_terminal of kind %s failed", row["name"], row["type"])
        parent_name = row.get("parent_name")
        if parent_name:
            try:
                parent = self.ctx.store.get_job(parent_name)
            except NotFoundError:
                parent = None
            pkind = self.find_kind(parent["type"]) if parent is not None else None
            # a standby (a child canceled there) leaves the parent to the leader, whose pass reads its
            # children: sweeps and AutoML each pass, a pipeline each pass on a shared workspace
            if parent is not None and pkind is not None and self.leading():
                try:
                    pkind.on_child_terminal(parent, row)
                except Exception:  # noqa: BLE001
                    log.exception("job %s: on_child_terminal of %s failed", parent_name, row["name"])
        if parent_name or own is None or not own.runs_on_compute:
            self._due.set()  # the scheduler wakes after its terminal hooks

    def _on_tick(self) -> None:
        """The scheduler's tick hook: schedules, then the Running parent jobs (when due)."""
        schedules = self.ctx.services.get("schedules")
        if schedules is not None and hasattr(schedules, "tick"):
            try:
                schedules.tick()
            except Exception:  # noqa: BLE001
                log.exception("schedules tick failed")
        now = time.monotonic()
        if not self._due.is_set() and now - self._last_tick < self.tick_interval:
            return
        self._due.clear()
        self._last_tick = now
        self.run_pass()

    def run_pass(self) -> None:
        """One controller pass: :meth:`JobKind.on_tick` for every Running job whose kind does not run
        on compute (oldest first), and, every few seconds, the cancel of orphaned children. In a
        workspace served by several servers it first starts such jobs left ``NotStarted`` (sent to a
        standby server, which does not start them)."""
        work = self.ctx.services.get("background")
        if work is not None and work.shared:
            self._start_deferred()
        for row in self.ctx.store.list_jobs(status=[JobStatus.RUNNING], include_archived=True, ascending=True):
            if row["type"] in self.leaf_types:
                continue
            kind = self.find_kind(row["type"])
            if kind is None:
                continue
            try:
                kind.on_tick(row)
            except Exception:  # noqa: BLE001 - the loop must survive any one bad job
                log.exception("job %s: on_tick of kind %s failed", row["name"], row["type"])
        if time.monotonic() - self._orphans_checked > ORPHAN_CHECK_SECONDS:
            self._orphans_checked = time.monotonic()
            self._cancel_orphans()

    def _start_deferred(self) -> None:
        """Start the ``NotStarted`` jobs of kinds that do not run on compute (oldest first), but those
        this server's own submission is starting."""
        for row in self.ctx.store.list_jobs(status=[JobStatus.NOT_STARTED], include_archived=True, ascending=True):
            if row["type"] in self.leaf_types:
                continue
            with self._submit_lock:
                if row["name"] in self._starting:
                    continue
            try:  # read again: a submission here may have started it since the list
                row = self.ctx.store.get_job(row["name"])
            except NotFoundError:
                continue
            kind = self.find_kind(row["type"])
            if kind is not None and row["status"] == JobStatus.NOT_STARTED:
                self._start(kind, row)

    def _cancel_orphans(self) -> None:
        """Children still active under a parent that ended (a cancel racing a child's submission);
        a look every few seconds is enough, listing every active job on every pass cost a busy server."""
        store = self.ctx.store
        parents: dict[str, dict[str, Any] | None] = {}
        for child in store.list_jobs(status=list(ACTIVE_STATUSES), include_archived=True):
            pname = child["parent_name"]
            if not pname:
                continue
            if pname not in parents:
                try:
                    parents[pname] = store.get_job(pname)
                except NotFoundError:
                    parents[pname] = None
            parent = parents[pname]
            if parent is not None and parent["status"] in TERMINAL_JOB_STATUSES:
                self.jobs.cancel(child["name"], reason=f"parent job {pname} ended ({parent['status']})")

    # ------------------------------------------------------------------ restart
    def reconcile(self) -> None:
        """At server start: :meth:`JobKind.reconcile` for every job not in a terminal state (oldest
        first). Runners themselves are re-attached by the scheduler's monitor."""
        for row in self.ctx.store.list_jobs(status=list(ACTIVE_STATUSES), include_archived=True, ascending=True):
            kind = self.find_kind(row["type"])
            if kind is None:
                log.warning("job %s: no kind for type %r; left as it is", row["name"], row["type"])
                continue
            try:
                kind.reconcile(row)
            except Exception:  # noqa: BLE001
                log.exception("reconciling job %s failed", row["name"])
        self.request_tick()
