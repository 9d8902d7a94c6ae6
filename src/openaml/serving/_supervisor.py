"""Deployment workers: start, health-check, restart with back-off, replace one at a time, recycle, stop.

One process per instance (``instance_count``), each in its own process group, running
:data:`openaml.serving.WORKER_SCRIPT` with the deployment's interpreter and listening on its own
unix socket (0600, in a 0700 folder): the router is the only way in. Where the deployment gives
``hide`` lines (:func:`openaml.environments._hide.hide_lines`, as jobs get), each worker runs in a mount
and PID namespace of its own where the workspace's secrets do not exist and only the deployment's own
folder is writable (its code snapshot, model, ``envs/`` and datastores are read-only); it learns that the server
is gone from a pipe (``parent_fd``), since the server is not its parent there. The router reads
:meth:`Supervisor.targets` (a snapshot list of socket paths, replaced atomically) to reach ready
instances, :meth:`Supervisor.capacity` to know how many requests each runs at once (from its ready
file), and :meth:`Supervisor.exit_reason` to say why a request's worker went away.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openaml.environments import wrap_read_only
from openaml.serving import WORKER_SCRIPT

__all__ = ["InitFailed", "LaunchSpec", "Supervisor"]

_BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)


class InitFailed(Exception):
    """A worker exited (or stayed unready) before its ``init()`` returned."""


@dataclass
class LaunchSpec:
    """How to start one deployment's workers.

    ``config`` is the worker's JSON config (mode, paths, request settings, batching);
    ``ready_timeout`` is the readiness probe's limit in seconds; ``log`` the deployment log;
    ``ro_binds`` the ``(src, dst)`` folders mounted read-only in each worker's own mount namespace
    (the shared environment, the server's virtualenv: :func:`openaml.environments.wrap_read_only`);
    ``hide`` the shell lines run there, after them, that hide the workspace's secrets (empty: nothing
    hidden); with them the worker also gets a PID namespace of its own.
    """

    python: str
    config: dict[str, Any]
    env: dict[str, str]
    cwd: str
    log: Path
    run_dir: Path
    instance_count: int = 1
    ready_timeout: float = 310.0
    liveness_period: float = 10.0
    liveness_failures: int = 30
    ro_binds: list[tuple[str, str]] = field(default_factory=list)
    hide: list[str] = field(default_factory=list)


@dataclass
class _Instance:
    index: int
    proc: subprocess.Popen[bytes]
    socket: str
    ready_file: Path
    recycle_file: Path
    failures: int = 0
    restarts: int = 0
    recycling: bool = False
    slots: int | None = None  # requests it runs at once (its ready file); None: no limit the router keeps (it batches)
    namespaced: bool = False  # in a PID namespace: a signal that killed the worker shows as code 128+N

    def describe_exit(self, rc: int) -> str:
        return _describe_exit(-(rc - 128) if self.namespaced and 128 < rc <= 128 + 64 else rc)


@dataclass
class _Deployment:
    spec: LaunchSpec
    instances: list[_Instance] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    stopping: bool = False
    seq: int = 0


class Supervisor:
    """Workers of every deployment of the workspace. Thread-safe; :meth:`start` runs the monitor."""

    def __init__(self, on_event: Callable[[str, str], None] | None = None) -> None:
        self._deps: dict[str, _Deployment] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_event = on_event or (lambda key, msg: None)
        self._by_socket: dict[str, _Instance] = {}  # every instance started, until its deployment stops
        # workers watch the read end: at end of file once this process is gone (its write end closed);
        # a high number, clear of the descriptors the hiding lines open (3, 4, ...)
        read, self._alive_w = os.pipe()
        self._alive_r = fcntl.fcntl(read, fcntl.F_DUPFD_CLOEXEC, 64)
        os.close(read)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start monitoring (again after :meth:`stop`: a server that lost the workspace's lead and
        takes it back)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._monitor, name="openaml-supervisor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            keys = list(self._deps)
        for key in keys:
            self.stop_deployment(key, drain=False)
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    def targets(self, key: str) -> list[str]:
        """Socket paths of the deployment's ready instances (a snapshot; never mutated in place)."""
        dep = self._deps.get(key)
        return dep.targets if dep is not None else []

    def exit_reason(self, target: str) -> str | None:
        """``"exited with signal 9"`` / ``"exited with code 7"`` once the instance on ``target`` has
        exited, ``"was stopped (retired or replaced)"`` if the supervisor stopped it, else None."""
        inst = self._by_socket.get(target)
        if inst is None:
            return None
        rc = inst.proc.poll()
        if rc is None:
            return None
        return inst.describe_exit(rc)

    def capacity(self, target: str) -> int | None:
        """How many requests the instance on ``target`` runs at once (``max_concurrent_requests_per_instance``,
        as its ready file said); None where it takes any number (micro-batching) or is unknown."""
        inst = self._by_socket.get(target)
        return inst.slots if inst is not None else None

    def recycle(self, key: str, target: str, reason: str) -> None:
        """Replace the instance on ``target`` (a new one started and ready first, then this one drained
        and stopped), in the background; no-op if it is already being replaced or gone."""
        with self._lock:
            dep = self._deps.get(key)
            inst = self._by_socket.get(target)
            if dep is None or inst is None or inst not in dep.instances or inst.recycling or dep.stopping:
                return
            inst.recycling = True
        self._on_event(key, f"worker {inst.index} (pid {inst.proc.pid}): {reason}; replacing it")

        def work() -> None:
            with self._lock:
                dep.seq += 1
                seq = dep.seq
            new = self._spawn(dep.spec, inst.index, seq)
            try:
                self._await_ready(key, dep.spec, new)
            except InitFailed as exc:
                self._on_event(key, f"replacement of worker {inst.index} failed: {exc}; stopping the old one")
                _kill(new.proc)
                inst.recycling = False  # so that the monitor restarts it with back-off
                _kill(inst.proc)
                return
            if not self._adopt(dep, new):
                return
            self._retire(key, dep, inst)
            self._on_event(key, f"worker {inst.index} replaced (pid {new.proc.pid})")

        threading.Thread(target=work, daemon=True, name=f"recycle-{key}").start()

    def running(self, key: str) -> bool:
        return key in self._deps

    # ------------------------------------------------------------------ deploy / update / stop
    def deploy(self, key: str, spec: LaunchSpec) -> None:
        """Start ``spec.instance_count`` workers, or replace the running ones one at a time (each new
        one ready before an old one leaves). Blocks until done.

        Raises:
            InitFailed: a new worker failed; the old workers (if any) keep serving.
        """
        with self._lock:
            dep = self._deps.get(key)
            if dep is None:
                dep = self._deps[key] = _Deployment(spec=spec)
            old = list(dep.instances)
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        started: list[_Instance] = []
        try:
            for i in range(spec.instance_count):
                with self._lock:
                    dep.seq += 1
                    seq = dep.seq
                inst = self._spawn(spec, i, seq)
                started.append(inst)
                self._await_ready(key, spec, inst)
                with self._lock:
                    dep.instances.append(inst)
                    dep.targets = [*dep.targets, inst.socket]
                if old:
                    self._retire(key, dep, old.pop(0))
        except BaseException:
            for inst in started:
                self._retire(key, dep, inst)
            with self._lock:
                if not dep.instances:
                    self._deps.pop(key, None)
            raise
        with self._lock:
            dep.spec = spec
        for inst in old:  # scaled down
            self._retire(key, dep, inst)

    def python_of(self, key: str) -> str | None:
        """The interpreter the deployment's running workers use (None when it has none)."""
        with self._lock:
            dep = self._deps.get(key)
            return dep.spec.python if dep is not None and dep.instances else None

    def stop_deployment(self, key: str, drain: bool = True) -> None:
        """Stop routing to the deployment, give in-flight requests time to finish (``drain``), stop its workers."""
        with self._lock:
            dep = self._deps.pop(key, None)
        if dep is None:
            return
        dep.stopping = True
        dep.targets = []
        grace = _grace(dep.spec) if drain else 1.0
        for inst in list(dep.instances):
            _kill(inst.proc, grace)
            _unlink(inst.socket)
        dep.instances.clear()
        prefix = _socket_dir(dep.spec.run_dir) + os.sep
        with self._lock:
            for path in [p for p in self._by_socket if p.startswith(prefix)]:
                self._by_socket.pop(path, None)

    # ------------------------------------------------------------------ internals
    def _spawn(self, spec: LaunchSpec, index: int, seq: int) -> _Instance:
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(spec.run_dir, 0o700)
        ready = spec.run_dir / f"instance-{seq}.ready"
        recycle = spec.run_dir / f"instance-{seq}.recycle"
        ready.unlink(missing_ok=True)
        recycle.unlink(missing_ok=True)
        sock = os.path.join(_socket_dir(spec.run_dir), f"i{seq}.sock")
        cfg = {**spec.config, "instance": index, "ready_file": str(ready), "recycle_file": str(recycle),
               "socket": sock, "parent_pid": os.getpid(), "parent_fd": self._alive_r}
        cfg_path = spec.run_dir / f"instance-{seq}.json"
        cfg_path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log, "ab") as log:
            argv = wrap_read_only([spec.python, str(WORKER_SCRIPT), str(cfg_path)], spec.ro_binds, then=spec.hide,
                                  pid_namespace=bool(spec.hide))
            proc = subprocess.Popen(argv, cwd=spec.cwd, env=spec.env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, pass_fds=(self._alive_r,))
        inst = _Instance(index=index, proc=proc, socket=sock, ready_file=ready, recycle_file=recycle,
                         namespaced=bool(spec.hide))
        with self._lock:
            self._by_socket[sock] = inst
        return inst

    def _await_ready(self, key: str, spec: LaunchSpec, inst: _Instance) -> None:
        deadline = time.monotonic() + spec.ready_timeout
        while time.monotonic() < deadline:
            if inst.ready_file.exists():
                try:
                    ready = json.loads(inst.ready_file.read_text())
                    if ready["socket"] == inst.socket:
                        slots = ready.get("slots")
                        inst.slots = slots if isinstance(slots, int) and slots > 0 else None
                        return
                except (ValueError, KeyError, OSError, TypeError):
                    pass
            rc = inst.proc.poll()
            if rc is not None:
                raise InitFailed(f"worker {inst.index} {inst.describe_exit(rc)} before it was ready (init() failed); "
                                 f"see the deployment logs")
            time.sleep(0.05)
        _kill(inst.proc)
        raise InitFailed(f"worker {inst.index} was not ready after {spec.ready_timeout:.0f} s (readiness probe: "
                         "initial_delay + period * failure_threshold)")

    def _adopt(self, dep: _Deployment, new: _Instance) -> bool:
        """Add a started worker to ``dep``'s instances and routing targets; False (and the worker
        killed) when the deployment is being stopped meanwhile."""
        with self._lock:
            if dep.stopping:
                _kill(new.proc)
                return False
            dep.instances.append(new)
            dep.targets = [*dep.targets, new.socket]
        return True

    def _retire(self, key: str, dep: _Deployment, inst: _Instance) -> None:
        """Take an instance out of routing, let in-flight requests finish, then stop it."""
        with self._lock:
            if inst in dep.instances:
                dep.instances.remove(inst)
            dep.targets = [t for t in dep.targets if t != inst.socket]
        # SIGTERM: the worker answers what it already holds, then exits; SIGKILL after the grace
        _kill(inst.proc, _grace(dep.spec))
        _unlink(inst.socket)

    def _monitor(self) -> None:
        """Restart crashed workers with back-off; kill ones that stop answering liveness probes."""
        last_probe: dict[int, float] = {}
        while not self._stop.wait(0.25):
            with self._lock:
                items = [(k, d, list(d.instances)) for k, d in self._deps.items()]
            for key, dep, insts in items:
                for inst in insts:
                    if dep.stopping:
                        break
                    if inst.proc.poll() is not None:
                        if not inst.recycling:
                            self._restart(key, dep, inst)
                        continue
                    if not inst.recycling and inst.recycle_file.exists():
                        try:
                            reason = inst.recycle_file.read_text(encoding="utf-8")
                        except OSError:
                            reason = "it asked to be replaced"
                        self.recycle(key, inst.socket, reason)
                        continue
                    now = time.monotonic()
                    if now - last_probe.get(inst.proc.pid, 0) >= dep.spec.liveness_period:
                        last_probe[inst.proc.pid] = now
                        if _alive(inst.socket):
                            inst.failures = 0
                        else:
                            inst.failures += 1
                            if inst.failures >= dep.spec.liveness_failures:
                                self._on_event(key, f"worker {inst.index} failed {inst.failures} liveness probes; "
                                                    "restarting it")
                                _kill(inst.proc)

    def _restart(self, key: str, dep: _Deployment, inst: _Instance) -> None:
        rc = inst.proc.returncode
        _unlink(inst.socket)
        with self._lock:
            dep.targets = [t for t in dep.targets if t != inst.socket]
            if inst in dep.instances:
                dep.instances.remove(inst)
        delay = _BACKOFF[min(inst.restarts, len(_BACKOFF) - 1)]
        self._on_event(key, f"worker {inst.index} (pid {inst.proc.pid}) {inst.describe_exit(rc)}; restarting it in "
                            f"{delay:.0f} s (restart {inst.restarts + 1})")

        def again() -> None:
            if self._stop.wait(delay) or dep.stopping:
                return
            with self._lock:
                dep.seq += 1
                seq = dep.seq
            new = self._spawn(dep.spec, inst.index, seq)
            new.restarts = inst.restarts + 1
            try:
                self._await_ready(key, dep.spec, new)
            except InitFailed as exc:
                self._on_event(key, f"restart of worker {inst.index} failed: {exc}")
                with self._lock:
                    if not dep.stopping:
                        dep.instances.append(new)  # the monitor sees it exited and backs off again
                return
            if not self._adopt(dep, new):
                return
            self._on_event(key, f"worker {inst.index} restarted (pid {new.proc.pid})")

        threading.Thread(target=again, daemon=True, name=f"restart-{key}").start()


