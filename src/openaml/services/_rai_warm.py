"""Which jobs a built-in RAI warm process may serve (the server's decision; the runner's side is
:mod:`openaml.runner._step_pool`, the process :mod:`openaml.rai._warm`).

The warm process imports the RAI libraries once and forks each step of the ``azureml`` registry's
RAI components from it, in the step's own sandbox. The server gives a job's runner
``warm_process: "rai"`` only when the job runs nothing but openaml's own code: its command is,
character for character, the command of one of the built-in components (so ``python -m
openaml.rai <step>`` with the component's arguments), on the server's own environment (``kind:
base``: the interpreter the warm process is), without a code snapshot (nothing of the user's on
``sys.path``), one process (no distribution, one instance), and no ``PYTHON*`` / ``LD_*`` variable
(they change what a cold start imports). Its steps' inputs (the model, the tables) are read in the
forked step, in the job, never in the warm process.

Policy (as the batch deployments' warm pools, docs/guide/rai.md): on a single-user workspace it is
on; on a workspace with users it is off unless the administrator sets ``OPENAML_RAI_WARM=1`` in the
server's environment; ``OPENAML_RAI_WARM=0`` turns it off everywhere, and a job's own
``OPENAML_RAI_WARM: "0"`` variable keeps that job cold.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

__all__ = ["warm_process", "warm_allowed"]

SWITCH = "OPENAML_RAI_WARM"


@lru_cache(maxsize=1)
def _builtin_commands() -> frozenset[str]:
    from openaml.rai.registry import builtin_components

    return frozenset(" ".join(str(c.get("command") or "").split()) for c in builtin_components("azureml"))


def warm_allowed(ctx: Any) -> bool:
    """The workspace policy: ``OPENAML_RAI_WARM`` (``1`` on, ``0`` off) in the server's environment,
    else on only where the workspace has no users."""
    switch = os.environ.get(SWITCH)
    if switch is not None:
        return switch == "1"
    return not ctx.services["users"].list()


def warm_process(ctx: Any, row: dict[str, Any]) -> str | None:
    """``"rai"`` when job ``row`` is a built-in RAI step that the warm process may serve, else None."""
    spec = row.get("spec") or {}
    rt = row.get("runtime") or {}
    if spec.get("type", "command") != "command" or rt.get("command"):
        return None
    command = " ".join(str(spec.get("command") or "").split())
    if not command.startswith("python -m openaml.rai ") or command not in _builtin_commands():
        return None
    if (rt.get("environment") or {"kind": "base"}).get("kind", "base") != "base" or rt.get("code_dir"):
        return None
    if spec.get("distribution") or int((spec.get("resources") or {}).get("instance_count") or 1) != 1:
        return None
    variables = {str(k): str(v) for k, v in (spec.get("environment_variables") or {}).items()}
    if variables.get(SWITCH) == "0" or any(k.startswith(("PYTHON", "LD_")) for k in variables):
        return None
    return "rai" if warm_allowed(ctx) else None
