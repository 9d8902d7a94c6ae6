"""Timeouts and limits: slowloris and stalled bodies closed, connection cap, YAML alias bombs,
bad uploads answered 400 without server paths, killed uploads' staging removed at start."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

ALIAS_BOMB = """\
a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
type: command
command: echo hi
environment: azureml:AzureML-sklearn-1.5@latest
"""

# 469 bytes: nine anchors of nine aliases each, ~4e8 values once expanded
MLTABLE_BOMB = ("paths:\n  - file: ./a.csv\n"
                + "l0: &l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
                + "".join(f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))
                + "# 9**9 lol, from 469 bytes ##\n")


def _addr(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slow_headers_and_stalled_bodies_are_closed_while_others_are_served(serve_with) -> None:  # type: ignore[no-untyped-def]
    srv = serve_with("--header-timeout", "2", "--body-timeout", "2")
    addr = _addr(srv.url)
    head = f"GET /health HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\nX-Pad: {'a' * 200}\r\n".encode()
    slow = [socket.create_connection(addr) for _ in range(16)]
    stalled = []
    for _ in range(16):
        s = socket.create_connection(addr)
        s.sendall(f"POST /api/v1/jobs HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\nContent-Type: application/json\r\n"
                  "Content-Length: 5000\r\n\r\n{\"type\":".encode())
        stalled.append(s)
    for s in slow + stalled:
        s.setblocking(False)
    closed: set[int] = set()
    served = 0
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < 30 and len(closed) < 32:
        for k, s in enumerate(slow + stalled):
            if k in closed:
                continue
            if k < 16:
                try:
                    s.send(head[i % len(head):i % len(head) + 1])  # one byte at a time, never finishing
                except OSError:
                    closed.add(k)
                    continue
            if _closed(s):
                closed.add(k)
        r = httpx.get(f"{srv.url}/health", timeout=10)
        assert r.status_code == 200  # normal requests keep being served meanwhile
        served += 1
        i += 1
        time.sleep(0.2)
    elapsed = time.monotonic() - start
    for s in slow + stalled:
        s.close()
    assert len(closed) == 32, f"{32 - len(closed)} slow connections still open after {elapsed:.0f} s"
    assert served >= 3


def test_connection_cap_answers_503_then_recovers(serve_with) -> None:  # type: ignore[no-untyped-def]
    srv = serve_with("--max-connections", "4", "--header-timeout", "2")
    addr = _addr(srv.url)
    idle = [socket.create_connection(addr) for _ in range(4)]
    time.sleep(0.3)
    r = httpx.get(f"{srv.url}/health", timeout=10)
    assert r.status_code == 503
    for s in idle:
        s.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if httpx.get(f"{srv.url}/health", timeout=10).status_code == 200:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the server did not recover after the idle connections closed")


@pytest.mark.parametrize("text,words", [
    (ALIAS_BOMB, "alias bomb"),
    ("a: &a [*a]\ntype: command\ncommand: echo\n", "recursive alias"),
    ("a: &a {b: *a}\ntype: command\ncommand: echo\n", "recursive alias"),
], ids=["bomb", "recursive-seq", "recursive-map"])
def test_yaml_alias_bombs_refused_client_side(cli, tmp_path: Path, text: str, words: str) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "job.yml"
    f.write_text(text)
    res = cli("job", "create", "--file", str(f), timeout=60)
    assert res.returncode != 0
    assert words in res.stderr and str(f) in res.stderr.replace("\n", "")
    assert "Traceback" not in res.stderr and "RecursionError" not in res.stderr


def test_alias_budget_unit() -> None:
    from openaml._yaml import parse_yaml_with_lines, safe_load
    from openaml.errors import ValidationError

    t0 = time.monotonic()
    with pytest.raises(ValidationError, match="alias bomb"):
        parse_yaml_with_lines(ALIAS_BOMB, source="bomb.yml")
    with pytest.raises(ValidationError, match="bomb.yml"):
        safe_load(MLTABLE_BOMB, source="bomb.yml")
    assert time.monotonic() - t0 < 30  # generous: the refusal is milliseconds, expansion would be minutes
    # ordinary reuse of anchors still loads
    data, _ = parse_yaml_with_lines("base: &b {x: 1, y: [1, 2]}\nc1: {<<: *b, z: 3}\nc2: *b\n")
    assert data["c1"] == {"x": 1, "y": [1, 2], "z": 3} and data["c2"] == {"x": 1, "y": [1, 2]}


def _tar(members: list[tuple[str, bytes | None]], pax: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if pax:
                info.pax_headers = dict(pax)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _upload(url: str, payload: bytes, name: str = "up") -> httpx.Response:
    return httpx.post(f"{url}/api/v1/uploads", params={"name": name}, content=payload,
                      headers={"Content-Type": "application/x-tar"}, timeout=60)


def test_mltable_bomb_refused_server_side_with_memory_unchanged(server) -> None:  # type: ignore[no-untyped-def]
    assert len(MLTABLE_BOMB.encode()) == 469
    r = _upload(server.url, _tar([("MLTable", MLTABLE_BOMB.encode()), ("a.csv", b"x\n1\n")]), name="bomb")
    assert r.status_code == 200, r.text
    rss_before = psutil.Process(server.proc.pid).memory_info().rss
    t0 = time.monotonic()
    r = httpx.post(f"{server.url}/api/v1/data/sec-bomb/versions", timeout=60,
                   json={"name": "sec-bomb", "version": "1", "type": "mltable", "path": r.json()["uri"]})
    took = time.monotonic() - t0
    assert r.status_code == 400, r.text
    assert "alias" in r.json()["error"]["message"] and "MLTable" in r.json()["error"]["message"]
    grown = psutil.Process(server.proc.pid).memory_info().rss - rss_before
    assert grown < 50 << 20, f"server grew by {grown >> 20} MB"
    assert took < 30
    assert httpx.get(f"{server.url}/api/v1/data/sec-bomb/versions").json() == []


@pytest.mark.parametrize("members,pax,name", [
    ([("a", b"file"), ("a/b", b"under a file")], None, "up"),
    ([("a/b", b"x"), ("a", b"a file over a folder")], None, "up"),
    ([("x.txt", b"x")], {"path": "bad\0name.txt"}, "up"),
    ([("x.txt", b"x")], None, "bad\0name"),
], ids=["file-then-folder", "folder-then-file", "nul-in-member", "nul-in-name"])
def test_bad_uploads_give_400_without_server_paths(server, members, pax, name) -> None:  # type: ignore[no-untyped-def]
    r = _upload(server.url, _tar(members, pax), name=name)
    assert r.status_code == 400, r.text
    text = r.text
    assert str(server.path) not in text and "/tmp" not in text and "Traceback" not in text
    assert not list((server.path / "uploads").iterdir())


def test_killed_upload_staging_removed_at_next_start_and_server_stop(serve_with, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ws = tmp_path / "ws"
    subprocess.run([sys.executable, "-m", "openaml", "workspace", "create", "-n", f"sec-{ws.parent.name[-20:]}",
                    "--path", str(ws)], check=True, capture_output=True)
    stage = ws / "uploads"
    # what a server killed during an upload leaves: the staging folder and tar of receive()
    (stage / "deadbeef").mkdir(parents=True, exist_ok=True)
    (stage / "deadbeef" / "part.bin").write_bytes(b"x" * 1000)
    (stage / "deadbeef.tar").write_bytes(b"x" * 1000)
    srv = serve_with(name="ws")
    assert httpx.get(f"{srv.url}/health").status_code == 200
    assert list(stage.iterdir()) == []
    # `openaml server stop` still stops the real server (its pid and start time match)
    res = subprocess.run([sys.executable, "-m", "openaml", "server", "stop", "-w", str(ws)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert srv.proc.wait(30) is not None


def test_upload_does_not_stall_health(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A large upload is extracted and hashed in a thread: /health answers meanwhile."""
    import threading

    blob = _tar([(f"f{i}.bin", bytes(1 << 20) + i.to_bytes(4, "big")) for i in range(120)])
    done = threading.Event()
    result: list[httpx.Response] = []

    def up() -> None:
        result.append(_upload(server.url, blob, name="big"))
        done.set()

    t = threading.Thread(target=up)
    t.start()
    answered = 0
    while not done.is_set():
        r = httpx.get(f"{server.url}/health", timeout=30)
        assert r.status_code == 200
        answered += 1
        time.sleep(0.05)
    t.join()
    assert result[0].status_code == 200, result[0].text
    assert answered >= 1


