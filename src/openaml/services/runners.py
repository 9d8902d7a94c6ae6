"""Runners: what a job's runner asks of the server and tells it (the runner routes), and the
scheduler's wiring to the services.

A runner's only link is HTTP with its job's runner token (``server/routes/runner.py``; scope
``runner``, which no other token has: ``services/users.py``): it reads its spec
(:meth:`RunnerService.spec`, with the ``command_token`` its command gets: scope ``job``, which
the runner routes refuse), reports its state (:meth:`RunnerService.report`: kept on the job's
row as ``runtime["runner"]``, which the scheduler reads), heartbeats
(:meth:`RunnerService.heartbeat`: ``runtime["runner_heartbeat"]``, server time) and appends its
logs to the job folder's log files (:meth:`RunnerService.append_log`), so ``job stream`` reads
the same files whether the runner ran here or elsewhere. Answers to reports and heartbeats carry
the job's status and a pending cancel's reason, which is how a runner on another machine learns
that its job was canceled. A runner that cannot see the server's disk (``workspace`` in its spec
names the folder and its id, which it checks) fetches its code snapshot and inputs and sends its
declared outputs through the routes of :mod:`openaml.services._runner_files`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from openaml.compute._scheduler import ACTIVE, Scheduler, SchedulerCallbacks
from openaml.constants import JobStatus
from openaml.environments._hide import server_secret_files
from openaml.errors import ConflictError, NotFoundError, ValidationError
from openaml.records import RunnerLogRecord, RunnerOutputRecord, RunnerReplyRecord, RunnerSpecRecord
from openaml.services import _runner_files
from openaml.services._context import WorkspaceContext
from openaml.services._warm_steps import warm_process
from openaml.services.workspace_files import files_of

__all__ = ["RunnerService", "make_scheduler", "register_outputs", "LOG_STREAMS"]

#: log streams a runner appends to, and their files in the job folder
LOG_STREAMS = {"user": ("user_logs", "std_log.txt"), "system": ("system_logs", "runner.log")}
MAX_LOG_CHUNK = 1 << 20


def make_scheduler(ctx: WorkspaceContext) -> Scheduler:
    """The workspace's scheduler, with the services' callbacks (job tokens, output registration)."""
    scheduler = Scheduler(ctx, SchedulerCallbacks(job_token=lambda row: ctx.services["users"].runner_token(row),
                                                  register_outputs=lambda row: register_outputs(ctx, row),
                                                  job_ended=lambda name: ctx.services["users"].forget_job(name)))
    scheduler.ending_hooks.append(lambda name: _ship_job_files(ctx, name))
    return scheduler


def _ship_job_files(ctx: WorkspaceContext, name: str) -> None:
    """A job's log and run artifacts to the default datastore, where other servers read them."""
    files = files_of(ctx)
    if files is not None and files.shared:
        files.job_ending(name, ctx.store.get_job(name)["runtime"].get("artifact_uri"))


def register_outputs(ctx: WorkspaceContext, job: dict[str, Any]) -> str | None:
    """Register a completed job's outputs that name an asset (``name``/``version`` on the output) as
    a model (model types) or a data asset (others). Returns the error that fails the job, or None."""
    outputs = job["runtime"].get("outputs") or {}
    for out_name, out in outputs.items():
        reg = out.get("register")
        if not reg:
            continue
        try:
            if out["type"] in ("custom_model", "mlflow_model", "triton_model") and out.get("local_path") is None:
                ctx.services["models"].create_or_update({  # an object-store datastore: fetched by the service
                    "name": reg["name"], "version": reg.get("version"), "type": out["type"], "path": out["uri"],
                    "description": reg.get("description"), "job_name": job["name"]})
            elif out["type"] in ("custom_model", "mlflow_model", "triton_model"):
                ctx.services["models"].register_from_path(
                    reg["name"], reg.get("version"), out["type"], out["local_path"], reg.get("description"),
                    {}, job["name"])
            else:
                ctx.services["data"].create({
                    "name": reg["name"], "version": reg.get("version"), "type": out["type"],
                    "path": out["uri"], "description": reg.get("description") or f"output {out_name} of job {job['name']}",
                }, created_by=job["runtime"].get("created_by"))  # registered by the server: the job's submitter
        except Exception as exc:  # noqa: BLE001
            msg = getattr(exc, "message", None) or str(exc)
            return f"registering output {out_name!r} as {reg['name']} failed: {msg}"
    return None


