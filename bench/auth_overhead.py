"""Cost of the auth layer per request (issue 10): ``AuthMiddleware`` in front of an empty app.

Usage: ``python bench/auth_overhead.py``. Prints microseconds per request for a request without a
token (the local owner on a loopback server), with a user's token (seen before: answered from the
cache) and with a user's token never seen (a database look-up off the event loop).

A tokenless request is checked against its peer process (server/_peer.py) once per connection: the
first request of a connection pays the look-up (``/proc/net/tcp``, the active jobs in the store, the
open files of the server's child process trees: here 4 ``sleep`` children), later ones a dictionary
hit. The scopes carry the addresses of a real loopback connection of this process.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any


async def _main() -> None:
    from openaml._settings import Settings
    from openaml.server import _peer
    from openaml.server._app import build_context
    from openaml.server._auth import AuthMiddleware
    from openaml.services._actor import OWNER
    from openaml.workspace import create_workspace

    tmp = Path(tempfile.mkdtemp())
    os.environ["OPENAML_HOME"] = str(tmp / "home")
    create_workspace("auth-bench", tmp / "ws", home=tmp / "home")
    ctx = build_context(Settings(workspace=tmp / "ws"))
    users = ctx.services["users"]
    token = users.create({"name": "u", "role": "Contributor"}, OWNER)["token"]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    mw = AuthMiddleware(app, ctx, token=None, open_loopback=True)
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, peer = listener.accept()
    children = [subprocess.Popen(["sleep", "600"]) for _ in range(4)]
    denied: list[int] = []

    async def deny_counter(message: Any) -> None:
        if message.get("type") == "http.response.start" and message.get("status") == 401:
            denied.append(1)

    def scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
        return {"type": "http", "method": "POST", "path": "/mlflow/api/2.0/mlflow/runs/log-metric",
                "headers": headers, "query_string": b"", "client": peer, "server": listener.getsockname()}

    async def per_request(headers: list[tuple[bytes, bytes]], n: int, cold: str = "") -> float:
        start = time.perf_counter()
        for _ in range(n):
            if cold == "user":
                users._users.clear()
            elif cold == "peer":
                _peer._verdicts.clear()
            await mw(scope(headers), receive, deny_counter)
        return (time.perf_counter() - start) / n * 1e6

    bearer = [(b"authorization", f"Bearer {token}".encode())]
    try:
        for label, headers, n, cold in (("no token, same connection", [], 20000, ""),
                                        ("no token, new connection", [], 300, "peer"),
                                        ("user token, cached", bearer, 5000, ""),
                                        ("user token, not cached", bearer, 500, "user")):
            runs = [await per_request(headers, n, cold) for _ in range(3)]
            print(f"{label:26s} " + "  ".join(f"{r:7.1f}" for r in runs) + "  us per request")
        assert not denied, "the bench's own tokenless requests were refused"
    finally:
        for c in children:
            c.kill()
            c.wait()
        for s in (client, accepted, listener):
            s.close()
        ctx.store.close()


if __name__ == "__main__":
    asyncio.run(_main())
