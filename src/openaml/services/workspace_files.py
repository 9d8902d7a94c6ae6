"""The workspace's own files on its default datastore, so that servers on several hosts share them.

A workspace whose default datastore is an object store (``type: s3`` or ``azure_blob`` registered
with ``is_default: true``, or ``workspace create --default-datastore``) keeps a copy of the files
of its folder that another server of the same workspace needs, under
``azureml://datastores/<default>/paths/openaml-workspace/<path in the folder>``:

* ``code/<hash>/``: code snapshots, pushed when uploaded, pulled by the server whose scheduler
  runs the job (it may not be the one that received the upload);
* ``jobs/<name>/user_logs/``: a job's log, pushed by the leading server while the job runs (every
  :data:`LOG_PUSH_SECONDS` at most) and when it ends, before its status becomes terminal; lines
  the server writes itself (a pipeline's or sweep's own log, the lines a kind adds after the end)
  are pushed the same way, within :data:`LOG_PUSH_SECONDS`; read from there by a server that has
  no local copy (``GET /jobs/<name>/logs``, ``job stream`` on any server);
* ``mlartifacts/``: MLflow run artifacts and registered models (pushed when a job ends, when a
  model is registered and when an MLflow client uploads an artifact through ``/mlflow``; pulled
  when a server reads them).

The local folder is a cache of those copies: everything else (the database, the environments, a
job's working folder) stays local, as each server has its own folder (docs/guide/scale-out.md).
With a local default datastore nothing is copied and every method is a no-op.

This mirrors Azure ML, where a workspace's code snapshots, outputs and run logs live in its
storage account (``workspaceblobstore``, ``workspaceartifactstore``) rather than on a compute.
"""

from __future__ import annotations

import logging
import os
import posixpath
import threading
import time
import uuid
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from openaml.datastores import DatastorePort
from openaml.errors import NotFoundError, OpenAMLError
from openaml.services._context import WorkspaceContext

__all__ = ["WorkspaceFiles", "PREFIX", "LOG_PUSH_SECONDS"]

log = logging.getLogger(__name__)

#: where the workspace's files live in its default datastore
PREFIX = "openaml-workspace"
#: a running job's log is pushed at most this often (seconds)
LOG_PUSH_SECONDS = 2.0
#: the default datastore is looked up again after this long (seconds)
_PORT_TTL = 5.0


