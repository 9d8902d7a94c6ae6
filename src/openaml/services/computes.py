"""Computes: named local process pools. ``max_instances`` is the number of concurrent job slots.

``type: ray`` (an openaml extension) is an existing Ray cluster (``compute/_ray.py``): its Jobs API
must answer at create (else a ValidationError naming the compute and address, nothing stored), and
``max_instances``, when not given, is how many runners of ``resources`` the cluster holds at once.

A workspace starts with compute ``local`` (slots = CPU count). ``serverless`` (and an omitted
compute) means the default pool, as Azure's serverless compute does.
"""

from __future__ import annotations

import os
from typing import Any, cast

from openaml.compute import COMPUTE_TYPES, compute_types
from openaml.constants import DEFAULT_COMPUTE, JobStatus
from openaml.entities import Compute
from openaml.errors import ConflictError, ValidationError
from openaml.records import ComputeRecord
from openaml.services._context import WorkspaceContext

__all__ = ["ComputeService"]

_ACTIVE = (JobStatus.QUEUED, JobStatus.PREPARING, JobStatus.RUNNING, JobStatus.FINALIZING)
_ALIASES = {"serverless": DEFAULT_COMPUTE, "": DEFAULT_COMPUTE, None: DEFAULT_COMPUTE}


class ComputeService:
    def __init__(self, ctx: WorkspaceContext) -> None:
        self.ctx = ctx

    def ensure_default(self) -> None:
        names = {c["name"] for c in self.ctx.store.list_computes()}
        if DEFAULT_COMPUTE not in names:
            slots = max(1, os.cpu_count() or 1)
            self.ctx.store.put_compute(DEFAULT_COMPUTE, "local", slots, {
                "description": "the machine the server runs on; slots = CPU count",
                "min_instances": 0, "size": "local",
            })

    def canonical_name(self, name: str | None) -> str:
        """``None``/``serverless``/``azureml:x`` -> the stored compute name (validated).

        Raises:
            NotFoundError: listing the computes that exist.
        """
        if name in _ALIASES:
            return DEFAULT_COMPUTE
        assert name is not None
        if name.startswith("azureml:"):
            name = name[len("azureml:"):]
        self.ctx.store.get_compute(name)
        return name

    def _view(self, c: dict[str, Any]) -> ComputeRecord:
        store = self.ctx.store
        return cast(ComputeRecord, {**c,
                "provisioning_state": "Succeeded",
                "backend": COMPUTE_TYPES.get(c["type"], "none"),
                "running_jobs": store.count_jobs(status=(JobStatus.PREPARING, JobStatus.RUNNING, JobStatus.FINALIZING),
                                                 compute=c["name"]),
                "queued_jobs": store.count_jobs(status=(JobStatus.QUEUED,), compute=c["name"])})

    def list(self) -> list[ComputeRecord]:
        return [self._view(c) for c in self.ctx.store.list_computes()]

    def get(self, name: str) -> ComputeRecord:
        return self._view(self.ctx.store.get_compute(self.canonical_name(name)))

    def slots(self, name: str) -> int:
        return int(self.ctx.store.get_compute(name)["max_instances"])

    def create_or_update(self, spec: dict[str, Any]) -> ComputeRecord:
        """Create or resize a pool. Raises ValidationError for reserved names or unsupported types."""
        c = Compute.model_validate(spec)
        if c.name in ("serverless",):
            raise ValidationError(f"compute name {c.name!r} is reserved")
        if c.type not in COMPUTE_TYPES:
            raise ValidationError(f"compute type {c.type!r} is not supported here; use one of {', '.join(compute_types())} "
                                  "(amlcompute: a local process pool)", details={"field": "type", "value": c.type})
        data = c.model_dump(mode="json", exclude_none=True,
                            exclude={"name", "type", "max_instances", "id", "provisioning_state", "backend",
                                     "running_jobs", "queued_jobs"})
        max_instances = c.max_instances
        if c.type == "ray":  # the cluster must answer before anything is stored
            from openaml.compute._ray import check_cluster

            fits = check_cluster(c.name, str(c.address), data.get("resources"))
            if "max_instances" not in c.model_fields_set:
                max_instances = fits
        saved = self.ctx.store.put_compute(c.name, c.type, max_instances, data)
        self.ctx.services["jobs"].wake()
        return self._view(saved)

    def delete(self, name: str) -> None:
        """Raises ConflictError for ``local`` or a compute with active jobs."""
        if name == DEFAULT_COMPUTE:
            raise ConflictError("compute 'local' is the workspace's default and cannot be deleted")
        active = self.ctx.store.count_jobs(status=_ACTIVE, compute=name)
        self.ctx.store.get_compute(name)
        if active:
            raise ConflictError(f"compute {name!r} has {active} queued or running jobs; cancel them first")
        self.ctx.store.delete_compute(name)
