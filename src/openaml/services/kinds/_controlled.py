"""What the parent kinds that drive their trials from the scheduler's ticks share (sweep, AutoML).

Such a kind keeps in-memory state per running job (rebuilt from the store after a restart), runs one
controller pass (:meth:`ControlledKind._step`) per tick under that job's lock, fails the job with the
reason when a pass raises, and, when the job ends by any path, forgets its state and cancels the
trials still active.
"""

from __future__ import annotations

import logging
import threading
from abc import abstractmethod
from typing import Any, ClassVar

from openaml.constants import JobStatus
from openaml.services.kinds import JobKind

__all__ = ["ControlledKind"]


class ControlledKind(JobKind):
    """A parent kind whose trials a controller pass starts and follows (``runs_on_compute`` False).

    Subclasses give ``label`` (for messages: "sweep", "AutoML"), :meth:`_step` and :meth:`_finish`.
    """

    label: ClassVar[str]

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        self._states: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._log = logging.getLogger(f"openaml.{self.type}")

    @abstractmethod
    def _step(self, row: dict[str, Any]) -> None:
        """One controller pass over the Running job ``row`` (its lock held)."""

    @abstractmethod
    def _finish(self, row: dict[str, Any], status: str, *, error: str | None) -> None:
        """End the job with ``status``."""

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(name, threading.Lock())

    def on_tick(self, row: dict[str, Any]) -> None:
        """One controller pass over a Running job of this kind; an error fails it with the reason."""
        with self._lock(row["name"]):
            row = self.ctx.store.get_job(row["name"])
            if row["status"] != JobStatus.RUNNING:
                return
            try:
                self._step(row)
            except Exception as exc:  # noqa: BLE001
                self._log.exception("%s %s: pass failed", self.type, row["name"])
                msg = getattr(exc, "message", None) or repr(exc)
                self._finish(row, JobStatus.FAILED, error=f"the {self.label} controller failed: {msg}")

    def on_terminal(self, row: dict[str, Any]) -> None:
        """The job ended (its own end, a cancel, a failure): forget its state, cancel its trials."""
        self._states.pop(row["name"], None)
        with self._locks_lock:
            self._locks.pop(row["name"], None)
        self.core.cancel_children(row["name"], reason=f"parent job {row['name']} ended ({row['status']})")
