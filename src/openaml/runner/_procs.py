"""Waiting for and stopping the job's processes (each the leader of a process group of its own)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable

__all__ = ["exit_waiter", "kill_group", "GRACE_SECONDS"]

#: seconds between the SIGTERM and the SIGKILL of a process group
GRACE_SECONDS = 5.0


def kill_group(proc: subprocess.Popen[bytes], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM ``proc``'s process group (and SIGCONT: a stopped command handles its SIGTERM now), then,
    from a thread, SIGKILL it ``grace`` seconds later (the group may outlive its leader)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        os.killpg(proc.pid, signal.SIGCONT)
    except ProcessLookupError:
        return

    def _hard() -> None:
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    threading.Thread(target=_hard, daemon=True).start()


def exit_waiter(proc: subprocess.Popen[bytes]) -> Callable[[float], int | None]:
    """A function ``wait(seconds) -> exit code or None`` for ``proc`` that returns as soon as the process
    exits: on Linux it sleeps on a pidfd (``os.pidfd_open``, Linux 5.3+), where ``Popen.wait(timeout)``
    would poll with sleeps of up to 50 ms; elsewhere it is ``Popen.wait(timeout)``."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        fd = None

    def wait(seconds: float) -> int | None:
        nonlocal fd
        if fd is not None and proc.returncode is None:
            ready, _, _ = select.select([fd], [], [], seconds)
            if not ready:
                return None
            seconds = 5.0  # exited: reap it (at once)
        try:
            code = proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None
        if fd is not None:
            os.close(fd)
            fd = None
        return code

    return wait


