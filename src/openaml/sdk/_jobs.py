"""``ml_client.jobs``: create_or_update, get, list, stream, cancel, download, archive, restore.

The entities (pydantic models) and the upload code are imported by the calls that build or submit
jobs, not with this module: :meth:`JobOperations.list_raw` and :meth:`JobOperations.get_raw` (what
the CLI's ``job list`` and ``job show`` print) build no model.
"""

from __future__ import annotations

import io
import itertools
import sys
import time
import warnings
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from openaml.constants import TERMINAL_JOB_STATUSES
from openaml.entities._job_types import job_class
from openaml.errors import JobFailedError, NotFoundError, OpenAMLError, ValidationError

if TYPE_CHECKING:
    from openaml.entities import CommandJob, Environment, Job

__all__ = ["JobOperations", "job_from_dict"]

_LOCAL_MARKERS = ("azureml:", "azureml://", "openaml-code:", "runs:/",
                  "http://", "https://", "wasbs://", "abfss://", "adl://",
                  "s3://", "gs://", "/subscriptions/")


def job_from_dict(d: dict[str, Any]) -> Job:
    """Entity of a job as the server returns it (unknown keys are kept in ``properties``-free form)."""
    cls = job_class(d.get("type"))
    if cls is None:  # a kind this client has no entity for (a server plugin's): every field kept
        from openaml.entities import GenericJob

        return GenericJob.model_validate(d)
    known = {k: v for k, v in d.items() if k in cls.model_fields}
    job = cls.model_validate(known)
    extra = {k: v for k, v in d.items() if k not in cls.model_fields}
    object.__setattr__(job, "_server_extra", extra)
    return job


def _is_local(path: str) -> bool:
    return not path.startswith(_LOCAL_MARKERS)


