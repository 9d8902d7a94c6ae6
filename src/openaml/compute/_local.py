"""Local backend: each runner is a subprocess of this machine in its own session.

``python -m openaml.runner --server URL --job NAME --work-dir DIR`` with the job's token on its
stdin (never in argv or a file). The runner is a session leader, and the user's command runs in
that session (its own process group), so :meth:`LocalBackend.kill` finds everything the job
started, also after the runner itself died. Runners survive a server restart, and the stop or
death of their server (they report to another server of the workspace: ``runner/_report.py``);
the handle (pid, creation time, folder, host) lets a new server re-attach and tells a reused pid
from the runner. A server on another host (the workspace's new leader) cannot see the runner's
process: it follows the runner by its heartbeat alone (:meth:`LocalBackend.status` says alive;
cancel reaches the runner through its heartbeat's answer).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import psutil

from openaml.compute._base import ComputeBackend, JobHandle, JobSpec, RunnerStatus

__all__ = ["LocalBackend", "SERVER_SECRETS"]

# the server's credentials, whatever their source: a job gets its own scoped token (on the runner's stdin)
SERVER_SECRETS = frozenset({"OPENAML_TOKEN", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME",
                            "MLFLOW_TRACKING_PASSWORD", "OPENAML_RUNNER_TOKEN"})
RUNNER_OUT = ("system_logs", "runner.out")


class LocalBackend(ComputeBackend):
    """Runners as local processes. ``work_dir`` of a :class:`JobSpec` is used when given (the job's
    folder in the workspace); without one a runner gets a fresh temporary folder, as it would on a
    machine that does not share the server's disk."""

    name = "local"

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable
        # pid -> (creation time, process, set once the reaper waited for it and noted how it ended)
        self._procs: dict[int, tuple[float, subprocess.Popen[bytes], threading.Event]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ start
    def submit(self, spec: JobSpec) -> JobHandle:
        work = Path(spec.work_dir) if spec.work_dir else Path(tempfile.mkdtemp(prefix=f"openaml-{spec.job_name}-"))
        out_path = work.joinpath(*RUNNER_OUT)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in SERVER_SECRETS}
        env["PYTHONUNBUFFERED"] = "1"
        argv = [self.python, "-m", "openaml.runner", "--server", spec.server_url, "--job", spec.job_name,
                "--work-dir", str(work)]
        with open(out_path, "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, cwd=str(work), env=env, close_fds=True)
        assert proc.stdin is not None
        try:
            proc.stdin.write(spec.token.encode("utf-8") + b"\n")
            proc.stdin.close()
        except OSError:  # the runner died at once: its output says why; status() says lost
            pass
        try:
            created = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            created = 0.0
        reaped = threading.Event()
        with self._lock:
            self._procs[proc.pid] = (created, proc, reaped)
        # the server does not wait() on runners (they may outlive it); reap in a thread
        threading.Thread(target=_reap, args=(proc, out_path, reaped), name=f"reap-{proc.pid}", daemon=True).start()
        return JobHandle(self.name, json.dumps({"pid": proc.pid, "create_time": created, "dir": str(work),
                                                "host": host_id()}))

    # ------------------------------------------------------------------ follow
    @staticmethod
    def _parse(handle: JobHandle) -> tuple[int, float, str]:
        d = handle.data()
        try:
            return int(d.get("pid") or 0), float(d.get("create_time") or 0.0), str(d.get("dir") or "")
        except (TypeError, ValueError):
            return 0, 0.0, ""

    def _process(self, pid: int, created: float) -> psutil.Process | None:
        """The live (non-zombie) runner process of the handle, or None (gone, or its pid reused)."""
        if pid <= 0:
            return None
        try:
            p = psutil.Process(pid)
            if created and abs(p.create_time() - created) > 1.0:
                return None
            return None if p.status() == psutil.STATUS_ZOMBIE else p
        except psutil.Error:
            return None

    @staticmethod
    def _elsewhere(handle: JobHandle) -> bool:
        """The runner of ``handle`` runs on another host (its pid means nothing here)."""
        host = handle.data().get("host")
        return isinstance(host, str) and bool(host) and host != host_id()

    def status(self, handle: JobHandle) -> RunnerStatus:
        if self._elsewhere(handle):  # the heartbeat decides (the scheduler's timeout)
            return RunnerStatus.ALIVE
        pid, created, _ = self._parse(handle)
        with self._lock:
            mine = self._procs.get(pid)
        if mine is not None and mine[0] == created:  # started by this instance: its exit code is known
            if not mine[2].is_set():  # running, or a zombie its reaper is about to wait for
                return RunnerStatus.ALIVE
            code = mine[1].returncode
            return RunnerStatus.EXITED if code is not None and code >= 0 else RunnerStatus.LOST
        if self._process(pid, created) is not None:
            return RunnerStatus.ALIVE
        return RunnerStatus.LOST

    def logs(self, handle: JobHandle, max_bytes: int = 4096) -> str:
        _, _, folder = self._parse(handle)
        if not folder:
            return ""
        try:
            with open(Path(folder).joinpath(*RUNNER_OUT), "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - max_bytes))
                return fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def capacity(self, compute: dict[str, Any]) -> int:
        return max(0, int(compute.get("max_instances") or 0))

    # ------------------------------------------------------------------ stop
    def cancel(self, handle: JobHandle) -> None:
        """SIGTERM the runner, then SIGCONT it (as ``kill``/``docker stop`` do for a stopped process): a
        stopped runner (SIGSTOP, a debugger) handles the cancel at once instead of at the kill after
        the scheduler's grace period."""
        pid, created, _ = self._parse(handle)
        if not self._elsewhere(handle) and self._process(pid, created) is not None:
            for sig in (signal.SIGTERM, signal.SIGCONT):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    return

    def kill(self, handle: JobHandle) -> None:
        """SIGKILL the runner's session: the runner and the process groups of the user's command,
        also when the runner is already dead (a session id is not reused while a process holds it),
        and the sessions of a distributed job's processes (``runner/rank_sessions`` of its folder)."""
        pid, created, folder = self._parse(handle)
        if pid <= 0 or self._elsewhere(handle):
            return
        sessions = _rank_sessions(Path(folder)) if folder else set()
        try:
            live = psutil.Process(pid)
            if not (created and abs(live.create_time() - created) > 1.0):
                sessions.add(pid)  # else the pid is another process now: nothing is left in the runner's session
        except psutil.Error:
            sessions.add(pid)
        if not sessions:
            return
        groups: set[int] = set()
        for p in psutil.process_iter():
            try:
                if os.getsid(p.pid) in sessions:
                    groups.add(os.getpgid(p.pid))
            except OSError:
                continue
        for pgid in sorted(groups):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _reap(proc: subprocess.Popen[bytes], out_path: Path, reaped: threading.Event) -> None:
    """Wait for a runner started here, then note how it ended as the last line of its output (the
    line the scheduler quotes when a runner ended without reporting the job's end)."""
    try:
        code = proc.wait()
        if code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        with open(out_path, "a", encoding="utf-8") as out:
            out.write(f"openaml: the runner (pid {proc.pid}) {how}\n")
    except OSError:
        pass
    finally:
        reaped.set()


_HOST: list[str] = []


def host_id() -> str:
    """This host's identity for runner handles: its name and boot id (a reboot makes every pid stale)."""
    if not _HOST:
        try:
            boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        except OSError:
            boot = ""
        _HOST.append(f"{socket.gethostname()}/{boot}")
    return _HOST[0]


def _rank_sessions(folder: Path) -> set[int]:
    """The sessions a runner noted for a distributed job's processes (each in a session of its own:
    ``<folder>/runner/rank_sessions``, ``pid start_time`` a line). A leader that is alive with
    another start time is a reused pid, left out; a leader that is gone leaves its session id
    unused by others while any member lives (the kernel does not reuse it)."""
    out: set[int] = set()
    try:
        lines = (folder / "runner" / "rank_sessions").read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            sid, start = (int(x) for x in line.split()[:2])
        except ValueError:
            continue
        try:
            with open(f"/proc/{sid}/stat", "rb") as fh:
                now = int(fh.read().rsplit(b")", 1)[1].split()[19])
            if start and now != start:
                continue
        except (OSError, IndexError, ValueError):
            pass  # the leader is gone: members, if any, still hold its session id
        out.add(sid)
    return out
