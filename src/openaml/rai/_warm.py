"""The built-in RAI components' warm process: the process itself, and the step's side (issue 16).

A built-in RAI step (``python -m openaml.rai <step> ...``) spends most of a cold start importing
its libraries (pandas, scikit-learn, lightgbm, shap, erroranalysis, responsibleai: seconds of CPU
per step, paid again by every step of a pipeline). The runner (:mod:`openaml.runner._step_pool`)
keeps one warm process per server and environment: ``python -m openaml.rai._warm <pool.json>``,
the batch deployments' pool (:func:`openaml.parallel._openaml_parallel.pool.pool_main`) with
:data:`PRELOAD` imported, serving :func:`_serve_step` instead of a batch worker. It imports
openaml's own RAI modules and the libraries they use, by name, and nothing else: never a model,
never a job's files (loading a model unpickles the user's objects: user code, so the model is
loaded in the step, in the job's sandbox, as a cold step loads it).

The step's side (:func:`run_warm`, called first by ``python -m openaml.rai``): when the runner
handed the command a connection to the warm process (``$OPENAML_RAI_WARM_FD``), the step asks it
for a child instead of importing anything; the child enters the job's namespaces, takes its
variables, folder, log, stdin and capabilities (the pool's ``_enter_and_fork``), runs the step's
``main(argv)`` there and reports its exit status; this process waits for it, passes a cancel
(SIGTERM/SIGINT) on, and exits with the step's code. The child ends when this process ends.
A refused fork or a missing warm process makes the step start cold (a line in the job's log).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

__all__ = ["FD_ENV", "PRELOAD", "run_warm"]

FD_ENV = "OPENAML_RAI_WARM_FD"

#: what the warm process imports: openaml's RAI modules and the libraries their steps import lazily
#: (learned from the housing pipeline's steps in one process; causal's econml, mitigation's mlflow
#: and the score card's pyplot are left to their own steps: they would cost every pipeline)
PRELOAD = [
    "numpy", "pandas", "pyarrow.parquet", "scipy.stats", "sklearn.base", "sklearn.pipeline", "sklearn.metrics",
    "sklearn.ensemble", "sklearn.tree", "sklearn.linear_model", "joblib", "cloudpickle", "lightgbm", "shap",
    "erroranalysis.analyzer", "erroranalysis._internal.surrogate_error_tree", "httpx", "yaml", "psutil",
    "openaml.rai._io", "openaml.rai._constructor", "openaml.rai._insights", "openaml.rai._whatif",
    "openaml.rai._cf_random", "openaml.rai._gather", "openaml.rai.__main__",
]


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


def run_warm(argv: list[str]) -> int | None:
    """Run the step in a child of the warm process; its exit code, or None (no warm process, or it
    refused: the caller runs the step here, cold)."""
    fd = os.environ.pop(FD_ENV, None)
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


def _serve_step(stdin_fd: int, w_res: int, _wid: int, pidfd: int, msg: dict[str, Any]) -> int:
    """In the job (namespaces, variables, folder, log and capabilities taken): ``main(argv)`` of
    ``python -m openaml.rai``, as the step's process would run it; says its pid, then its exit code,
    on ``w_res`` (one JSON line each)."""
    import threading
    import traceback

    os.dup2(stdin_fd, 0)
    os.environ.pop(FD_ENV, None)
    sys.executable = str(msg.get("executable") or sys.executable)
    argv = [str(a) for a in msg.get("argv") or []]
    sys.argv = [os.path.join(os.path.dirname(__file__), "__main__.py"), *argv]
    if sys.path:
        sys.path[0] = str(msg.get("path0") or "")  # as ``python -m`` puts the working folder first
    from openaml.rai import __main__ as step

    step._MARKS["process_start"] = time.time()  # this process's start (its fork), for _timings.json
    if "numpy" in sys.modules:  # a fresh generator, as a cold process seeds it (Python's own reseeds at fork)
        sys.modules["numpy"].random.seed()
    out = os.fdopen(w_res, "w", buffering=1)
    out.write(json.dumps({"pid": os.getpid()}) + "\n")
    threading.Thread(target=_die_with, args=(pidfd,), name="openaml-step-parent", daemon=True).start()
    code = 0
    try:
        step.main(argv)
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


# ====================================================================== the warm process
def _main(cfg_path: str) -> int:
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

    return int(pool_main(cfg_path, serve=_serve_step))


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
