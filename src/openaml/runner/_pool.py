"""Warm pools of batch deployments, the runner's side (the pool process itself:
:mod:`openaml.parallel._openaml_parallel.pool`).

Azure keeps a batch deployment's compute nodes warm between invocations (a cluster's
``min_instances`` and ``idle_time_before_scale_down``); here the cost of a cold start is the workers'
imports of the environment's libraries (pandas, scikit-learn: most of a job's start). So, for a job
of a batch deployment (its engine config names it: ``warm_pool``), the runner keeps one pool process
per **key**: the workspace, the server process (pid and start time), the environment (its spec and
interpreter), the code snapshot (and the entry script's bytes), the model inputs (their URIs, with
their versions) and the deployment. A changed deployment (code, model, environment) gets a new key,
so a new pool: a job is never served by a pool of another version.

- The first job of a key runs cold (its own zygote, as any parallel job); when it has completed, the
  runner starts the pool (a process of the environment's interpreter, in a session of its own,
  outside every job's namespaces) with the libraries that job's ``init()`` imported
  (``.openaml_parallel/imported.json``): never the job's own modules, never ``init()``.
- A later job of the key finds the pool ready (``<workspace>/pools/<key>/ready``), and the runner
  hands its command a connection to it (authenticated with the pool's token, kept in the workspace
  folder, which jobs do not see), in ``$OPENAML_PARALLEL_POOL_FD``. The driver asks it for each worker;
  the worker enters the job's namespaces and takes its environment, folder, logs and capabilities.
- The pool ends after ``$OPENAML_PARALLEL_POOL_IDLE_SECONDS`` (default 120, Azure's default
  ``idle_time_before_scale_down``) without a job, when its server process ends (it watches the pid),
  and when its deployment or endpoint is deleted (:func:`stop_pools`).
- ``OPENAML_PARALLEL_POOL=0`` (or ``OPENAML_PARALLEL_FORK=0``) in the server's environment turns it
  off, in a deployment's ``environment_variables`` for that deployment; any failure of the warm
  path (no pool, a refused fork) falls back to the cold path with a line in the job's log or the
  runner's system log.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["WarmPool", "warm_pool", "stop_pools", "POOL_SWITCH", "POOL_FD_ENV"]

POOL_SWITCH = "OPENAML_PARALLEL_POOL"
IDLE_ENV = "OPENAML_PARALLEL_POOL_IDLE_SECONDS"
POOL_FD_ENV = "OPENAML_PARALLEL_POOL_FD"
DEFAULT_IDLE_SECONDS = 120.0
_CONFIG = re.compile(r"_openaml_parallel_driver\.py\s+--config\s+(\S+)")


def _engine_config(command: str) -> dict[str, Any] | None:
    m = _CONFIG.search(command)
    if not m:
        return None
    try:
        cfg = json.loads(base64.b64decode(m.group(1)))
    except ValueError:
        return None
    return cfg if isinstance(cfg, dict) else None


def _started(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, ``/proc/<pid>/stat``), or None (gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def pools_dir(workspace: Path) -> Path:
    return workspace / "pools"


def server_of(runner: Any) -> tuple[Path, int, str] | None:
    """(workspace folder, server pid, its start time) of the job's server, where a warm process can
    serve the job (Linux with pidfds, the server's disk visible here, the server alive); else None."""
    if not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open") or not runner.sees_server_disk():
        return None
    workspace = runner.job_dir.resolve().parent.parent
    try:
        lock = json.loads((workspace / "server.lock").read_text())
        server_pid = int(lock["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    started = _started(server_pid)
    return None if started is None else (workspace, server_pid, started)


def warm_pool(runner: Any, command: str, wd: Path, python: Path | None) -> WarmPool | None:
    """The warm pool of the job's deployment (``runner``: the job's :class:`~openaml.runner._main.Runner`),
    or None: not a batch deployment's job, pools off, or nothing to key it by."""
    cfg = _engine_config(command)
    if not cfg or not cfg.get("warm_pool") or python is None:
        return None
    job_env = runner.spec.get("environment_variables") or {}
    if any(str(where.get(k, "1")) == "0" for where in (os.environ, job_env)
           for k in (POOL_SWITCH, "OPENAML_PARALLEL_FORK")):
        return None  # switched off for the server, or for this deployment (its environment_variables)
    server = server_of(runner)
    if server is None:
        return None
    workspace, server_pid, started = server
    spec = runner.spec
    try:
        entry = (wd / str(cfg["entry_script"])).read_bytes()
    except OSError:
        return None
    models = sorted(str(i.get("uri") or i.get("local_path")) for i in (spec.get("inputs") or {}).values()
                    if str(i.get("type") or "").endswith("model"))
    parts = {"workspace": str(workspace), "server": [server_pid, started], "python": str(python),
             "environment": spec.get("environment"), "code": spec.get("code_dir"),
             "entry": hashlib.sha256(entry).hexdigest(), "models": models, "deployment": cfg["warm_pool"]}
    key = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return WarmPool(runner, key, pools_dir(workspace) / key, python, server_pid, dict(cfg["warm_pool"]), wd)


class WarmPool:
    """One deployment's pool, as the runner of one of its jobs sees it."""

    def __init__(self, runner: Any, key: str, folder: Path, python: Path, server_pid: int,
                 deployment: dict[str, Any], wd: Path) -> None:
        self.runner = runner
        self.key = key
        self.folder = folder
        self.python = python
        self.server_pid = server_pid
        self.deployment = deployment
        self.wd = wd
        self.socket = Path(tempfile.gettempdir()) / f"openaml-{os.getuid()}" / "pools" / f"{key[:24]}.sock"
        self.used = False

    def _meta(self) -> dict[str, Any] | None:
        try:
            meta = json.loads((self.folder / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) else None

    def live(self) -> dict[str, Any] | None:
        """The pool's record when its process is alive (the same process: pid and start time)."""
        meta = self._meta()
        if meta is None or _started(int(meta.get("pid") or 0)) != meta.get("pid_started"):
            return None
        return meta

    def attach(self, env: dict[str, str], env_name: str = POOL_FD_ENV) -> int | None:
        """A connection to the ready pool for the job's command (its descriptor, also put in
        ``env[env_name]``), or None (no pool ready: the job runs cold)."""
        meta = self.live()
        if meta is None or not (self.folder / "ready").exists():
            return None
        try:
            token = json.loads((self.folder / "pool.json").read_text())["token"]
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            sock.settimeout(5.0)
            sock.connect(str(self.socket))
            sock.send(json.dumps({"token": token}).encode())
            answer = json.loads(sock.recv(65536) or b"null")
            if not isinstance(answer, dict) or answer.get("pool") != "ready":
                raise OSError(f"the pool answered {answer!r}")
            sock.settimeout(None)
        except (OSError, ValueError, KeyError) as exc:
            self.runner.syslog(f"warm pool {self.key}: not usable ({exc}); the job starts cold")
            return None
        # a high number: the sandbox's shell opens (and closes) its own descriptors from 3 up (_hide)
        import fcntl

        fd = fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, 200)
        sock.close()
        env[env_name] = str(fd)
        self.used = True
        self.runner.syslog(f"warm pool {self.key} (pid {meta['pid']}): the job's processes fork from it")
        return fd

    def start_if_needed(self) -> None:
        """After a completed job: start the pool when none is alive, with what the job's workers imported."""
        if self.used or self.live() is not None:
            return
        try:
            imported = json.loads((self.wd / ".openaml_parallel" / "imported.json").read_text())
        except (OSError, ValueError):
            return  # nothing learned (no worker got ready): no pool
        engine = self.folder / "engine"

        def _copy_engine() -> None:
            shutil.rmtree(engine, ignore_errors=True)
            engine.mkdir()
            shutil.copy2(self.wd / "_openaml_parallel_driver.py", engine / "_openaml_parallel_driver.py")
            shutil.copytree(self.wd / "_openaml_parallel", engine / "_openaml_parallel",
                            ignore=shutil.ignore_patterns("__pycache__"))

        self.start([str(self.python), str(engine / "_openaml_parallel_driver.py"), "--pool"],
                   [str(m) for m in imported][:8000], float(os.environ.get(IDLE_ENV) or DEFAULT_IDLE_SECONDS),
                   prepare=_copy_engine)

    def start(self, argv: list[str], preload: list[str], idle: float,
              prepare: Callable[[], None] | None = None) -> bool:
        """Start the pool process (``argv`` + its config file's path) unless one is alive; under the
        pool's lock (``prepare`` runs there first), so that concurrent jobs start one. Returns whether
        this call started it."""
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "lock", "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            if self.live() is not None:
                return False
            if prepare is not None:
                prepare()
            self.socket.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            (self.folder / "ready").unlink(missing_ok=True)
            cfg = {"socket": str(self.socket), "token": secrets.token_hex(16), "server_pid": self.server_pid,
                   "idle_seconds": idle, "preload": preload, "ready_file": str(self.folder / "ready")}
            (self.folder / "pool.json").write_text(json.dumps(cfg))
            os.chmod(self.folder / "pool.json", 0o600)
            with open(self.folder / "pool.log", "ab") as log:
                proc = subprocess.Popen([*argv, str(self.folder / "pool.json")], cwd=str(self.folder),
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True, close_fds=True, env=_pool_environment())
            meta = {"pid": proc.pid, "pid_started": _started(proc.pid), "key": self.key,
                    "socket": str(self.socket), "created": time.time(), **self.deployment}
            (self.folder / "meta.json").write_text(json.dumps(meta))
            self.runner.syslog(f"warm pool {self.key}: started (pid {proc.pid}) for the next jobs")
            return True


def _pool_environment() -> dict[str, str]:
    """The pool's variables: the system's basics only. Its workers take their job's variables, but
    their ``/proc/self/environ`` shows the pool's initial ones, so none of the server's (its store
    URIs, tokens) is there."""
    keep = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("LC_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def stop_pools(workspace: Path, endpoint: str | None = None, deployment: str | None = None) -> list[int]:
    """End the warm pools of ``workspace`` (of one endpoint, or one of its deployments); returns
    their pids. A pool already gone is only forgotten."""
    stopped: list[int] = []
    root = pools_dir(workspace)
    if not root.is_dir():
        return stopped
    for folder in root.iterdir():
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            continue
        if endpoint is not None and meta.get("endpoint") != endpoint:
            continue
        if deployment is not None and meta.get("deployment") != deployment:
            continue
        pid = int(meta.get("pid") or 0)
        if pid > 0 and _started(pid) == meta.get("pid_started"):
            try:
                os.kill(pid, signal.SIGTERM)
                stopped.append(pid)
            except ProcessLookupError:
                pass
        shutil.rmtree(folder, ignore_errors=True)
    return stopped
