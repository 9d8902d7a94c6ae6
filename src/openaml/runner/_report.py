"""The runner's only link to the server: HTTP with its job's scoped token (stdlib only, no httpx:
its import is part of every job's start-up). The server may be any of the workspace's servers:
when the one in use stops answering, the calls go to the next one (:class:`Reporter`).

Routes (``server/routes/runner.py``), under ``{server}/api/v1/jobs/{job}/runner``: ``GET spec``,
``POST state`` (the whole state each time: a lost report is made good by the next one),
``POST heartbeat`` and ``POST logs`` (a chunk at a byte offset; the server skips bytes it holds,
so resending after a failure doubles nothing). Answers to ``state`` and ``heartbeat`` carry the
job's status and a pending cancel's reason.

Errors: :class:`JobGone` when the server refuses the job's reports for good (401/403: its token
no longer works, the job ended; 404: no such job; 409: the job is not active); ``OSError`` for
anything that may pass (server down or restarting, a timeout, a 5xx); :class:`Rejected` for a
report the server finds malformed (a bug: logged and dropped).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = ["Reporter", "LogShipper", "Link", "JobGone", "Rejected", "TRANSIENT"]


class JobGone(Exception):
    """The server no longer takes this job's reports (the job ended there, or its token was refused)."""


class Rejected(Exception):
    """The server refused a report as malformed (HTTP 400/413/422)."""


#: errors after which a call may be tried again
TRANSIENT: tuple[type[BaseException], ...] = (OSError, http.client.HTTPException)


