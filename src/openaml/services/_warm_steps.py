"""Which jobs a warm process may serve (the server's decision; the runner's side is
:mod:`openaml.runner._step_pool`, the processes :mod:`openaml.rai._warm` and :mod:`openaml.automl._warm`).

A warm process imports the libraries of a step of openaml's own code once and forks each such step
from it, in the step's own sandbox. The server gives a job's runner ``warm_process`` only when the
job runs nothing but openaml's own code:

- ``"rai"``: its command is, character for character, the command of one of the built-in RAI
  components (so ``python -m openaml.rai <step>`` with the component's arguments);
- ``"automl"``: its command is an AutoML trial worker's, ``python -m openaml.automl._worker`` with
  its data inputs only (as :mod:`openaml.services.kinds._automl_workers` submits it);

on the server's own environment (``kind: base``: the interpreter the warm process is), without a
code snapshot (nothing of the user's on ``sys.path``), one process (no distribution, one instance),
and no ``PYTHON*`` / ``LD_*`` variable (they change what a cold start imports). Its inputs (the
model, the tables) are read in the forked step, in the job, never in the warm process.

Policy (as the batch deployments' warm pools, docs/guide/rai.md and automl.md): on a single-user
workspace it is on; on a workspace with users it is off unless the administrator sets
``OPENAML_RAI_WARM=1`` / ``OPENAML_AUTOML_WARM=1`` in the server's environment; ``=0`` turns it off
everywhere, and a job's own ``OPENAML_RAI_WARM: "0"`` / ``OPENAML_AUTOML_WARM: "0"`` variable (for
AutoML: the AutoML job's ``environment_variables``, which its workers get) keeps that job cold.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any

__all__ = ["warm_process", "warm_allowed"]

SWITCH = "OPENAML_RAI_WARM"
AUTOML_SWITCH = "OPENAML_AUTOML_WARM"
_WORKER = re.compile(r"python -m openaml\.automl\._worker( --(training|validation|test)_data \$\{\{inputs\.\2_data\}\})*")


@lru_cache(maxsize=1)
def _builtin_commands() -> frozenset[str]:
    from openaml.rai.registry import builtin_components

    return frozenset(" ".join(str(c.get("command") or "").split()) for c in builtin_components("azureml"))


def warm_allowed(ctx: Any, switch_name: str = SWITCH) -> bool:
    """The workspace policy: ``OPENAML_RAI_WARM`` (or ``switch_name``; ``1`` on, ``0`` off) in the
    server's environment, else on only where the workspace has no users."""
    switch = os.environ.get(switch_name)
    if switch is not None:
        return switch == "1"
    return not ctx.services["users"].list()


def warm_process(ctx: Any, row: dict[str, Any]) -> str | None:
    """``"rai"`` or ``"automl"`` when job ``row`` is a step of openaml's own code that a warm process
    may serve, else None."""
    spec = row.get("spec") or {}
    rt = row.get("runtime") or {}
    if spec.get("type", "command") != "command" or rt.get("command"):
        return None
    command = " ".join(str(spec.get("command") or "").split())
    if command.startswith("python -m openaml.rai ") and command in _builtin_commands():
        kind, switch = "rai", SWITCH
    elif _WORKER.fullmatch(command):
        kind, switch = "automl", AUTOML_SWITCH
    else:
        return None
    if (rt.get("environment") or {"kind": "base"}).get("kind", "base") != "base" or rt.get("code_dir"):
        return None
    if spec.get("distribution") or int((spec.get("resources") or {}).get("instance_count") or 1) != 1:
        return None
    variables = {str(k): str(v) for k, v in (spec.get("environment_variables") or {}).items()}
    if variables.get(switch) == "0" or any(k.startswith(("PYTHON", "LD_")) for k in variables):
        return None
    return kind if warm_allowed(ctx, switch) else None
