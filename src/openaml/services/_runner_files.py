"""The files a job's runner exchanges with the server when it cannot see the server's disk (a
runner on another machine): its code snapshot and its inputs as tar streams, its declared
outputs received as tar streams and put into their datastores through the port.

Scope: the job's own code, inputs and outputs only, named by the job's row (``runtime``), never by
a path the runner gives, so a runner cannot reach another job's or the workspace's files. A
runner on the server's machine reads and writes these paths itself (the fast path).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio

from openaml.datastores import DatastorePort, LocalDatastore, safe_extract_tar, tar_stream
from openaml.errors import ConflictError, NotFoundError, UnsupportedError, ValidationError
from openaml.records import RunnerOutputRecord
from openaml.services._context import WorkspaceContext
from openaml.services.uploads import spool_stream

__all__ = ["code_tar", "input_tar", "receive_output"]


def code_tar(row: dict[str, Any]) -> Iterator[bytes]:
    """A tar of job ``row``'s code snapshot (members relative to the snapshot's folder).

    Raises (before the first chunk):
        NotFoundError: the job has no code, or its snapshot is gone.
    """
    code = row["runtime"].get("code_dir")
    if not code:
        raise NotFoundError(f"job {row['name']!r} has no code")
    folder = Path(code)
    if not folder.exists():
        raise NotFoundError(f"the code snapshot of job {row['name']!r} is gone from the server")
    if folder.is_file():
        return tar_stream(LocalDatastore("code", {"path": str(folder.parent)}), folder.name, prefix=folder.name)
    return tar_stream(LocalDatastore("code", {"path": str(folder)}), "")


def _input_source(ctx: WorkspaceContext, row: dict[str, Any], name: str) -> tuple[DatastorePort, str, str]:
    inputs = row["runtime"].get("inputs") or {}
    inp = inputs.get(name)
    if inp is None:
        raise NotFoundError(f"job {row['name']!r} has no input {name!r}; its inputs: {', '.join(sorted(inputs)) or 'none'}")
    if inp.get("datastore") is not None:
        port = ctx.services["datastores"].port(inp["datastore"]["name"])
        rel = inp.get("path") or ""
        return port, rel, rel.rstrip("/").rsplit("/", 1)[-1] or port.name
    if inp.get("local_path") is not None:  # a model or an MLflow run's artifacts
        local = Path(inp["local_path"])
        return LocalDatastore("input", {"path": str(local.parent)}), local.name, local.name
    raise ValidationError(f"input {name!r} of job {row['name']!r} has no files (a literal or a direct URI)")


def input_tar(ctx: WorkspaceContext, row: dict[str, Any], name: str) -> Iterator[bytes]:
    """A tar of job ``row``'s declared input ``name``: its file or folder under one member (or
    folder) named as the runner names its download (the path's last part).

    Raises (before the first chunk):
        NotFoundError: no such input, or its files are gone. ValidationError: a literal input.
    """
    port, rel, top = _input_source(ctx, row, name)
    if not port.exists(rel):
        raise NotFoundError(f"input {name!r} of job {row['name']!r}: {port.uri(rel)} does not exist")
    return tar_stream(port, rel, prefix=top)


async def receive_output(ctx: WorkspaceContext, row: dict[str, Any], name: str,
                         stream: AsyncIterator[bytes]) -> RunnerOutputRecord:
    """Put a tar stream of job ``row``'s declared output ``name`` into its datastore path, through
    the port: staged in the workspace's ``uploads/`` first, then moved (a local datastore renames
    the staged folder into place), so a broken upload writes nothing. A ``uri_file`` output's tar
    holds its one file. Taken only from a runner that reported its command succeeded
    (``Finalizing`` with exit code 0) on a job not being canceled: a failed job publishes nothing.

    Returns ``{"landed": <local path of the datastore, or its URI>, "files": <count>}``.

    Raises:
        NotFoundError: no such output. ConflictError: the runner has not reported success.
        UnsupportedError: an output of a job queued by an earlier version (a server path).
        ValidationError/PathEscapeError: not a tar, a link or a member leaving the stage; a
            ``uri_file`` upload that is not one file.
    """
    outputs = row["runtime"].get("outputs") or {}
    out = outputs.get(name)
    if out is None:
        raise NotFoundError(f"job {row['name']!r} has no output {name!r}; its outputs: {', '.join(sorted(outputs)) or 'none'}")
    runner = row["runtime"].get("runner") or {}
    if runner.get("status") != "Finalizing" or runner.get("exit_code") != 0 or row["status"] == "CancelRequested":
        raise ConflictError(f"output {name!r} of job {row['name']!r} is taken only after its command succeeded "
                            f"(the runner reported {runner.get('status')!r}, exit code {runner.get('exit_code')!r})")
    if out.get("datastore") is None:
        raise UnsupportedError(f"output {name!r} of job {row['name']!r} names a server folder (a job queued by an "
                               "earlier version): run it again to use a runner that cannot see the server's disk")
    stage = ctx.layout.uploads / f"out-{uuid.uuid4().hex}"
    stage.mkdir(parents=True)
    tar_path = stage.with_suffix(".tar")
    try:
        await spool_stream(stream, tar_path)
        return await anyio.to_thread.run_sync(_place, ctx, row, name, out, tar_path, stage)
    finally:
        tar_path.unlink(missing_ok=True)
        if stage.exists():
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(stage, ignore_errors=True))


def _place(ctx: WorkspaceContext, row: dict[str, Any], name: str, out: dict[str, Any], tar_path: Path,
           stage: Path) -> RunnerOutputRecord:
    with open(tar_path, "rb") as fh:
        count = safe_extract_tar(fh, stage)
    src = stage
    if out.get("type") == "uri_file":
        files = [p for p in stage.rglob("*") if p.is_file()]
        if len(files) != 1:
            raise ValidationError(f"output {name!r} of job {row['name']!r} is a uri_file: the upload must hold "
                                  f"exactly one file (it holds {len(files)})")
        src = files[0]
    port = ctx.services["datastores"].port(out["datastore"]["name"])
    rel = out.get("path") or ""
    port.put(src, rel, move=True)  # an explicit path shared by several jobs: merged, as on the server
    return {"landed": str(port.local_path(rel)) if port.has_local_path else port.uri(rel), "files": count}
