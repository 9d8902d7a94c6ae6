"""Compute: where a job's runner runs, and the scheduler that puts queued jobs there.

The port is :class:`ComputeBackend` (``submit(JobSpec) -> JobHandle``, ``status``, ``cancel``,
``kill``, ``logs``, ``capacity``); :class:`BackendRegistry` picks the backend of a compute by its
type (``local``, ``amlcompute`` and ``computeinstance`` run as local processes), importing a
backend on first use. The scheduler (:class:`Scheduler`, imported from ``openaml.compute._scheduler``
by the services that run it) starts queued jobs on free slots and follows their runners through
what they report to the server.
"""

from __future__ import annotations

from openaml.compute._base import ComputeBackend, JobHandle, JobSpec, RunnerStatus
from openaml.compute._registry import BACKENDS, COMPUTE_TYPES, BackendRegistry, compute_types, register_backend

__all__ = ["BACKENDS", "COMPUTE_TYPES", "BackendRegistry", "ComputeBackend", "JobHandle", "JobSpec", "RunnerStatus",
           "compute_types", "register_backend"]