def _alive(path: str) -> bool:
    """Liveness probe: ``GET /`` on the worker's socket answers 200 within 2 s."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            sock.connect(path)
            sock.sendall(b"GET / HTTP/1.1\r\nhost: worker\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            name = f" ({signal.Signals(-rc).name})"
        except ValueError:
            name = ""
        return f"exited with signal {-rc}{name}"
    return f"exited with code {rc}"


def _grace(spec: LaunchSpec) -> float:
    """How long a retiring worker may take to answer what it holds: request_timeout_ms plus a margin."""
    return float(spec.config.get("request_timeout_ms", 5000)) / 1000 + 2.0


def _socket_dir(run_dir: Path) -> str:
    """Where a deployment's worker sockets live: its run folder, or a short private folder under the
    temporary directory when that path is too long for a unix socket (~104 bytes)."""
    if len(str(run_dir)) <= 80:
        return str(run_dir)
    digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"openaml-{os.getuid()}" / digest
    path.parent.mkdir(mode=0o700, exist_ok=True)
    if path.parent.stat().st_uid != os.getuid():
        raise OSError(f"{path.parent} belongs to another user; refusing to put worker sockets there")
    os.chmod(path.parent, 0o700)
    path.mkdir(exist_ok=True)
    os.chmod(path, 0o700)
    return str(path)


def _kill(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait()
