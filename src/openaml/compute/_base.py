"""The compute backend interface."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ComputeBackend", "RunnerHandle"]


@dataclass(frozen=True)
class RunnerHandle:
    """Identifies a launched runner; ``create_time`` guards against pid reuse after a restart."""

    pid: int
    create_time: float


class ComputeBackend(abc.ABC):
    @abc.abstractmethod
    def launch(self, job_dir: Path) -> RunnerHandle:
        """Start ``python -m openaml.runner <job_dir>``; returns at once."""

    @abc.abstractmethod
    def is_alive(self, handle: RunnerHandle) -> bool:
        """Whether that runner is still running (False for a reused pid)."""

    @abc.abstractmethod
    def terminate(self, handle: RunnerHandle) -> None:
        """Ask the runner to stop (it cancels its user process group and reports Canceled)."""

    @abc.abstractmethod
    def kill(self, handle: RunnerHandle, pgids: list[int]) -> None:
        """Kill the runner and the given process groups at once (last resort)."""
