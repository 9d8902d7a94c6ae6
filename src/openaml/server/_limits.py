"""HTTP limits: close slow-header (slowloris) and stalled-body connections; uvicorn options.

uvicorn bounds only the idle time *between* requests (``timeout_keep_alive``): a client that
sends its headers one byte at a time, or stops half-way through a body, keeps its connection
(and a file descriptor) forever. :func:`guarded_protocol` wraps uvicorn's HTTP protocol class
(httptools or h11, whichever uvicorn picks) with two timers, as nginx's
``client_header_timeout``/``client_body_timeout`` do:

* header deadline: from the first byte of a request (or from the connection's start) the
  request line and headers must be complete within ``header_timeout`` seconds, however slowly
  the bytes trickle in;
* body stall: while the request body is still expected, ``body_timeout`` seconds without a
  byte close the connection (time the server itself pauses reading, for flow control, does not
  count).

While the application works on a fully received request no timer runs, so long responses
(log streaming, scoring) are unaffected.
"""

from __future__ import annotations

import asyncio
from typing import Any

from openaml._settings import HttpLimits
from openaml.server._peer import forget

__all__ = ["guarded_protocol", "uvicorn_options"]


def guarded_protocol(base: type[asyncio.Protocol], limits: HttpLimits) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's protocol ``base`` enforcing ``limits`` (see the module docstring)."""

    class GuardedHTTPProtocol(base):  # type: ignore[valid-type,misc]
        _phase = "head"
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # noqa: D401
            super().connection_made(transport)
            self._arm(limits.header_timeout)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            transport = self.transport
            if transport is not None and transport.get_protocol() is not self:
                self._disarm()  # upgraded to a websocket: its own protocol owns the connection now
                return
            cycle = getattr(self, "cycle", None)
            if cycle is None or cycle.response_complete:
                if self._phase != "head":  # the first bytes of the next request
                    self._phase = "head"
                    self._arm(limits.header_timeout)
            elif cycle.more_body:
                self._phase = "body"
                self._arm(limits.body_timeout)
            else:
                self._phase = "app"
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            server = getattr(self, "server", None)
            forget(getattr(self, "client", None), server[1] if server else None)  # server/_peer.py's verdict
            super().connection_lost(exc)

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._timer = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self) -> None:
            self._timer = None
            flow = getattr(self, "flow", None)
            if self._phase == "body" and flow is not None and flow.read_paused:
                self._arm(limits.body_timeout)  # we stopped reading, not the client
                return
            cycle = getattr(self, "cycle", None)
            if self._phase == "head" and cycle is not None and not cycle.response_complete:
                return  # a response is still being written; the next request arms again
            if self.transport is not None and not self.transport.is_closing():
                self.transport.close()

    GuardedHTTPProtocol.__name__ = f"Guarded{base.__name__}"
    return GuardedHTTPProtocol


def uvicorn_options(limits: HttpLimits) -> dict[str, Any]:
    """``uvicorn.Config`` keyword arguments for ``limits`` (protocol class included)."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    return {
        "http": guarded_protocol(AutoHTTPProtocol, limits),
        "timeout_keep_alive": max(1, int(limits.keep_alive)),
        "limit_concurrency": limits.max_connections,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
    }