class RunnerService:
    def __init__(self, ctx: WorkspaceContext) -> None:
        self.ctx = ctx
        self._log_lock = threading.Lock()

    def _active(self, name: str) -> dict[str, Any]:
        row = self.ctx.store.get_job(name)
        if row["status"] not in ACTIVE:
            raise ConflictError(f"job {name!r} is {row['status']}: its runner has nothing to run or report",
                                details={"status": row["status"]})
        return row

    def heartbeat_seconds(self) -> float:
        """How often a runner reports: a quarter of the heartbeat timeout, between 0.5 and 5 s."""
        timeout = float(self.ctx.settings.heartbeat_timeout)
        return min(5.0, max(0.5, timeout / 4)) if timeout > 0 else 5.0

    def spec(self, name: str) -> RunnerSpecRecord:
        """What the runner of job ``name`` runs (the job's resolved command, inputs, outputs,
        environment, where to log), while the job is active.

        Raises:
            NotFoundError: no such job. ConflictError: the job is not active (ended, or queued).
        """
        row = self._active(name)
        rt = row["runtime"]
        spec = row["spec"]
        url = self.ctx.url
        return {
            "job_name": name,
            "workspace_name": self.ctx.workspace_name,
            "server_url": url,
            "tracking_uri": f"{url}/mlflow",
            "run_id": name,
            "experiment_id": rt.get("experiment_id"),
            "experiment_name": row["experiment_name"],
            "compute": row["compute"],
            "command": rt.get("command") or spec["command"],  # a kind may run its own command (parallel)
            "code_dir": self._code_dir(rt.get("code_dir")),
            # object-store datastores come with their credentials (this answer only; not on the row)
            "inputs": self._with_secrets(rt.get("inputs") or {}),
            "outputs": self._with_secrets(rt.get("outputs") or {}),
            "environment": rt.get("environment") or {"kind": "base"},
            "environment_variables": spec.get("environment_variables") or {},
            "resources": rt["resources"] if "resources" in rt else spec.get("resources") or {},
            "distribution": spec.get("distribution"),
            "timeout": rt.get("timeout"),
            "artifact_dir": str(self.ctx.tracking.artifact_dir(rt["artifact_uri"], fetch=False)),
            "envs_dir": str(self.ctx.layout.envs),
            "hidden_files": server_secret_files(self.ctx.settings),  # beside the workspace's own
            "read_only_dirs": self.ctx.services["datastores"].local_roots(),  # local datastores' folders
            # a runner that finds this folder with this id sees the server's disk (the paths above)
            "workspace": {"root": str(self.ctx.layout.root), "id": self._workspace_id()},
            "heartbeat_seconds": self.heartbeat_seconds(),
            "servers": self.servers(),
            # the token its command gets (scope "job": its run, its record; never the runner routes)
            "command_token": self.ctx.services["users"].job_token(row),
            "warm_process": warm_process(self.ctx, row),  # a step of openaml's own code: services._warm_steps
        }

    def _code_dir(self, code_dir: str | None) -> str | None:
        """A code snapshot as a folder of this server (the job may have been created on another
        server of the workspace: its snapshot is fetched from the default datastore)."""
        if not code_dir:
            return code_dir
        p = Path(code_dir)
        mine = self.ctx.layout.code / p.name
        if p.parent.name == "code" and re.fullmatch(r"[0-9a-f]{64}", p.name) and p != mine:
            files = files_of(self.ctx)
            if mine.is_dir() or (files is not None and files.try_pull(mine)):
                return str(mine)
        return code_dir

    def _with_secrets(self, entries: dict[str, Any]) -> dict[str, Any]:
        datastores = self.ctx.services["datastores"]
        return {k: {**v, "datastore": datastores.with_secrets(v["datastore"])} if v.get("datastore") else v
                for k, v in entries.items()}

    def _workspace_id(self) -> str | None:
        try:
            return str(self.ctx.layout.info().get("id") or "") or None
        except (OSError, ValueError, NotFoundError):
            return None

    # ---------------------------------------------------------------- files, for a runner elsewhere
    def code_tar(self, name: str) -> Iterator[bytes]:
        """A tar stream of the active job's code snapshot (:func:`_runner_files.code_tar`)."""
        return _runner_files.code_tar(self._active(name))

    def input_tar(self, name: str, input_name: str) -> Iterator[bytes]:
        """A tar stream of the active job's declared input (:func:`_runner_files.input_tar`)."""
        return _runner_files.input_tar(self.ctx, self._active(name), input_name)

    async def receive_output(self, name: str, output: str, stream: AsyncIterator[bytes]) -> RunnerOutputRecord:
        """Put an uploaded declared output into its datastore (:func:`_runner_files.receive_output`)."""
        from starlette.concurrency import run_in_threadpool

        row = await run_in_threadpool(self._active, name)
        return await _runner_files.receive_output(self.ctx, row, output, stream)

    def servers(self) -> list[str]:
        """The workspace's live servers, the leader first (:meth:`BackgroundWork.servers`): where a
        runner reports when the server it reports to stops answering."""
        work = self.ctx.services.get("background")
        found = list(work.servers()) if work is not None else []
        return found or ([self.ctx.url] if self.ctx.url else [])

    def _reply(self, row: dict[str, Any]) -> RunnerReplyRecord:
        rt = row["runtime"]
        cancel = (rt.get("cancel_reason") or "canceled") if row["status"] == JobStatus.CANCEL_REQUESTED else None
        return {"status": row["status"], "cancel": cancel, "heartbeat_seconds": self.heartbeat_seconds(),
                "servers": self.servers()}

    def report(self, name: str, state: dict[str, Any]) -> RunnerReplyRecord:
        """Keep the runner's state (``status``, ``exit_code``, ``error``, ``log_tail``, ``env_warnings``,
        ``user_pgid``..., ``terminal`` once it ended) on the job's row; counts as a heartbeat.

        Raises:
            ConflictError: the job is not active (a report after its end changes nothing).
        """
        self._active(name)
        row = self.ctx.store.update_job(name, runtime_update={"runner": state, "runner_heartbeat": time.time()})
        self.ctx.services["jobs"].wake()
        return self._reply(row)

    def heartbeat(self, name: str) -> RunnerReplyRecord:
        """The runner is alive. Answers the job's status and a pending cancel's reason."""
        self._active(name)
        row = self.ctx.store.update_job(name, runtime_update={"runner_heartbeat": time.time()})
        return self._reply(row)

    def append_log(self, name: str, stream: str, offset: int, data: bytes) -> RunnerLogRecord:
        """Write ``data`` at byte ``offset`` of the job's ``stream`` log (``user``: user_logs/std_log.txt,
        ``system``: system_logs/runner.log). Append-only and idempotent: bytes the file holds already
        are compared, not written, so a runner resends after a failed call without doubling lines,
        and nothing written is ever replaced. Returns ``{"offset": size}``, the file's size after the
        write: where the runner's next chunk starts (also when it asked for an offset past the end:
        it resends from there).

        Raises:
            ValidationError: unknown stream, negative offset, chunk over 1 MiB, or a chunk whose bytes
            differ from those the log holds at its offset (a log is never rewritten).
            ConflictError: job not active.
        """
        if stream not in LOG_STREAMS:
            raise ValidationError(f"field 'stream': {stream!r} is not a log stream; streams: {', '.join(LOG_STREAMS)}")
        if offset < 0 or len(data) > MAX_LOG_CHUNK:
            raise ValidationError(f"field 'offset'/'data': offset {offset} must be >= 0 and a chunk at most "
                                  f"{MAX_LOG_CHUNK} bytes (got {len(data)})")
        self._active(name)
        path: Path = self.ctx.layout.job_dir(name).joinpath(*LOG_STREAMS[stream])
        with self._log_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a+b") as fh:
                size = fh.seek(0, 2)
                held = min(size, offset + len(data)) - offset
                if held > 0:
                    fh.seek(offset)
                    if fh.read(held) != data[:held]:
                        raise ValidationError(
                            f"field 'offset': the {stream} log of job {name!r} already holds different bytes "
                            f"at {offset}..{offset + held}: a log is append-only; send the bytes from "
                            f"offset {size} on", details={"offset": size})
                if offset <= size < offset + len(data):
                    fh.seek(0, 2)
                    fh.write(data[size - offset:])
                    size = fh.tell()
        files = files_of(self.ctx)
        if stream == "user" and files is not None:
            files.log_written(name)  # other servers of the workspace read it from the default datastore
        return {"offset": size}
