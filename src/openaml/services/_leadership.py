"""Background work on the leading server only: the job scheduler and the deployment supervisor.

Every server of a workspace serves the REST API and MLflow. With the metadata in PostgreSQL several
servers (one per host) may serve one workspace; the one holding the workspace's lead
(:class:`openaml.store.Leadership`) runs the scheduler (starts, follows and reconciles runners,
fires schedules) and the online deployments' workers. The others stand by: what they are sent is
stored and the leader acts on it at its next pass (a queued job starts, a sweep, pipeline or AutoML
job sent to a standby is started and driven by the leader alone, a cancel reaches the runner
through its heartbeat); every ``interval`` seconds they try to take the lead, so when the leader stops
or dies another takes over within about ``interval`` seconds and reconciles the jobs it left.

Every server of a shared workspace also advertises its URL in the metadata database (meta key
``servers``: URL -> last seen, Unix seconds, refreshed every ``ADVERTISE_SECONDS``; a server that
stops removes its own). :meth:`BackgroundWork.servers` lists the live ones, the leader first: a
job's runner gets that list with its spec and with every report's answer, and when the server it
reports to stops answering it reports to the next one (``runner/_report.py``), so the jobs a
stopped leader launched are followed and ended by the new leader.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING

from openaml.store import Leadership

if TYPE_CHECKING:
    from openaml.services._context import WorkspaceContext

__all__ = ["BackgroundWork"]

log = logging.getLogger("openaml.leader")

#: meta key of the servers' advertised URLs (URL -> last seen, Unix seconds)
SERVERS_META = "servers"
#: how often a server refreshes its entry; an entry not refreshed for ``STALE_SECONDS`` is dropped
ADVERTISE_SECONDS = 10.0
STALE_SECONDS = 45.0


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
        self._advertised = -ADVERTISE_SECONDS  # monotonic time of this server's last entry in SERVERS_META
        self._servers_cache: tuple[float, list[str]] = (-10.0, [])

    @property
    def shared(self) -> bool:
        """True when several servers may serve the workspace (PostgreSQL metadata)."""
        return self.leadership.shared

    def start(self) -> None:
        """Take the lead now if free (a lone server starts its work before serving), then watch."""
        self._try_lead()
        if self.shared:
            self._advertise()
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
        if self.shared:
            try:
                self._write_servers(drop=self.ctx.url)
            except Exception:  # noqa: BLE001 - its entry goes stale by itself
                log.exception("could not remove this server from the workspace's servers")

    def servers(self) -> list[str]:
        """The base URLs of the workspace's live servers, the leader first (where a job's runner
        reports; it tries them in this order). This server's only when the metadata is SQLite."""
        me = self.ctx.url
        if not self.shared:
            return [me] if me else []
        at, cached = self._servers_cache
        if time.monotonic() - at < 5.0:  # asked at every runner report: the database once in 5 s
            return cached
        try:
            seen = self._read_servers()
        except Exception:  # noqa: BLE001 - the database not answering: this server at least
            return [me] if me else []
        now = time.time()
        urls = [u for u, t in sorted(seen.items(), key=lambda kv: -kv[1]) if now - t < STALE_SECONDS]
        leader = self.leader_url()
        first = [u for u in (leader, me) if u]
        found = list(dict.fromkeys([*first, *urls]))
        self._servers_cache = (time.monotonic(), found)
        return found

    def _read_servers(self) -> dict[str, float]:
        try:
            raw = json.loads(self.ctx.store.get_meta(SERVERS_META) or "{}")
        except ValueError:
            return {}
        return {str(k): float(v) for k, v in raw.items() if isinstance(v, (int, float))} if isinstance(raw, dict) else {}

    def _write_servers(self, *, drop: str | None = None) -> None:
        """This server's entry refreshed (or removed: ``drop``), stale entries removed. Servers write
        the same key: a write lost to a race is made good by the next refresh."""
        now = time.time()
        seen = {u: t for u, t in self._read_servers().items() if now - t < STALE_SECONDS and u != drop}
        if drop is None and self.ctx.url:
            seen[self.ctx.url] = now
        self.ctx.store.set_meta(SERVERS_META, json.dumps(seen, sort_keys=True))

    def _advertise(self) -> None:
        if not self.ctx.url or time.monotonic() - self._advertised < ADVERTISE_SECONDS:
            return
        try:
            self._write_servers()
            self._advertised = time.monotonic()
        except Exception:  # noqa: BLE001 - tried again at the next pass
            log.exception("could not advertise this server's URL")

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
                self._advertise()
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
