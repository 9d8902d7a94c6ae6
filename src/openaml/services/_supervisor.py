"""Deployment workers: start, health-check, restart with back-off, replace one at a time, stop.

One process per instance (``instance_count``), each in its own process group, running
:data:`openaml.serving.WORKER_SCRIPT` with the deployment's interpreter. The router reads
:meth:`Supervisor.ports` (a snapshot list, replaced atomically) to reach ready instances.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openaml.serving import WORKER_SCRIPT

__all__ = ["InitFailed", "LaunchSpec", "Supervisor"]

_BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)


class InitFailed(Exception):
    """A worker exited (or stayed unready) before its ``init()`` returned."""


@dataclass
class LaunchSpec:
    """How to start one deployment's workers.

    ``config`` is the worker's JSON config (mode, paths, request settings, batching);
    ``ready_timeout`` is the readiness probe's limit in seconds; ``log`` the deployment log.
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


@dataclass
class _Instance:
    index: int
    proc: subprocess.Popen[bytes]
    port: int = 0
    failures: int = 0
    restarts: int = 0


@dataclass
class _Deployment:
    spec: LaunchSpec
    instances: list[_Instance] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
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

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._monitor, name="openaml-supervisor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            keys = list(self._deps)
        for key in keys:
            self.stop_deployment(key, drain=False)

    def ports(self, key: str) -> list[int]:
        dep = self._deps.get(key)
        return dep.ports if dep is not None else []

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
                    dep.ports = [*dep.ports, inst.port]
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

    def stop_deployment(self, key: str, drain: bool = True) -> None:
        """Stop routing to the deployment, give in-flight requests time to finish (``drain``), stop its workers."""
        with self._lock:
            dep = self._deps.pop(key, None)
        if dep is None:
            return
        dep.stopping = True
        dep.ports = []
        if drain and any(inst.proc.poll() is None for inst in dep.instances):
            time.sleep(min(1.0, dep.spec.config.get("request_timeout_ms", 5000) / 1000))
        for inst in list(dep.instances):
            _kill(inst.proc)
        dep.instances.clear()

    # ------------------------------------------------------------------ internals
    def _spawn(self, spec: LaunchSpec, index: int, seq: int) -> _Instance:
        ready = spec.run_dir / f"instance-{seq}.ready"
        ready.unlink(missing_ok=True)
        cfg = {**spec.config, "instance": index, "ready_file": str(ready), "parent_pid": os.getpid()}
        cfg_path = spec.run_dir / f"instance-{seq}.json"
        cfg_path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log, "ab") as log:
            proc = subprocess.Popen([spec.python, str(WORKER_SCRIPT), str(cfg_path)], cwd=spec.cwd, env=spec.env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        inst = _Instance(index=index, proc=proc)
        inst.ready_file = ready  # type: ignore[attr-defined]
        return inst

    def _await_ready(self, key: str, spec: LaunchSpec, inst: _Instance) -> None:
        deadline = time.monotonic() + spec.ready_timeout
        ready: Path = inst.ready_file  # type: ignore[attr-defined]
        while time.monotonic() < deadline:
            if ready.exists():
                try:
                    inst.port = int(json.loads(ready.read_text())["port"])
                    return
                except (ValueError, KeyError, OSError):
                    pass
            rc = inst.proc.poll()
            if rc is not None:
                raise InitFailed(f"worker {inst.index} exited with code {rc} before it was ready (init() failed); "
                                 f"see the deployment logs")
            time.sleep(0.05)
        _kill(inst.proc)
        raise InitFailed(f"worker {inst.index} was not ready after {spec.ready_timeout:.0f} s (readiness probe: "
                         "initial_delay + period * failure_threshold)")

    def _retire(self, key: str, dep: _Deployment, inst: _Instance) -> None:
        """Take an instance out of routing, let in-flight requests finish, then stop it."""
        with self._lock:
            if inst in dep.instances:
                dep.instances.remove(inst)
            dep.ports = [p for p in dep.ports if p != inst.port]
        if inst.proc.poll() is None:
            time.sleep(min(1.0, dep.spec.config.get("request_timeout_ms", 5000) / 1000))
        _kill(inst.proc)

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
                        self._restart(key, dep, inst)
                        continue
                    now = time.monotonic()
                    if now - last_probe.get(inst.proc.pid, 0) >= dep.spec.liveness_period:
                        last_probe[inst.proc.pid] = now
                        if _alive(inst.port):
                            inst.failures = 0
                        else:
                            inst.failures += 1
                            if inst.failures >= dep.spec.liveness_failures:
                                self._on_event(key, f"worker {inst.index} failed {inst.failures} liveness probes; "
                                                    "restarting it")
                                _kill(inst.proc)

    def _restart(self, key: str, dep: _Deployment, inst: _Instance) -> None:
        rc = inst.proc.returncode
        with self._lock:
            dep.ports = [p for p in dep.ports if p != inst.port]
            if inst in dep.instances:
                dep.instances.remove(inst)
        delay = _BACKOFF[min(inst.restarts, len(_BACKOFF) - 1)]
        self._on_event(key, f"worker {inst.index} (pid {inst.proc.pid}) exited with code {rc}; restarting it in "
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
            with self._lock:
                if dep.stopping:
                    _kill(new.proc)
                    return
                dep.instances.append(new)
                dep.ports = [*dep.ports, new.port]
            self._on_event(key, f"worker {inst.index} restarted (pid {new.proc.pid}, port {new.port})")

        threading.Thread(target=again, daemon=True, name=f"restart-{key}").start()


def _alive(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
            return bool(resp.status == 200)
    except Exception:  # noqa: BLE001
        return False


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
