"""The job's own zygote: a process of the job that imports the entry script (and the modules earlier
jobs' ``init()`` imported) once, then forks each worker on the driver's request."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from .common import FORK_UNSAFE, die_with_parent, entry_script, recv, send
from .worker import import_entry, worker_main, worker_setup

__all__ = ["zygote_main", "preload_file", "Zygote"]


def zygote_main(fd: int) -> int:
    """The zygote: imports the entry script (and the modules earlier jobs' ``init()`` imported) once,
    then forks each worker on request (``{"fork": id, "log": path}`` with the worker's two pipe ends),
    so that a worker starts in milliseconds with those imports done; it reports each child's pid and
    exit status. With a fork-unsafe module imported (or no ``fork``) it says ``no_fork`` and exits:
    the driver then starts workers as fresh processes."""
    import socket

    die_with_parent()
    sock = socket.socket(fileno=fd)
    cfg, _ = recv(sock)
    if cfg is None:
        return 0
    status: dict[str, Any] = {"zygote": "ready"}
    try:
        script = worker_setup(cfg)
        import_entry(script)
        for name in cfg.get("preload") or []:
            if str(name).split(".")[0] in FORK_UNSAFE:
                continue  # init() imports it in each worker, after the fork
            try:
                importlib.import_module(name)
            except BaseException:  # noqa: BLE001, S112 - a hint only: the worker imports what it needs
                continue
        unsafe = [m for m in FORK_UNSAFE if m in sys.modules]
        if unsafe or not hasattr(os, "fork"):
            status = {"zygote": "no_fork", "why": f"{', '.join(unsafe) or 'os.fork'} (fork-unsafe) imported"}
    except BaseException:  # noqa: BLE001 - the worker reports the error as init()'s
        status = {"zygote": "no_fork", "why": traceback.format_exc().strip().splitlines()[-1]}
    sys.stdout.flush()
    sys.stderr.flush()
    send(sock, status)
    if status["zygote"] != "ready":
        return 0

    def _reap(_signum: int, _frame: Any) -> None:
        while True:
            try:
                pid, code = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            send(sock, {"exit": pid, "code": -os.WTERMSIG(code) if os.WIFSIGNALED(code) else os.WEXITSTATUS(code)})

    signal.signal(signal.SIGCHLD, _reap)
    while True:
        try:
            req, fds = recv(sock)
        except OSError:
            return 0
        if req is None:  # the driver is gone
            return 0
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                sock.close()
                os.setsid()
                log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.close(log)
                code = worker_main(fds[0], fds[1], int(req["fork"]))
            except BaseException:  # noqa: BLE001
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        for f in fds:
            os.close(f)
        send(sock, {"forked": req["fork"], "pid": pid})


def preload_file(cfg: dict[str, Any], work: Path) -> Path:
    """Where the modules learned from earlier jobs of this entry script on this Python are kept (a
    hint for the zygote: a missing or stale file costs time only)."""
    script = (work / cfg["entry_script"]).resolve()
    try:
        body = script.read_bytes()
    except OSError:
        body = b""
    key = hashlib.sha256(body + b"\0" + sys.executable.encode()).hexdigest()[:32]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "openaml" / "parallel-preload" / f"{key}.json"


class Zygote:
    """The driver's side of the zygote: started with the job, forks workers once it is ready."""

    def __init__(self, driver: Any) -> None:
        import socket

        self.ready = False
        self.failed: str | None = None
        self.pids: dict[int, int] = {}
        self.codes: dict[int, int] = {}
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log = open(driver.logs / "user" / "stdout" / "zygote.txt", "ab", buffering=0)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, entry_script(), "--zygote", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # a session of its own, as every worker's: its own CPU share (autogroup)
        log.close()
        theirs.close()
        try:
            learned = json.loads(driver.preload_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            learned = []
        preload: list[str] = []
        size = 0
        for name in sorted((str(m) for m in learned), key=lambda m: (m.count("."), m)) if isinstance(learned, list) else []:
            size += len(name) + 4
            if size > 64 * 1024:  # one message (a socket buffer); packages first, then their modules
                break
            preload.append(name)
        send(self.sock, {**driver.worker_cfg, "preload": preload})
        self.q = driver.q
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                msg, _ = recv(self.sock)
            except (OSError, ValueError):
                msg = None
            if msg is None:
                self.q.put((None, {"zygote": "gone"}))
                return
            if "forked" in msg:
                self.pids[int(msg["forked"])] = int(msg["pid"])
            elif "exit" in msg:
                self.codes[int(msg["exit"])] = int(msg["code"])
            else:
                self.q.put((None, msg))

    def fork(self, worker: Any, r_task: int, w_res: int, log: Path) -> None:
        send(self.sock, {"fork": worker.id, "log": str(log)}, (r_task, w_res))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass


