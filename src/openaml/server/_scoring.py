"""The online endpoint router, mounted at ``/endpoints``: key/token auth, traffic, mirroring.

``POST|GET /endpoints/<name>/score`` (the ``scoring_uri``) and ``GET /endpoints/<name>/swagger.json``.
A plain ASGI app (no request/response objects) forwarding to a ready worker of the chosen deployment
over pooled keep-alive HTTP/1.1 connections on the workers' unix sockets: this path runs for every
scoring request, so it does the least it can (the body is passed through as bytes, never re-encoded;
the workers speak only the small HTTP/1.1 subset written here).

Scoring is at most once: a worker that cannot be connected to (it is restarting) is skipped for
another instance, but a request once written to a worker is never sent to another. If that worker
dies the caller gets 502 naming how it exited; if it does not answer in time, 408 and the worker is
replaced. Both swagger and score need the endpoint's key or token (Azure ML's behaviour).
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import json
import random
import uuid
from typing import Any

__all__ = ["scoring_app", "ScoringShortcut"]

# not passed back from workers: hop-by-hop, or set by the router (a run()'s AMLResponse headers pass)
_HOP_HEADERS = frozenset((b"content-length", b"connection", b"keep-alive", b"transfer-encoding", b"date",
                          b"server", b"azureml-model-deployment", b"x-request-id", b"x-ms-request-id"))
# not forwarded to workers: hop-by-hop, set by the router, or secrets of the endpoint
_DROP_HEADERS = frozenset((b"host", b"connection", b"keep-alive", b"transfer-encoding", b"content-length",
                           b"authorization", b"x-request-id", b"te", b"upgrade", b"proxy-connection"))
_MAX_IDLE = 128  # idle connections kept per worker


class _Unreachable(Exception):
    """No connection to the worker: the request never reached it, another instance may take it."""


class _Dropped(Exception):
    """The connection failed after the request was written: the worker may have run it."""


def _json(status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> tuple[
        int, list[tuple[bytes, bytes]], bytes]:
    return status, [(b"content-type", b"application/json"), *(headers or [])], json.dumps(payload).encode()


def _error(status: int, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return _json(status, {"message": message})


class _Pool:
    """Keep-alive HTTP/1.1 connections to the workers' unix sockets."""

    def __init__(self) -> None:
        self._idle: dict[str, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}

    async def request(self, target: str, head: bytes, body: bytes, timeout: float) -> tuple[
            int, list[tuple[bytes, bytes]], bytes]:
        """Send one request on ``target`` (a socket path); ``(status, passed headers, body)``.

        Raises:
            _Unreachable: no connection could be made (nothing was sent).
            _Dropped: the connection closed or failed after the request was written.
            TimeoutError: no answer within ``timeout`` seconds (the connection is closed).
        """
        idle = self._idle.setdefault(target, [])
        conn = None
        while idle:
            reader, writer = idle.pop()
            if reader.at_eof() or writer.is_closing():  # the worker closed it (it exited): never used
                writer.close()
                continue
            conn = reader, writer
            break
        if conn is None:
            try:
                conn = await asyncio.open_unix_connection(target, limit=1 << 20)
            except OSError as exc:
                raise _Unreachable(str(exc)) from None
        reader, writer = conn
        try:
            if len(body) < 65536:
                writer.write(head + body)
            else:  # no copy of a big body
                writer.write(head)
                writer.write(body)
            async with asyncio.timeout(timeout):
                status, headers, payload, keep = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as exc:
            writer.close()
            raise _Dropped(f"{type(exc).__name__}: {exc}") from None
        except BaseException:
            writer.close()
            raise
        if keep and len(idle) < _MAX_IDLE:
            idle.append((reader, writer))
        else:
            writer.close()
        return status, headers, payload

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
        elif k not in _HOP_HEADERS:
            out.append((k, v))
    return status, out, (await reader.readexactly(length) if length else b""), keep


