"""Request guard: no drive-by access from web pages (DNS rebinding, cross-site requests).

A pure ASGI middleware placed outside every route (REST API, the ``/mlflow`` mount and the
``/endpoints`` scoring router), so that a web page the user happens to visit cannot reach the
workspace server, even on loopback and without a token:

* ``Host`` must name the server: a loopback name, the ``--host`` it was started with, or a name
  given with ``--allowed-host`` (DNS rebinding sends the attacker's name). Otherwise 403.
* A state-changing request (any method but GET, HEAD, OPTIONS) whose ``Origin`` (or, without
  one, ``Referer``) is not the server's own origin gets 403 (cross-site request forgery).
* A state-changing ``/api/v1`` request must carry a JSON body (``application/json``) or the tar
  stream the SDK uploads with (``application/x-tar``); ``text/plain``, form-encoded and multipart
  bodies, the ones a page can send without a CORS preflight, get 415.

No CORS headers are ever added: cross-origin reads stay closed. The same checks exist in Jupyter
(``allow_origin``/``allow_remote_access``) and in MLflow's own server (``--allowed-hosts``).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["RequestGuard", "allowed_host_names", "parse_bearer", "parse_query_token", "split_host",
           "QUERY_TOKEN_PATHS"]

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_API_BODY_TYPES = frozenset({"application/json", "application/x-tar"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "localhost.localdomain", "ip6-localhost")


def split_host(value: str) -> tuple[str, str | None]:
    """``"Example.org:8080"`` -> ``("example.org", "8080")``; ``"[::1]:80"`` -> ``("::1", "80")``."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        rest = value[end + 1:]
        return value[1:end], (rest[1:] if rest.startswith(":") else None)
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host, port
    return value, None  # a bare name, or a bare IPv6 address