class Reporter:
    """Calls the runner routes of job ``job`` with ``token`` on the workspace's servers.

    ``server_url``: the server that launched the runner, or several base URLs (a list, or one
    string of comma-separated URLs), tried in order. Every server of a workspace that shares its
    metadata database takes a job's reports (its token is signed with the workspace's key), so
    when the server in use does not answer (refused, a timeout, a 5xx) a call goes to the next
    one, which is then used until it fails in turn or an answer names another leader
    (:attr:`moved`: the runner reports to another server than the one that launched it).
    :meth:`set_servers` takes the list that the servers' answers carry (the live servers, the
    leader first). A server tried as a fallback that refuses
    the token or does not know the job (401/403/404: another workspace at that address) is
    skipped; 409 (the job ended) counts from any server.

    ``cafile``: a PEM file trusted for an ``https`` server (default: the server's certificate as
    ``MLFLOW_TRACKING_SERVER_CERT_PATH`` gives it, else the system's). Proxies are not used for a
    loopback server.
    """

    def __init__(self, server_url: str | list[str], job: str, token: str, *, cafile: str | None = None) -> None:
        urls = server_url.split(",") if isinstance(server_url, str) else list(server_url)
        self.servers: list[str] = list(dict.fromkeys(u.strip().rstrip("/") for u in urls if u.strip()))
        if not self.servers:
            raise ValueError("no server URL")
        self.launched_by = self.servers[0]
        self.job = job
        self._auth = f"Bearer {token}"
        self._cafile = cafile
        self._openers: dict[str, Any] = {}
        self._failed_at: dict[str, float] = {}  # server -> when it last failed to answer (monotonic)
        self._lock = threading.Lock()

    @property
    def server_url(self) -> str:
        """The server in use (the first that answered last)."""
        with self._lock:
            return self.servers[0]

    @property
    def base(self) -> str:
        return self._base(self.server_url)

    @property
    def moved(self) -> bool:
        """True when the server in use is not the one that launched the runner."""
        return self.server_url != self.launched_by

    #: seconds a server that did not answer is not put first again by :meth:`set_servers`
    RETRY_LEADER_SECONDS = 30.0

    def set_servers(self, urls: Any) -> None:
        """The workspace's live servers as a server's answer lists them, the leader first (ignored
        unless a list of ``http(s)://`` URLs). The leader becomes the server in use (the job's log
        is kept whole on the leader's disk; a runner that reported elsewhere resends what the
        leader lacks), unless it failed to answer in the last :attr:`RETRY_LEADER_SECONDS`; then the
        server in use stays first. The others follow in the given order."""
        if not isinstance(urls, list):
            return
        given = [str(u).rstrip("/") for u in urls if isinstance(u, str) and u.startswith(("http://", "https://"))]
        if not given:
            return
        with self._lock:
            failed = self._failed_at.get(given[0])
            lead = given[0] if failed is None or time.monotonic() - failed > self.RETRY_LEADER_SECONDS \
                else self.servers[0]
            self.servers = list(dict.fromkeys([lead, self.servers[0], *given]))

    def _base(self, server_url: str) -> str:
        return f"{server_url}/api/v1/jobs/{quote(self.job, safe='')}/runner"

    def _opener(self, server_url: str) -> Any:
        opener = self._openers.get(server_url)
        if opener is None:
            handlers: list[Any] = []
            host = (urlsplit(server_url).hostname or "").lower()
            if host in ("127.0.0.1", "localhost", "::1") or host.startswith("127."):
                handlers.append(urllib.request.ProxyHandler({}))
            if server_url.startswith("https:"):
                cafile = self._cafile or os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None
                handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=cafile)))
            opener = self._openers[server_url] = urllib.request.build_opener(*handlers)
        return opener

    def _each_server(self, method: str, path: str, call: Callable[[str, Any], Any]) -> Any:
        """``call(base, opener)`` on the server in use, then on each other one while they fail
        transiently; the first that answers becomes the server in use. Raises the first server's
        error when none answers."""
        with self._lock:
            servers = list(self.servers)
        first: BaseException | None = None
        for i, url in enumerate(servers):
            try:
                result = call(self._base(url), self._opener(url))
            except urllib.error.HTTPError as exc:
                err = _http_error(method, path, exc)
                if i > 0 and exc.code in (401, 403, 404):  # not this workspace's server (any more)
                    first = first or OSError(f"{method} {path}: no server of the workspace answers")
                    continue
                if isinstance(err, OSError) and i + 1 < len(servers):  # a 5xx: the next one
                    self._failed_at[url] = time.monotonic()
                    first = first or err
                    continue
                if not isinstance(err, OSError):
                    self._use(url)
                raise err from None
            except TRANSIENT as exc:
                self._failed_at[url] = time.monotonic()
                first = first or exc
                continue
            except ValueError as exc:  # an answer that is not JSON: a proxy or a server starting
                first = first or OSError(f"{method} {path}: unreadable answer ({exc})")
                continue
            self._use(url)
            return result
        assert first is not None
        raise first

    def _use(self, url: str) -> None:
        with self._lock:
            if self.servers[0] != url:
                self.servers = [url, *(u for u in self.servers if u != url)]

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
        data = json.dumps(body if body is not None else {}).encode() if method != "GET" else None

        def call(base: str, opener: Any) -> Any:
            req = urllib.request.Request(f"{base}/{path}", data=data, method=method,
                                         headers={"Authorization": self._auth, "Content-Type": "application/json",
                                                  "Accept": "application/json"})
            with opener.open(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"{}")

        reply = self._each_server(method, path, call)
        if isinstance(reply, dict) and "servers" in reply:
            self.set_servers(reply["servers"])
        return reply

    def fetch(self, path: str, timeout: float = 60.0) -> Any:
        """``GET {base}/{path}`` as a streamed answer: a file object to read and close (the code
        snapshot's or an input's tar). Raises as the reports do (:class:`JobGone` on 404/409)."""

        def call(base: str, opener: Any) -> Any:
            req = urllib.request.Request(f"{base}/{path}", method="GET",
                                         headers={"Authorization": self._auth, "Accept": "application/x-tar"})
            return opener.open(req, timeout=timeout)

        return self._each_server("GET", path, call)

    def send_file(self, path: str, file: str | os.PathLike[str], timeout: float = 600.0) -> dict[str, Any]:
        """``PUT {base}/{path}`` with the local file's bytes as the body, streamed from the disk (a
        declared output's tar); returns the JSON answer. Raises as the reports do."""
        size = os.path.getsize(file)

        def call(base: str, opener: Any) -> Any:
            with open(file, "rb") as fh:
                req = urllib.request.Request(f"{base}/{path}", data=fh, method="PUT",
                                             headers={"Authorization": self._auth, "Content-Type": "application/x-tar",
                                                      "Content-Length": str(size), "Accept": "application/json"})
                with opener.open(req, timeout=timeout) as resp:
                    return dict(json.loads(resp.read() or b"{}"))

        return dict(self._each_server("PUT", path, call))

    def spec(self, patience: float = 120.0) -> dict[str, Any]:
        """The job's spec, retried while the server is unreachable for up to ``patience`` seconds.

        Raises:
            JobGone: the job is not to run (ended, canceled, token refused).
            OSError: still unreachable after ``patience`` seconds.
        """
        deadline = time.monotonic() + patience
        while True:
            try:
                spec = self._call("GET", "spec")
                if not isinstance(spec, dict):
                    raise OSError(f"GET spec: not an object: {spec!r:.200}")
                return spec
            except TRANSIENT:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def state(self, state: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "state", state, timeout=15.0))

    def heartbeat(self) -> dict[str, Any]:
        return dict(self._call("POST", "heartbeat", {}, timeout=15.0))

    def log(self, stream: str, offset: int, data: bytes) -> int:
        """Append ``data`` at ``offset`` of log ``stream``; returns the server's size of that log."""
        reply = self._call("POST", "logs", {"stream": stream, "offset": offset,
                                            "data": base64.b64encode(data).decode("ascii")})
        return int(reply["offset"])


