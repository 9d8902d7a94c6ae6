"""Jobs: submission (validated before anything is stored), queries, cancel, logs, outputs.

A job IS an MLflow run: its name is the run id and ``experiment_name`` the MLflow experiment
(Azure ML behaviour). Statuses follow azure-ai-ml: NotStarted -> Queued -> Preparing -> Running
-> Finalizing -> Completed | Failed | Canceled (CancelRequested while a cancel is under way).
Execution is the scheduler's (:mod:`openaml.compute._scheduler`).
"""

from __future__ import annotations

import io
import secrets
import shutil
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic

from openaml.constants import TERMINAL_JOB_STATUSES, JobStatus
from openaml.datastores import JobOutputUri, safe_join
from openaml.entities import CommandJob
from openaml.entities._base import validation_error_from_pydantic
from openaml.errors import ConflictError, NotFoundError, ValidationError
from openaml.services._actor import Principal, actor
from openaml.services._context import WorkspaceContext
from openaml.services._job_resolve import ResolveErrors, check_command, resolve_code, resolve_inputs, resolve_outputs
from openaml.services.runners import make_scheduler

__all__ = ["JobService", "generate_job_name"]

_ADJECTIVES = ("amber", "bold", "brave", "calm", "clever", "cool", "eager", "fancy", "gentle", "happy", "jolly",
               "keen", "kind", "lively", "lucid", "merry", "neat", "nice", "polite", "proud", "quick", "quiet",
               "sharp", "shiny", "silly", "sincere", "stoic", "sunny", "swift", "tender", "tidy", "witty")
_NOUNS = ("apple", "badger", "basket", "cloud", "coconut", "engine", "feather", "garden", "island", "kettle",
          "lemon", "lion", "mango", "needle", "ocean", "orange", "pepper", "pillow", "plum", "river", "rocket",
          "shark", "spoon", "stone", "sugar", "tiger", "tomato", "tree", "vase", "whale", "window", "yacht")


def generate_job_name() -> str:
    """An Azure-style job name: ``<adjective>_<noun>_<10 base-36 chars>``."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    suffix = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}_{suffix}"


def _by_type(who: Principal) -> str:
    return "User"  # the owner is a person too (Azure says "Application" for service principals)


def _created_by(runtime: dict[str, Any]) -> dict[str, str]:
    """``created_by`` (user name, or ``owner``) and ``created_by_type`` as Azure's creation_context."""
    rec = runtime.get("created_by")
    if not rec:
        return {}
    return {"created_by": str(rec.get("name")), "created_by_type": "User"}


