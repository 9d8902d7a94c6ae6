"""Warm processes for steps of openaml's own code, the runner's side: the built-in RAI components'
steps (:mod:`openaml.rai._warm`, issue 16) and AutoML's trial workers (:mod:`openaml.automl._warm`,
issue 14); how a step is forked from one: :mod:`openaml.runner._warm_step`.

Such a step (``python -m openaml.rai <step>``, ``python -m openaml.automl._worker``) pays its
libraries' imports (pandas, scikit-learn, lightgbm...) on every cold start: most of its CPU time.
When the server marks a job as such a step (its runner spec's ``warm_process``: ``"rai"`` or
``"automl"``, given only for a job that runs nothing but openaml's own code, on the server's own
environment, without code, where the workspace policy allows it: :mod:`openaml.services._warm_steps`),
the runner connects the step to one warm process per **key**: the kind, the workspace, the server
process (pid and start time), the interpreter and the installed openaml. It is the batch
deployments' pool (:class:`~openaml.runner._pool.WarmPool`, same lock, token, socket, idle end and
server watch), started by the runner of the first step that needs it as soon as that runner starts
(:func:`start_step_pool`: the imports go on while the runner prepares the job; the step then waits
for what is left of them rather than doing them itself), with the kind's ``PRELOAD``.

- It ends after ``$OPENAML_RAI_WARM_IDLE_SECONDS`` / ``$OPENAML_AUTOML_WARM_IDLE_SECONDS`` (default
  300) without a step, when its server process ends, and on SIGTERM.
- ``OPENAML_RAI_WARM=0`` / ``OPENAML_AUTOML_WARM=0`` in the runner's environment keeps this
  runner's steps cold; any failure (no pidfd, the server's disk not visible, a start that does not
  get ready in ``$OPENAML_RAI_WARM_READY_SECONDS``, default 180) runs the step cold, with a line in
  the runner's system log.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openaml.runner._pool import WarmPool, pools_dir, server_of

__all__ = ["attach_step", "start_step_pool", "step_pool", "KINDS"]

READY_ENV = "OPENAML_RAI_WARM_READY_SECONDS"
DEFAULT_IDLE_SECONDS = 300.0


@dataclass(frozen=True)
class _Kind:
    module: str  # its warm process: ``python -m <module> <pool.json>``; PRELOAD and FD_ENV in it
    switch: str  # ``<switch>=0`` keeps a runner's steps cold
    idle_env: str  # seconds without a step before it ends


KINDS = {"rai": _Kind("openaml.rai._warm", "OPENAML_RAI_WARM", "OPENAML_RAI_WARM_IDLE_SECONDS"),
         "automl": _Kind("openaml.automl._warm", "OPENAML_AUTOML_WARM", "OPENAML_AUTOML_WARM_IDLE_SECONDS")}


def step_pool(runner: Any, python: Path | None) -> WarmPool | None:
    """The warm process for the job (``runner``: its :class:`~openaml.runner._main.Runner`), or None:
    not a step the server marked, switched off here, or nothing to key it by."""
    kind = KINDS.get(str(runner.spec.get("warm_process")))
    if kind is None or python is None or os.environ.get(kind.switch) == "0":
        return None
    server = server_of(runner)
    if server is None:
        return None
    workspace, server_pid, started = server
    import openaml

    parts = {"workspace": str(workspace), "server": [server_pid, started], "python": str(python),
             "process": kind.module, "openaml": [openaml.__version__, str(Path(openaml.__file__).parent)]}
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]
    name = str(runner.spec["warm_process"])
    return WarmPool(runner, key, pools_dir(workspace) / f"{name}-{key}", python, server_pid, {"kind": name},
                    runner.job_dir / "wd")


def start_step_pool(runner: Any, python: Path | None) -> WarmPool | None:
    """Start the job's warm process unless one is alive (no wait for its imports); the pool, or None
    (not a step the server marked, switched off). The runner calls it first thing, so that the warm
    process imports while the runner prepares the job (its environment layer, inputs, outputs)."""
    pool = step_pool(runner, python)
    if pool is not None and pool.live() is None:
        kind = KINDS[pool.deployment["kind"]]
        pool.start([str(python), "-m", kind.module], list(importlib.import_module(kind.module).PRELOAD),
                   float(os.environ.get(kind.idle_env) or DEFAULT_IDLE_SECONDS))
    return pool


def attach_step(runner: Any, python: Path | None, env: dict[str, str]) -> int | None:
    """A connection to the warm process for the step's command (its descriptor, also in ``env``),
    starting the process and waiting for its imports when none is ready; None: the step runs cold."""
    pool = step_pool(runner, python)
    if pool is None:
        return None
    fd_env = importlib.import_module(KINDS[pool.deployment["kind"]].module).FD_ENV
    fd = pool.attach(env, fd_env)
    if fd is not None:
        return fd
    if pool.live() is None:  # not started at the runner's start (start_step_pool), or gone since
        start_step_pool(runner, python)
    deadline = time.monotonic() + float(os.environ.get(READY_ENV) or 180)
    while time.monotonic() < deadline and not runner.cancel_reason:
        if (pool.folder / "ready").exists():
            return pool.attach(env, fd_env)
        if pool.live() is None:
            break
        time.sleep(0.05)
    runner.syslog(f"warm process {pool.key}: not ready; the step starts cold")
    return None
