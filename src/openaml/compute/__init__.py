"""Compute backends: where a job's runner process runs.

A backend is one small interface (:class:`ComputeBackend`); ``local`` runs the runner as a
subprocess in its own session (process group) on this machine. Ray (scale-out) will be
another implementation of the same interface.
"""

from __future__ import annotations

from openaml.compute._base import ComputeBackend, RunnerHandle
from openaml.compute._local import LocalBackend

__all__ = ["ComputeBackend", "RunnerHandle", "LocalBackend"]
