"""Run a workspace server: one per workspace, guarded by a lock file, URL written to server.json."""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from openaml._settings import Settings
from openaml.errors import ConflictError, ValidationError
from openaml.workspace import WorkspaceLayout, atomic_write_json, read_server_info

__all__ = ["serve", "stop_server", "is_loopback"]

log = logging.getLogger("openaml.server")


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def _lock(layout: WorkspaceLayout) -> Any:
    f = open(layout.root / "server.lock", "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        info = read_server_info(layout) or {}
        raise ConflictError(f"a server for workspace {layout.root} is already running"
                            f"{' at ' + info['url'] if info.get('url') else ''}; stop it with: "
                            f"openaml server stop --workspace {layout.root}") from None
    return f


def serve(settings: Settings, *, ready_fd: int | None = None) -> None:
    """Bind, write ``server.json`` and serve until SIGTERM/SIGINT. Blocks.

    Raises:
        ValidationError: a non-loopback host without a token (security by default).
        ConflictError: another server holds this workspace.
    """
    import uvicorn

    from openaml.server import create_app

    if not is_loopback(settings.host) and not settings.token:
        raise ValidationError(f"--host {settings.host} is reachable from other machines: give --token "
                              "(or set OPENAML_TOKEN) so requests must authenticate")
    layout = WorkspaceLayout(settings.workspace)
    layout.info()
    lock = _lock(layout)
    layout.ensure()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.FileHandler(layout.logs / "server.log"), logging.StreamHandler(sys.stderr)],
    )
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, _choose_port(layout, settings)))
    sock.listen(2048)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{shown_host}:{port}"
    app = create_app(settings, url=url)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5,
                            limit_concurrency=None, backlog=2048)
    server = uvicorn.Server(config)
    info = {"url": url, "pid": os.getpid(), "host": settings.host, "port": port,
            "started": time.time(), "token": bool(settings.token)}
    (layout.root / "server.port").write_text(str(port), encoding="utf-8")
    if settings.token:
        # local clients that can read the workspace folder may use its token (file is owner-only)
        token_file = layout.root / "server.token"
        token_file.touch(mode=0o600, exist_ok=True)
        token_file.chmod(0o600)
        token_file.write_text(settings.token, encoding="utf-8")
    else:
        (layout.root / "server.token").unlink(missing_ok=True)

    original_startup = server.startup

    async def _startup(sockets: Any = None) -> None:
        await original_startup(sockets=sockets)
        atomic_write_json(layout.server_file, info)
        print(f"openaml server for workspace {layout.info()['name']} listening on {url}", flush=True)
        if ready_fd is not None:
            os.write(ready_fd, (url + "\n").encode())
            os.close(ready_fd)

    server.startup = _startup  # type: ignore[method-assign]
    try:
        server.run(sockets=[sock])
    finally:
        try:
            if layout.server_file.is_file():
                cur = read_server_info(layout)
                if cur is None or cur.get("pid") == os.getpid():
                    layout.server_file.unlink(missing_ok=True)
        finally:
            lock.close()


def _choose_port(layout: WorkspaceLayout, settings: Settings) -> int:
    """``--port 0`` reuses the workspace's previous port when it is free.

    Jobs that outlive a server restart keep ``MLFLOW_TRACKING_URI`` in their environment; coming
    back on the same port keeps their MLflow calls working after the restart.
    """
    if settings.port:
        return settings.port
    try:
        previous = int((layout.root / "server.port").read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return 0
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((settings.host, previous))
    except OSError:
        return 0
    finally:
        probe.close()
    return previous


def stop_server(layout: WorkspaceLayout, timeout: float = 15.0) -> int | None:
    """Stop the workspace's server (SIGTERM, then SIGKILL after ``timeout``). Returns its pid."""
    info = read_server_info(layout)
    if not info:
        return None
    pid = int(info["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    layout.server_file.unlink(missing_ok=True)
    return pid


def new_token() -> str:
    return secrets.token_urlsafe(24)


def default_workspace_path(p: str | os.PathLike[str]) -> Path:
    return Path(p).expanduser().resolve()