def allowed_host_names(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The ``Host`` names a server bound to ``host`` answers to.

    Loopback names always; ``host`` and the addresses it resolves to; for a wildcard bind
    (``0.0.0.0``/``::``) the machine's names and the addresses of all its interfaces instead;
    then ``extra`` (``--allowed-host``, ``*`` turns the check off). Lower-case, without port.
    """
    names = set(LOOPBACK_NAMES)
    h = split_host(host)[0] if host.startswith("[") else host.lower()
    if h in ("0.0.0.0", "::", ""):
        # every interface: the machine's names and every address of its interfaces
        import psutil

        for addrs in psutil.net_if_addrs().values():
            for a in addrs:
                if a.family in (socket.AF_INET, socket.AF_INET6):
                    names.add(str(a.address).split("%", 1)[0].lower())
        lookups = [socket.gethostname(), socket.getfqdn()]
    else:
        names.add(h)
        lookups = [h]
    for name in lookups:
        names.add(name.lower())
        try:
            for info in socket.getaddrinfo(name, None):
                names.add(str(info[4][0]).split("%", 1)[0].lower())
        except (OSError, UnicodeError):
            pass
    for e in extra:
        e = e.strip().lower()
        if e:
            names.add(split_host(e)[0] if e != "*" else "*")
    return frozenset(names)


def parse_bearer(scope: Scope) -> str | None:
    """The bearer token of a request, or None. Never raises.

    Reads ``Authorization: Bearer <token>`` (scheme case-insensitive). A header that is not valid
    ASCII, or has no token after the scheme, counts as no token (the caller answers 401, never
    500). The ``?token=`` query parameter is not read here: see :func:`parse_query_token`.
    """
    try:
        for key, value in scope.get("headers") or ():
            if bytes(key).lower() != b"authorization":
                continue
            text = bytes(value).decode("ascii").strip()
            scheme, _, token = text.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token or not token.isprintable():
                return None
            return token
    except (TypeError, ValueError, UnicodeError):  # any odd header value is "no token"
        return None
    return None


#: the only places ``?token=`` is read: the pages a browser opens first, where it cannot send a
#: header; the auth middleware answers them with a session cookie (the MLflow UI then works).
QUERY_TOKEN_PATHS = frozenset({"/", "/mlflow", "/mlflow/"})


def parse_query_token(scope: Scope) -> str | None:
    """``?token=`` of a GET/HEAD of :data:`QUERY_TOKEN_PATHS`, else None. Never raises.

    Everywhere else (the REST API, MLflow's REST API, scoring) a token in the URL is ignored:
    URLs end up in logs, proxies and browser history.
    """
    try:
        if scope.get("method") not in ("GET", "HEAD") or scope.get("path") not in QUERY_TOKEN_PATHS:
            return None
        from urllib.parse import parse_qs

        values = parse_qs(bytes(scope.get("query_string") or b"").decode("ascii")).get("token") or []
        token = values[0].strip() if values else ""
        return token if token and token.isascii() and token.isprintable() else None
    except (TypeError, ValueError, UnicodeError):
        return None


def _origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _normal(name: str) -> str:
    """Lower-case name; an IP address in its canonical form (``0:0::1`` -> ``::1``)."""
    name = name.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


_SCORING_PREFIX = "/endpoints/"
# X-Frame-Options for older browsers, CSP frame-ancestors for current ones (OWASP clickjacking defense)
_NO_FRAME_HEADERS = [(b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'")]


class RequestGuard:
    """ASGI middleware refusing DNS-rebinding and cross-site requests (see the module docstring).

    Args:
        app: the wrapped ASGI app.
        allowed_hosts: lower-case host names without port (:func:`allowed_host_names`); ``"*"``
            accepts any ``Host``.
        trusted_origins: extra ``scheme://host:port`` origins allowed to change state (none by
            default; CORS stays closed).
    """

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str],
                 trusted_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = frozenset(_normal(h) for h in allowed_hosts)
        self.any_host = "*" in self.allowed
        self.trusted = frozenset(o.rstrip("/").lower() for o in trusted_origins)
        self._host_cache: dict[bytes, bool] = {}

    def _host_ok(self, host: bytes) -> bool:
        ok = self._host_cache.get(host)
        if ok is None:
            ok = self.any_host or _normal(split_host(host.decode("latin-1"))[0]) in self.allowed
            if len(self._host_cache) >= 1024:  # bounded: a client cycling Host values cannot grow it
                self._host_cache.clear()
            self._host_cache[host] = ok
        return ok

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = origin = referer = ctype = length = chunked = None
        for key, value in scope["headers"]:  # one pass; ASGI header names are lower-case
            if key == b"host":
                host = value
            elif key == b"origin":
                origin = value
            elif key == b"referer":
                referer = value
            elif key == b"content-type":
                ctype = value
            elif key == b"content-length":
                length = value
            elif key == b"transfer-encoding":
                chunked = value
        if host is None or not self._host_ok(host):
            shown = host.decode("latin-1") if host is not None else None
            await _refuse(scope, send, 403, "forbidden_host",
                          f"Host {shown!r} is not a name this server was started for; start it with "
                          "--allowed-host NAME to accept it (protection against DNS rebinding)")
            return
        method = scope.get("method", "GET")
        if scope["type"] == "http" and method not in _SAFE_METHODS:
            source = origin if origin is not None else referer
            if source is not None:
                own = f"{scope.get('scheme', 'http')}://{host.decode('latin-1').strip().lower()}"
                text = source.decode("latin-1")
                got = _origin_of(text)
                if got is None or (got != own and got not in self.trusted):
                    await _refuse(scope, send, 403, "cross_origin",
                                  f"cross-origin {method} refused: {'Origin' if origin is not None else 'Referer'} "
                                  f"{text[:200]!r} is not this server's origin {own!r}")
                    return
            path = scope.get("path", "")
            if path.startswith("/api/"):
                media = ctype.decode("latin-1").split(";", 1)[0].strip().lower() if ctype is not None else ""
                has_body = chunked is not None or (length is not None and length.strip() not in (b"0", b""))
                if (ctype is not None and media not in _API_BODY_TYPES) or (ctype is None and has_body):
                    await _refuse(scope, send, 415, "unsupported_media_type",
                                  f"{method} {path}: body of type {media or 'unknown'!r} refused; send "
                                  "application/json (or application/x-tar for /api/v1/uploads and a runner's outputs)")
                    return
        strip_cors = origin is not None and origin.decode("latin-1").rstrip("/").lower() not in self.trusted
        # pages (the studio, MLflow's UI) must not be framed by another site (clickjacking: a framed
        # Cancel or Delete clicked by the owner carries the studio's own Origin); scoring answers are
        # not pages and skip the extra work
        no_frame = scope["type"] == "http" and not scope.get("path", "").startswith(_SCORING_PREFIX)
        if not strip_cors and not no_frame:
            await self.app(scope, receive, send)
            return

        async def guarded_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if strip_cors:  # CORS stays closed: MLflow's Flask app allows localhost origins; strip it
                    headers = [(k, v) for k, v in headers if not bytes(k).lower().startswith(b"access-control-")]
                if no_frame:  # replaces MLflow's SAMEORIGIN (two values would make browsers ignore both)
                    headers = [(k, v) for k, v in headers if bytes(k).lower() != b"x-frame-options"]
                    headers += _NO_FRAME_HEADERS
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, guarded_send)


async def _refuse(scope: Scope, send: Callable[[Any], Awaitable[None]], status: int, code: str,
                  message: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
