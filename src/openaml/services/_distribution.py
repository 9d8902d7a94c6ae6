"""Checks of a command job's ``distribution`` against its compute, before anything is stored.

Azure ML refuses a job that asks for more nodes than its cluster's ``max_instances``; here the
instances of a job on local compute are processes of one machine, so the limit is on processes:
``instance_count`` x ``process_count_per_instance`` (or ``worker_count`` +
``parameter_server_count``) must fit the compute's ``max_instances`` (the default ``local``
compute: the CPU count).
"""

from __future__ import annotations

import shutil
from typing import Any

from openaml.compute import COMPUTE_TYPES
from openaml.entities._distribution import distribution_problems, process_count
from openaml.errors import NotFoundError
from openaml.services._context import WorkspaceContext
from openaml.services._job_resolve import ResolveErrors

__all__ = ["check_distribution", "MPIRUN_MISSING"]

MPIRUN_MISSING = ("'mpirun' (Open MPI) is not installed on this machine, so an mpi job cannot start; install it "
                  "(Debian/Ubuntu: apt-get install openmpi-bin; then pip install mpi4py in the job's environment "
                  "if the script uses it), or use type: pytorch")


def check_distribution(ctx: WorkspaceContext, job: dict[str, Any], compute: str, errors: ResolveErrors) -> None:
    """Add to ``errors`` what is wrong with ``job``'s ``distribution`` and ``resources``: the
    distribution's own problems (:func:`~openaml.entities._distribution.distribution_problems`),
    more processes than ``compute`` hosts, ``mpi`` without ``mpirun`` and ``ray`` on a local
    compute (not supported there yet)."""
    dist = job.get("distribution")
    instances = int((job.get("resources") or {}).get("instance_count") or 1)
    problems = distribution_problems(dist, instances)
    for field, message in problems:
        errors.add(field, message)
    if problems:
        return
    try:
        record = ctx.store.get_compute(compute)
    except NotFoundError:
        return  # reported by compute_name already
    local = COMPUTE_TYPES.get(record.get("type") or "") == "local"
    slots = int(record.get("max_instances") or 0)
    wanted = process_count(dist, instances)
    if slots and wanted > slots:
        how = _how_counted(dist, instances)
        errors.add("resources.instance_count" if not dist or dist.get("type") == "ray" else "distribution",
                   f"the job asks for {wanted} processes ({how}) but compute {compute!r} hosts at most {slots} "
                   f"(its max_instances); lower the counts, or use a compute with more: openaml compute create "
                   f"--name big --type amlcompute --max-instances {wanted}")
    if not dist or not local:
        return
    if dist.get("type") == "mpi" and shutil.which("mpirun") is None:
        errors.add("distribution.type", MPIRUN_MISSING)
    if dist.get("type") == "ray":
        errors.add("distribution.type", f"'ray' runs on a Ray compute only; compute {compute!r} is local "
                                        "(use type: pytorch, tensorflow or mpi there)")


def _how_counted(dist: dict[str, Any] | None, instances: int) -> str:
    if dist and dist.get("type") in ("pytorch", "mpi"):
        return f"resources.instance_count {instances} x process_count_per_instance " \
               f"{dist.get('process_count_per_instance') or 1}"
    if dist and dist.get("type") == "tensorflow":
        return f"worker_count {dist.get('worker_count') or instances} + parameter_server_count " \
               f"{dist.get('parameter_server_count') or 0}"
    return f"resources.instance_count {instances}"
