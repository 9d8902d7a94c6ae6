"""Run a workspace server: one per workspace, guarded by a lock file, URL written to server.json."""

from __future__ import annotations

import fcntl
import gc
import ipaddress
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from openaml._settings import Settings
from openaml.errors import ConflictError, ValidationError
from openaml.workspace import WorkspaceLayout, atomic_write_json, read_server_info, server_lock_holder

__all__ = ["serve", "stop_server", "is_loopback"]

log = logging.getLogger("openaml.server")


MIN_TOKEN_LENGTH = 16


def is_loopback(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address.

    Decided on the resolved addresses, not on the spelling: ``127.example.org`` is whatever DNS
    says, ``0.0.0.0`` and ``::`` are every interface. A name that does not resolve is not loopback.
    """
    name = host.strip("[]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addrs = {str(i[4][0]).split("%", 1)[0] for i in infos}
    return bool(addrs) and all(ipaddress.ip_address(a).is_loopback for a in addrs)


def check_token(token: str) -> None:
    """Refuse tokens too short to resist guessing (at least :data:`MIN_TOKEN_LENGTH` characters).

    Raises:
        ValidationError: the token is shorter, or has characters a header cannot carry.
    """
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValidationError(f"the server token has {len(token)} characters; use at least {MIN_TOKEN_LENGTH} "
                              "(or give none and let the server generate one: it writes it to server.token "
                              "in the workspace folder)")
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise ValidationError("the server token must be printable ASCII without spaces "
                              "(it travels in an HTTP header)")


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
    # who holds the lock: lets `server stop` find a server that has not written server.json yet
    f.seek(0)
    f.truncate()
    f.write(json.dumps({"pid": os.getpid(), "pid_started": process_start_time(os.getpid())}))
    f.flush()
    return f


def serve(settings: Settings, *, ready_fd: int | None = None) -> None:
    """Bind, write ``server.json`` and serve until SIGTERM/SIGINT. Blocks.

    Raises:
        ValidationError: a non-loopback host without a token (security by default).
        ConflictError: another server holds this workspace.
    """
    # MLflow's Flask app reads its host allow-list when mlflow.server is first imported; the
    # request guard (server/_guard.py) already checks Host against this server's names on every
    # route, /mlflow included, so MLflow's own check must not refuse them (a job logging to a
    # server on 127.0.0.2 would fail).
    os.environ["MLFLOW_SERVER_ALLOWED_HOSTS"] = "*"
    if bool(settings.ssl_certfile) != bool(settings.ssl_keyfile):
        raise ValidationError("give both --ssl-certfile and --ssl-keyfile (PEM files) to serve HTTPS")
    for f in (settings.ssl_certfile, settings.ssl_keyfile):
        if f is not None and not Path(f).is_file():
            raise ValidationError(f"TLS file {f} not found")
    if settings.token:
        check_token(settings.token)
    if settings.ssl_certfile:
        # jobs inherit it (the runner is our child): their mlflow client trusts this server's
        # certificate, self-signed or not, without replacing the CA set used for other hosts
        os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"] = str(Path(settings.ssl_certfile).resolve())
    layout = WorkspaceLayout(settings.workspace)
    layout.info()
    # the lock first, before the heavy imports below (FastAPI, MLflow: about a second): a CLI call
    # racing this start sees a server starting and waits for it instead of starting its own
    lock = _lock(layout)
    # library chatter the user cannot act on stays out of the foreground server's output (review
    # minor): MLflow's "Creating initial MLflow database tables" and Starlette's deprecation of the
    # WSGI bridge that MLflow's own app imports
    warnings.filterwarnings("ignore", module=r"mlflow\.server\.fastapi_app")
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    import uvicorn

    from openaml.server import create_app
    from openaml.server._limits import uvicorn_options

    layout.ensure()
    from openaml.services.uploads import clean_staging

    clean_staging(layout.uploads)  # uploads killed with the previous server (we hold the lock)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.FileHandler(layout.logs / "server.log"), logging.StreamHandler(sys.stderr)],
    )
    remote = not is_loopback(settings.host)
    if remote and not settings.token:
        settings.token = new_token()
        log.warning("--host %s is reachable from other machines and no token was given: generated one, "
                    "written to %s (owner-only); clients on this machine read it from there",
                    settings.host, layout.root / "server.token")
    if remote and not settings.ssl_certfile:
        log.warning("--host %s is reachable from other machines without TLS: the bearer token and all data "
                    "cross the network in clear; give --ssl-certfile/--ssl-keyfile", settings.host)
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, _choose_port(layout, settings)))
    sock.listen(2048)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    scheme = "https" if settings.ssl_certfile else "http"
    url = f"{scheme}://{'[' + shown_host + ']' if ':' in shown_host else shown_host}:{port}"
    app = create_app(settings, url=url)
    tls: dict[str, Any] = ({"ssl_certfile": str(settings.ssl_certfile), "ssl_keyfile": str(settings.ssl_keyfile)}
                           if settings.ssl_certfile else {})
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5,
                            backlog=2048, **uvicorn_options(settings.limits), **tls)
    server = uvicorn.Server(config)
    info = {"url": url, "pid": os.getpid(), "pid_started": process_start_time(os.getpid()),
            "host": settings.host, "port": port, "started": time.time(), "token": bool(settings.token)}
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
        # the application, its imports and MLflow's are long-lived: frozen, a full collection no longer walks
        # them (unfrozen: a 100-200 ms stop of every request in flight, the scoring router's included)
        gc.collect()
        gc.freeze()
        atomic_write_json(layout.server_file, info)
        print(f"openaml server for workspace {layout.info()['name']} listening on {url}", flush=True)
        if ready_fd is not None:
            os.write(ready_fd, (url + "\n").encode())
            os.close(ready_fd)

    server.startup = _startup  # type: ignore[method-assign]
    # uvicorn (>= 0.29) re-raises the SIGTERM/SIGINT it caught once it has shut down, under the handlers
    # that were there before it: with the default ones the process died there, before the cleanup
    # below, and left a server.json naming a dead pid. These handlers end the process through it.
    previous = {s: signal.signal(s, _stop_after_shutdown) for s in (signal.SIGTERM, signal.SIGINT)}
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
            for s, handler in previous.items():
                signal.signal(s, handler)


def _stop_after_shutdown(signum: int, frame: Any) -> None:
    """A SIGTERM/SIGINT re-raised by uvicorn after its shutdown: leave through ``serve``'s cleanup
    (exit code 0: the server stopped as asked)."""
    raise SystemExit(0)


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
    """Stop the workspace's server (SIGTERM, then SIGKILL after ``timeout``). Returns its pid.

    A server still starting (it holds ``server.lock`` but has not written ``server.json`` yet) is
    found through the pid it wrote into the lock file and stopped too. Returns None when no server
    of this workspace runs; never signals a process that is not that server (pid and start time).
    """
    info = read_server_info(layout)
    if info and not _is_that_server(int(info["pid"]), info):
        # a stale server.json (the server was killed, its pid reused): never signal a stranger
        log.warning("server.json names pid %s, which is not this workspace's server any more; removed it",
                    info["pid"])
        layout.server_file.unlink(missing_ok=True)
        info = None
    if not info:
        info = server_lock_holder(layout)
        if not info or not isinstance(info.get("pid"), int) or not _is_that_server(info["pid"], info):
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
    cur = read_server_info(layout)
    if cur is None or cur.get("pid") == pid:
        layout.server_file.unlink(missing_ok=True)
    return pid


def process_start_time(pid: int) -> float | None:
    """Start time of process ``pid`` (seconds since the epoch, as psutil reports), None if gone."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None


def _is_that_server(pid: int, info: dict[str, Any]) -> bool:
    """The process ``pid`` is the server ``info`` describes: same start time (else an openaml command line)."""
    started = process_start_time(pid)
    if started is None:
        return False
    recorded = info.get("pid_started")
    if recorded is not None:
        return abs(float(recorded) - started) < 1.0
    import psutil

    try:  # server.json written before start times were recorded
        cmd = " ".join(psutil.Process(pid).cmdline())
    except (psutil.Error, OSError):
        return False
    return "openaml" in cmd and "server" in cmd


def new_token() -> str:
    """A fresh server token: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def default_workspace_path(p: str | os.PathLike[str]) -> Path:
    return Path(p).expanduser().resolve()
