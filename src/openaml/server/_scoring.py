"""The online endpoint router, mounted at ``/endpoints``: key/token auth, traffic, mirroring.

``POST|GET /endpoints/<name>/score`` (the ``scoring_uri``) and ``GET /endpoints/<name>/swagger.json``.
A plain ASGI app (no request/response objects) forwarding to a ready worker of the chosen deployment
over pooled keep-alive HTTP/1.1 connections on loopback: this path runs for every scoring request,
so it does the least it can (the workers speak only the small HTTP/1.1 subset written here).
A worker that refuses the connection or drops it (it just died) is skipped for another instance.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import random
import uuid
from typing import Any

__all__ = ["scoring_app"]

_PASS_HEADERS = (b"content-type", b"x-ms-run-fn-exec-ms", b"x-ms-run-function-failed")
# not forwarded to workers: hop-by-hop, set by the router, or secrets of the endpoint
_DROP_HEADERS = frozenset((b"host", b"connection", b"keep-alive", b"transfer-encoding", b"content-length",
                           b"authorization", b"x-request-id", b"te", b"upgrade", b"proxy-connection"))
_MAX_IDLE = 128  # idle connections kept per worker port


class _Dead(Exception):
    """The worker's connection failed before an answer: try another instance."""


def _json(status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> tuple[
        int, list[tuple[bytes, bytes]], bytes]:
    return status, [(b"content-type", b"application/json"), *(headers or [])], json.dumps(payload).encode()


def _error(status: int, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return _json(status, {"message": message})


class _Pool:
    """Keep-alive HTTP/1.1 connections to the workers' loopback ports."""

    def __init__(self) -> None:
        self._idle: dict[int, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}

    async def request(self, port: int, head: bytes, body: bytes, timeout: float) -> tuple[
            int, list[tuple[bytes, bytes]], bytes]:
        """Send one request; ``(status, passed headers, body)``.

        Raises:
            _Dead: connection refused, or closed before an answer (twice: a kept connection may be stale).
            TimeoutError: no answer within ``timeout`` seconds.
        """
        idle = self._idle.setdefault(port, [])
        for _attempt in range(2):
            reused = bool(idle)
            if reused:
                reader, writer = idle.pop()
            else:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError as exc:
                    raise _Dead(str(exc)) from None
            try:
                writer.write(head + body)
                async with asyncio.timeout(timeout):
                    status, headers, payload, keep = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
                writer.close()
                if reused:
                    for _r, w in idle:  # the worker went away: its other kept connections are stale too
                        w.close()
                    idle.clear()
                    continue
                raise _Dead("connection closed before an answer") from None
            except BaseException:
                writer.close()
                raise
            if keep and len(idle) < _MAX_IDLE:
                idle.append((reader, writer))
            else:
                writer.close()
            return status, headers, payload
        raise _Dead("connection closed before an answer")

    def close(self) -> None:
        for conns in self._idle.values():
            for _r, w in conns:
                w.close()
        self._idle.clear()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, keep, out = 0, True, []
    for line in lines[1:]:
        k, sep, v = line.partition(b":")
        if not sep:
            continue
        k, v = k.strip().lower(), v.strip()
        if k == b"content-length":
            length = int(v)
        elif k == b"connection" and v.lower() == b"close":
            keep = False
        elif k in _PASS_HEADERS:
            out.append((k, v))
    return status, out, (await reader.readexactly(length) if length else b""), keep


class _Router:
    def __init__(self, service: Any) -> None:
        self.svc = service
        self.pool = _Pool()
        self._rr = itertools.count()
        self._mirrors: set[asyncio.Task[Any]] = set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        name, _, action = path.strip("/").partition("/")
        method = scope["method"]
        if action == "score" and method in ("POST", "GET"):
            status, headers, body = await self.score(name, scope, receive)
        elif action == "swagger.json" and method == "GET":
            status, headers, body = await self.swagger(name, scope)
        elif action in ("score", "swagger.json"):
            status, headers, body = _error(405, f"method {method} not allowed on /endpoints/{name}/{action}")
        else:
            status, headers, body = _error(404, f"no route {scope['path']}; use /endpoints/<name>/score or "
                                                "/endpoints/<name>/swagger.json")
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _authorized(table: Any, headers: dict[bytes, bytes]) -> bool:
        header = headers.get(b"authorization", b"")
        given = header[7:].strip() if header[:7].lower() == b"bearer " else b""
        if not given:
            return False
        if table.auth_mode == "key":
            return any(hmac.compare_digest(given, k.encode()) for k in table.keys)
        from openaml.services.endpoints import check_token

        return check_token(given.decode("latin-1"), table.name, table.token_secret)

    async def score(self, name: str, scope: dict[str, Any], receive: Any) -> tuple[
            int, list[tuple[bytes, bytes]], bytes]:
        table = self.svc.route(name)
        if table is None:
            return _error(404, f"online endpoint {name!r} not found")
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        headers = dict(raw_headers)
        if not self._authorized(table, headers):
            return _error(401, "missing or wrong credentials: send 'Authorization: Bearer <key or token>' "
                               f"(openaml online-endpoint get-credentials -n {name})")
        target = headers.get(b"azureml-model-deployment", b"").decode("latin-1").strip()
        if target:
            if target not in table.deployments:
                return _error(404, f"deployment {target!r} not found in endpoint {name!r}; deployments: "
                                   f"{sorted(table.deployments) or 'none'}")
            dep = table.deployments[target]
        else:
            chosen = _pick(table.traffic)
            if chosen is None or chosen not in table.deployments:
                return _error(503, f"online endpoint {name!r} has no deployment with traffic; set traffic "
                                   "(online-endpoint update --traffic) or target one with the "
                                   "azureml-model-deployment header")
            dep = table.deployments[chosen]
        limit = dep.settings.max_request_size_bytes
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return _error(413, f"the request body is {int(declared)} bytes; the limit is {limit}")
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _error(400, "the client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return _error(413, f"the request body is over {limit} bytes (the limit)")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        rid = (headers.get(b"x-request-id") or headers.get(b"x-ms-client-request-id") or
               str(uuid.uuid4()).encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        passed = [(k, v) for k, v in raw_headers if k not in _DROP_HEADERS]
        if b"content-type" not in headers:
            passed.append((b"content-type", b"application/json"))
        passed.append((b"x-request-id", rid.encode()))
        method = scope["method"]
        if not target:
            for mname, pct in table.mirror:
                if mname in table.deployments and random.random() * 100 < pct:
                    task = asyncio.ensure_future(self._forward(table.deployments[mname], method, body,
                                                               [*passed, (b"x-openaml-mirror", b"1")], query))
                    self._mirrors.add(task)
                    task.add_done_callback(self._mirrors.discard)
        status, out, payload = await self._forward(dep, method, body, passed, query)
        out += [(b"azureml-model-deployment", dep.name.encode()), (b"x-request-id", rid.encode()),
                (b"x-ms-request-id", rid.encode())]
        return status, out, payload

    async def _forward(self, dep: Any, method: str, body: bytes, headers: list[tuple[bytes, bytes]],
                       query: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        s = dep.settings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.request_timeout_ms / 1000 + s.max_queue_wait_ms / 1000 + 5.0
        target = "/score" + (f"?{query}" if query else "")
        head = b"".join([f"{method} {target} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {len(body)}\r\n"
                         .encode("latin-1"), *(k + b": " + v + b"\r\n" for k, v in headers), b"\r\n"])
        endpoint_name, dep_name = dep.key.split("/", 1)
        tried: set[int] = set()
        while True:
            ports = self.svc.ports(endpoint_name, dep_name)
            fresh = [p for p in ports if p not in tried] or ([] if tried else ports)
            if not fresh:
                # every instance is (re)starting: wait a little for one, within the request's time
                if loop.time() > deadline - 1:
                    return _error(503, f"deployment {dep.name!r} has no ready instance")
                tried.clear()
                await asyncio.sleep(0.1)
                continue
            port = fresh[next(self._rr) % len(fresh)]
            try:
                return await self.pool.request(port, head, body, max(0.1, deadline - loop.time()))
            except _Dead:
                tried.add(port)  # died under us: try another instance
            except TimeoutError:
                return _error(408, f"deployment {dep.name!r} did not answer within request_timeout_ms="
                                   f"{s.request_timeout_ms}")

    async def swagger(self, name: str, scope: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        table = self.svc.route(name)
        if table is None:
            return _error(404, f"online endpoint {name!r} not found")
        headers = dict(scope["headers"])
        if not self._authorized(table, headers):  # Azure ML's swagger URI needs the key as scoring does
            return _error(401, "missing or wrong credentials: send 'Authorization: Bearer <key or token>'")
        target = headers.get(b"azureml-model-deployment", b"").decode("latin-1").strip() or _pick(
            table.traffic) or next(iter(table.deployments), None)
        if target is None or target not in table.deployments:
            return _error(404, f"online endpoint {name!r} has no deployment")
        ports = self.svc.ports(name, target)
        if not ports:
            return _error(503, f"deployment {target!r} has no ready instance")
        head = b"GET /swagger.json HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n"
        try:
            status, _h, payload = await self.pool.request(ports[0], head, b"", 10.0)
        except (_Dead, TimeoutError):
            return _error(503, f"deployment {target!r} did not answer for its swagger document")
        return status, [(b"content-type", b"application/json")], payload

    async def close(self) -> None:
        self.pool.close()


def _pick(traffic: list[tuple[str, int]]) -> str | None:
    if not traffic:
        return None
    if len(traffic) == 1:
        return traffic[0][0]
    x = random.random() * sum(w for _, w in traffic)
    for name, w in traffic:
        x -= w
        if x < 0:
            return name
    return traffic[-1][0]


def scoring_app(service: Any) -> Any:
    """The ASGI app serving ``/<name>/score`` and ``/<name>/swagger.json`` for the endpoint service."""
    return _Router(service)