def _http_error(method: str, path: str, exc: urllib.error.HTTPError) -> Exception:
    detail = _message(exc)
    if exc.code in (401, 403, 404, 409):
        return JobGone(f"{method} {path}: HTTP {exc.code}: {detail}")
    if exc.code in (400, 413, 422):
        return Rejected(f"{method} {path}: HTTP {exc.code}: {detail}")
    return OSError(f"{method} {path}: HTTP {exc.code}: {detail}")


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(exc.read() or b"{}")
        return str(payload.get("error", {}).get("message") or payload)[:500]
    except (ValueError, AttributeError, OSError):
        return str(exc.reason)


class LogShipper:
    """Sends what the runner's local log files gain to the server, in order, from the byte the
    server holds (``files``: stream name -> local path). :meth:`ship` sends what is there now."""

    CHUNK = 256 * 1024

    def __init__(self, reporter: Reporter, files: dict[str, Any]) -> None:
        self.reporter = reporter
        self.files = files
        self.offsets = {stream: 0 for stream in files}
        self._lock = threading.Lock()  # the shipping thread and the runner's last flush

    def pending(self) -> int:
        """Bytes not yet on the server."""
        total = 0
        for stream, path in self.files.items():
            try:
                total += max(0, os.path.getsize(path) - self.offsets[stream])
            except OSError:
                continue
        return total

    def ship(self) -> None:
        """Send every local byte the server does not hold yet.

        Raises: as :meth:`Reporter.log` (``OSError`` to try again later, :class:`JobGone`). A chunk
        the server rejects is skipped (:class:`Rejected` is not raised).
        """
        with self._lock:
            self._ship()

    def _ship(self) -> None:
        for stream, path in self.files.items():
            try:
                size = os.path.getsize(path)
            except OSError:
                continue
            with open(path, "rb") as fh:
                while self.offsets[stream] < size:
                    offset = self.offsets[stream]
                    fh.seek(offset)
                    chunk = fh.read(min(self.CHUNK, size - offset))
                    if not chunk:
                        break
                    try:
                        # the server's size: where the next chunk starts (earlier when it lost bytes)
                        self.offsets[stream] = self.reporter.log(stream, offset, chunk)
                    except Rejected:
                        self.offsets[stream] = offset + len(chunk)


