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
    more processes than ``compute`` hosts (on a Ray compute: more instances than its live nodes
    hold, :func:`_check_on_ray`), ``mpi`` without ``mpirun``."""
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
    if record.get("type") == "ray":
        _check_on_ray(record, job, dist, instances, errors)
        return
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


def _how_counted(dist: dict[str, Any] | None, instances: int) -> str:
    if dist and dist.get("type") in ("pytorch", "mpi"):
        return f"resources.instance_count {instances} x process_count_per_instance " \
               f"{dist.get('process_count_per_instance') or 1}"
    if dist and dist.get("type") == "tensorflow":
        return f"worker_count {dist.get('worker_count') or instances} + parameter_server_count " \
               f"{dist.get('parameter_server_count') or 0}"
    return f"resources.instance_count {instances}"


def _check_on_ray(record: dict[str, Any], job: dict[str, Any], dist: dict[str, Any] | None, instances: int,
                  errors: ResolveErrors) -> None:
    """A job on a Ray compute: a distributed job's instances go to distinct nodes (a placement group
    of the compute's ``resources`` per instance), so the limit is the cluster's live nodes, asked now;
    each node runs its instance's processes. Any other job's runner needs one node holding the
    compute's ``resources`` (else Ray leaves it PENDING). ``mpi`` runs on one instance only (its ``mpirun`` does
    not reach other nodes); ``placement`` must be one of Ray's strategies."""
    from openaml.compute._ray import is_distributed, placement_of, placement_problem

    props = (job.get("resources") or {}).get("properties") or {}
    placement = placement_of(record, job.get("resources"))
    if placement not in _PLACEMENTS:
        field = "resources.properties.placement" if isinstance(props, dict) and props.get("placement") \
            else "compute.placement"
        errors.add(field, f"unknown placement {placement!r}; use one of {', '.join(_PLACEMENTS)}")
        return
    if dist and dist.get("type") == "mpi" and instances > 1:
        errors.add("resources.instance_count",
                   f"an mpi job on Ray compute {record.get('name')!r} runs on one instance (mpirun does not reach "
                   f"other Ray nodes), got {instances}; use instance_count 1 with more process_count_per_instance, "
                   "or type: pytorch for several nodes")
        return
    if not is_distributed(dist, job.get("resources")):
        # one runner of the compute's resources: Ray would leave it PENDING while no live node holds it
        problem = placement_problem(record, 1, "spread", runner_only=True)
        if problem:
            errors.add("compute", problem)
        return
    problem = placement_problem(record, instances, placement)
    if problem:
        errors.add("resources.instance_count", problem)


_PLACEMENTS = ("spread", "strict_spread", "pack")
