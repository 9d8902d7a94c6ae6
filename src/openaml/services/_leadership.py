"""Background work on the leading server only: the job scheduler and the deployment supervisor.

Every server of a workspace serves the REST API and MLflow. With the metadata in PostgreSQL several
servers (one per host) may serve one workspace; the one holding the workspace's lead
(:class:`openaml.store.Leadership`) runs the scheduler (starts, follows and reconciles runners,
fires schedules) and the online deployments' workers. The others stand by: what they are sent is
stored and the leader acts on it at its next pass (a queued job starts, a sweep, pipeline or AutoML
job sent to a standby is started and driven by the leader alone, a cancel reaches the runner
through its heartbeat); every ``interval`` seconds they try to take the lead, so when the leader stops
or dies another takes over within about ``interval`` seconds and reconciles the jobs it left.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from openaml.store import Leadership

if TYPE_CHECKING:
    from openaml.services._context import WorkspaceContext

__all__ = ["BackgroundWork"]

log = logging.getLogger("openaml.leader")


class BackgroundWork:
    """Start/stop the scheduler and the supervisor as this server takes or loses the lead.

    Args:
        ctx: the workspace context (its ``url`` set: it is what the leader advertises).
        interval: seconds between tries to take the lead, and between checks that it is still held.
    """

    def __init__(self, ctx: WorkspaceContext, interval: float = 2.0) -> None:
        self.ctx = ctx
        self.interval = interval
        self.leadership = Leadership(ctx.settings.metadata_url, ctx.url, str(ctx.layout.info()["id"]))
        self.leading = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def shared(self) -> bool:
        """True when several servers may serve the workspace (PostgreSQL metadata)."""
        return self.leadership.shared

    def start(self) -> None:
        """Take the lead now if free (a lone server starts its work before serving), then watch."""
        self._try_lead()
        if self.shared:
            self._thread = threading.Thread(target=self._loop, name="openaml-leadership", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the work (if leading) and give the lead up, so another server takes it at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            if self.leading:
                self._step_down()
            self.leadership.release()

    def leader_url(self) -> str | None:
        """Where the background work runs: this server's URL when it leads, else the leader's."""
        return self.ctx.url if self.leading else self.leadership.leader_url()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self._lock:
                    if self._stop.is_set():
                        return
                    if self.leading and not self.leadership.still_held():
                        log.warning("this server lost the workspace's lead: stopping its scheduler and workers")
                        self._step_down()
                if not self.leading:
                    self._try_lead()
            except Exception:  # noqa: BLE001 - the watch must survive a bad pass
                log.exception("leadership check failed")

    def _try_lead(self) -> None:
        with self._lock:
            if self.leading or self._stop.is_set() or not self.leadership.try_acquire():
                return
            if self.shared:
                log.warning("this server now leads the workspace: it runs the scheduler and the deployments")
            jobs, endpoints = self.ctx.services["jobs"], self.ctx.services["endpoints"]
            jobs.start()
            endpoints.start()
            self.leading = True

    def _step_down(self) -> None:
        self.leading = False
        self.ctx.services["endpoints"].stop()
        self.ctx.services["jobs"].stop()
