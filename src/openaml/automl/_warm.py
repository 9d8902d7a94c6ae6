"""Warm trial worker: an AutoML job's trials start from a process that has imported the ML stack once.

A trial is still its own child command job (its status, log, MLflow run and outputs, as Azure
runs one child run per trial); what changes is who does the work. The trial's command,
``python -m openaml.automl._warm <trial args>``, is a light client (standard library only):

1. it connects to the AutoML job's worker on this host (a Unix socket named after the job's
   ``OPENAML_AUTOML_WORKER`` key, this interpreter and openaml's sources), starting the worker
   when there is none (under a file lock, so concurrent trials start one);
2. it sends its arguments, environment and working folder, and its stdin/stdout/stderr (the
   trial's log) as file descriptors;
3. the worker, which imported numpy, pandas, scikit-learn, LightGBM, XGBoost, FLAML, MLflow and
   openaml's trial code once, forks; the forked process takes the client's environment, folder
   and descriptors and runs :func:`openaml.automl._trial.main`; its exit code is the client's.

Canceling the trial (SIGTERM/SIGINT to the client) kills the forked process; a client that dies
closes the connection, which kills it too. The worker exits after ``OPENAML_AUTOML_WORKER_IDLE_S``
seconds (default 90) without a trial. With ``OPENAML_AUTOML_WORKER=off``, or when the worker
cannot start, the trial runs in the client process (the imports paid there).

Measured (bench/automl.py): each trial otherwise pays 10-40 s of imports on a loaded machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "serve"]

_PRELOAD = ("numpy", "pandas", "scipy.sparse", "sklearn.pipeline", "sklearn.preprocessing", "sklearn.impute",
            "sklearn.compose", "sklearn.feature_extraction.text", "sklearn.model_selection", "sklearn.metrics",
            "sklearn.linear_model", "sklearn.ensemble", "sklearn.inspection", "lightgbm", "xgboost", "flaml",
            "flaml.automl.model", "mlflow", "mlflow.sklearn", "mlflow.pyfunc", "cloudpickle", "threadpoolctl",
            "openaml.automl._trial", "openaml.automl._featurize", "openaml.automl._learners",
            "openaml.automl._metrics", "openaml.automl._artifacts", "openaml.automl._ensemble",
            "openaml.automl._forecast", "openaml.automl._data")
_START_WAIT_S = 600.0


def _socket_path(key: str) -> Path:
    here = Path(__file__).resolve().parent
    stamp = "|".join(f"{p.name}:{p.stat().st_mtime_ns}" for p in sorted(here.glob("*.py")))
    digest = hashlib.sha1(f"{key}|{sys.executable}|{stamp}".encode()).hexdigest()[:20]
    folder = Path(tempfile.gettempdir()) / f"openaml-automl-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f"{digest}.sock"


def _connect(path: Path) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
        return s
    except OSError:
        s.close()
        return None


def _worker_socket(key: str) -> socket.socket | None:
    """A connection to the job's worker, started when there is none; None if it cannot start."""
    import fcntl

    path = _socket_path(key)
    conn = _connect(path)
    if conn is not None:
        return conn
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one trial starts the worker; the others wait for it here
        conn = _connect(path)
        if conn is not None:
            return conn
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        log = open(path.with_suffix(".log"), "ab")  # noqa: SIM115 - handed to the worker
        proc = subprocess.Popen([sys.executable, "-m", "openaml.automl._warm", "--serve", str(path)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=tempfile.gettempdir(),
                                start_new_session=True, close_fds=True)
        log.close()
        print(f"openaml: started the AutoML trial worker (pid {proc.pid}); it imports the ML libraries once",
              file=sys.stderr, flush=True)
        deadline = time.time() + _START_WAIT_S
        while time.time() < deadline:
            if proc.poll() is not None:
                return None
            conn = _connect(path)
            if conn is not None:
                return conn
            time.sleep(0.2)
        proc.kill()
        return None


def _read_line(conn: socket.socket) -> dict[str, Any] | None:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = conn.recv(4096)
        if not chunk:
            return None
        buf += chunk
    return dict(json.loads(buf))


def main(argv: list[str] | None = None) -> int:
    """The trial's command: run it in the warm worker, else here."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve"]:
        return serve(Path(argv[1]))
    key = os.environ.get("OPENAML_AUTOML_WORKER", "")
    conn = None
    if key and key.lower() not in ("off", "0", "false"):
        try:
            conn = _worker_socket(key)
        except OSError as exc:
            print(f"openaml: no AutoML trial worker ({exc}); the trial runs in this process", file=sys.stderr)
    if conn is None:
        from openaml.automl._trial import main as trial_main

        return trial_main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    request = json.dumps({"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}).encode() + b"\n"
    socket.send_fds(conn, [request], [0, 1, 2])
    started = _read_line(conn)
    if not started:
        print("openaml: the AutoML trial worker closed the connection before the trial started", file=sys.stderr)
        return 1
    pid = int(started["pid"])

    def stop(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    done = _read_line(conn)
    if done is None:
        print(f"openaml: the trial process {pid} ended without an exit code (killed?)", file=sys.stderr)
        return 1
    return int(done["rc"])


def _run_forked(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """In the forked process: become the client's trial (environment, folder, stdio), run, report."""
    import threading
    import traceback

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for target, fd in zip((0, 1, 2), fds, strict=False):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")

    def watch() -> None:  # the client went away (canceled, killed): so does the trial
        with contextlib.suppress(OSError):
            while conn.recv(1):
                pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()
    sys.argv = ["openaml.automl._trial", *request["argv"]]
    try:
        from openaml.automl._trial import main as trial_main

        rc = int(trial_main(request["argv"]) or 0)
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the trial's error goes to its log, as in a process of its own
        traceback.print_exc()
        rc = 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps({"rc": rc}).encode() + b"\n")
    os._exit(rc)


def serve(path: Path) -> int:
    """The worker: import the stack, listen on ``path``, fork a trial per connection; exit when idle."""
    import importlib

    for name in _PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a library missing here is imported (and fails) in the trial
            print(f"preload {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
    idle_s = float(os.environ.get("OPENAML_AUTOML_WORKER_IDLE_S") or 90)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    listener.bind(str(tmp))
    listener.listen(64)
    os.replace(tmp, path)  # connectable only once warm
    listener.settimeout(1.0)
    children: set[int] = set()
    last = time.time()
    draining = False
    try:
        while True:
            for pid in list(children):
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        children.discard(pid)
                        last = time.time()
            if not draining and not children and time.time() - last > idle_s:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # no new connections; those already queued are still served
                draining = True
                listener.settimeout(0.2)
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                if draining:
                    return 0
                continue
            conn.settimeout(30)
            try:
                msg, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, 3)
                while not msg.endswith(b"\n"):
                    more = conn.recv(1 << 20)
                    if not more:
                        break
                    msg += more
                request = json.loads(msg)
            except (OSError, ValueError):
                conn.close()
                continue
            conn.settimeout(None)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                _run_forked(conn, request, fds)
            for fd in fds:
                os.close(fd)
            conn.close()
            children.add(pid)
            last = time.time()
    finally:
        listener.close()
        if not draining:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


if __name__ == "__main__":
    sys.exit(main())
