"""Local backend: runners are subprocesses in their own session, surviving a server restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from openaml.compute._base import ComputeBackend, RunnerHandle

__all__ = ["LocalBackend", "SERVER_SECRETS"]

# the server's credentials, whatever their source: a job gets its own scoped token (runner.json)
SERVER_SECRETS = frozenset({"OPENAML_TOKEN", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME",
                            "MLFLOW_TRACKING_PASSWORD"})


class LocalBackend(ComputeBackend):
    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable

    def launch(self, job_dir: Path) -> RunnerHandle:
        (job_dir / "system_logs").mkdir(parents=True, exist_ok=True)
        with open(job_dir / "system_logs" / "runner.out", "ab") as out:
            env = {k: v for k, v in os.environ.items() if k not in SERVER_SECRETS}
            env["PYTHONUNBUFFERED"] = "1"
            proc = subprocess.Popen([self.python, "-m", "openaml.runner", str(job_dir)], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=str(job_dir),
                                    env=env, close_fds=True)
        try:
            created = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            created = 0.0
        # the server does not wait() on runners (they may outlive it); reap in a thread
        import threading

        threading.Thread(target=proc.wait, daemon=True).start()
        return RunnerHandle(proc.pid, created)

    def is_alive(self, handle: RunnerHandle) -> bool:
        try:
            p = psutil.Process(handle.pid)
            if handle.create_time and abs(p.create_time() - handle.create_time) > 1.0:
                return False
            return p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def terminate(self, handle: RunnerHandle) -> None:
        if self.is_alive(handle):
            try:
                os.kill(handle.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def kill(self, handle: RunnerHandle, pgids: list[int]) -> None:
        for pgid in pgids:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.is_alive(handle):
            try:
                os.kill(handle.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
