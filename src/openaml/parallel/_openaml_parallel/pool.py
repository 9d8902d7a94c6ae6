"""The warm pool of a batch deployment: a process that outlives its jobs and forks their workers.

A batch deployment's jobs spend most of their start importing the environment's libraries (pandas,
scikit-learn...) in every worker. The runner (:mod:`openaml.runner._pool`) keeps, per deployment,
environment, code snapshot and model, one process of the environment's interpreter that has imported
the libraries the deployment's ``init()`` imported (learned from its first job), and hands each later
job a connection to it. The job's driver asks it for each worker (:class:`PoolClient`); the pool forks
a child that enters the job's namespaces (mount and PID: the job's view of the files, its secrets
hidden, its read-only inputs; a process of the job that dies with it), takes the job's environment
variables, working folder, log file and capabilities, and becomes the worker: it imports the entry
script and runs ``init()`` there, in the job, as a fresh worker would. The pool never runs the job's
own code (its entry script, ``init()``, its modules): only the environment's modules by name.

Protocol (``SOCK_SEQPACKET``, one JSON object per packet, descriptors as ``SCM_RIGHTS``): the
runner's ``{"token"}`` (answered ``{"pool": "ready"}``), then the driver's ``{"fork": id, "cwd",
"env"}`` with the worker's task pipe (read end), result pipe (write end), log file and a pidfd of
the driver; answered ``{"forked": id, "ok": true, "host_pid"}`` or ``{"forked": id, "ok": false,
"why"}`` (the driver then starts that worker as a fresh process). The pool ends after
``idle_seconds`` without a job, when the server whose pid it watches ends, or on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import FORK_UNSAFE, recv, send
from .worker import worker_main

__all__ = ["pool_main", "PoolClient", "pidfd_open"]

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
_CAPS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def pidfd_open(pid: int) -> int:
    """A pidfd of ``pid`` (``os.pidfd_open``, or the syscall on Python < 3.9)."""
    if hasattr(os, "pidfd_open"):
        return os.pidfd_open(pid)
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(434, pid, 0)  # pidfd_open: the same number on every architecture
    if fd < 0:
        raise OSError(ctypes.get_errno(), "pidfd_open")
    return int(fd)


if TYPE_CHECKING:  # (the engine runs on the job's Python, 3.8 included)
    from collections.abc import Callable

    #: what a forked child becomes, in the job: ``serve(r_fd, w_fd, id, pidfd, request) -> exit code``
    Serve = Callable[[int, int, int, int, dict[str, Any]], int]


def _serve_worker(r_task: int, w_res: int, wid: int, pidfd: int, _msg: dict[str, Any]) -> int:
    return worker_main(r_task, w_res, wid, watch_fd=pidfd)


# ====================================================================== the pool process
def pool_main(cfg_path: str, serve: Serve = _serve_worker) -> int:
    """The pool: import ``preload``, listen on ``socket``, fork workers until idle or the server ends.

    ``serve`` is what each forked child runs once it is in the job (its namespaces, variables,
    folder, log and capabilities taken): a batch job's worker by default; a step of openaml's own
    code (a built-in RAI component, an AutoML trial worker: :mod:`openaml.runner._warm_step`) for
    their warm processes."""
    import hmac
    import importlib
    import select
    import socket

    cfg = json.loads(Path(cfg_path).read_text(encoding="utf-8"))
    try:
        server = pidfd_open(int(cfg["server_pid"]))
    except OSError:
        return 0  # the server is gone already
    for name in cfg.get("preload") or []:
        if str(name).split(".")[0] in FORK_UNSAFE or str(name).startswith("_openaml"):
            continue
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001, S112 - a hint only: the worker imports what it needs
            continue
    unsafe = [m for m in FORK_UNSAFE if sys.modules.get(m) is not None]  # None: kept out (AutoML's ray)
    if unsafe:
        print(f"[openaml] warm pool: {', '.join(unsafe)} imported (fork-unsafe); not serving", flush=True)
        return 0

    def _term(signum: int, _frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _term)
    _become_subreaper()
    path = str(cfg["socket"])
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(16)
    ready = Path(cfg["ready_file"])
    ready.write_text(json.dumps({"pid": os.getpid(), "modules": len(sys.modules)}), encoding="utf-8")
    print(f"[openaml] warm pool {os.getpid()} ready: {len(sys.modules)} modules imported", flush=True)
    conns: dict[Any, bool] = {}  # connection -> authenticated
    idle = float(cfg.get("idle_seconds", 300))
    last = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if not conns and now - last >= idle:
                print(f"[openaml] warm pool {os.getpid()}: idle for {idle:g} s; ending", flush=True)
                return 0
            readable, _, _ = select.select([listener, server, *conns], [], [], max(0.1, idle - (now - last)))
            if server in readable:
                print(f"[openaml] warm pool {os.getpid()}: the server ended; ending", flush=True)
                return 0
            for s in readable:
                if s is listener:
                    conn, _ = listener.accept()
                    conns[conn] = False
                    continue
                if s is server:
                    continue
                try:
                    msg, fds = recv(s)
                except (OSError, ValueError):
                    msg, fds = None, []
                try:
                    if msg is None:
                        conns.pop(s, None)
                        s.close()
                    elif not conns[s]:
                        if hmac.compare_digest(str(msg.get("token", "")), str(cfg["token"])):
                            conns[s] = True
                            send(s, {"pool": "ready", "pid": os.getpid()})
                        else:
                            conns.pop(s, None)
                            s.close()
                    elif "fork" in msg and len(fds) == 4:
                        _fork(s, msg, fds, serve)
                finally:
                    for f in fds:
                        os.close(f)
                last = time.monotonic()
    finally:
        for p in (path, str(ready)):
            try:
                os.unlink(p)
            except OSError:
                pass


_REAPED: dict[int, int] = {}  # exit statuses the SIGCHLD handler collected


def _reap(_signum: int, _frame: Any) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _REAPED[pid] = status


def _become_subreaper() -> None:
    """Make the pool the parent of the workers once their intermediate process (A) is gone, and reap
    them as they exit. Otherwise an orphaned worker goes to the machine's init, and a job in a PID
    namespace of its own cannot end (its init waits until every process of the namespace is reaped)
    before that init reaps it: seconds where it polls. Linux (``PR_SET_CHILD_SUBREAPER``)."""
    try:
        import ctypes

        if ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) == 0:
            signal.signal(signal.SIGCHLD, _reap)
    except (OSError, AttributeError):
        pass


def _fork(sock: Any, msg: dict[str, Any], fds: list[int], serve: Serve) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # A: enters the job's namespaces, forks the worker (a process of the job's PID namespace)
        code = 1
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the pool's reaper is not the worker's
            code = _enter_and_fork(sock, msg, fds, serve)
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
        finally:
            os._exit(code)
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # the SIGCHLD handler reaped it first
        status = _REAPED.get(pid, 0)
    _REAPED.pop(pid, None)
    if len(_REAPED) > 1000:  # the workers' statuses: nobody asks for them
        _REAPED.clear()
    if os.WIFSIGNALED(status):
        send(sock, {"forked": msg["fork"], "ok": False, "why": f"killed by signal {os.WTERMSIG(status)}"})


def _status(pid: int | str) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _pid_of(pidfd: int) -> int:
    for line in Path(f"/proc/self/fdinfo/{pidfd}").read_text().splitlines():
        if line.startswith("Pid:"):
            pid = int(line.split()[1])
            if pid > 0:
                return pid
    raise RuntimeError("the driver is gone")


def _enter_and_fork(sock: Any, msg: dict[str, Any], fds: list[int], serve: Serve) -> int:
    import ctypes

    r_task, w_res, log, pidfd = fds
    wid = int(msg["fork"])
    keep = {0, 1, 2, sock.fileno(), *fds}
    for name in os.listdir("/proc/self/fd"):  # the pool's listener, other jobs' connections: never the worker's
        if int(name) not in keep:
            try:
                os.close(int(name))
            except OSError:
                pass
    try:
        driver = _pid_of(pidfd)
        theirs, mine = _status(driver), _status("self")
        if theirs.get("Uid") != mine.get("Uid") or theirs.get("Gid") != mine.get("Gid"):
            raise RuntimeError("the job runs as another user than the pool")
        if theirs.get("Seccomp", "0") != mine.get("Seccomp", "0"):
            raise RuntimeError("the job runs under a seccomp filter the pool does not have")
        flags = 0
        for ns, flag in (("mnt", CLONE_NEWNS), ("pid", CLONE_NEWPID)):
            if os.readlink(f"/proc/{driver}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"):
                flags |= flag
        if flags:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(pidfd, flags) != 0:
                raise OSError(ctypes.get_errno(), f"setns into the job's namespaces: {os.strerror(ctypes.get_errno())}")
    except BaseException as exc:  # noqa: BLE001
        send(sock, {"forked": wid, "ok": False, "why": f"{type(exc).__name__}: {exc}"})
        return 1
    pid = os.fork()  # B: in the job's PID namespace (a child of its init once A is gone)
    if pid == 0:
        code = 1
        try:
            sock.close()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the pool's own handler is not the worker's
            os.setsid()
            os.dup2(log, 1)
            os.dup2(log, 2)
            for stream in (sys.stdout, sys.stderr):  # as the job's PYTHONUNBUFFERED=1 makes a fresh worker's
                try:
                    stream.reconfigure(line_buffering=True, write_through=True)  # type: ignore[union-attr]
                except (AttributeError, ValueError):
                    pass
            os.chdir(msg["cwd"])
            os.environ.clear()
            os.environ.update({str(k): str(v) for k, v in (msg.get("env") or {}).items()})
            _same_privileges(theirs)
            code = serve(r_task, w_res, wid, pidfd, msg)
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    send(sock, {"forked": wid, "ok": True, "host_pid": pid})
    return 0


def _same_privileges(theirs: dict[str, str]) -> None:
    """Give this process the driver's capabilities (bounding, permitted, effective, inheritable,
    ambient: a job run as root keeps only the sandbox's, ``environments._sandbox.KEPT_CAPABILITIES``)
    and its ``no_new_privs``; raises when that fails (the worker is not started)."""
    import ctypes

    mine = _status("self")
    if theirs.get("NoNewPrivs") == "1" and mine.get("NoNewPrivs") != "1":
        ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    if all(int(mine.get(k, "0"), 16) == int(theirs.get(k, "0"), 16) for k in _CAPS):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    bnd_mine, bnd = int(mine["CapBnd"], 16), int(theirs["CapBnd"], 16)
    for bit in range(64):
        if (bnd_mine >> bit) & 1 and not (bnd >> bit) & 1 and libc.prctl(24, bit, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), f"dropping capability {bit}")
    libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL (the sandbox clears them too)

    class _Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class _Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    eff, prm, inh = (int(theirs[k], 16) for k in ("CapEff", "CapPrm", "CapInh"))
    data = (_Data * 2)(_Data(eff & 0xFFFFFFFF, prm & 0xFFFFFFFF, inh & 0xFFFFFFFF),
                       _Data(eff >> 32, prm >> 32, inh >> 32))
    if libc.capset(ctypes.byref(_Header(0x20080522, 0)), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    now = _status("self")
    if any(int(now.get(k, "0"), 16) != int(theirs.get(k, "0"), 16) for k in ("CapPrm", "CapEff", "CapBnd")):
        raise RuntimeError("the worker could not take the job's capabilities")


# ====================================================================== the driver's side
class PoolClient:
    """The driver's connection to the warm pool (its descriptor handed over by the runner in
    ``$OPENAML_PARALLEL_POOL_FD``). ``ok`` turns False when the pool refuses a fork or goes away:
    the driver starts the workers it still needs as fresh processes. Each worker's pid as the
    machine sees it is kept in ``logs/sys/warm_pool.txt``."""

    def __init__(self, fd: int, q: Any, log: Path) -> None:
        import socket

        self.sock = socket.socket(fileno=fd)
        self.pidfd = pidfd_open(os.getpid())
        self.ok = True
        self.acked: set[int] = set()
        self.q = q
        self.log = log
        threading.Thread(target=self._read, name="openaml-pool", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                msg, fds = recv(self.sock)
            except (OSError, ValueError):
                msg, fds = None, []
            for f in fds:
                os.close(f)
            if msg is None:
                self.ok = False
                self.q.put((None, {"pool": "gone"}))
                return
            if "forked" in msg:
                wid = int(msg["forked"])
                self.acked.add(wid)
                if msg.get("ok"):
                    with open(self.log, "a", encoding="utf-8") as fh:
                        fh.write(f"worker {wid}: forked from the warm pool, host pid {msg.get('host_pid')}\n")
                else:
                    self.ok = False
                    self.q.put((None, {"pool": "failed", "id": wid, "why": msg.get("why")}))

    def fork(self, wid: int, r_task: int, w_res: int, log: Path) -> None:
        """Ask the pool for worker ``wid`` (its pipes' ends and log file go with the request).

        Raises:
            OSError: the pool is gone.
        """
        logfd = os.open(str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            send(self.sock, {"fork": wid, "cwd": os.getcwd(), "env": dict(os.environ)},
                 (r_task, w_res, logfd, self.pidfd))
        finally:
            os.close(logfd)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
