"""The ``ray`` distribution (an openaml extension of Azure's ``RayDistribution``): a Ray cluster for
the job.

On local compute :func:`run_with_ray_cluster` starts, before the command, a Ray cluster of
``instance_count`` nodes on loopback with the job environment's ``ray`` (``ray start --head`` and
``ray start --address`` for each further node, each ``--block`` in a session of its own, with
``--node-ip-address=127.0.0.1 --dashboard-host=127.0.0.1 --disable-usage-stats``, every port free,
in a temporary folder of its own), waits until all its nodes are alive, runs the command once with
``RAY_ADDRESS`` (the head's GCS address: ``ray.init()`` joins it) and ``RAY_AUTH_TOKEN`` (Ray's
token authentication, a token of the job's cluster's own), and tears the cluster down after,
whatever happened (completed, failed, canceled, timed out): SIGTERM to the ``ray start --block``
processes, then SIGKILL to every process left in their sessions or naming the cluster's folder.
The sessions are noted in ``runner/rank_sessions`` too, so the compute backend's kill ends them
if the runner itself is gone. The distribution's fields: ``port`` (the head's GCS port),
``include_dashboard`` and ``dashboard_port``, ``head_node_additional_args`` and
``worker_node_additional_args`` (appended to the nodes' ``ray start``).

On a Ray compute the job's cluster is the compute's own: the command runs once, as a Ray job's
driver, with the ``RAY_ADDRESS`` Ray gives it (nothing is started).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openaml.runner._launch import free_ports

if TYPE_CHECKING:
    from openaml.runner._main import Runner

__all__ = ["run_with_ray_cluster", "RayCluster", "RAY_MISSING", "START_TIMEOUT_SECONDS"]

RAY_MISSING = ("distribution type 'ray' starts a Ray cluster with the job environment's 'ray' command, and the "
               "job's environment has none: add ray[default] to its conda file or requirements")
HOST_PIDS_WARNING = ("a ray distribution's command runs outside a PID namespace of its own (Ray's ray.init() finds "
                     "its node's raylet among the machine's processes), so it could read the runner's token from the "
                     "runner's process (see docs/guide/distributed.md)")
#: how long the job's cluster may take to have all its nodes alive (Ray's start is slow on a busy machine)
START_TIMEOUT_SECONDS = float(os.environ.get("OPENAML_RAY_START_TIMEOUT", "240"))
#: waits until the cluster has ``n`` live nodes (run with the job environment's python)
_WAIT_NODES = """
import sys, time, ray
n, end, alive, last = int(sys.argv[2]), time.monotonic() + float(sys.argv[3]), 0, ""
while time.monotonic() < end:
    try:  # the head's GCS may not answer yet: ray.init fails at once, so try again
        if not ray.is_initialized():
            ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
        alive = sum(1 for x in ray.nodes() if x.get("Alive"))
        if alive >= n:
            print(alive); sys.exit(0)
    except Exception as exc:
        last = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ray.shutdown()
    time.sleep(1)
print(f"only {alive} of {n} Ray nodes came up ({last})", file=sys.stderr); sys.exit(3)
"""


class RayCluster:
    """A job's Ray cluster of ``nodes`` nodes on loopback (see the module's docstring)."""

    def __init__(self, ray_bin: str, python: str, nodes: int, dist: dict[str, Any], env: dict[str, str],
                 log_dir: Path, sessions: Path) -> None:
        self.ray_bin = ray_bin
        self.python = python
        self.nodes = nodes
        self.dist = dist
        self.env = {k: v for k, v in env.items() if k not in ("RAY_ADDRESS",)}
        self.env["RAY_USAGE_STATS_ENABLED"] = "0"
        # Ray's token authentication, with a token of this cluster's own (not ~/.ray/auth_token, shared by
        # every cluster of the user): its nodes, the wait and the command get it
        self.env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)})
        self.env.setdefault("RAY_agent_register_timeout_ms", "120000")  # a busy machine: agents start slowly
        self.env.setdefault("RAY_raylet_start_wait_time_s", "120")
        self.log_dir = log_dir
        self.sessions = sessions
        self.tmp = tempfile.mkdtemp(prefix="oajray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
        self.procs: list[subprocess.Popen[bytes]] = []
        self.roles: dict[int, str] = {}
        port, dash = free_ports(2)
        self.gcs_port = int(dist.get("port") or port)
        self.dashboard_port = int(dist.get("dashboard_port") or dash)
        self.address = f"127.0.0.1:{self.gcs_port}"

    def _node_args(self) -> list[str]:
        p = free_ports(6 + 8)
        return ["--node-ip-address=127.0.0.1", "--disable-usage-stats", f"--node-manager-port={p[0]}",
                f"--object-manager-port={p[1]}", f"--dashboard-agent-grpc-port={p[2]}",
                f"--dashboard-agent-listen-port={p[3]}", f"--metrics-export-port={p[4]}",
                f"--runtime-env-agent-port={p[5]}", f"--worker-port-list={','.join(map(str, p[6:]))}"]

    def _start(self, role: str, args: list[str]) -> None:
        from openaml.runner._ranks import _record_session

        log = open(self.log_dir / f"ray_{role}.txt", "ab")  # noqa: SIM115 - kept by the child
        try:
            proc = subprocess.Popen([self.ray_bin, "start", "--block", *args], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=self.env, cwd=self.tmp, start_new_session=True)
        finally:
            log.close()
        self.procs.append(proc)
        self.roles[proc.pid] = role
        _record_session(self.sessions, proc.pid)

    def start(self, timeout: float = START_TIMEOUT_SECONDS, canceled: Callable[[], bool] = lambda: False) -> None:
        """Start the head and the worker nodes; returns once all are alive.

        Raises:
            RuntimeError: a node's ``ray start`` exited, or the nodes were not all alive in ``timeout``
                seconds (with the end of the head's output).
        """
        include = self.dist.get("include_dashboard")
        head = ["--head", f"--port={self.gcs_port}", f"--temp-dir={self.tmp}",
                f"--ray-client-server-port={free_ports(1)[0]}"]
        if include is False:
            head.append("--include-dashboard=false")
        else:
            head += ["--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}"]
        self._start("head", [*head, *self._node_args(), *shlex.split(self.dist.get("head_node_additional_args") or "")])
        end = time.monotonic() + timeout
        self._wait(1, end, canceled)  # a worker's `ray start --address` gives up at once when the head is not up yet
        extra = shlex.split(self.dist.get("worker_node_additional_args") or "")
        for i in range(1, self.nodes):
            self._start(f"worker_{i}", [f"--address={self.address}", *self._node_args(), *extra])
        if self.nodes > 1:
            self._wait(self.nodes, end, canceled)

    def _wait(self, nodes: int, end: float, canceled: Callable[[], bool]) -> None:
        out = self.log_dir / "ray_wait.txt"
        with open(out, "ab") as fh:  # a file, not a pipe: Ray's messages never block the waiter
            waiter = subprocess.Popen([self.python, "-c", _WAIT_NODES, self.address, str(nodes),
                                       str(max(1.0, end - time.monotonic()))],
                                      env=self.env, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh,
                                      start_new_session=True)
        while waiter.poll() is None:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead or time.monotonic() > end + 30 or canceled():
                waiter.kill()
                waiter.wait()
                raise RuntimeError(f"the job's Ray cluster did not start: {self._why(dead)}")
            time.sleep(0.3)
        if waiter.returncode != 0:
            err = out.read_text(errors="replace").strip().splitlines()
            raise RuntimeError(f"the job's Ray cluster did not start: {err[-1] if err else ''}; {self._why([])}")

    def _why(self, dead: list[subprocess.Popen[bytes]]) -> str:
        role = self.roles.get(dead[0].pid, "head") if dead else "head"
        out = self.log_dir / f"ray_{role}.txt"
        tail = [x for x in out.read_text(errors="replace").strip().splitlines() if x.strip()][-3:] \
            if out.exists() else []
        what = f"'ray start' ({role}) exited with code {dead[0].returncode}" if dead else "its nodes did not all come up"
        return f"{what}; the end of its output: {' | '.join(tail)}"

    def stop(self, grace: float = 20.0) -> None:
        """Tear the cluster down: SIGTERM to each ``ray start --block`` (it stops its node), then SIGKILL to
        every process still in their sessions or naming the cluster's folder; the folder is removed."""
        import psutil

        sids = {p.pid for p in self.procs}
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                mine = os.getsid(proc.info["pid"]) in sids or any(self.tmp in a for a in (proc.info["cmdline"] or []))
                if mine and proc.info["pid"] != os.getpid():
                    proc.kill()
            except (OSError, psutil.Error):
                continue
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_with_ray_cluster(runner: Runner, command: str, env: dict[str, str], wd: Path) -> int:
    """Run a ``ray`` distribution job's command once with ``RAY_ADDRESS`` of its cluster (started here on
    local compute, the compute's own on a Ray compute); its exit code (``runner.rank_error`` says why
    a cluster did not start)."""
    dist = dict(runner.spec.get("distribution") or {})
    nodes = max(1, int((runner.spec.get("resources") or {}).get("instance_count") or 1))
    if os.environ.get("OPENAML_ON_RAY"):
        runner.userlog(f"[openaml] distribution ray on a Ray compute: the job's cluster is the compute's own "
                       f"(RAY_ADDRESS={env.get('RAY_ADDRESS', '')})")
        return runner.run_single(command, env, wd)
    ray_bin = shutil.which("ray", path=env.get("PATH"))
    python = shutil.which("python", path=env.get("PATH"))
    if ray_bin is None or python is None:
        runner.rank_error = RAY_MISSING
        runner.userlog(f"[openaml] {RAY_MISSING}")
        return 1
    runner.log_dir.mkdir(parents=True, exist_ok=True)
    cluster = RayCluster(ray_bin, python, nodes, dist, env, runner.job_dir / "runner" / "system_logs",
                         runner.job_dir / "runner" / "rank_sessions")
    (runner.job_dir / "runner" / "system_logs").mkdir(parents=True, exist_ok=True)
    try:
        runner.userlog(f"[openaml] distribution ray: starting a Ray cluster of {nodes} node(s) on "
                       f"{cluster.address} for this job (RAY_ADDRESS); it is torn down when the job ends")
        started = time.monotonic()
        try:
            cluster.start(canceled=lambda: runner.cancel_reason is not None)
        except RuntimeError as exc:
            if runner.cancel_reason:
                return -int(signal.SIGTERM)
            runner.rank_error = str(exc)
            runner.userlog(f"[openaml] {exc}")
            return 1
        runner.syslog(f"ray cluster {cluster.address} ({nodes} nodes) up in {time.monotonic() - started:.1f} s")
        if runner.cancel_reason:
            return -int(signal.SIGTERM)
        info: dict[str, Any] = {"address": cluster.address, "nodes": nodes, "temp_dir": cluster.tmp}
        if dist.get("include_dashboard") is not False:
            info["dashboard"] = f"http://127.0.0.1:{cluster.dashboard_port}"
        runner.userlog(f"[openaml] Ray cluster up: {json.dumps(info)}")
        # Ray's driver (ray.init in the command) finds its node's raylet among the machine's processes: not
        # in a PID namespace of its own, so the runner's token is not shielded from this command (said in its log)
        runner.host_pids = True
        runner.userlog(f"[openaml] warning: {HOST_PIDS_WARNING}")
        runner.update(env_warnings=[*(runner.state.get("env_warnings") or []), HOST_PIDS_WARNING])
        run_env = {**env, "RAY_ADDRESS": cluster.address, "RAY_AUTH_MODE": "token",
                   "RAY_AUTH_TOKEN": cluster.env["RAY_AUTH_TOKEN"]}
        return runner.run_single(command, run_env, wd)
    finally:
        cluster.stop()
        runner.syslog(f"ray cluster {cluster.address} torn down")
