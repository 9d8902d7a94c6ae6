"""A local Ray cluster on loopback for the ray tier and bench/ray_overhead.py: one head node and one
worker node, each ``ray start --block`` in its own session with ``--num-cpus 1`` and a custom
resource of its own (``head`` / ``worker``), every port chosen free (so clusters of parallel test
sessions never meet), in a short temporary folder of its own.

:meth:`LocalRayCluster.stop` ends only what this cluster started: the ``ray start --block``
processes (which stop their nodes on SIGTERM), then, by SIGKILL, any process still left whose
command line names this cluster's own temporary folder or that descends from those processes; it
never runs ``ray stop`` (which stops every Ray node of the machine, other sessions' too).

``hide``: a folder the worker node does not see (its ``ray start`` runs in a mount namespace of its
own with an empty tmpfs over that folder), as a node on another host would not.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

__all__ = ["LocalRayCluster", "ray_available"]


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class LocalRayCluster:
    """``start()`` a head and one worker node; ``address`` is the Jobs API URL; ``stop()`` ends all."""

    def __init__(self, worker: bool = True, health_check_ms: int = 1000, hide: str | None = None) -> None:
        self.worker = worker
        #: a folder the worker node does not see (an empty tmpfs over it in a mount namespace of its
        #: own): the worker node is then "another host" for what is in that folder
        self.hide = hide
        self.tmp = tempfile.mkdtemp(prefix="oaray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.tree: dict[str, set[int]] = {}
        self.address = ""
        self.gcs = ""
        self.health_check_ms = health_check_ms

    def _node_args(self) -> list[str]:
        # each Ray worker process (a job's supervisor, its entrypoint's driver, every actor, idle pooled
        # workers not yet reaped) holds a port of the list: 8 could run short on a slow machine, where the
        # previous test's workers linger while the next job starts
        p = _free_ports(7 + 32)
        return ["--node-ip-address=127.0.0.1", "--disable-usage-stats", "--num-cpus=1",
                f"--node-manager-port={p[0]}", f"--object-manager-port={p[1]}", f"--dashboard-agent-grpc-port={p[2]}",
                f"--dashboard-agent-listen-port={p[3]}", f"--metrics-export-port={p[4]}",
                f"--runtime-env-agent-port={p[5]}", f"--worker-port-list={','.join(map(str, p[7:]))}"]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # `python` on the nodes: this venv's
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        # Ray 2.60 turns token authentication on when ~/.ray/auth_token exists (left by any earlier Ray use of
        # this user): the cluster's dashboard then refused the tests' plain HTTP checks and it "did not start"
        env["RAY_AUTH_MODE"] = "disabled"
        # a lost node is noticed within seconds (defaults: about 30 s)
        env["RAY_health_check_period_ms"] = str(self.health_check_ms)
        env["RAY_health_check_timeout_ms"] = str(self.health_check_ms)
        env["RAY_health_check_failure_threshold"] = "3"
        # a busy machine: the node's agents may take more than Ray's default (~16 s) to start
        env.setdefault("RAY_agent_register_timeout_ms", "120000")
        env.setdefault("RAY_raylet_start_wait_time_s", "120")
        for k in ("OPENAML_TOKEN", "OPENAML_WORKSPACE", "RAY_ADDRESS"):
            env.pop(k, None)
        return env

    def _start(self, role: str, args: list[str]) -> None:
        ray = str(Path(sys.executable).parent / "ray")
        log = open(Path(self.tmp) / f"{role}.out", "ab")  # noqa: SIM115 - kept by the child
        argv = [ray, "start", "--block", *args]
        if role == "worker" and self.hide:
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    'mount -t tmpfs openaml-hidden "$0" && exec "$@"', self.hide, *argv]
        self.procs[role] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, env=self._env(), cwd=self.tmp)
        log.close()

    def start(self, timeout: float = 240.0, attempts: int = 3) -> LocalRayCluster:
        """Start the head, then the worker; a node whose ``ray start`` gives up (Ray waits a fixed 30 s
        for its raylet, too short on a busy machine) is started again, ``attempts`` times at most."""
        gcs, dash, client = _free_ports(3)
        self.gcs = f"127.0.0.1:{gcs}"
        self.address = f"http://127.0.0.1:{dash}"
        head = ["--head", f"--port={gcs}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
                f"--ray-client-server-port={client}", f"--temp-dir={self.tmp}", f"--resources={json.dumps({'head': 1})}"]
        try:
            self._start_node("head", head, 1, timeout, attempts)
            if self.worker:
                self.add_worker(timeout, attempts)
        except BaseException:
            self.stop()
            raise
        return self

    def add_worker(self, timeout: float = 240.0, attempts: int = 3) -> None:
        """Start the worker node (again, after :meth:`kill_node`); waits until it is alive."""
        want = self.alive_nodes() + 1
        self._start_node("worker", [f"--address={self.gcs}", f"--resources={json.dumps({'worker': 1})}"], want,
                         timeout, attempts)

    def _start_node(self, role: str, args: list[str], nodes: int, timeout: float, attempts: int) -> None:
        for attempt in range(1, attempts + 1):
            self._start(role, [*args, *self._node_args()])
            try:
                self._wait(lambda n: n >= nodes, timeout)
                return
            except RuntimeError:
                self._kill_session(self.procs[role].pid)
                if attempt == attempts:
                    raise

    @staticmethod
    def _kill_session(sid: int) -> None:
        for p in psutil.process_iter():
            try:
                if os.getsid(p.pid) == sid:
                    p.kill()
            except (OSError, psutil.Error):
                continue

    def alive_nodes(self) -> int:
        r = httpx.get(f"{self.address}/api/v0/nodes", params={"limit": 100}, timeout=10)
        return sum(1 for n in r.json()["data"]["result"]["result"] if n.get("state") == "ALIVE")

    def _wait(self, pred, timeout: float) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for role, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"ray start ({role}) exited {proc.returncode}: {self.output(role)[-2000:]}")
            try:
                if httpx.get(f"{self.address}/api/version", timeout=5).status_code == 200 and pred(self.alive_nodes()):
                    self._remember()
                    return
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                last = str(exc)
            time.sleep(0.5)
        raise RuntimeError(f"the local Ray cluster did not start in {timeout:.0f} s ({last}); "
                           f"head: {self.output('head')[-2000:]}")

    def output(self, role: str) -> str:
        path = Path(self.tmp) / f"{role}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def _remember(self) -> None:
        """The processes of each node (the ``ray start`` process and what descends from it)."""
        for role, proc in self.procs.items():
            try:
                kids = psutil.Process(proc.pid).children(recursive=True)
            except psutil.Error:
                continue
            self.tree.setdefault(role, set()).update({proc.pid, *(k.pid for k in kids)})

    def kill_node(self, role: str) -> None:
        """SIGKILL every process of one node (as a machine lost): its ``ray start``, raylet, workers,
        and what they started (a job's runner and its command)."""
        self._remember()
        pids = set(self.tree.get(role, set()))
        for pid in list(pids):
            try:
                pids.update(k.pid for k in psutil.Process(pid).children(recursive=True))
            except psutil.Error:
                pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.tree.pop(role, None)

    def _ours(self) -> list[psutil.Process]:
        mine = set().union(*self.tree.values()) if self.tree else set()
        found = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if p.info["pid"] in mine or any(self.tmp in a for a in (p.info["cmdline"] or [])):
                    found.append(p)
            except psutil.Error:
                continue
        return found

    def stop(self) -> None:
        """End this cluster's processes (TERM to ``ray start --block``, then KILL what is left of it)."""
        self._remember()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for p in self._ours():
            try:
                p.kill()
            except psutil.Error:
                pass
        if not os.environ.get("OPENAML_KEEP_RAY_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