class JobOperations:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._t = client._transport

    # ------------------------------------------------------------------ submit
    def prepare(self, job: Job, *, progress: bool = False) -> dict[str, Any]:
        """Upload local code and inputs and inline environment files; returns the wire spec.

        Raises:
            ValidationError: a local code/input path that does not exist (field named).
        """
        from openaml.entities import CommandJob

        if isinstance(job, CommandJob):
            return self._prepare_command(job, progress=progress)
        kind = getattr(job, "type", None)
        if kind == "sweep":
            from openaml.sdk._sweeps import prepare_sweep

            return prepare_sweep(self, job, progress=progress)  # type: ignore[arg-type]
        if kind == "parallel":
            from openaml.sdk._parallel import prepare_parallel

            return prepare_parallel(self, job, progress=progress)  # type: ignore[arg-type]
        if kind == "automl":
            from openaml.sdk._automl import prepare_automl

            return prepare_automl(self, job, progress=progress)  # type: ignore[arg-type]
        if kind == "pipeline":
            from openaml.sdk._pipelines import prepare_pipeline

            return prepare_pipeline(self, job, progress=progress)  # type: ignore[arg-type]
        from openaml.entities import GenericJob

        if isinstance(job, GenericJob):  # a server plugin's kind: the server validates its spec
            data = job.model_dump(mode="json", exclude_none=True)
            for key in ("status", "creation_context", "studio_url", "id", "created_at", "start_time", "end_time"):
                data.pop(key, None)
            return data
        raise ValidationError(f"cannot submit a {type(job).__name__}")

    def _prepare_command(self, job: CommandJob, *, progress: bool) -> dict[str, Any]:
        from openaml._templates import check_references
        from openaml.entities import Environment
        from openaml.sdk._upload import upload_code, upload_path

        base = job.base_path
        src = job._source or "job"
        data = job.model_dump(mode="json", exclude_none=True)
        inputs = data.get("inputs", {})
        supplied = [k for k, v in inputs.items() if any(v.get(x) is not None for x in ("path", "value", "default"))]
        problems = check_references(job.command, inputs=inputs, outputs=data.get("outputs", {}), supplied=supplied)
        if problems:
            raise ValidationError(f"{src}: field 'command': " + "; ".join(problems),
                                  details={"file": src, "field": "command"})
        if job.code:
            if _is_local(job.code):
                code_path = (base / job.code).resolve()
                if not code_path.exists():
                    raise ValidationError(f"{src}: field 'code': {job.code!r} does not exist (resolved to {code_path})",
                                          details={"file": src, "field": "code", "value": job.code})
                data["code"] = "openaml-code:" + upload_code(self._t, code_path, base=base, progress=progress)
        for name, inp in inputs.items():
            path = inp.get("path")
            if path and _is_local(str(path)) and inp.get("type") not in ("string", "number", "integer", "boolean"):
                local = (base / str(path)).resolve()
                if not local.exists():
                    raise ValidationError(f"{src}: field 'inputs.{name}.path': {path!r} does not exist "
                                          f"(resolved to {local})",
                                          details={"file": src, "field": f"inputs.{name}.path", "value": path})
                inp["path"] = upload_path(self._t, local, progress=progress)["uri"]
        env = job.environment
        if isinstance(env, Environment) or (isinstance(env, str) and env.startswith("file:")):
            data["environment"] = _inline_environment(self._client, env, base)
        if not job.experiment_name:
            data["experiment_name"] = _default_experiment(job)
        return data

    def create_or_update(self, job: Job, *, experiment_name: str | None = None, description: str | None = None,
                         tags: dict[str, str] | None = None, progress: bool = False, **kwargs: Any) -> Job:
        """Submit a job (azure-ai-ml: ``ml_client.jobs.create_or_update(job, experiment_name=...)``)."""
        if experiment_name:
            job.experiment_name = experiment_name
        if description:
            job.description = description
        if tags:
            job.tags = {**job.tags, **tags}
        try:
            spec = self.prepare(job, progress=progress)
            created = self._t.post("/jobs", json=spec, params={"source": job._source})
            for w in created.get("warnings") or []:  # accepted as Azure ML does, but worth saying
                warnings.warn(w, UserWarning, stacklevel=2)
            return job_from_dict(created)
        except OpenAMLError as exc:
            from openaml.entities._base import annotate_lines

            # the server names fields; the YAML's line map turns them into lines of the user's file
            exc.message = annotate_lines(exc.message, job._lines)
            exc.args = (exc.message,)
            raise

    def begin_create_or_update(self, job: Job, **kwargs: Any) -> Any:
        from openaml.sdk._client import Poller

        return Poller(self.create_or_update(job, **kwargs))

    # ------------------------------------------------------------------ queries
    def get(self, name: str, **kwargs: Any) -> Job:
        return job_from_dict(self._t.get(f"/jobs/{name}"))

    def get_raw(self, name: str) -> dict[str, Any]:
        """The job's record as the server sends it (``GET /jobs/{name}``), no entity built (openaml addition)."""
        return self._t.get(f"/jobs/{name}")

    def list_raw(self, *, parent_job_name: str | None = None, include_archived: bool = False,
                 max_results: int | None = None) -> list[dict[str, Any]]:
        """The jobs' records as the server sends them (``GET /jobs``; archived jobs only with
        ``include_archived``), no entity built (openaml addition; :meth:`list` builds the entities)."""
        rows: list[dict[str, Any]] = self._t.get("/jobs", params={
            "parent_job_name": parent_job_name, "include_archived": include_archived, "max_results": max_results})
        return rows

    def list(self, *, parent_job_name: str | None = None, list_view_type: str | None = None,
             max_results: int | None = None, **kwargs: Any) -> list[Job]:
        include_archived = str(list_view_type or "").lower() in ("all", "archived_only", "archivedonly")
        rows = self.list_raw(parent_job_name=parent_job_name, include_archived=include_archived,
                             max_results=max_results)
        jobs = [job_from_dict(r) for r in rows]
        if str(list_view_type or "").lower() in ("archived_only", "archivedonly"):
            jobs = [j for j in jobs if j.archived]
        # azure-ai-ml's schedule filters: jobs a schedule created (openaml.schedule.name property)
        scheduled = kwargs.get("scheduled_job_name")
        if scheduled is not None:
            jobs = [j for j in jobs if (j.properties or {}).get("openaml.schedule.name") == scheduled]
        elif kwargs.get("schedule_defined") is not None:
            want = bool(kwargs["schedule_defined"])
            jobs = [j for j in jobs if ("openaml.schedule.name" in (j.properties or {})) == want]
        return jobs

    def cancel(self, name: str, **kwargs: Any) -> Job:
        return job_from_dict(self._t.post(f"/jobs/{name}/cancel"))

    def begin_cancel(self, name: str, **kwargs: Any) -> Any:
        from openaml.sdk._client import Poller

        return Poller(self.cancel(name))

    def rerun(self, name: str, **kwargs: Any) -> Job:
        """Submit job ``name``'s spec again as a new job (the studio's Rerun button); returns the new job.
        An openaml addition (Azure ML's SDK has no rerun: its studio clones and submits)."""
        return job_from_dict(self._t.post(f"/jobs/{name}/rerun"))

    def archive(self, name: str, **kwargs: Any) -> None:
        self._t.post(f"/jobs/{name}/archive", params={"archived": True})

    def restore(self, name: str, **kwargs: Any) -> None:
        self._t.post(f"/jobs/{name}/archive", params={"archived": False})

    def update(self, name: str, **fields: Any) -> Job:
        return job_from_dict(self._t.request("PATCH", f"/jobs/{name}", json=fields))

    # ------------------------------------------------------------------ logs
    def stream(self, name: str, *, out: IO[str] | None = None, raise_on_failure: bool = True,
               poll_wait: float = 2.0) -> Job:
        """Print the job's log as it is written until the job ends (azure-ai-ml ``jobs.stream``).

        Raises:
            JobFailedError: the job ended Failed (azure-ai-ml raises too), with the error and log tail.
        """
        out = out or sys.stdout
        job = self.get_raw(name)
        if job.get("type") == "pipeline":
            from openaml.sdk._pipelines import stream_pipeline

            final = stream_pipeline(self, job, out, poll=min(poll_wait, 0.5))
            if raise_on_failure and final["status"] == "Failed":
                raise JobFailedError(f"job {name} failed: {final.get('error')}", details={"job": name})
            return job_from_dict(final)
        out.write(f"RunId: {name}\nWeb View: {job['studio_url']}\n\n")
        out.write("Streaming user_logs/std_log.txt\n===============================\n\n")
        out.flush()
        offset = 0
        while True:
            chunk = self._t.get(f"/jobs/{name}/logs", params={"offset": offset, "wait": poll_wait})
            if chunk["data"]:
                out.write(chunk["data"])
                out.flush()
            offset = chunk["offset"]
            if chunk["terminal"]:
                break
            if not chunk["data"]:
                time.sleep(0.05)
        final = self.get_raw(name)
        out.write(f"\nExecution Summary\n=================\nRunId: {name}\nStatus: {final['status']}\n")
        if final.get("error"):
            out.write(f"Error: {final['error']}\n")
        out.flush()
        if raise_on_failure and final["status"] == "Failed":
            raise JobFailedError(f"job {name} failed: {final.get('error')}", details={"job": name})
        return job_from_dict(final)

    def wait(self, name: str, timeout: float = 600.0, poll: float = 0.2) -> Job:
        """Block until the job ends (openaml extension); returns the final job.

        Polls the job every 0.05 s at first, doubling up to ``poll`` seconds, then, once the wait is
        longer, up to 5 % of the time waited so far (at most 2 s): a short job is seen ending within
        tens of milliseconds, and a long one is seen late by at most 5 % of its time while the server
        answers few requests (each one takes CPU from the jobs on a small machine).

        Raises:
            TimeoutError: the job had not ended after ``timeout`` seconds.
        """
        start = time.monotonic()
        deadline = start + timeout
        interval = max(0.01, min(0.05, poll))  # poll=0 must not spin on the server
        while True:
            raw = self._t.get(f"/jobs/{name}", params={"metrics": "false"})  # the status: no MLflow read
            if raw["status"] in TERMINAL_JOB_STATUSES:
                return job_from_dict(self.get_raw(name))
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"job {name} still {raw['status']} after {timeout} s")
            time.sleep(min(interval, max(0.0, deadline - now) + 0.01))
            interval = min(interval * 2, max(poll, min(2.0, 0.05 * (now - start))))

    # ------------------------------------------------------------------ download
    def download(self, name: str, *, download_path: str | Path = ".", output_name: str | None = None,
                 all: bool = False, **kwargs: Any) -> None:
        """Download outputs as ``az ml job download``: the default artifacts to ``<path>/artifacts/``,
        named outputs to ``<path>/named-outputs/<name>/``.

        A pipeline or sweep (a parent job) has no default artifacts of its own: without
        ``output_name`` its named outputs that have files are downloaded (``all=True`` too). With
        ``all=True``, a pipeline's steps' named outputs come too, to ``<path>/<step>/named-outputs/<name>/``
        (openaml: a pipeline whose outputs are not promoted to the pipeline still downloads whole).

        Raises:
            PathEscapeError: an archive member that would leave the download folder.
            NotFoundError: the output named has no files; for a parent, none of its outputs has
                any (the message lists them and says how to download a step's outputs).
        """
        from openaml.datastores import safe_extract_tar

        root = Path(download_path)
        raw = self.get_raw(name)
        parent = raw.get("type") in ("pipeline", "sweep", "automl")
        named = list(raw.get("output_uris") or {})
        if output_name:
            names = [output_name]
        elif parent:
            names = named
        elif all:
            names = ["artifacts", *named]
        else:
            names = ["artifacts"]
        from openaml.sdk._http import ChunkReader

        got = 0
        for out_name in names:
            dest = root / "artifacts" if out_name in ("artifacts", "default") else root / "named-outputs" / out_name
            # unpacked as it arrives: files are written to disk chunk by chunk, the archive is never held
            chunks = self._t.stream("GET", f"/jobs/{name}/outputs/{out_name}/download")
            try:
                first = next(chunks, b"")  # an error (unknown output, nothing written) raises before dest is made
            except NotFoundError:
                if output_name or not parent:
                    raise
                continue  # a parent's output no step has written (yet): the others are still downloaded
            safe_extract_tar(io.BufferedReader(ChunkReader(itertools.chain([first], chunks)), 1 << 20), dest)
            got += 1
        if parent and all and not output_name and raw.get("type") == "pipeline":
            for child in self.list_raw(parent_job_name=name):
                step = child.get("display_name") or str(child["name"]).removeprefix(f"{name}-")
                for out_name in child.get("output_uris") or {}:
                    chunks = self._t.stream("GET", f"/jobs/{child['name']}/outputs/{out_name}/download")
                    try:
                        first = next(chunks, b"")
                    except NotFoundError:
                        continue
                    dest = root / step / "named-outputs" / out_name
                    safe_extract_tar(io.BufferedReader(ChunkReader(itertools.chain([first], chunks)), 1 << 20), dest)
                    got += 1
        if parent and not output_name and got == 0:
            raise NotFoundError(
                f"job {name!r} is a {raw['type']} and has no default artifacts; none of its named outputs "
                f"({', '.join(named) or 'none'}) has files yet. Pass --output-name for one of them once written, "
                f"or download a step's outputs: openaml job list --parent-job-name {name}",
                details={"job": name, "outputs": named})


def _inline_environment(client: Any, env: Environment | str, base: Path) -> dict[str, Any]:
    """The environment as the server stores it: a ``conda_file`` path replaced by its content."""
    try:
        ops = client.environments
    except ImportError:
        ops = None
    inline = getattr(ops, "_inline", None)
    if inline is not None:
        return inline(env, base)
    if isinstance(env, str):
        raise ValidationError(f"environment {env!r}: file references need the environments SDK")
    return env.to_dict()


def _default_experiment(job: Job) -> str:
    """Azure ML's default experiment name: the name of the folder the job was defined in."""
    name = job.base_path.name or "Default"
    return name
