"""The compute port: start a job's runner somewhere, follow it, stop it.

A backend knows processes (or cluster jobs), not job statuses: the runner it starts reports the
job's state, heartbeats and logs to the server over HTTP (``openaml.runner``), and the scheduler
(:mod:`openaml.compute._scheduler`) reads them from the job's row. What a backend answers is only
whether the runner it started is still there (:class:`RunnerStatus`).

Contract (tests/contracts/test_compute_contract.py runs it on every registered backend):

* :meth:`ComputeBackend.submit` returns at once with a :class:`JobHandle`; the runner then asks
  the server for its spec with the token of :class:`JobSpec` and reports from there.
* :meth:`ComputeBackend.status` answers for any handle this backend type made, also one made by
  another instance (a restarted server re-attaches through the handle stored on the job's row).
* :meth:`ComputeBackend.cancel` asks the runner to stop (it stops the user's command and reports
  ``Canceled``); :meth:`ComputeBackend.kill` stops the runner and everything it started at once.
* :meth:`ComputeBackend.capacity` is the number of runners a compute hosts at once.
"""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

__all__ = ["ComputeBackend", "ComputeUnavailable", "JobHandle", "JobSpec", "RunnerStatus"]


class ComputeUnavailable(RuntimeError):
    """The compute cannot take a runner now (its cluster does not answer): the scheduler keeps the
    job Queued with this message as its reason and tries again later (it is not failed)."""


@dataclass(frozen=True)
class JobSpec:
    """What a backend needs to start one job's runner.

    Attributes:
        job_name: the job (its runner asks ``GET {server_url}/api/v1/jobs/{job_name}/runner/spec``).
        compute: the compute's record (``name``, ``type``, ``max_instances``, ``properties``...).
        server_url: the server's base URL, the runner's only link (``http://127.0.0.1:8765``).
        token: the job's scoped token (``UserService.job_token``). Secret: a backend hands it to the
            runner through its environment or stdin, never its argv or a file others can read.
        work_dir: a folder on the server's disk for the job (its job folder), for a backend whose
            runners share that disk (local); None, or a backend on another machine: it picks one.
        resources: the job's ``resources`` (``instance_count``...), as submitted.
        distribution: the job's ``distribution`` (``{"type": "pytorch", ...}``), None for none.
    """

    job_name: str
    compute: dict[str, Any]
    server_url: str
    token: str = field(repr=False)
    work_dir: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    distribution: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobHandle:
    """A started runner: the backend type that started it and its opaque id (local: process id,
    creation time and folder). Stored on the job's row (:meth:`to_record`) so that a restarted
    server re-attaches (:meth:`from_record`)."""

    backend: str
    id: str

    def to_record(self) -> dict[str, str]:
        return {"backend": self.backend, "id": self.id}

    @classmethod
    def from_record(cls, rec: Any) -> JobHandle | None:
        """The handle of a stored record, or None for anything else (no runner was started)."""
        if isinstance(rec, dict) and isinstance(rec.get("backend"), str) and isinstance(rec.get("id"), str):
            return cls(rec["backend"], rec["id"])
        return None

    def data(self) -> dict[str, Any]:
        """The id read as the JSON object backends write (an empty dict when it is not one)."""
        try:
            loaded = json.loads(self.id)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}


class RunnerStatus(StrEnum):
    """Whether a runner is still there.

    ``alive``: running. ``exited``: it ended by itself (with an exit code). ``lost``: it is gone and
    the backend cannot say that it ended by itself (killed, its machine lost, or it ended while no
    instance of the backend watched it). Either way the job's own end is what the runner reported.
    """

    ALIVE = "alive"
    EXITED = "exited"
    LOST = "lost"


class ComputeBackend(abc.ABC):
    """One kind of compute. Instances are made with no arguments (a compute's settings come with
    each :class:`JobSpec`); they must be safe to call from the scheduler thread and request
    threads at once."""

    #: the registry key of this backend (``JobHandle.backend``)
    name: ClassVar[str]

    @abc.abstractmethod
    def submit(self, spec: JobSpec) -> JobHandle:
        """Start the job's runner; returns at once.

        Raises:
            ComputeUnavailable: the compute does not answer now (the job waits Queued, tried again).
            OSError or RuntimeError: the runner could not be started (the job fails with it).
        """

    @abc.abstractmethod
    def status(self, handle: JobHandle) -> RunnerStatus:
        """Whether the runner of ``handle`` is still there. Never raises for a handle of this type."""

    @abc.abstractmethod
    def cancel(self, handle: JobHandle) -> None:
        """Ask the runner to stop: it stops the user's command (TERM, then KILL after a grace period)
        and reports ``Canceled``. No effect on a runner that is gone."""

    @abc.abstractmethod
    def kill(self, handle: JobHandle) -> None:
        """Stop the runner and every process it started, at once (last resort; nothing is reported)."""

    @abc.abstractmethod
    def logs(self, handle: JobHandle, max_bytes: int = 4096) -> str:
        """The end of the runner's own output (its start-up errors, a traceback), for a failure
        message; "" when there is none."""

    def probe(self, compute: dict[str, Any]) -> None:
        """Check, cheaply, that ``compute`` can take a runner now (asked before a job that waits
        for it is tried again). Default: nothing to check.

        Raises:
            ComputeUnavailable: it still does not answer.
        """
        return None

    @abc.abstractmethod
    def capacity(self, compute: dict[str, Any]) -> int:
        """How many runners ``compute`` (a compute record) hosts at once (local: ``max_instances``)."""
