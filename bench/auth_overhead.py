"""Cost of the auth layer per request (issue 10): ``AuthMiddleware`` in front of an empty app.

Usage: ``python bench/auth_overhead.py``. Prints microseconds per request for a request without a
token (the local owner on a loopback server), with a user's token (seen before: answered from the
cache) and with a user's token never seen (a database look-up off the event loop).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any


async def _main() -> None:
    from openaml._settings import Settings
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

    def scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
        return {"type": "http", "method": "POST", "path": "/mlflow/api/2.0/mlflow/runs/log-metric",
                "headers": headers, "query_string": b""}

    async def per_request(headers: list[tuple[bytes, bytes]], n: int, cold: bool = False) -> float:
        start = time.perf_counter()
        for _ in range(n):
            if cold:
                users._users.clear()
            await mw(scope(headers), receive, send)
        return (time.perf_counter() - start) / n * 1e6

    bearer = [(b"authorization", f"Bearer {token}".encode())]
    for label, headers, n, cold in (("no token (local owner)", [], 20000, False),
                                    ("user token, cached", bearer, 5000, False),
                                    ("user token, not cached", bearer, 500, True)):
        runs = [await per_request(headers, n, cold) for _ in range(3)]
        print(f"{label:26s} " + "  ".join(f"{r:7.1f}" for r in runs) + "  us per request")
    ctx.store.close()


if __name__ == "__main__":
    asyncio.run(_main())
