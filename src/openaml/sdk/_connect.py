"""Reach a workspace's server, starting it in the background when needed (like ``ray.init()``)."""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import time
from pathlib import Path

import httpx

from openaml.errors import ServerUnavailableError
from openaml.workspace import WorkspaceLayout, WorkspaceTarget, read_server_info, server_lock_holder

__all__ = ["connect", "start_background_server"]


def _healthy(url: str, token: str | None) -> bool:
    try:
        r = httpx.get(url + "/health", timeout=5, verify=not url.startswith("http://"))  # no CA bundle for http
        return r.status_code == 200
    except httpx.HTTPError:
        return False


def connect(target: WorkspaceTarget, *, autostart: bool = True, timeout: float = 90.0) -> str:
    """Return the base URL of the target's server, starting a local one if it is not running.

    Raises:
        ServerUnavailableError: a URL target does not answer, or a local server failed to start
            (the tail of its log is included).
    """
    if target.url:
        if not _healthy(target.url, target.token):
            raise ServerUnavailableError(f"no openaml server answers at {target.url}")
        return target.url
    assert target.path is not None
    layout = WorkspaceLayout(target.path)
    layout.info()  # raises NotFoundError for a folder that is not a workspace
    info = read_server_info(layout)
    if info and _healthy(info["url"], target.token):
        return str(info["url"])
    if not autostart:
        raise ServerUnavailableError(f"the server of workspace {target.path} is not running; "
                                     f"start it with: openaml server --workspace {target.path}")
    return start_background_server(layout, timeout=timeout)


def start_background_server(layout: WorkspaceLayout, timeout: float = 90.0) -> str:
    layout.logs.mkdir(parents=True, exist_ok=True)
    with open(layout.root / "autostart.lock", "a+") as lockf:
        fcntl.flock(lockf.fileno(), fcntl.LOCK_EX)  # one client starts it, the others wait and reuse
        info = read_server_info(layout)
        if info and _healthy(info["url"], None):
            return str(info["url"])
        url = _wait_for_starting_server(layout, timeout)
        if url is not None:
            return url
        env = dict(os.environ)
        env.pop("OPENAML_WORKSPACE", None)
        if env.pop("OPENAML_CLI_PYDANTIC_PLUGINS_OFF", None):  # set by the CLI for itself, not for the server
            env.pop("PYDANTIC_DISABLE_PLUGINS", None)
        pid = _spawn_server(layout, env)
        deadline = time.monotonic() + timeout
        exited = False
        while time.monotonic() < deadline:
            exited = _exited(pid)
            if exited:
                break
            info = read_server_info(layout)
            if info and int(info.get("pid", 0)) == pid and _healthy(info["url"], None):
                return str(info["url"])
            time.sleep(0.05)
        if not exited:
            os.kill(pid, signal.SIGTERM)
        else:  # it found the workspace held: a server started by hand meanwhile, still starting
            url = _wait_for_starting_server(layout, max(1.0, deadline - time.monotonic()))
            if url is not None:
                return url
        tail = _tail(layout.logs / "server.out")
        raise ServerUnavailableError(f"the server of workspace {layout.root} did not start; "
                                     f"last lines of {layout.logs / 'server.out'}:\n{tail}")


def _spawn_server(layout: WorkspaceLayout, env: dict[str, str]) -> int:
    """Start ``openaml server`` for ``layout`` in its own session (it outlives this process), output
    appended to ``logs/server.out``, working directory the workspace. Returns its pid.

    ``os.posix_spawn`` rather than ``subprocess.Popen``: the server keeps running after this call on
    purpose, and a dropped ``Popen`` object warns ``ResourceWarning: subprocess N is still running``.
    ``sh`` changes directory and ``exec``s the server (same pid).
    """
    argv = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', str(layout.root),
            sys.executable, "-m", "openaml", "server", "--workspace", str(layout.root), "--port", "0"]
    out = str(layout.logs / "server.out")
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
               (os.POSIX_SPAWN_DUP2, 1, 2)]
    return os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)


def _exited(pid: int) -> bool:
    """Whether our child ``pid`` has exited (reaps it then)."""
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


def _wait_for_starting_server(layout: WorkspaceLayout, timeout: float) -> str | None:
    """A server started by other means (``openaml server`` in another terminal) that is still starting:
    its URL once it answers; None when no server holds the workspace (or it went away without
    answering), so that the caller starts one."""
    deadline = time.monotonic() + timeout
    while server_lock_holder(layout) is not None:
        info = read_server_info(layout)
        if info and _healthy(info["url"], None):
            return str(info["url"])
        if time.monotonic() > deadline:
            raise ServerUnavailableError(f"a server of workspace {layout.root} is starting but did not answer in "
                                         f"{timeout:g} s; see {layout.logs / 'server.out'} or its terminal")
        time.sleep(0.05)
    return None


def _tail(p: Path, n: int = 20) -> str:
    try:
        return "\n".join(p.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"