class WorkspaceFiles:
    """Push and pull the workspace folder's shared files (module docstring) to and from the default
    datastore when it is an object store."""

    def __init__(self, ctx: WorkspaceContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._port: tuple[float, DatastorePort | None] = (-1.0, None)
        self._log_pushed: dict[str, float] = {}
        self._log_pending: set[str] = set()

    # ------------------------------------------------------------------ where
    def port(self) -> DatastorePort | None:
        """The default datastore's port when it is an object store, else None (cached a few seconds)."""
        now = time.monotonic()
        with self._lock:
            at, port = self._port
            if at >= 0 and now - at < _PORT_TTL:
                return port
        datastores = self.ctx.services["datastores"]
        try:
            found = datastores.port(datastores.default_name())
        except OpenAMLError:
            log.exception("the workspace's default datastore cannot be opened; its files stay local")
            found = None
        port = None if found is None or found.has_local_path else found
        with self._lock:
            self._port = (now, port)
        return port

    @property
    def shared(self) -> bool:
        """Whether the workspace's files are copied to an object store (other servers may read them)."""
        return self.port() is not None

    def forget_port(self) -> None:
        """Look the default datastore up again on next use (it was changed)."""
        with self._lock:
            self._port = (-1.0, None)

    def remote_path(self, local: Path) -> str:
        """The path in the default datastore of a file or folder of the workspace folder.

        Raises:
            ValueError: ``local`` is outside the workspace folder.
        """
        rel = Path(local).resolve().relative_to(self.ctx.layout.root.resolve())
        return posixpath.join(PREFIX, rel.as_posix())

    # ------------------------------------------------------------------ copies
    def push(self, local: Path) -> int:
        """Copy a file or folder of the workspace folder to the default datastore: only the files
        missing there or of another size (a log grows; other files are written once). Returns the
        number of files copied; 0 when the datastore is local or ``local`` does not exist.

        Raises:
            OpenAMLError: the datastore refused (naming it and the service's error).
        """
        port = self.port()
        if port is None or not local.exists():
            return 0
        rel = self.remote_path(local)
        if local.is_file():
            try:
                same = port.info(rel)["size"] == local.stat().st_size
            except OpenAMLError:
                same = False
            if not same:
                port.put(local, rel)
            return 0 if same else 1
        there = dict(port.walk(rel)) if port.isdir(rel) else {}
        count = 0
        for dirpath, dirnames, filenames in os.walk(local, followlinks=False):
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
            for f in filenames:
                full = Path(dirpath) / f
                if full.is_symlink() or not full.is_file():
                    continue
                sub = full.relative_to(local).as_posix()
                if there.get(sub) != full.stat().st_size:
                    port.put(full, posixpath.join(rel, sub))
                    count += 1
        return count

    def try_push(self, local: Path) -> None:
        """:meth:`push`, a failure logged (for copies that must not fail what triggered them)."""
        try:
            self.push(local)
        except Exception:  # noqa: BLE001 - logged: the local copy is intact
            log.exception("could not copy %s to the workspace's default datastore", local)

    def pull(self, local: Path) -> bool:
        """Fetch a file or folder of the workspace folder from the default datastore where the
        local copy lacks it (files missing here or of another size). Returns whether ``local``
        exists afterwards. Files are written whole (a temporary name renamed into place).

        Raises:
            OpenAMLError: the datastore refused (naming it and the service's error).
        """
        port = self.port()
        if port is None:
            return local.exists()
        rel = self.remote_path(local)
        for sub, size in port.walk(rel) if port.exists(rel) else ():
            target = local / sub if sub else local
            if target.is_file() and target.stat().st_size == size:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
            try:
                port.get(posixpath.join(rel, sub) if sub else rel, tmp)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        return local.exists()

    def try_pull(self, local: Path) -> bool:
        """:meth:`pull`, a failure logged (the caller then reports what is missing)."""
        try:
            return self.pull(local)
        except Exception:  # noqa: BLE001 - logged; the caller says the files are missing
            log.exception("could not fetch %s from the workspace's default datastore", local)
            return local.exists()

    # ------------------------------------------------------------------ job logs
    def log_written(self, name: str) -> None:
        """A chunk was appended to job ``name``'s log here: push it when the last push is older
        than :data:`LOG_PUSH_SECONDS` (in a background thread; the append is not delayed), else
        mark it for the next one."""
        if not self.shared:
            return
        now = time.monotonic()
        with self._lock:
            if name in self._log_pending:
                return
            wait = max(0.0, LOG_PUSH_SECONDS - (now - self._log_pushed.get(name, 0.0)))
            self._log_pending.add(name)
        timer = threading.Timer(wait, self._push_log_later, args=(name,))
        timer.daemon = True
        timer.start()

    def _push_log_later(self, name: str) -> None:
        with self._lock:
            self._log_pending.discard(name)
            self._log_pushed[name] = time.monotonic()
        self.try_push(self.ctx.layout.job_dir(name) / "user_logs")

    def job_ending(self, name: str, artifact_uri: str | None) -> None:
        """Push a job's log and its run's artifacts (called before its terminal status is stored,
        so that a server seeing the status finds them whole)."""
        if not self.shared:
            return
        with self._lock:
            self._log_pushed.pop(name, None)
        self.try_push(self.ctx.layout.job_dir(name) / "user_logs")
        if artifact_uri:
            try:
                self.try_push(self.ctx.tracking.artifact_dir(artifact_uri, fetch=False))
            except OpenAMLError:
                log.exception("job %s: its artifact folder cannot be found", name)

    def read_log(self, name: str, offset: int, limit: int) -> tuple[int, bytes] | None:
        """``(size, bytes from offset)`` of job ``name``'s log as pushed to the default datastore;
        None when the workspace's files are local or the log was not pushed (yet)."""
        port = self.port()
        if port is None:
            return None
        rel = self.remote_path(self.ctx.layout.job_dir(name) / "user_logs" / "std_log.txt")
        try:
            size = int(port.info(rel)["size"])
        except OpenAMLError:
            return None
        if size <= offset:
            return size, b""
        try:
            # one ranged read: the leader replaces the copy as the log grows (every 2 s), and a file
            # object opened on the copy before refuses to read on (regression: a 500 to a standby's reader)
            data = port.read_range(rel, offset, limit)
        except NotFoundError:
            return None
        return max(size, offset + len(data)), data


def files_of(ctx: Any) -> WorkspaceFiles | None:
    """The context's :class:`WorkspaceFiles`, or None for a context built without it (tests)."""
    services = getattr(ctx, "services", None) or {}
    found = services.get("files")
    return found if isinstance(found, WorkspaceFiles) else None


_ARTIFACTS = "/mlflow-artifacts/artifacts"


class SharedArtifacts:
    """ASGI wrapper of MLflow's server: its artifact proxy (``mlflow-artifacts``) reads and writes
    the local ``mlartifacts/`` folder, so an artifact another server of the workspace stored is
    fetched from the default datastore before MLflow serves a download or a listing, and one
    uploaded here is pushed there once MLflow has written it, before the upload is answered (a
    read through another server right after finds it). Without shared files it only passes
    requests through."""

    def __init__(self, app: Any, files: WorkspaceFiles) -> None:
        self.app = app
        self.files = files

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope.get("type") == "http" else ""
        at = path.find(_ARTIFACTS)
        if at < 0 or not await _run(lambda: self.files.shared):
            await self.app(scope, receive, send)
            return
        rel = path[at + len(_ARTIFACTS):].strip("/")
        if not rel and scope.get("method") == "GET":  # a listing: ?path=<folder>
            from urllib.parse import parse_qs

            rel = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("path") or [""])[0].strip("/")
        if ".." in rel.split("/"):
            await self.app(scope, receive, send)  # MLflow refuses it with its own error
            return
        local = self.files.ctx.layout.mlartifacts / rel
        method = scope.get("method")
        if method == "GET" and rel:
            await _run(lambda: self.files.try_pull(local))
        if method != "PUT" or not rel:
            await self.app(scope, receive, send)
            return
        # the answer waits for the push: a client that wrote through this server and reads through
        # another gets what it wrote (regression: the answer came first, and a read on the other
        # server right after it found nothing). A PUT's answer is a few bytes.
        held: list[MutableMapping[str, Any]] = []

        async def hold(message: MutableMapping[str, Any]) -> None:
            held.append(message)

        try:
            await self.app(scope, receive, hold)
            starts = [int(m.get("status", 500)) for m in held if m.get("type") == "http.response.start"]
            if starts and starts[0] < 300:
                await _run(lambda: self.files.try_push(local))
        finally:
            for message in held:
                await send(message)


async def _run(fn: Any) -> Any:
    import anyio

    return await anyio.to_thread.run_sync(fn)
