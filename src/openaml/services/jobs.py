"""Jobs: the service the routes call: submission (the job core's), queries, cancel, logs, outputs.

A job IS an MLflow run: its name is the run id and ``experiment_name`` the MLflow experiment
(Azure ML behaviour). Statuses follow azure-ai-ml: NotStarted -> Queued -> Preparing -> Running
-> Finalizing -> Completed | Failed | Canceled (CancelRequested while a cancel is under way).
Submission, the controller and the reconcile at start are the job core's
(:mod:`openaml.services._job_core`), what each job type does its kind's (:mod:`openaml.services.kinds`);
execution is the scheduler's (:mod:`openaml.compute._scheduler`).
"""

from __future__ import annotations

import builtins
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from openaml.constants import TERMINAL_JOB_STATUSES
from openaml.datastores import DatastorePort, JobOutputUri, LocalDatastore, safe_join, tar_stream
from openaml.errors import NotFoundError, ValidationError
from openaml.records import JobLogRecord, JobRecord
from openaml.services._context import WorkspaceContext
from openaml.services._job_core import JobCore, generate_job_name
from openaml.services.runners import make_scheduler
from openaml.services.workspace_files import files_of

__all__ = ["JobService", "generate_job_name"]


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
        self.core = JobCore(ctx, self.scheduler)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the scheduler, then resume the jobs a previous server left (:meth:`JobCore.reconcile`)."""
        self.scheduler.start()
        self.core.reconcile()

    def stop(self) -> None:
        self.scheduler.stop()

    def wake(self) -> None:
        self.scheduler.wake()

    # ------------------------------------------------------------------ submission
    def submit(self, spec: dict[str, Any], *, source: str | None = None) -> JobRecord:
        """Validate, record and start a job of any kind (:meth:`JobCore.submit`).

        A submitted spec's ``parent_job_name`` is dropped, as Azure ML ignores read-only fields: only the
        server makes a job another's child (a pipeline's step, a sweep's trial), and a child may write
        under its parents' output folders (``azureml/<parent>/``), which another job may not.

        Raises:
            ValidationError: every problem found (fields named), before anything is stored.
            ConflictError: a job with that name exists.
            NotFoundError: unknown compute (listing those that exist).
        """
        spec = {k: v for k, v in spec.items() if k != "parent_job_name"}
        return self.core.submit(spec, source=source)

    # ------------------------------------------------------------------ queries
    def view(self, row: dict[str, Any], *, with_metrics: bool = True) -> JobRecord:
        spec = dict(row["spec"])
        runtime = row["runtime"]
        url = self.ctx.url
        studio = f"{url}/jobs/{quote(row['name'], safe='')}"  # the studio's job page (server/studio)
        spec.update({
            "name": row["name"], "status": row["status"], "experiment_name": row["experiment_name"],
            # a pipeline holds no compute itself: its default compute (Azure's settings.default_compute), or none
            "compute": row["compute"] or (spec.get("settings") or {}).get("default_compute") or spec.get("compute") or None,
            "display_name": row["display_name"] or row["name"],
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
        rec = cast(JobRecord, spec)  # the job's YAML fields pass through (see openaml.records)
        if with_metrics:
            summary = self.ctx.tracking.run_summary(row["name"])
            rec["metrics"] = summary["metrics"]
            rec["params"] = summary["params"]
            kind = self.core.find_kind(row["type"])
            if kind is not None:  # e.g. a sweep's trials, a pipeline's steps
                rec = kind.extend_view(row, rec)
        return rec

    def get(self, name: str, *, with_metrics: bool = True) -> JobRecord:
        """The job's record; ``with_metrics`` False leaves out the run's metrics and params and the
        kind's additions (a sweep's trials, a pipeline's steps): reading them is most of a request's
        cost (MLflow's ``get_run``), which a client polling for the end does not need."""
        return self.view(self.ctx.store.get_job(name), with_metrics=with_metrics)

    def list(self, *, parent_job_name: str | None = None, include_archived: bool = False,
             status: str | None = None, max_results: int | None = None) -> list[JobRecord]:
        rows = self.ctx.store.list_jobs(parent_name=parent_job_name, include_archived=include_archived,
                                        top_level_only=parent_job_name is None,
                                        status=[status] if status else None, limit=max_results)
        if parent_job_name and not rows:
            rows = self._batch_scoring_child(parent_job_name, status)
        return [self.view(r, with_metrics=False) for r in rows]

    def _batch_scoring_child(self, name: str, status: str | None) -> builtins.list[dict[str, Any]]:
        """A batch endpoint's scoring job is Azure's pipeline job and its scoring child in one: it is
        listed as its own child, so Azure's ``list(jobs.list(parent_job_name=job.name))[0]`` finds it."""
        try:
            row = self.ctx.store.get_job(name)
        except NotFoundError:
            return []
        batch = row["type"] == "parallel" and "openaml.batch_endpoint" in ((row["spec"].get("tags")) or {})
        return [row] if batch and (status is None or row["status"] == status) else []

    def update(self, name: str, fields: dict[str, Any]) -> JobRecord:
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

    def archive(self, name: str, archived: bool = True) -> JobRecord:
        self.ctx.store.update_job(name, archived=archived)
        return self.get(name)

    def rerun(self, name: str) -> JobRecord:
        """Submit job ``name``'s spec again as a new job (Azure ML studio's "Clone" then submit): the
        spec as it was submitted, less the fields the server sets and the name. A pipeline's step
        table (``steps``) and compile ``warnings`` are the server's, not the user's, and are dropped. A
        child job (a pipeline's step, a sweep's trial) is submitted as a standalone job with its own
        definition: no parent, none of the pipeline's tags and properties (``openaml.*``,
        ``azureml.isreused``/``azureml.reusedrunid``), so it is not canceled with its finished
        parent. Raises NotFoundError."""
        from openaml.services._job_core import SERVER_FIELDS

        row = self.ctx.store.get_job(name)
        spec = {k: v for k, v in dict(row["spec"]).items()
                if k not in SERVER_FIELDS and k not in ("name", "steps", "warnings", "parent_job_name")}
        if row.get("parent_job_name") or dict(row["spec"]).get("parent_job_name"):
            for field, dropped in (("tags", ("openaml.pipeline", "openaml.node")),
                                   ("properties", ("azureml.isreused", "azureml.reusedrunid", "openaml.reason",
                                                   "openaml.pipeline_node"))):
                if isinstance(spec.get(field), dict):
                    spec[field] = {k: v for k, v in spec[field].items() if k not in dropped}
        return self.submit(spec)

    # ------------------------------------------------------------------ cancel
    def cancel(self, name: str, reason: str = "canceled by the user") -> JobRecord:
        """Cancel a job: queued -> Canceled at once; running -> the runner kills its process group.

        Children (trials, steps) are canceled too. Canceling a finished job changes nothing.
        """
        row = self.ctx.store.get_job(name)
        self.core.cancel_children(name, reason=f"parent job {name} was canceled")
        if row["status"] in TERMINAL_JOB_STATUSES:
            return self.get(name)
        row = self.ctx.store.get_job(name)
        kind = self.core.find_kind(row["type"])
        if kind is not None:
            kind.cancel(row, reason)
        else:  # a job of a kind no longer registered: the generic cancel
            self.core.cancel_own(row, reason)
        return self.get(name)

    # ------------------------------------------------------------------ logs and outputs
    def read_log(self, name: str, offset: int = 0, wait: float = 0.0, limit: int = 1 << 20) -> JobLogRecord:
        """Bytes of ``user_logs/std_log.txt`` from ``offset`` (long-polls up to ``wait`` seconds).

        Raises:
            NotFoundError: no such job. ValidationError: a negative ``offset`` (a byte offset, 0 or more).
        """
        if offset < 0:
            raise ValidationError(f"field 'offset': {offset} is not a byte offset; give 0 or more (the 'offset' "
                                  "of the previous answer)", details={"field": "offset", "value": offset})
        row = self.ctx.store.get_job(name)
        path = self.ctx.layout.job_dir(name) / "user_logs" / "std_log.txt"
        deadline = time.monotonic() + min(wait, 10.0)
        files = files_of(self.ctx)
        while True:
            terminal = row["status"] in TERMINAL_JOB_STATUSES
            # a job run by another server of the workspace: its log as that server pushed it; a standby
            # also prefers the pushed copy to a partial one of its own (one it wrote before the fix)
            local = path.stat().st_size if path.exists() else -1
            remote = (files.read_log(name, offset, limit) if files is not None and (local < 0 or not self.core.leading())
                      else None)
            if remote is not None and remote[0] < local:
                remote = None  # the copy here is further along
            size = remote[0] if remote is not None else max(local, 0)
            if size > offset or terminal or time.monotonic() >= deadline:
                break
            time.sleep(0.05 if remote is None else 0.5)
            row = self.ctx.store.get_job(name)
        data = b""
        if remote is not None:
            data = _complete_utf8(remote[1])
        elif size > offset:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(limit)
            data = _complete_utf8(data)
        new_offset = offset + len(data)
        return {"data": data.decode("utf-8", errors="replace"), "offset": new_offset, "status": row["status"],
                "terminal": terminal and new_offset >= size, "error": row["error"]}

    def log_size(self, name: str) -> int:
        """Bytes in job ``name``'s ``user_logs/std_log.txt`` (0 before it starts): the local file, or
        (a job run by another server of the workspace) the copy on the workspace's files, as
        :meth:`read_log` reads them. Raises NotFoundError: no such job."""
        self.ctx.store.get_job(name)
        path = self.ctx.layout.job_dir(name) / "user_logs" / "std_log.txt"
        if path.exists():
            return path.stat().st_size
        files = files_of(self.ctx)
        remote = files.read_log(name, 1 << 62, 0) if files is not None else None
        return remote[0] if remote is not None else 0

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

    def output_uri(self, name: str, output: str) -> str | None:
        """The datastore URI a named output was written to; None for the default artifact output.

        Raises:
            NotFoundError: unknown job or output.
        """
        row = self.ctx.store.get_job(name)
        if output in ("artifacts", "default"):
            return None
        outs = row["runtime"].get("outputs") or {}
        if output not in outs:
            raise NotFoundError(f"job {name!r} has no output {output!r}; outputs: "
                                f"{', '.join(['artifacts', *outs]) }")
        return str(outs[output]["uri"])

    def tar_output(self, name: str, output: str) -> Iterator[bytes]:
        """A tar of an output (``artifacts`` = the run's artifacts) for ``job download``, streamed
        from the output's datastore chunk by chunk (never the whole archive in memory).

        Raises (before any byte is produced):
            NotFoundError: unknown job or output, or an output the job has not written.
        """
        uri = self.output_uri(name, output)
        located = self.ctx.services["datastores"].locate(uri) if uri is not None else None
        if located is None:
            port: DatastorePort = LocalDatastore("artifacts", {"path": str(self.output_dir(name, output))})
            path = ""
        else:
            port, path = located
        if not port.exists(path):
            raise NotFoundError(f"output {output!r} of job {name!r} has no files (the job has not written it)")
        return tar_stream(port, path)

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