class JobService:
    def __init__(self, ctx: WorkspaceContext) -> None:
        self.ctx = ctx
        self.scheduler = make_scheduler(ctx)
        self._submit_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()

    def wake(self) -> None:
        self.scheduler.wake()

    # ------------------------------------------------------------------ submission
    def submit(self, spec: dict[str, Any], *, source: str | None = None) -> dict[str, Any]:
        """Validate and queue a job.

        Raises:
            ValidationError: every problem found (fields named), before anything is stored.
            ConflictError: a job with that name exists.
            NotFoundError: unknown compute (listing those that exist).
        """
        spec = dict(spec)
        job_type = spec.get("type", "command")
        if job_type != "command":
            handler = self.ctx.services.get(f"jobs.{job_type}")
            if handler is None:
                raise ValidationError(f"field 'type': job type {job_type!r} is not supported; supported: command")
            made = handler.submit(spec, source=source)
            who = actor()
            if who is not None and isinstance(made, dict) and made.get("name"):
                self.ctx.store.update_job(made["name"], runtime_update={"created_by": who.record()})
                made = {**made, "creation_context": {**(made.get("creation_context") or {}),
                                                     "created_by": who.name, "created_by_type": _by_type(who)}}
            return made
        try:
            job = CommandJob.model_validate(spec)
        except pydantic.ValidationError as exc:
            raise validation_error_from_pydantic(exc, source=source, lines=None, kind="command job") from None
        name = job.name or generate_job_name()
        errors = ResolveErrors()
        compute = self._compute(job.compute, errors)
        data = job.model_dump(mode="json", exclude_none=True)
        inputs_raw = data.get("inputs", {})
        outputs_raw = data.get("outputs", {})
        check_command(job.command, inputs_raw, outputs_raw, errors)
        runner_inputs = resolve_inputs(self.ctx, inputs_raw, errors)
        runner_outputs = resolve_outputs(self.ctx, name, outputs_raw, errors)
        code_dir = resolve_code(self.ctx, job.code, errors)
        env = self._environment(data.get("environment"), errors)
        errors.raise_if_any(source)
        experiment = job.experiment_name or "Default"
        runtime = {
            "inputs": runner_inputs, "outputs": runner_outputs, "code_dir": code_dir, "environment": env,
            "timeout": job.limits.timeout if job.limits else None,
        }
        who = actor()
        if who is not None:  # who submitted it: recorded, and the rights its scoped token has
            runtime["created_by"] = who.record()
        if env.get("warnings"):  # environment deviations (Python asked vs used...): the job's warnings
            runtime["warnings"] = list(env["warnings"])
            data.setdefault("properties", {})["openaml.warnings"] = "; ".join(env["warnings"])
        data["name"] = name
        data["experiment_name"] = experiment
        data["compute"] = compute
        for key in ("status", "id", "creation_context", "studio_url", "created_at", "start_time", "end_time",
                    "error", "exit_code", "log_tail", "output_uris", "status_history", "services"):
            data.pop(key, None)
        if job.services:
            data["services"] = {k: v.model_dump(mode="json", exclude_none=True) for k, v in job.services.items()}
        with self._submit_lock:
            try:
                self.ctx.store.get_job(name)
            except NotFoundError:
                pass
            else:
                raise ConflictError(f"a job named {name!r} already exists; job names are unique, omit name to get a "
                                    "generated one", details={"field": "name", "value": name})
            tags = {"openaml.job_type": "command", "openaml.compute": compute, **job.tags}
            run = self.ctx.tracking.create_run(name, experiment, run_name=job.display_name or name, tags=tags,
                                               parent_run_id=job.parent_job_name)
            runtime.update(experiment_id=run["experiment_id"], artifact_uri=run["artifact_uri"])
            self.ctx.store.create_job(name=name, type_="command", status=JobStatus.NOT_STARTED,
                                      experiment_name=experiment, compute=compute, spec=data,
                                      display_name=job.display_name, parent_name=job.parent_job_name,
                                      runtime=runtime)
            self.ctx.store.transition_job(name, JobStatus.QUEUED, from_statuses=[JobStatus.NOT_STARTED])
        self.wake()
        return self.get(name)

    def _compute(self, name: str | None, errors: ResolveErrors) -> str:
        try:
            return self.ctx.services["computes"].canonical_name(name)
        except NotFoundError as exc:
            errors.add("compute", exc.message)
            return str(name)

    def _environment(self, env: Any, errors: ResolveErrors) -> dict[str, Any]:
        svc = self.ctx.services["environments"]
        try:
            if not hasattr(svc, "runner_environment"):  # until environments land: the base interpreter
                return {"kind": "base", "warnings": []}
            return svc.runner_environment(env)
        except (ValidationError, NotFoundError) as exc:
            errors.add("environment", exc.message)
            return {}

    # ------------------------------------------------------------------ queries
    def view(self, row: dict[str, Any], *, with_metrics: bool = True) -> dict[str, Any]:
        spec = dict(row["spec"])
        runtime = row["runtime"]
        url = self.ctx.url
        exp_id = runtime.get("experiment_id")
        studio = f"{url}/mlflow/#/experiments/{exp_id}/runs/{row['name']}" if exp_id else f"{url}/mlflow/"
        spec.update({
            "name": row["name"], "status": row["status"], "experiment_name": row["experiment_name"],
            "compute": row["compute"], "display_name": row["display_name"] or row["name"],
            "created_at": row["created_at"], "start_time": row["start_time"], "end_time": row["end_time"],
            "error": row["error"], "exit_code": row["exit_code"], "archived": row["archived"],
            "log_tail": runtime.get("log_tail"), "status_history": row["status_history"],
            "studio_url": studio,
            "id": f"azureml:/workspaces/{self.ctx.workspace_name}/jobs/{row['name']}",
            "creation_context": {"created_at": row["created_at"].isoformat() if row["created_at"] else None,
                                 **_created_by(runtime)},
            "output_uris": {k: v["uri"] for k, v in (runtime.get("outputs") or {}).items()},
        })
        if runtime.get("warnings"):
            spec["warnings"] = list(runtime["warnings"])
        services = dict(spec.get("services") or {})
        services["Studio"] = {"type": "Studio", "endpoint": studio}
        services["Tracking"] = {"type": "Tracking", "endpoint": f"{url}/mlflow"}
        spec["services"] = services
        if row["parent_name"]:
            spec["parent_job_name"] = row["parent_name"]
        if with_metrics:
            summary = self.ctx.tracking.run_summary(row["name"])
            spec["metrics"] = summary["metrics"]
            spec["params"] = summary["params"]
            ext = self.ctx.services.get(f"jobs.{row['type']}")
            if ext is not None and hasattr(ext, "extend_view"):  # e.g. a sweep's trials
                spec = ext.extend_view(row, spec)
        return spec

    def get(self, name: str) -> dict[str, Any]:
        return self.view(self.ctx.store.get_job(name))

    def list(self, *, parent_job_name: str | None = None, include_archived: bool = False,
             status: str | None = None, max_results: int | None = None) -> list[dict[str, Any]]:
        rows = self.ctx.store.list_jobs(parent_name=parent_job_name, include_archived=include_archived,
                                        top_level_only=parent_job_name is None,
                                        status=[status] if status else None, limit=max_results)
        return [self.view(r, with_metrics=False) for r in rows]

    def update(self, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        """``job update --set``: display_name, description, tags, experiment_name (before it runs)."""
        row = self.ctx.store.get_job(name)
        allowed = {"display_name", "description", "tags", "properties"}
        bad = sorted(set(fields) - allowed)
        if bad:
            raise ValidationError(f"cannot update {', '.join(bad)} of a submitted job; updatable: "
                                  f"{', '.join(sorted(allowed))}")
        spec_update = {k: v for k, v in fields.items() if k in ("description", "tags", "properties")}
        if "tags" in spec_update:
            self.ctx.tracking.set_tags(name, {k: str(v) for k, v in spec_update["tags"].items()})
        cols = {"display_name": fields["display_name"]} if "display_name" in fields else {}
        self.ctx.store.update_job(row["name"], spec_update=spec_update, **cols)
        return self.get(name)

    def archive(self, name: str, archived: bool = True) -> dict[str, Any]:
        self.ctx.store.update_job(name, archived=archived)
        return self.get(name)

    # ------------------------------------------------------------------ cancel
    def cancel(self, name: str, reason: str = "canceled by the user") -> dict[str, Any]:
        """Cancel a job: queued -> Canceled at once; running -> the runner kills its process group.

        Children (trials, steps) are canceled too. Canceling a finished job changes nothing.
        """
        row = self.ctx.store.get_job(name)
        for child in self.ctx.store.list_jobs(parent_name=name):
            if child["status"] not in TERMINAL_JOB_STATUSES:
                self.cancel(child["name"], reason=f"parent job {name} was canceled")
        if row["status"] in TERMINAL_JOB_STATUSES:
            return self.get(name)
        done = self.ctx.store.transition_job(name, JobStatus.CANCELED,
                                             from_statuses=[JobStatus.NOT_STARTED, JobStatus.QUEUED],
                                             error=reason, end_time=_now())
        if done is not None:
            self.ctx.tracking.end_run(name, JobStatus.CANCELED)
            self.scheduler.after_terminal(done)
            return self.get(name)
        self.scheduler.request_cancel(name, reason)
        return self.get(name)

    # ------------------------------------------------------------------ logs and outputs
    def read_log(self, name: str, offset: int = 0, wait: float = 0.0, limit: int = 1 << 20) -> dict[str, Any]:
        """Bytes of ``user_logs/std_log.txt`` from ``offset`` (long-polls up to ``wait`` seconds)."""
        row = self.ctx.store.get_job(name)
        path = self.ctx.layout.job_dir(name) / "user_logs" / "std_log.txt"
        deadline = time.monotonic() + min(wait, 10.0)
        while True:
            size = path.stat().st_size if path.exists() else 0
            terminal = row["status"] in TERMINAL_JOB_STATUSES
            if size > offset or terminal or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
            row = self.ctx.store.get_job(name)
        data = b""
        if size > offset:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(limit)
            data = _complete_utf8(data)
        new_offset = offset + len(data)
        return {"data": data.decode("utf-8", errors="replace"), "offset": new_offset, "status": row["status"],
                "terminal": terminal and new_offset >= size, "error": row["error"]}

    def output_dir(self, name: str, output: str) -> Path:
        """Local folder (or file) of the default artifact output or of a named output."""
        row = self.ctx.store.get_job(name)
        if output in ("artifacts", "default"):
            return self.ctx.tracking.artifact_dir(row["runtime"]["artifact_uri"])
        outs = row["runtime"].get("outputs") or {}
        if output not in outs:
            raise NotFoundError(f"job {name!r} has no output {output!r}; outputs: "
                                f"{', '.join(['artifacts', *outs]) }")
        return Path(outs[output]["local_path"])

    def resolve_output_uri(self, uri: JobOutputUri) -> Path:
        base = self.output_dir(uri.job, uri.output)
        return safe_join(base, uri.path, what=f"path of azureml://jobs/{uri.job}/outputs/{uri.output}")

    def tar_output(self, name: str, output: str) -> Iterator[bytes]:
        """A tar of an output (``artifacts`` = the run's artifacts) for ``job download``.

        Raises (before any byte is produced):
            NotFoundError: unknown job or output, or an output the job has not written.
        """
        base = self.output_dir(name, output)
        if not base.exists():
            raise NotFoundError(f"output {output!r} of job {name!r} has no files (the job has not written it)")
        return self._tar(base)

    @staticmethod
    def _tar(base: Path) -> Iterator[bytes]:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            if base.is_file():
                tar.add(str(base), arcname=base.name)
            else:
                for p in sorted(base.rglob("*")):
                    if p.is_file() and not p.is_symlink():
                        tar.add(str(p), arcname=p.relative_to(base).as_posix())
        buf.seek(0)
        while chunk := buf.read(1 << 20):
            yield chunk

    def delete_files(self, name: str) -> None:
        shutil.rmtree(self.ctx.layout.job_dir(name) / "wd", ignore_errors=True)


def _complete_utf8(data: bytes) -> bytes:
    """Drop a multi-byte character cut at the end of a chunk (the next read will carry it)."""
    for cut in range(1, 4):
        if len(data) >= cut and (data[-cut] & 0xC0) == 0xC0:
            need = 2 if data[-cut] < 0xE0 else 3 if data[-cut] < 0xF0 else 4
            return data[:-cut] if cut < need else data
        if len(data) >= cut and (data[-cut] & 0x80) == 0:
            return data
    return data


def _now() -> Any:
    from openaml.store import utcnow

    return utcnow()