class Link:
    """A runner's reporting: its state (``state``, reported whole on each change), a heartbeat
    thread, a log-shipping thread, and the end (:meth:`end`: the logs first, then the final state,
    retried through a server restart). ``on_stop(reason)`` is called when the server asks for a
    cancel or no longer takes the job's reports (then nothing more is sent: ``gone`` says why).
    ``reporter`` None: nothing is reported (the state is kept)."""

    HEARTBEAT_SECONDS = 2.0
    LOG_SHIP_SECONDS = 0.25
    #: how long a runner whose job ended keeps trying to tell an unreachable server (a restart)
    END_PATIENCE_SECONDS = 3600.0

    def __init__(self, reporter: Reporter | None, logs: dict[str, Any], state: dict[str, Any], *,
                 on_stop: Callable[[str], None], syslog: Callable[[str], None],
                 heartbeat_seconds: float | None = None) -> None:
        self.reporter = reporter
        self.shipper = LogShipper(reporter, logs) if reporter is not None else None
        self.state = state
        self.on_stop = on_stop
        self.syslog = syslog
        self.heartbeat_seconds = float(heartbeat_seconds or self.HEARTBEAT_SECONDS)
        self.gone: str | None = None
        self._dirty = True
        self._failing = False  # the last report failed (said once in the system log)
        self._moved_said = False  # the move to another server of the workspace was said
        self._lock = threading.Lock()
        self._report_lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        """Report the state now, then heartbeat and ship logs in two daemon threads."""
        self.report()
        threading.Thread(target=self._loop, args=(lambda: self.heartbeat_seconds, self.report),
                         name="heartbeat", daemon=True).start()
        threading.Thread(target=self._loop, args=(lambda: self.LOG_SHIP_SECONDS, self.ship),
                         name="logs", daemon=True).start()

    def _loop(self, every: Callable[[], float], call: Callable[[], Any]) -> None:
        while not self._stop.wait(every()):
            call()

    def update(self, **fields: Any) -> None:
        """Change the state and report it (a failed report is made good by the next heartbeat)."""
        with self._lock:
            self.state.update(fields)
            self._dirty = True
        self.report()

    def report(self, *, final: bool = False) -> bool:
        """Send the state if it changed since it was last sent, else a heartbeat; act on the answer
        (a cancel). The end (``terminal``) is sent only by ``final`` (after the logs). Returns
        whether the server answered."""
        if self.reporter is None or self.gone:
            return False
        with self._report_lock:
            with self._lock:
                state = dict(self.state)
                dirty = self._dirty and (final or not state.get("terminal"))
                if dirty:
                    self._dirty = False
            try:
                reply = self.reporter.state(state) if dirty else self.reporter.heartbeat()
            except JobGone as exc:
                self._lost(str(exc))
                return False
            except Rejected as exc:  # a bug: say it, do not resend the same state forever
                self.syslog(f"state report rejected: {exc}")
                # also on stderr: the server's scheduler quotes it if the job's end was the report refused
                sys.stderr.write(f"openaml runner: state report rejected: {exc}\n")
                sys.stderr.flush()
                return True
            except TRANSIENT as exc:
                if dirty:
                    with self._lock:
                        self._dirty = True
                if not self._failing:
                    self._failing = True
                    self.syslog(f"cannot report to the server (retrying): {exc}")
                return False
            if self._failing:
                self._failing = False
                self.syslog("reporting to the server again")
        if self.reporter.moved and not self._moved_said:
            self._moved_said = True
            self.syslog(f"reporting to {self.reporter.server_url} (the server {self.reporter.launched_by}, "
                        "which launched this runner, does not answer)")
        if reply.get("heartbeat_seconds"):
            self.heartbeat_seconds = float(reply["heartbeat_seconds"])
        if reply.get("status") in ("Completed", "Failed", "Canceled") and not state.get("terminal"):
            self._lost(f"the server ended the job ({reply['status']})")
        elif reply.get("cancel"):
            self.on_stop(str(reply["cancel"]))
        return True

    def _lost(self, why: str) -> None:
        """The server will not take this job's reports any more: stop its command, report nothing."""
        if self.gone is None:
            self.gone = why
            self.syslog(f"the server no longer takes this job's reports: {why}; stopping")
            # also on stderr: the backend's runner output, which the scheduler quotes if the job is
            # still active there (so its error names why the runner stopped)
            sys.stderr.write(f"openaml runner: the server no longer takes this job's reports: {why}; stopping\n")
            sys.stderr.flush()
            self.on_stop(why)

    def ship(self) -> bool:
        """Send the logs' new bytes; returns whether all were sent."""
        if self.shipper is None or self.gone:
            return True
        try:
            self.shipper.ship()
            return self.shipper.pending() == 0
        except JobGone as exc:
            self._lost(str(exc))
        except TRANSIENT:
            pass
        return False

    def end(self, **fields: Any) -> None:
        """The job's end (``terminal``): stop the threads, ship the logs, then send the final state
        (the server ends the job on it, so its logs are complete by then), retrying while the
        server is unreachable for up to :attr:`END_PATIENCE_SECONDS`."""
        self._stop.set()
        with self._lock:
            self.state.update(fields, terminal=True)
            self._dirty = True
        deadline = time.monotonic() + self.END_PATIENCE_SECONDS
        delay = 0.2
        while self.reporter is not None and not self.gone and time.monotonic() < deadline:
            if self.ship() and self.report(final=True) and not self._dirty:
                return
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        if self.reporter is not None and not self.gone:
            sys.stderr.write(f"openaml runner: the job's end ({self.state.get('status')}) was not reported: the "
                             f"server did not take it within {self.END_PATIENCE_SECONDS:g} s\n")
            sys.stderr.flush()
