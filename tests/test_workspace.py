"""Workspaces: creation rules, discovery order, server guards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openaml.errors import ConflictError, ValidationError
from openaml.workspace import create_workspace, discover


def test_create_rules(tmp_path: Path) -> None:
    home = tmp_path / "home"
    layout = create_workspace("ws1", tmp_path / "ws1", home=home)
    assert layout.info()["name"] == "ws1"
    with pytest.raises(ValidationError, match="invalid"):
        create_workspace("bad name!", tmp_path / "x", home=home)
    with pytest.raises(ConflictError):
        create_workspace("ws1", tmp_path / "other", home=home)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f.txt").write_text("x")
    with pytest.raises(ConflictError, match="not empty"):
        create_workspace("ws2", tmp_path / "full", home=home)
    # regression: a --path that is a file gave a traceback
    with pytest.raises(ValidationError, match="is a file"):
        create_workspace("ws3", tmp_path / "full" / "f.txt", home=home)


def test_discovery_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"OPENAML_HOME": str(home)}
    a = create_workspace("alpha", tmp_path / "alpha", home=home)
    b = create_workspace("beta", tmp_path / "beta", home=home)
    project = tmp_path / "project" / "sub"
    project.mkdir(parents=True)
    (tmp_path / "project" / ".openaml").mkdir()
    (tmp_path / "project" / ".openaml" / "config.json").write_text(json.dumps({"workspace": str(b.root)}))
    # config.json found upward
    assert discover(cwd=project, environ=env).path == b.root
    # the environment variable wins over config.json
    assert discover(cwd=project, environ={**env, "OPENAML_WORKSPACE": str(a.root)}).path == a.root
    # an explicit argument wins over both; names are looked up in the index
    old = os.environ.get("OPENAML_HOME")
    os.environ["OPENAML_HOME"] = str(home)
    try:
        assert discover("alpha", cwd=project, environ={**env, "OPENAML_WORKSPACE": str(b.root)}).path == a.root
    finally:
        if old is None:
            os.environ.pop("OPENAML_HOME")
        else:
            os.environ["OPENAML_HOME"] = old
    assert discover("http://127.0.0.1:9/", environ=env).url == "http://127.0.0.1:9"
    # else the default workspace, created on first use
    target = discover(cwd=tmp_path, environ=env)
    assert target.path == home / "workspaces" / "default" and (target.path / "workspace.json").exists()


def test_server_refuses_public_host_with_a_short_token(tmp_path: Path) -> None:
    # without a token a public --host now generates one (tests/security/test_sec_tls_tokens.py)
    env = {**os.environ, "OPENAML_HOME": str(tmp_path / "home"), "OPENAML_TOKEN": "x"}
    subprocess.run([sys.executable, "-m", "openaml", "workspace", "create", "-n", "pub", "--path",
                    str(tmp_path / "pub")], check=True, env=env, capture_output=True)
    r = subprocess.run([sys.executable, "-m", "openaml", "server", "-w", str(tmp_path / "pub"), "--host", "0.0.0.0"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "at least 16" in r.stderr


def test_second_server_on_a_workspace_is_refused(server) -> None:  # type: ignore[no-untyped-def]
    r = subprocess.run([sys.executable, "-m", "openaml", "server", "-w", str(server.path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "already running" in r.stderr


def _hand_started_server(tmp_path: Path, name: str) -> tuple[dict[str, str], Path, subprocess.Popen[bytes]]:
    """A new workspace and ``openaml server`` on it started as a user would in another terminal (not
    waited for): the environment of the calls, the workspace folder and the server's process."""
    env = {**os.environ, "OPENAML_HOME": str(tmp_path / "home")}
    env.pop("OPENAML_WORKSPACE", None)
    ws = tmp_path / "ws"
    subprocess.run([sys.executable, "-m", "openaml", "workspace", "create", "-n", name, "--path", str(ws)],
                   check=True, env=env, capture_output=True)
    server = subprocess.Popen([sys.executable, "-m", "openaml", "server", "-w", str(ws)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return env, ws, server


def test_cli_call_while_a_hand_started_server_is_starting_uses_it(tmp_path: Path) -> None:
    """`openaml server` in one terminal, a CLI call in another before it answers (review m15): the call
    waits for that server and uses it, rather than starting a second one that finds the workspace
    held and failing."""
    env, ws, server = _hand_started_server(tmp_path, "starting")
    try:
        r = subprocess.run([sys.executable, "-m", "openaml", "job", "list", "-w", str(ws), "-o", "json"],
                           env=env, capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == []
        # one server serves the workspace: the hand-started one, or (when the call got to the workspace
        # before that server took its lock) the one the call started, the hand-started one then
        # refusing to start a second ("already running")
        running = json.loads((ws / "server.json").read_text())["pid"]
        if running == server.pid:
            assert server.poll() is None
        else:
            assert server.wait(timeout=60) != 0
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_server_stop_stops_a_server_still_starting(tmp_path: Path) -> None:
    """`openaml server stop` right after `openaml server` (before server.json exists) stops that server
    (review: it said "no server running" and the server came up anyway). The server writes its pid and
    start time into server.lock as soon as it holds it; stop signals that process."""
    import threading

    from openaml.server._serve import stop_server
    from openaml.workspace import WorkspaceLayout

    env, ws, server = _hand_started_server(tmp_path, "stopping")
    reaper = threading.Thread(target=server.wait, daemon=True)  # reap it, or stop sees a zombie
    reaper.start()
    try:
        lock = ws / "server.lock"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            text = lock.read_text() if lock.exists() else ""
            if text and json.loads(text)["pid"] == server.pid:
                break
            time.sleep(0.01)
        assert not (ws / "server.json").exists(), "the server came up before the test could stop it"
        assert stop_server(WorkspaceLayout(ws)) == server.pid
        reaper.join(30)
        assert server.returncode is not None
        assert not (ws / "server.json").exists()
        # nothing left: the CLI says so
        r = subprocess.run([sys.executable, "-m", "openaml", "server", "stop", "-w", str(ws)], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "no server running" in r.stderr + r.stdout
    finally:
        if server.poll() is None:
            server.kill()
        reaper.join(30)


def test_cli_autostart_leaves_no_resource_warning(tmp_path: Path) -> None:
    """A CLI call that starts the workspace's server in the background does not print
    ``ResourceWarning: subprocess N is still running`` (review: the dropped Popen object warned)."""
    from openaml.server._serve import stop_server
    from openaml.workspace import WorkspaceLayout

    env = {**os.environ, "OPENAML_HOME": str(tmp_path / "home")}
    env.pop("OPENAML_WORKSPACE", None)
    ws = tmp_path / "ws"
    subprocess.run([sys.executable, "-m", "openaml", "workspace", "create", "-n", "autostart", "--path", str(ws)],
                   check=True, env=env, capture_output=True)
    try:
        r = subprocess.run([sys.executable, "-W", "error::ResourceWarning", "-X", "dev", "-m", "openaml", "data",
                            "list", "-w", str(ws), "-o", "json"], env=env, capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stderr
        assert "ResourceWarning" not in r.stderr and "still running" not in r.stderr, r.stderr
        assert json.loads(r.stdout) == []
        info = json.loads((ws / "server.json").read_text())
        assert os.getpgid(info["pid"]) == info["pid"]  # its own session: it outlives the CLI call
    finally:
        stop_server(WorkspaceLayout(ws))


def test_bare_name_not_shadowed_by_an_unrelated_folder(tmp_path: Path) -> None:
    """Review: `-w rvtok` run where an unrelated folder `rvtok` exists failed with "not an openaml
    workspace" although `rvtok` is registered. A folder that is not a workspace no longer shadows the
    name; a folder that IS a workspace, while the name is registered for another folder, is ambiguous
    and refused naming both (it used to win silently)."""
    env = {**os.environ, "OPENAML_HOME": str(tmp_path / "home")}
    env.pop("OPENAML_WORKSPACE", None)
    registered = tmp_path / "registered"
    subprocess.run([sys.executable, "-m", "openaml", "workspace", "create", "-n", "rvtok", "--path", str(registered)],
                   check=True, env=env, capture_output=True)
    cwd = tmp_path / "cwd"
    (cwd / "rvtok").mkdir(parents=True)  # not a workspace
    r = subprocess.run([sys.executable, "-m", "openaml", "server", "status", "-w", "rvtok"], cwd=cwd,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"running": False, "workspace": str(registered.resolve())}
    # a folder of that name that is a workspace, while the name is registered elsewhere: ambiguous
    # (a new user's `server stop -w team` stopped the folder's workspace, not the registered one)
    subprocess.run([sys.executable, "-m", "openaml", "workspace", "create", "-n", "local-one", "--path",
                    str(cwd / "rvtok")], check=True, env=env, capture_output=True)
    r = subprocess.run([sys.executable, "-m", "openaml", "server", "status", "-w", "rvtok"], cwd=cwd,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "is ambiguous" in r.stderr and str((cwd / "rvtok").resolve()) in r.stderr, r.stderr
    assert str(registered.resolve()) in r.stderr and "./rvtok" in r.stderr, r.stderr
    for value, where in (("./rvtok", cwd / "rvtok"), (str(registered), registered)):
        r = subprocess.run([sys.executable, "-m", "openaml", "server", "status", "-w", value], cwd=cwd,
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["workspace"] == str(where.resolve())
    # the registered workspace's own folder, named from its parent, is not ambiguous
    r = subprocess.run([sys.executable, "-m", "openaml", "server", "status", "-w", "registered"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)["workspace"] == str(registered.resolve()), r.stderr


def test_foreground_server_prints_its_address_not_library_chatter(tmp_path: Path) -> None:
    """Review minor: `openaml server` printed MLflow's table-creation INFO lines and a Starlette
    DeprecationWarning (from MLflow's own imports) before its address."""
    env = {**os.environ, "OPENAML_HOME": str(tmp_path / "home")}
    env.pop("OPENAML_WORKSPACE", None)
    env.pop("PYTHONWARNINGS", None)
    ws = tmp_path / "ws"
    subprocess.run([sys.executable, "-m", "openaml", "workspace", "create", "-n", "quiet", "--path", str(ws)],
                   check=True, env=env, capture_output=True)
    out = tmp_path / "server.out"
    with open(out, "wb") as f:
        server = subprocess.Popen([sys.executable, "-m", "openaml", "server", "-w", str(ws)], env=env,
                                  stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "listening on" not in out.read_text() and server.poll() is None:
            time.sleep(0.1)
        text = out.read_text()
        assert "listening on" in text, text
        assert [line for line in text.splitlines() if line.strip()] == [text.strip().splitlines()[-1]], text
        assert text.startswith("openaml server for workspace quiet listening on http://127.0.0.1:"), text
    finally:
        server.terminate()
        server.wait(timeout=60)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_signalled_server_removes_its_server_json(tmp_path: Path, sig: str) -> None:
    """Regression: uvicorn re-raises the signal it caught after its shutdown; under the default handler
    the process died there and left server.json naming a dead pid."""
    import signal

    from tests.conftest import start_server

    handle = start_server(tmp_path / "ws", name=f"signalled-{sig.lower()}")
    handle.proc.send_signal(getattr(signal, sig))
    assert handle.proc.wait(timeout=60) == 0
    assert not (tmp_path / "ws" / "server.json").exists()
    assert (tmp_path / "ws" / "server.port").exists()  # the port a restart takes again stays


def test_server_status_of_a_killed_server_says_not_running(tmp_path: Path) -> None:
    """Regression (new-user check): a server killed with SIGKILL whose parent has not waited for it (a
    zombie: ``kill -0`` still answers) was shown as running, from the server.json it left."""
    import signal

    from tests.conftest import start_server

    handle = start_server(tmp_path / "ws", name="status-killed")
    env = {**os.environ}
    r = subprocess.run([sys.executable, "-m", "openaml", "server", "status", "-w", str(tmp_path / "ws")],
                       env=env, capture_output=True, text=True, timeout=120)
    shown = json.loads(r.stdout)
    assert shown["running"] is True and shown["pid"] == handle.proc.pid
    os.kill(handle.proc.pid, signal.SIGKILL)  # not waited for: a zombie until the end of the test
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(f"/proc/{handle.proc.pid}/stat", "rb") as fh:
            if fh.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                break
        time.sleep(0.05)
    assert (tmp_path / "ws" / "server.json").exists()  # left by SIGKILL
    r = subprocess.run([sys.executable, "-m", "openaml", "server", "status", "-w", str(tmp_path / "ws")],
                       env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(r.stdout) == {"running": False, "workspace": str((tmp_path / "ws").resolve())}, r.stdout
    handle.proc.wait(timeout=30)