class _Slots:
    """Dispatch for one deployment: requests in flight per instance, and the FIFO queue of those waiting.

    A request goes to the instance with the fewest requests in flight (ties taken in turn) that has a
    free slot (``capacity``: ``max_concurrent_requests_per_instance``; None: no limit, a batching
    worker). When every instance is full it waits here, in arrival order, and the first slot freed
    on *any* instance is handed to the oldest waiter: Azure ML's frontend queues the same way in
    front of the instances (``max_queue_wait_ms``), rather than behind a busy one while another is
    idle. Not thread-safe: used on the server's event loop only.
    """

    def __init__(self) -> None:
        self.inflight: dict[str, int] = {}
        self.waiters: collections.deque[asyncio.Future[str]] = collections.deque()
        self.turn = 0

    def take(self, targets: list[str], capacity: Any, skip: set[str]) -> str | None:
        """Reserve a slot on the least-loaded instance of ``targets`` not in ``skip``; None when all are full."""
        best, fewest = None, 0
        n = len(targets)
        for i in range(n):
            t = targets[(self.turn + i) % n]
            if t in skip:
                continue
            k = self.inflight.get(t, 0)
            cap = capacity(t)
            if (cap is None or k < cap) and (best is None or k < fewest):
                best, fewest = t, k
        if best is not None:
            self.turn = (self.turn + 1) % (n or 1)
            self.inflight[best] = fewest + 1
        return best

    def queued(self) -> bool:
        while self.waiters and self.waiters[0].done():
            self.waiters.popleft()
        return bool(self.waiters)

    def release(self, target: str, live: list[str]) -> None:
        """Free the slot ``target`` held: handed to the oldest waiter while the instance still serves."""
        if target in live and self.queued():
            self.waiters.popleft().set_result(target)  # the slot changes hands; the count stays
            return
        k = self.inflight.get(target, 0) - 1
        if k > 0:
            self.inflight[target] = k
        else:
            self.inflight.pop(target, None)