def test_cli_server_flags_are_documented() -> None:
    out = subprocess.run([sys.executable, "-m", "openaml", "server", "--help"], capture_output=True, text=True,
                         env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}).stdout
    for flag in ("--allowed-host", "--ssl-certfile", "--ssl-keyfile", "--token-file", "--header-timeout",
                 "--body-timeout", "--keep-alive", "--max-connections"):
        assert flag in out


def test_websocket_outlives_the_header_timeout() -> None:
    """A websocket (upgraded HTTP connection) is not closed by the HTTP header/body timers."""
    import asyncio
    import threading

    import uvicorn
    import websockets

    from openaml._settings import HttpLimits
    from openaml.server._limits import uvicorn_options

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": msg.get("text", "")})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    cfg = uvicorn.Config(app, log_level="error", **uvicorn_options(HttpLimits(header_timeout=1, body_timeout=1)))
    srv = uvicorn.Server(cfg)
    t = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)

    async def talk() -> list[str]:
        got = []
        async with websockets.connect(f"ws://127.0.0.1:{sock.getsockname()[1]}/") as ws:
            for i in range(3):
                await ws.send(str(i))
                got.append(await ws.recv())
                await asyncio.sleep(1.0)  # 3 s in all: three header timeouts
        return got

    try:
        assert asyncio.run(talk()) == ["0", "1", "2"]
    finally:
        srv.should_exit = True
        t.join(10)
