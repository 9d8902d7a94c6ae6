"""Fixtures of the security tests: servers of their own (users are created in them, or started with
extra ``openaml server`` flags)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from openaml.environments import read_only_mounts_available
from tests.conftest import ServerHandle, start_server

#: the tests of what a job or worker cannot see or write: they need what the runner itself uses
#: (mount and PID namespaces: ``unshare -m`` as root, with ``setpriv``); elsewhere the job or
#: deployment is warned instead (tested by the ``*_is_warned_*`` tests)
needs_namespaces = pytest.mark.skipif(not read_only_mounts_available(),
                                      reason="hiding and read-only views need mount namespaces (unshare -m as root)")


@pytest.fixture(scope="module")
def sec_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """A loopback server started without a token (the default), in its own workspace."""
    handle = start_server(tmp_path_factory.mktemp("sec") / "ws", name=f"sec-{uuid.uuid4().hex[:8]}")
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def owner(sec_server: ServerHandle) -> Iterator[Any]:
    from openaml import MLClient

    client = MLClient(workspace=sec_server.url)
    yield client
    client.close()


def user_token(owner: Any, name: str, role: str) -> str:
    token = owner.users.create(name, role).token
    assert token and len(token) >= 40
    return token


def api(url: str, token: str | None) -> httpx.Client:
    """A raw HTTP client of the server with ``token`` (None: no Authorization header)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def workspace_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if not p.is_symlink()]


@dataclass
class Served:
    url: str
    path: Path
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def launch(workspace: Path, *args: str, env: dict[str, str] | None = None, wait: bool = True) -> Served:
    """Create a workspace (if needed) and run ``openaml server --workspace W --port 0 *args``."""
    full_env = {**os.environ, **(env or {})}
    if not (workspace / "workspace.json").exists():
        subprocess.run([sys.executable, "-m", "openaml", "workspace", "create", "-n", f"sec-{uuid.uuid4().hex[:8]}", "--path",
                        str(workspace)], check=True, env=full_env, capture_output=True)
    log = workspace.parent / f"{workspace.name}-server.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "openaml", "server", "--workspace", str(workspace),
                                 "--port", "0", *args], stdout=out, stderr=subprocess.STDOUT, env=full_env)
    served = Served(url="", path=workspace, proc=proc, log=log)
    if not wait:
        return served
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{served.output()[-3000:]}")
        info_file = workspace / "server.json"
        if info_file.exists():
            info = json.loads(info_file.read_text())
            if info.get("pid") == proc.pid:
                served.url = info["url"]
                return served
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start in 90 s")


def launch_without_unshare(tmp_path: Path) -> tuple[Path, Served]:
    """A server (workspace ``tmp_path/ws``) whose PATH has a shell and a few tools but no ``unshare``,
    as on a machine without mount namespaces: what a job or worker is told there."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "sh", "env", "cat", "ls"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    ws = tmp_path / "ws"
    return ws, launch(ws, env={"PATH": str(bin_dir), "OPENAML_HOME": str(tmp_path / "home")})


@pytest.fixture
def serve_with(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """``serve_with("--header-timeout", "2")``: a server of its own, stopped after the test."""
    started: list[Served] = []

    def start(*args: str, env: dict[str, str] | None = None, name: str = "ws") -> Served:
        s = launch(tmp_path / name, *args, env=env)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def plant_home_secrets(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An ``$OPENAML_HOME`` holding what a job or worker must not read: a saved client token
    (``credentials.json``) and another workspace's ``secret.key``; returns (home, credentials, other)."""
    home = tmp_path / "home"
    home.mkdir()
    creds = home / "credentials.json"
    creds.write_text(json.dumps({"http://elsewhere": {"token": "saved-client-token-0123456789"}}))
    other = home / "workspaces" / "other"
    other.mkdir(parents=True)
    (other / "secret.key").write_text("other-workspace-key")
    return home, creds, other
