"""A job step forked from a warm process: the step's side and the process's loop, shared by the
built-in RAI components (:mod:`openaml.rai._warm`) and AutoML's trial workers
(:mod:`openaml.automl._warm`); the runner's side is :mod:`openaml.runner._step_pool`.

A step of openaml's own code (``python -m openaml.rai <step>``, ``python -m openaml.automl._worker``)
spends most of a cold start importing its libraries. The warm process (``python -m <kind's module>
<pool.json>``) is the batch deployments' pool loop (:func:`openaml.parallel._openaml_parallel.pool.pool_main`)
with the kind's ``PRELOAD`` imported by name: never a model, never a job's files.

The step's side (:func:`run_warm`, called first by the step's ``main``): when the runner handed the
command a connection to the warm process (its descriptor in the kind's ``FD_ENV`` variable), the
step asks it for a child instead of importing anything; the child enters the job's namespaces, takes
its variables, folder, log, stdin and capabilities (the pool's ``_enter_and_fork``), runs the step
module's ``main(argv)`` there (:func:`serve_module`) and reports its exit status; this process waits
for it, passes a cancel (SIGTERM/SIGINT) on, and exits with the step's code. The child ends when
this process ends. A refused fork or a missing warm process makes the step start cold (a line in
the job's log).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["run_warm", "serve_module", "process_main"]

#: what a forked child runs once in the job: ``serve(stdin_fd, w_res, id, pidfd, request) -> exit code``
Serve = Callable[[int, int, int, int, dict[str, Any]], int]


# ====================================================================== the step's side (in the job)
def _engine_common() -> Any:
    """The batch engine's message framing (``_openaml_parallel/common.py``), loaded by file so that
    the step does not import :mod:`openaml.parallel` (pydantic entities) to speak to the warm process."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "parallel" / "_openaml_parallel" / "common.py"
    spec = importlib.util.spec_from_file_location("_openaml_warm_common", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_warm(argv: list[str], fd_env: str) -> int | None:
    """Run the step (``argv``: its arguments) in a child of the warm process whose connection is in
    ``$fd_env``; its exit code, or None (no connection, no warm process, or it refused: the caller
    runs the step here, cold)."""
    fd = os.environ.pop(fd_env, None)
    if not fd:
        return None
    import signal
    import socket

    try:
        common = _engine_common()
        sock = socket.socket(fileno=int(fd))
    except (OSError, ValueError) as exc:
        print(f"[openaml] warm process not usable ({exc}); the step starts cold", flush=True)
        return None
    r, w = os.pipe()
    pidfd = os.pidfd_open(os.getpid())
    msg = {"fork": 0, "cwd": os.getcwd(), "env": dict(os.environ), "argv": list(argv),
           "executable": sys.executable, "path0": sys.path[0] if sys.path else ""}
    try:
        common.send(sock, msg, (0, w, 1, pidfd))
        answer, fds = common.recv(sock)
        for f in fds:
            os.close(f)
    except (OSError, ValueError) as exc:
        answer = {"ok": False, "why": str(exc)}
    finally:
        os.close(w)
        os.close(pidfd)
        sock.close()
    if not isinstance(answer, dict) or not answer.get("ok"):
        os.close(r)
        why = answer.get("why") if isinstance(answer, dict) else "no answer"
        print(f"[openaml] the warm process did not start the step ({why}); the step starts cold", flush=True)
        return None
    child: list[int] = []

    def _pass_on(signum: int, _frame: Any) -> None:
        for pid in child:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, _pass_on)
    signal.signal(signal.SIGINT, _pass_on)
    with os.fdopen(r, "rb") as fh:
        for line in fh:
            said = json.loads(line)
            if "pid" in said:
                child.append(int(said["pid"]))
            if "exit" in said:
                return int(said["exit"])
    print("[openaml] the step's process ended without an exit status (killed)", file=sys.stderr, flush=True)
    return 1


# ====================================================================== the warm process's child (in the job)
def _die_with(pidfd: int) -> None:
    import select
    import signal

    select.select([pidfd], [], [])
    os.kill(os.getpid(), signal.SIGKILL)  # the step's own process ended (canceled): so does the step


def serve_module(module: str, fd_env: str, before: Callable[[Any], None] | None = None) -> Serve:
    """What the warm process's child runs in the job: ``<module>.main(argv)``, as ``python -m
    <module>`` would (``sys.argv``, ``sys.path[0]``, ``sys.executable`` as the step's process had
    them; ``before(module)`` first); it says its pid, then its exit code, on ``w_res`` (one JSON
    line each)."""

    def serve(stdin_fd: int, w_res: int, _wid: int, pidfd: int, msg: dict[str, Any]) -> int:
        import importlib
        import threading
        import traceback

        os.dup2(stdin_fd, 0)
        os.environ.pop(fd_env, None)
        sys.executable = str(msg.get("executable") or sys.executable)
        argv = [str(a) for a in msg.get("argv") or []]
        step = importlib.import_module(module)
        sys.argv = [str(step.__file__), *argv]
        if sys.path:
            sys.path[0] = str(msg.get("path0") or "")  # as ``python -m`` puts the working folder first
        if before is not None:
            before(step)
        if "numpy" in sys.modules:  # a fresh generator, as a cold process seeds it (Python's own reseeds at fork)
            sys.modules["numpy"].random.seed()
        out = os.fdopen(w_res, "w", buffering=1)
        out.write(json.dumps({"pid": os.getpid()}) + "\n")
        threading.Thread(target=_die_with, args=(pidfd,), name="openaml-step-parent", daemon=True).start()
        code = 0
        try:
            result = step.main(argv)
            code = int(result) if isinstance(result, int) else 0
        except SystemExit as exc:
            if isinstance(exc.code, int) or exc.code is None:
                code = int(exc.code or 0)
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001 - as an uncaught exception ends a cold step
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        out.write(json.dumps({"exit": code}) + "\n")
        out.flush()
        return code

    return serve


# ====================================================================== the warm process
def process_main(cfg_path: str, serve: Serve) -> int:
    """The batch engine's pool loop, its package loaded from openaml's files as the standalone package
    it is in a job (``_openaml_parallel``), without :mod:`openaml.parallel`'s entities (pydantic)."""
    import importlib.util
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "parallel" / "_openaml_parallel"
    spec = importlib.util.spec_from_file_location("_openaml_parallel", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules["_openaml_parallel"] = package
    spec.loader.exec_module(package)
    from _openaml_parallel.pool import pool_main  # type: ignore[import-not-found]

    return int(pool_main(cfg_path, serve=serve))
