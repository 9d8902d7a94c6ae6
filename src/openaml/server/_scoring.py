"""The online endpoint router, mounted at ``/endpoints``: key/token auth, traffic, mirroring.

``POST|GET /endpoints/<name>/score`` (the ``scoring_uri``) and ``GET /endpoints/<name>/swagger.json``.
Requests are forwarded to a ready worker of the chosen deployment with one pooled async httpx
client; a worker that refuses the connection (it just died) is skipped for another instance.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import random
import uuid
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["scoring_app"]

_PASS_HEADERS = ("content-type", "x-ms-run-fn-exec-ms", "x-ms-run-function-failed")


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


class _Router:
    def __init__(self, service: Any) -> None:
        self.svc = service
        self._client: httpx.AsyncClient | None = None
        self._rr = itertools.count()
        self._mirrors: set[asyncio.Task[Any]] = set()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=512, max_keepalive_connections=256), timeout=None,
                trust_env=False)
        return self._client

    def _authorized(self, table: Any, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        given = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not given:
            return False
        if table.auth_mode == "key":
            return any(hmac.compare_digest(given.encode(), k.encode()) for k in table.keys)
        from openaml.services.endpoints import check_token

        return check_token(given, table.name, table.token_secret)

    async def score(self, request: Request) -> Response:
        name = request.path_params["name"]
        table = self.svc.route(name)
        if table is None:
            return _error(404, f"online endpoint {name!r} not found")
        if not self._authorized(table, request):
            return _error(401, "missing or wrong credentials: send 'Authorization: Bearer <key or token>' "
                               f"(openaml online-endpoint get-credentials -n {name})")
        target = request.headers.get("azureml-model-deployment")
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
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return _error(413, f"the request body is {declared} bytes; the limit is {limit}")
        body = await request.body()
        if len(body) > limit:
            return _error(413, f"the request body is {len(body)} bytes; the limit is {limit}")
        rid = request.headers.get("x-request-id") or request.headers.get("x-ms-client-request-id") or str(uuid.uuid4())
        headers = {"content-type": request.headers.get("content-type", "application/json"), "x-request-id": rid}
        if not target:
            for mname, pct in table.mirror:
                if mname in table.deployments and random.random() * 100 < pct:
                    task = asyncio.ensure_future(self._forward(table.deployments[mname], request.method, body,
                                                               {**headers, "x-openaml-mirror": "1"},
                                                               request.url.query))
                    self._mirrors.add(task)
                    task.add_done_callback(self._mirrors.discard)
        resp = await self._forward(dep, request.method, body, headers, request.url.query)
        resp.headers["azureml-model-deployment"] = dep.name
        resp.headers["x-request-id"] = rid
        resp.headers["x-ms-request-id"] = rid
        return resp

    async def _forward(self, dep: Any, method: str, body: bytes, headers: dict[str, str], query: str) -> Response:
        s = dep.settings
        timeout = s.request_timeout_ms / 1000 + s.max_queue_wait_ms / 1000 + 5.0
        deadline = asyncio.get_running_loop().time() + timeout
        tried: set[int] = set()
        while True:
            ports = self.svc.ports(*dep.key.split("/", 1))
            fresh = [p for p in ports if p not in tried] or ([] if tried else ports)
            if not fresh:
                # every instance is (re)starting: wait a little for one, within the request's time
                if asyncio.get_running_loop().time() > deadline - 1:
                    return _error(503, f"deployment {dep.name!r} has no ready instance")
                tried.clear()
                await asyncio.sleep(0.1)
                continue
            port = fresh[next(self._rr) % len(fresh)]
            url = f"http://127.0.0.1:{port}/score" + (f"?{query}" if query else "")
            try:
                r = await self.client.request(method, url, content=body, headers=headers,
                                              timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
            except (httpx.ConnectError, httpx.RemoteProtocolError):
                tried.add(port)  # died under us: try another instance
                continue
            except httpx.TimeoutException:
                return _error(408, f"deployment {dep.name!r} did not answer within request_timeout_ms="
                                   f"{s.request_timeout_ms}")
            out = {k: r.headers[k] for k in _PASS_HEADERS if k in r.headers}
            return Response(r.content, status_code=r.status_code, headers=out)

    async def swagger(self, request: Request) -> Response:
        name = request.path_params["name"]
        table = self.svc.route(name)
        if table is None:
            return _error(404, f"online endpoint {name!r} not found")
        target = request.headers.get("azureml-model-deployment") or _pick(table.traffic) or next(
            iter(table.deployments), None)
        if target is None or target not in table.deployments:
            return _error(404, f"online endpoint {name!r} has no deployment")
        ports = self.svc.ports(name, target)
        if not ports:
            return _error(503, f"deployment {target!r} has no ready instance")
        r = await self.client.get(f"http://127.0.0.1:{ports[0]}/swagger.json", timeout=10)
        return Response(r.content, status_code=r.status_code, media_type="application/json")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def _pick(traffic: list[tuple[str, int]]) -> str | None:
    if not traffic:
        return None
    x = random.random() * sum(w for _, w in traffic)
    for name, w in traffic:
        x -= w
        if x < 0:
            return name
    return traffic[-1][0]


def scoring_app(service: Any) -> Starlette:
    """The ASGI app serving ``/<name>/score`` and ``/<name>/swagger.json`` for the endpoint service."""
    router = _Router(service)
    app = Starlette(routes=[
        Route("/{name}/score", router.score, methods=["POST", "GET"]),
        Route("/{name}/swagger.json", router.swagger, methods=["GET"]),
    ])
    app.state.router = router
    return app
