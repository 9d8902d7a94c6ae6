"""Distributions of command jobs (spec section 2.4), with azure-ai-ml v2's names.

``distribution:`` in a job's YAML (or ``command(distribution=...)``) says how many processes run
the command and what each is told: ``pytorch`` (``process_count_per_instance`` processes on each of
``resources.instance_count`` instances, with ``MASTER_ADDR``/``RANK``/``WORLD_SIZE``...),
``tensorflow`` (``worker_count`` workers and ``parameter_server_count`` parameter servers, each
with its ``TF_CONFIG``), ``mpi`` (``process_count_per_instance`` processes per instance, started
by ``mpirun``) and ``ray`` (accepted and validated; not run on local compute yet). The job stores
the distribution as a dict (``type`` plus the fields set); :func:`distribution_problems` checks
one before anything runs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from openaml.entities._base import Entity

__all__ = ["PyTorchDistribution", "TensorFlowDistribution", "MpiDistribution", "RayDistribution",
           "DISTRIBUTION_FIELDS", "distribution_problems", "distribution_to_dict", "process_count"]


class PyTorchDistribution(Entity):
    """``type: pytorch`` (azure-ai-ml ``PyTorchDistribution``): ``process_count_per_instance``
    processes (default 1) on each instance."""

    type: Literal["pytorch"] = "pytorch"
    process_count_per_instance: int | None = Field(default=None, ge=1)


class TensorFlowDistribution(Entity):
    """``type: tensorflow`` (azure-ai-ml ``TensorFlowDistribution``): ``worker_count`` workers
    (default: ``resources.instance_count``) and ``parameter_server_count`` parameter servers
    (default 0), each told its task in ``TF_CONFIG``."""

    type: Literal["tensorflow"] = "tensorflow"
    worker_count: int | None = Field(default=None, ge=1)
    parameter_server_count: int | None = Field(default=0, ge=0)


class MpiDistribution(Entity):
    """``type: mpi`` (azure-ai-ml ``MpiDistribution``): ``process_count_per_instance`` processes
    (default 1) on each instance, launched by ``mpirun``."""

    type: Literal["mpi"] = "mpi"
    process_count_per_instance: int | None = Field(default=None, ge=1)


class RayDistribution(Entity):
    """``type: ray`` (azure-ai-ml ``RayDistribution``, experimental there): a Ray cluster across
    the job's instances. Accepted and validated; local compute refuses to run it (see
    docs/differences.md)."""

    type: Literal["ray"] = "ray"
    port: int | None = None
    address: str | None = None
    include_dashboard: bool | None = None
    dashboard_port: int | None = None
    head_node_additional_args: str | None = None
    worker_node_additional_args: str | None = None


_CLASSES: dict[str, type[Entity]] = {"pytorch": PyTorchDistribution, "tensorflow": TensorFlowDistribution,
                                     "mpi": MpiDistribution, "ray": RayDistribution}
#: distribution type -> the fields it takes (besides ``type``)
DISTRIBUTION_FIELDS: dict[str, tuple[str, ...]] = {
    t: tuple(f for f in c.model_fields if f != "type") for t, c in _CLASSES.items()}


def distribution_to_dict(value: Any) -> Any:
    """A distribution entity -> its dict (``type`` and the fields set); anything else unchanged."""
    if isinstance(value, (PyTorchDistribution, TensorFlowDistribution, MpiDistribution, RayDistribution)):
        return value.model_dump(mode="json", exclude_none=True)
    return value


def distribution_problems(dist: dict[str, Any] | None, instance_count: int = 1,
                          field: str = "distribution") -> list[tuple[str, str]]:
    """What is wrong with ``dist`` (a job's ``distribution`` dict): an unknown ``type``, a field of
    another type (``worker_count`` under ``pytorch``), a count below 1. Returns ``(field, message)``
    pairs (empty: fine). The compute's capacity is checked by the command kind, which knows it."""
    if dist is None:
        return []
    if not isinstance(dist, dict):
        return [(field, f"must be a mapping with a 'type' ({', '.join(_CLASSES)}), got {dist!r}")]
    kind = dist.get("type")
    if kind not in _CLASSES:
        return [(f"{field}.type", f"unknown distribution type {kind!r}; use one of {', '.join(_CLASSES)}")]
    problems: list[tuple[str, str]] = []
    own = DISTRIBUTION_FIELDS[kind]
    for key in dist:
        if key == "type" or key in own:
            continue
        other = [t for t, fields in DISTRIBUTION_FIELDS.items() if key in fields]
        hint = f" (a field of type {' / '.join(other)})" if other else ""
        problems.append((f"{field}.{key}", f"is not a field of a {kind} distribution{hint}; "
                         f"{kind} takes {', '.join(own)}"))
    for key in ("process_count_per_instance", "worker_count"):
        value = dist.get(key)
        if key in own and value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            problems.append((f"{field}.{key}", f"must be a whole number >= 1, got {value!r}"))
    ps = dist.get("parameter_server_count")
    if kind == "tensorflow" and ps is not None and (isinstance(ps, bool) or not isinstance(ps, int) or ps < 0):
        problems.append((f"{field}.parameter_server_count", f"must be a whole number >= 0, got {ps!r}"))
    return problems


def process_count(dist: dict[str, Any] | None, instance_count: int = 1) -> int:
    """How many processes a (valid) distribution runs: ``instance_count`` x
    ``process_count_per_instance`` (pytorch, mpi), ``worker_count`` + ``parameter_server_count``
    (tensorflow), ``instance_count`` (ray, or no distribution)."""
    if not dist:
        return instance_count
    kind = dist.get("type")
    if kind in ("pytorch", "mpi"):
        return instance_count * int(dist.get("process_count_per_instance") or 1)
    if kind == "tensorflow":
        return int(dist.get("worker_count") or instance_count) + int(dist.get("parameter_server_count") or 0)
    return instance_count