class _Router:
    def __init__(self, service: Any) -> None:
        self.svc = service
        self.pool = _Pool()
        self._slots: dict[str, _Slots] = {}
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
        work = self.svc.ctx.services.get("background")
        if work is not None and not work.leading:
            # a standby server of a shared workspace: the deployments' workers run on the leader
            leader = work.leader_url()
            if leader:
                status, headers, body = _error(307, f"endpoint {name} is served by the server that leads this "
                                                    f"workspace: {leader}{scope['path']}")
                query = scope.get("query_string", b"")
                headers.append((b"location", f"{leader}{scope['path']}".encode()
                                + (b"?" + query if query else b"")))
            else:
                status, headers, body = _error(503, "no server leads this workspace right now (it is changing "
                                                    "hands): retry in a few seconds")
        elif action == "score" and method in ("POST", "GET"):
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
        head = b"".join([f"{method} {target} HTTP/1.1\r\nhost: worker\r\ncontent-length: {len(body)}\r\n"
                         .encode("latin-1"), *(k + b": " + v + b"\r\n" for k, v in headers), b"\r\n"])
        endpoint_name, dep_name = dep.key.split("/", 1)
        slots = self._slots.get(dep.key)
        if slots is None:
            slots = self._slots[dep.key] = _Slots()
        queue_deadline = loop.time() + s.max_queue_wait_ms / 1000
        tried: set[str] = set()
        while True:
            target = await self._acquire(slots, dep, endpoint_name, dep_name, tried, queue_deadline, deadline)
            if isinstance(target, tuple):
                return target  # 429 or 503
            reached = True
            try:
                return await self.pool.request(target, head, body, max(0.1, deadline - loop.time()))
            except _Unreachable:
                reached = False
                tried.add(target)  # never reached it (restarting or retired): another instance may take it
            except _Dropped as exc:
                reason = await self._exit_reason(target, str(exc))
                return _error(502, f"the worker serving this request {reason}; the request was not sent to "
                                   f"another instance (it may have run); see openaml online-deployment get-logs "
                                   f"-n {dep.name} -e {endpoint_name}")
            except TimeoutError:
                self.svc.recycle(endpoint_name, dep_name, target, "a request got no answer within "
                                 f"request_timeout_ms={s.request_timeout_ms} plus margins")
                return _error(408, f"deployment {dep.name!r} did not answer within request_timeout_ms="
                                   f"{s.request_timeout_ms}")
            finally:  # answered, failed or timed out: the slot is free (the next waiter gets it)
                slots.release(target, self.svc.targets(endpoint_name, dep_name) if reached else [])

    async def _acquire(self, slots: _Slots, dep: Any, endpoint_name: str, dep_name: str, tried: set[str],
                       queue_deadline: float, deadline: float) -> Any:
        """A slot on an instance of ``dep`` (its socket path), waiting in turn when all are full; or the
        error answer: 429 past ``max_queue_wait_ms`` with instances all busy, 503 when none is ready
        within the request's time."""
        loop = asyncio.get_running_loop()
        capacity = self.svc.capacity
        targets = self.svc.targets(endpoint_name, dep_name)
        if not slots.queued():  # nobody waits before us: take a free slot at once
            target = slots.take(targets, capacity, tried)
            if target is not None:
                return target
        fut: asyncio.Future[str] = loop.create_future()
        slots.waiters.append(fut)
        taken = False
        try:
            while True:
                left = queue_deadline - loop.time()
                await asyncio.wait((fut,), timeout=min(0.1, left) if left > 0.005 else 0.1)
                if fut.done():
                    taken = True
                    return fut.result()
                # instances (re)started or replaced meanwhile, or only tried ones were free: look again
                targets = self.svc.targets(endpoint_name, dep_name)
                if len(targets) > len(tried) and slots.queued() and slots.waiters[0] is fut:
                    target = slots.take(targets, capacity, tried)
                    if target is not None:
                        return target
                fresh = [t for t in targets if t not in tried]
                if not fresh:
                    # every instance is (re)starting: wait a little for one, within the request's time
                    if loop.time() > deadline - 1:
                        return _error(503, f"deployment {dep.name!r} has no ready instance")
                    tried.clear()
                elif loop.time() > queue_deadline:
                    return _error(429, f"too many requests: every instance of deployment {dep.name!r} is running "
                                       f"{dep.settings.max_concurrent_requests_per_instance} (its "
                                       "max_concurrent_requests_per_instance) and none freed a slot within "
                                       f"max_queue_wait_ms={dep.settings.max_queue_wait_ms}")
        finally:
            if not fut.done():  # 429, 503, or this request cancelled
                fut.cancel()
                try:
                    slots.waiters.remove(fut)
                except ValueError:
                    pass
            elif not taken and not fut.cancelled():  # handed a slot, then cancelled: pass it on
                slots.release(fut.result(), self.svc.targets(endpoint_name, dep_name))

    async def _exit_reason(self, target: str, fallback: str) -> str:
        """How the worker on ``target`` ended (its exit is seen a moment after its sockets close)."""
        for _ in range(100):
            reason = self.svc.exit_reason(target)
            if reason:
                return reason
            await asyncio.sleep(0.02)
        return f"closed the connection before answering ({fallback})"

    async def swagger(self, name: str, scope: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        table = self.svc.route(name)
        if table is None:
            return _error(404, f"online endpoint {name!r} not found")
        headers = dict(scope["headers"])
        if not self._authorized(table, headers):
            return _error(401, "missing or wrong credentials: the swagger document needs 'Authorization: Bearer "
                               f"<key or token>' as scoring does (openaml online-endpoint get-credentials -n {name})")
        target = headers.get(b"azureml-model-deployment", b"").decode("latin-1").strip() or _pick(
            table.traffic) or next(iter(table.deployments), None)
        if target is None or target not in table.deployments:
            return _error(404, f"online endpoint {name!r} has no deployment")
        targets = self.svc.targets(name, target)
        if not targets:
            return _error(503, f"deployment {target!r} has no ready instance")
        head = b"GET /swagger.json HTTP/1.1\r\nhost: worker\r\ncontent-length: 0\r\n\r\n"
        try:
            status, _h, payload = await self.pool.request(targets[0], head, b"", 10.0)
        except (_Unreachable, _Dropped, TimeoutError):
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


class ScoringShortcut:
    """ASGI middleware: requests under ``/endpoints/`` go straight to the scoring router ``scoring``.

    The application's own stack (FastAPI's route matching over every API route, its exception and
    exit-stack layers, the auth layer, for which scoring is public: the router checks the endpoint's
    key) would otherwise run for every scoring request; a profile of score.py x2 at concurrency 32
    showed route matching alone at about half of the server's time per request. Placed inside the
    request guard (Host and Origin checks still apply) and inside Starlette's error middleware. The
    scope is what the ``/endpoints`` mount would pass (``root_path`` extended, ``path`` unchanged).
    """

    def __init__(self, app: Any, scoring: Any, prefix: str = "/endpoints") -> None:
        self.app = app
        self.scoring = scoring
        self.prefix = prefix
        self.slash = prefix + "/"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.slash):
            await self.scoring({**scope, "root_path": scope.get("root_path", "") + self.prefix}, receive, send)
            return
        await self.app(scope, receive, send)
