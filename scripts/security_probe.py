#!/usr/bin/env python
"""Rerun the probe list of the security issue (issue 10) against fresh servers.

Usage:  .venv/bin/python scripts/security_probe.py [--upload-mb 300] [--only WORDS] [--keep]

Starts its own servers in a temporary workspace (loopback, a token server, a server on
127.0.0.2, a TLS server), tries each attack of the issue, and prints one line per probe:

    PASS|FAIL|SKIP  <probe>: expected <what should happen> / observed <what happened>

Exit status 0 when no probe failed. Probes of parts other helpers own (users and roles,
secrets at rest, scoring at most once) are run when the feature is there and say SKIP otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import io
import ipaddress
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

PY = sys.executable
RESULTS: list[tuple[str, str, str, str]] = []
ONLY: list[str] = []


# ---------------------------------------------------------------------------------------- servers
class Server:
    def __init__(self, root: Path, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.path = root / name
        self.env = {**os.environ, **(env or {})}
        if not (self.path / "workspace.json").exists():
            subprocess.run([PY, "-m", "openaml", "workspace", "create", "-n", f"probe-{name}", "--path",
                            str(self.path)], check=True, env=self.env, capture_output=True)
        self.log = root / f"{name}.log"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([PY, "-m", "openaml", "server", "-w", str(self.path), "--port", "0", *args],
                                         stdout=out, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server {name} exited: {self.log.read_text()[-2000:]}")
            f = self.path / "server.json"
            if f.exists():
                info = json.loads(f.read_text())
                if info.get("pid") == self.proc.pid:
                    self.url = info["url"]
                    return
            time.sleep(0.05)
        raise RuntimeError(f"server {name} did not start")

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def probe(name: str, expected: str) -> Callable[[Callable[..., str | tuple[bool, str]]], Callable[..., None]]:
    """Decorator: the function returns (ok, observed) or raises Skip."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., None]:
        def run(*args: Any) -> None:
            if ONLY and not any(o.lower() in name.lower() for o in ONLY):
                return
            try:
                ok, observed = fn(*args)
                status = "PASS" if ok else "FAIL"
            except Skip as exc:
                status, observed = "SKIP", str(exc)
            except Exception as exc:  # noqa: BLE001 - a probe that crashes is a failure to report
                status, observed = "FAIL", f"probe error {type(exc).__name__}: {exc}"
            RESULTS.append((status, name, expected, observed))
            print(f"{status}  {name}: expected {expected} / observed {observed}", flush=True)

        return run

    return wrap


class Skip(Exception):
    pass


def _jobs(s: Server, headers: dict[str, str] | None = None) -> int:
    return len(httpx.get(f"{s.url}/api/v1/jobs", headers=headers or {}).json())


def _tar(members: list[tuple[str, bytes]], pax: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if pax:
                info.pax_headers = dict(pax)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# ---------------------------------------------------------------------------------------- probes
@probe("DNS rebinding: POST /api/v1/jobs with Host attacker.example", "403, no job stored, command not run")
def p_rebinding(s: Server, tmp: Path) -> tuple[bool, str]:
    marker = tmp / "rebind-pwned"
    n = _jobs(s)
    r = httpx.post(f"{s.url}/api/v1/jobs", headers={"Host": f"attacker.example:{s.port}"},
                   json={"type": "command", "command": f"touch {marker}"})
    time.sleep(2)
    return (r.status_code == 403 and _jobs(s) == n and not marker.exists(),
            f"{r.status_code}, jobs {n}->{_jobs(s)}, marker {'exists' if marker.exists() else 'absent'}")


@probe("CSRF: body-less POST regenerate-keys from Origin http://evil.example", "403, key unchanged")
def p_csrf_keys(s: Server, tmp: Path) -> tuple[bool, str]:
    httpx.put(f"{s.url}/api/v1/online-endpoints/probe-ep", json={"auth_mode": "key"}).raise_for_status()
    before = httpx.post(f"{s.url}/api/v1/online-endpoints/probe-ep/keys").json()
    r = httpx.post(f"{s.url}/api/v1/online-endpoints/probe-ep/regenerate-keys",
                   headers={"Origin": "http://evil.example"})
    after = httpx.post(f"{s.url}/api/v1/online-endpoints/probe-ep/keys").json()
    return r.status_code == 403 and before == after, f"{r.status_code}, key {'unchanged' if before == after else 'CHANGED'}"


@probe("CSRF: text/plain POST to /api/v1/uploads and /api/v1/jobs", "415 or 403, nothing written or stored")
def p_csrf_plain(s: Server, tmp: Path) -> tuple[bool, str]:
    before = sorted(str(p) for p in (s.path / "datastores").rglob("*"))
    n = _jobs(s)
    r1 = httpx.post(f"{s.url}/api/v1/uploads", params={"name": "evil"}, content=_tar([("evil.txt", b"x")]),
                    headers={"Content-Type": "text/plain", "Origin": "http://evil.example"})
    r2 = httpx.post(f"{s.url}/api/v1/jobs", content=json.dumps({"type": "command", "command": "id"}),
                    headers={"Content-Type": "text/plain"})
    after = sorted(str(p) for p in (s.path / "datastores").rglob("*"))
    ok = r1.status_code in (403, 415) and r2.status_code in (403, 415) and before == after and _jobs(s) == n
    return ok, f"uploads {r1.status_code}, jobs {r2.status_code}, files {'unchanged' if before == after else 'WRITTEN'}"


@probe("MLflow mount: cross-site POST and CORS from another localhost origin", "403, no Access-Control headers")
def p_mlflow_csrf(s: Server, tmp: Path) -> tuple[bool, str]:
    r = httpx.post(f"{s.url}/mlflow/api/2.0/mlflow/experiments/create", json={"name": "probe-evil"},
                   headers={"Origin": "http://evil.example"})
    r2 = httpx.get(f"{s.url}/mlflow/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                   headers={"Origin": "http://localhost:3000"})
    cors = [k for k in r2.headers if k.lower().startswith("access-control-")]
    return r.status_code == 403 and not cors, f"{r.status_code}, CORS headers {cors or 'none'}"


@probe("Secrets: job folders, openaml.db, workspace folder modes", "folder 0700, files 0600 (nothing o+r)")
def p_modes(s: Server, tmp: Path) -> tuple[bool, str]:
    leaky = [str(p.relative_to(s.path)) for p in [s.path, *s.path.rglob("*")]
             if p.exists() and not p.is_symlink() and p.stat().st_mode & stat.S_IROTH]
    return not leaky, f"{len(leaky)} entries readable by others{': ' + ', '.join(leaky[:4]) if leaky else ''}"


@probe("Slowloris: 16 byte-by-byte headers + 16 stalled bodies (timeouts 3 s)",
       "all closed within ~3 s, /health served meanwhile")
def p_slowloris(s: Server, tmp: Path) -> tuple[bool, str]:
    addr = ("127.0.0.1", s.port)
    head = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\nX-Pad: {'a' * 200}\r\n".encode()
    socks = [socket.create_connection(addr) for _ in range(16)]
    for _ in range(16):
        c = socket.create_connection(addr)
        c.sendall(f"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\nContent-Type: application/json\r\n"
                  "Content-Length: 5000\r\n\r\n{".encode())
        socks.append(c)
    for c in socks:
        c.setblocking(False)
    closed: dict[int, float] = {}
    served = 0
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < 75 and len(closed) < 32:
        for k, c in enumerate(socks):
            if k in closed:
                continue
            try:
                if k < 16:
                    c.send(head[i % len(head):i % len(head) + 1])
                if c.recv(100) == b"":
                    closed[k] = time.monotonic() - t0
            except BlockingIOError:
                pass
            except OSError:
                closed[k] = time.monotonic() - t0
        served += httpx.get(f"{s.url}/health", timeout=10).status_code == 200
        i += 1
        time.sleep(0.2)
    for c in socks:
        c.close()
    last = max(closed.values()) if closed else float("nan")
    return len(closed) == 32, f"{len(closed)}/32 closed, the last after {last:.1f} s; /health answered {served} times"


@probe("469-byte MLTable alias bomb through data create (server side)", "400 in < 1 s, server memory unchanged")
def p_mltable_bomb(s: Server, tmp: Path) -> tuple[bool, str]:
    bomb = ("paths:\n  - file: ./a.csv\nl0: &l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
            + "".join(f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))
            + "# 9**9 lol, from 469 bytes ##\n")
    up = httpx.post(f"{s.url}/api/v1/uploads", params={"name": "bomb"}, headers={"Content-Type": "application/x-tar"},
                    content=_tar([("MLTable", bomb.encode()), ("a.csv", b"x\n1\n")])).json()
    rss = psutil.Process(s.proc.pid).memory_info().rss
    t0 = time.monotonic()
    r = httpx.post(f"{s.url}/api/v1/data/probe-bomb/versions", timeout=120,
                   json={"name": "probe-bomb", "version": "1", "type": "mltable", "path": up["uri"]})
    took = time.monotonic() - t0
    grown = (psutil.Process(s.proc.pid).memory_info().rss - rss) / 2**20
    return (r.status_code == 400 and took < 1 and grown < 20,
            f"{r.status_code} in {took * 1000:.0f} ms ({len(bomb.encode())} bytes), RSS {grown:+.1f} MB")


@probe("Alias bomb and recursive alias in `openaml job create` (client side)", "refused in < 1 s, clear error")
def p_client_bomb(s: Server, tmp: Path) -> tuple[bool, str]:
    f = tmp / "bomb.yml"
    f.write_text("a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdef", "bcdefg", strict=True))
        + "type: command\ncommand: echo hi\n")
    g = tmp / "rec.yml"
    g.write_text("a: &a [*a]\ntype: command\ncommand: echo\n")
    env = {**os.environ, "OPENAML_WORKSPACE": s.url}
    t0 = time.monotonic()
    r1 = subprocess.run([PY, "-m", "openaml", "job", "create", "--file", str(f)], capture_output=True, text=True, env=env)
    t1 = time.monotonic() - t0
    r2 = subprocess.run([PY, "-m", "openaml", "job", "create", "--file", str(g)], capture_output=True, text=True, env=env)
    ok = (r1.returncode != 0 and "alias" in r1.stderr and r2.returncode != 0 and "recursive" in r2.stderr
          and "Traceback" not in r1.stderr + r2.stderr)
    return ok, f"exit {r1.returncode}/{r2.returncode} after {t1:.1f} s (CLI start included): {r1.stderr.strip()[:90]}"


@probe("300 MB upload while /health is polled", "/health keeps answering (extraction and hashing in a thread)")
def p_big_upload(s: Server, tmp: Path, mb: int) -> tuple[bool, str]:
    big = tmp / "big"
    big.mkdir()
    for i in range(mb // 10):
        (big / f"f{i}.bin").write_bytes(os.urandom(10 << 20))
    done = threading.Event()

    def up() -> None:
        env = {**os.environ, "OPENAML_WORKSPACE": s.url}
        spec = tmp / "big.yml"
        spec.write_text(f"name: probe-big\nversion: '1'\ntype: uri_folder\npath: {big}\n")
        subprocess.run([PY, "-m", "openaml", "data", "create", "--file", str(spec)], capture_output=True, env=env)
        done.set()

    threading.Thread(target=up, daemon=True).start()
    worst = 0.0
    n = 0
    while not done.is_set():
        t0 = time.monotonic()
        httpx.get(f"{s.url}/health", timeout=60)
        worst = max(worst, time.monotonic() - t0)
        n += 1
        time.sleep(0.05)
    shutil.rmtree(big)
    return worst < 1.0, f"worst /health latency {worst * 1000:.0f} ms over {n} polls"


@probe("Bad uploads: file and folder of the same name; NUL in a name", "400 without server paths")
def p_bad_uploads(s: Server, tmp: Path) -> tuple[bool, str]:
    out = []
    ok = True
    for label, payload, name in (("clash", _tar([("a", b"1"), ("a/b", b"2")]), "up"),
                                 ("nul-member", _tar([("x", b"1")], {"path": "a\0b"}), "up"),
                                 ("nul-name", _tar([("x", b"1")]), "a\0b")):
        r = httpx.post(f"{s.url}/api/v1/uploads", params={"name": name}, content=payload,
                       headers={"Content-Type": "application/x-tar"})
        leak = str(s.path) in r.text or "Traceback" in r.text
        ok = ok and r.status_code == 400 and not leak
        out.append(f"{label} {r.status_code}{' LEAKS PATH' if leak else ''}")
    return ok, ", ".join(out)


@probe("Killed upload's staging tar", "removed at the next server start")
def p_staging(root: Path) -> tuple[bool, str]:
    s = Server(root, "staging")
    (s.path / "uploads" / "dead.tar").write_bytes(b"x" * 4096)
    s.proc.kill()
    s.proc.wait()
    s2 = Server(root, "staging")
    left = list((s2.path / "uploads").iterdir())
    s2.stop()
    return not left, f"{len(left)} staging entries left after restart"


@probe("Swagger document of a key endpoint without a key", "401")
def p_swagger(s: Server, tmp: Path) -> tuple[bool, str]:
    r = httpx.get(f"{s.url}/endpoints/probe-ep/swagger.json")
    return r.status_code == 401, str(r.status_code)


@probe("MLflow tag openaml.path set to another model's file", "the model still serves its own files")
def p_model_tag(s: Server, tmp: Path) -> tuple[bool, str]:
    from mlflow.tracking import MlflowClient

    (tmp / "mine.txt").write_text("mine")
    (tmp / "other.txt").write_text("other")
    env = {**os.environ, "OPENAML_WORKSPACE": s.url}
    for n, f in (("probe-mine", "mine.txt"), ("probe-other", "other.txt")):
        subprocess.run([PY, "-m", "openaml", "model", "create", "--name", n, "--path", str(tmp / f)],
                       check=True, capture_output=True, env=env)
    MlflowClient(tracking_uri=f"{s.url}/mlflow").set_model_version_tag(
        "probe-mine", "1", "openaml.path", "mlflow-artifacts:/models/probe-other/1/other.txt")
    r = httpx.get(f"{s.url}/api/v1/models/probe-mine/versions/1/download")
    with tarfile.open(fileobj=io.BytesIO(r.content)) as t:
        names = t.getnames()
        content = b"".join(t.extractfile(m).read() for m in t if m.isfile())  # type: ignore[union-attr]
    return content == b"mine", f"download holds {names} = {content!r}"


@probe("Datastore on /etc, then /etc/passwd through a model", "datastore refused (400), nothing registered")
def p_datastore_etc(s: Server, tmp: Path) -> tuple[bool, str]:
    r = httpx.put(f"{s.url}/api/v1/datastores/probe_etc", json={"name": "probe_etc", "type": "local", "path": "/etc"})
    r2 = httpx.post(f"{s.url}/api/v1/models/probe-passwd/versions",
                    json={"name": "probe-passwd", "path": "azureml://datastores/probe_etc/paths/passwd"})
    return r.status_code == 400 and r2.status_code >= 400, f"datastore {r.status_code}, model {r2.status_code}"


@probe("`server stop` with a stale pid file naming an unrelated process", "nothing killed")
def p_stale_pid(root: Path) -> tuple[bool, str]:
    ws = root / "stale"
    subprocess.run([PY, "-m", "openaml", "workspace", "create", "-n", "probe-stale", "--path", str(ws)],
                   check=True, capture_output=True)
    victim = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"])
    time.sleep(0.3)
    (ws / "server.json").write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": victim.pid,
                                                "pid_started": time.time() - 3600}))
    subprocess.run([PY, "-m", "openaml", "server", "stop", "-w", str(ws)], capture_output=True, timeout=60)
    alive = victim.poll() is None
    victim.kill()
    return alive, "unrelated process " + ("alive" if alive else "KILLED")


@probe("Loopback by name: 127.example.invalid, 0.0.0.0", "not loopback (resolved, not by prefix)")
def p_loopback() -> tuple[bool, str]:
    from openaml.server._serve import is_loopback

    got = {h: is_loopback(h) for h in ("127.example.invalid", "0.0.0.0", "127.0.0.2", "localhost")}
    ok = got == {"127.example.invalid": False, "0.0.0.0": False, "127.0.0.2": True, "localhost": True}
    return ok, json.dumps(got)


@probe("One-character token", "refused at start")
def p_short_token(root: Path) -> tuple[bool, str]:
    r = subprocess.run([PY, "-m", "openaml", "server", "-w", str(root / "short")], capture_output=True, text=True,
                       env={**os.environ, "OPENAML_TOKEN": "x"}, timeout=60)
    return r.returncode != 0 and "at least" in r.stderr, f"exit {r.returncode}: {r.stderr.strip()[-100:]}"


@probe("Token server: non-ASCII bearer; ?token= on the API; no token", "401 each, never 500 or a traceback")
def p_token_values(t: Server, tmp: Path, token: str) -> tuple[bool, str]:
    codes = []
    for headers, params in (({"Authorization": "Bearer \u00e9\u00e8".encode()}, {}), ({}, {"token": token}), ({}, {})):
        r = httpx.get(f"{t.url}/api/v1/jobs", headers=headers, params=params)
        codes.append(r.status_code if "Traceback" not in r.text else -r.status_code)
    ok = codes[0] == 401 and codes[2] == 401
    note = "" if codes[1] == 401 else " (?token= still accepted by the auth middleware)"
    return ok and codes[1] == 401, f"{codes}{note}"


@probe("Token server on 127.0.0.2: a client's mlflow.log_metric", "logged (MLflow's host check passes)")
def p_mlflow_host(t2: Server | None, tmp: Path, token: str) -> tuple[bool, str]:
    if t2 is None:
        raise Skip("127.0.0.2 does not bind here")
    code = ("import mlflow\nmlflow.set_experiment('probe')\nwith mlflow.start_run() as r:\n"
            "    mlflow.log_metric('m', 2.0)\nprint(mlflow.get_run(r.info.run_id).data.metrics['m'])\n")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"{t2.url}/mlflow", "MLFLOW_TRACKING_TOKEN": token}
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    last = (r.stdout.strip().splitlines() or [""])[-1]
    return r.returncode == 0 and last == "2.0", (f"metric read back: {last}" if r.returncode == 0
                                                 else r.stderr.strip()[-150:])


@probe("Planted .openaml/config.json in a parent folder pointing to another URL", "no token sent there")
def p_planted(tmp: Path) -> tuple[bool, str]:
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen: list[str | None] = []

    class Thief(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            body = b'{"status": "ok", "name": "x"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    thief = HTTPServer(("127.0.0.1", 0), Thief)
    threading.Thread(target=thief.serve_forever, daemon=True).start()
    repo = tmp / "clone" / "repo"
    repo.mkdir(parents=True)
    (tmp / "clone" / ".openaml").mkdir()
    (tmp / "clone" / ".openaml" / "config.json").write_text(
        json.dumps({"workspace": f"http://127.0.0.1:{thief.server_address[1]}"}))
    env = {k: v for k, v in os.environ.items() if k != "OPENAML_WORKSPACE"}
    env["OPENAML_TOKEN"] = "the-users-own-secret-token"
    subprocess.run([PY, "-m", "openaml", "job", "list"], capture_output=True, env=env, cwd=repo, timeout=60)
    thief.shutdown()
    leaked = [a for a in seen if a]
    return bool(seen) and not leaked, f"{len(seen)} requests reached the planted URL, {len(leaked)} with a token"


@probe("TLS: --ssl-certfile/--ssl-keyfile", "https answers with the certificate, plain http refused")
def p_tls(root: Path, tmp: Path) -> tuple[bool, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(key, hashes.SHA256()))
    cf, kf = tmp / "c.pem", tmp / "k.pem"
    cf.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kf.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    s = Server(root, "tls", "--ssl-certfile", str(cf), "--ssl-keyfile", str(kf))
    try:
        code = httpx.get(f"{s.url}/health", verify=str(cf)).status_code
        try:
            httpx.get(s.url.replace("https:", "http:") + "/health")
            plain = "answered"
        except httpx.HTTPError:
            plain = "refused"
    finally:
        s.stop()
    return code == 200 and plain == "refused", f"{s.url}: https {code}, plain http {plain}"


@probe("Reader's POST /api/v1/jobs", "403")
def p_reader(s: Server, tmp: Path) -> tuple[bool, str]:
    env = {**os.environ, "OPENAML_WORKSPACE": str(s.path)}
    r = subprocess.run([PY, "-m", "openaml", "user", "create", "--name", "probe-reader", "--role", "Reader", "-o",
                        "json"], capture_output=True, text=True, env=env, timeout=60)
    if r.returncode != 0:
        raise Skip("no `openaml user create` here (users and roles are another part of the issue)")
    tok = json.loads(r.stdout).get("token")
    r2 = httpx.post(f"{s.url}/api/v1/jobs", json={"type": "command", "command": "echo"},
                    headers={"Authorization": f"Bearer {tok}"})
    return r2.status_code == 403, str(r2.status_code)


PEER_JOB = """
import json, os, urllib.request, urllib.error
def call(token):
    h = {"Content-Type": "application/json", **({"Authorization": "Bearer " + token} if token else {})}
    req = urllib.request.Request(os.environ["AZUREML_SERVICE_ENDPOINT"] + "/api/v1/jobs", method="POST",
                                 data=json.dumps({"type": "command", "command": "echo from-a-job"}).encode(), headers=h)
    try:
        return urllib.request.urlopen(req).status
    except urllib.error.HTTPError as e:
        return e.code
os.makedirs("outputs", exist_ok=True)
json.dump({"tokenless": call(None), "job_token": call(os.environ["OPENAML_TOKEN"])}, open("outputs/peer.json", "w"))
"""


@probe("Job's code calls the tokenless loopback server without its token: POST /api/v1/jobs",
       "401 and no job created (with its scoped token: 403)")
def p_job_tokenless(s: Server, tmp: Path) -> tuple[bool, str]:
    from openaml import MLClient, command

    src = tmp / "peer-job"
    src.mkdir(exist_ok=True)
    (src / "peer.py").write_text(PEER_JOB)
    with MLClient(workspace=s.url) as client:
        before = _jobs(s)
        job = client.jobs.create_or_update(command(code=str(src), command="python peer.py", experiment_name="probe"))
        status = client.jobs.wait(job.name, timeout=300).status
        after = _jobs(s)
    seen = json.loads((s.path / "jobs" / job.name / "wd" / "outputs" / "peer.json").read_text())
    return (status == "Completed" and seen == {"tokenless": 401, "job_token": 403} and after == before + 1,
            f"job {status}: without token {seen['tokenless']}, with its token {seen['job_token']}, "
            f"jobs {before} -> {after} (the probe job only)")


BREAKOUT_JOB = """
import json, os, subprocess, sys
ws, targets = sys.argv[1], json.loads(sys.argv[2])
seen = {"umount": [subprocess.run(["umount", "-l", t], capture_output=True).returncode for t in (ws, "/proc")]}
seen["secret.key"] = os.path.exists(os.path.join(ws, "secret.key"))
written = []
for d in targets:
    try:
        open(os.path.join(d, "zz_probe.pth"), "w").close()
        written.append(d)
    except OSError:
        pass
seen["written"] = written
os.makedirs("outputs", exist_ok=True)
json.dump(seen, open("outputs/breakout.json", "w"))
"""


@probe("Root job: `umount -l` the workspace cover and /proc; a .pth into the server's virtualenv and source",
       "umount refused, secret.key hidden, nothing written (or skipped: not root)")
def p_breakout(s: Server, tmp: Path) -> tuple[bool, str]:
    import openaml
    from openaml import MLClient, command

    if os.geteuid() != 0:
        raise Skip("jobs run as root only on a root server")
    targets = sorted({sys.prefix, sys.base_prefix, str(Path(openaml.__file__).parent)})
    src = tmp / "breakout-job"
    src.mkdir(exist_ok=True)
    (src / "breakout.py").write_text(BREAKOUT_JOB)
    with MLClient(workspace=s.url) as client:
        job = client.jobs.create_or_update(command(code=str(src), experiment_name="probe",
                                                   command=f"python breakout.py {s.path} '{json.dumps(targets)}'"))
        status = client.jobs.wait(job.name, timeout=300).status
    seen = json.loads((s.path / "jobs" / job.name / "wd" / "outputs" / "breakout.json").read_text())
    for d in seen["written"]:
        Path(d, "zz_probe.pth").unlink(missing_ok=True)
    ok = status == "Completed" and 0 not in seen["umount"] and not seen["secret.key"] and not seen["written"]
    return ok, f"job {status}: umount exit codes {seen['umount']}, secret.key seen {seen['secret.key']}, " \
               f"written {seen['written'] or 'nothing'}"


@probe("Another OS user (uid 65534) calls the tokenless loopback server: POST /api/v1/jobs", "401, no job created")
def p_other_uid(s: Server, tmp: Path) -> tuple[bool, str]:
    if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("curl"):
        raise Skip("needs root, setpriv and curl to act as another OS user")
    before = _jobs(s)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "curl", "-s", "-o", "/dev/null",
                        "-w", "%{http_code}", "-H", "Content-Type: application/json", "--data",
                        '{"type": "command", "command": "echo from-nobody"}', f"{s.url}/api/v1/jobs"],
                       capture_output=True, text=True, timeout=60)
    own = httpx.get(f"{s.url}/api/v1/jobs").status_code
    after = _jobs(s)
    return (r.stdout == "401" and after == before and own == 200,
            f"uid 65534: {r.stdout}, jobs {before} -> {after}; the owner's own tokenless GET: {own}")


PEER_SCORE = """
import json, os, urllib.request, urllib.error
def init():
    pass
def _read(p):
    try:
        return "READ " + open(p, "rb").read(40).decode("latin-1")
    except OSError as exc:
        return type(exc).__name__
def run(raw):
    d = json.loads(raw)
    out = {p: _read(p) for p in d["paths"]}
    req = urllib.request.Request(d["server"] + "/api/v1/jobs", method="POST", headers={"Content-Type": "application/json"},
                                 data=json.dumps({"type": "command", "command": "echo from-score"}).encode())
    try:
        out["tokenless"] = urllib.request.urlopen(req).status
    except urllib.error.HTTPError as e:
        out["tokenless"] = e.code
    return {"sum": sum(d["x"]), "seen": out}
"""


@probe("Deployment's score.py reads server.token, secret.key, openaml.db, another job's log; POSTs without a token",
       "nothing read, 401, and it still scores")
def p_deployment_secrets(s: Server, tmp: Path) -> tuple[bool, str]:
    from openaml import MLClient
    from openaml.entities import (
        CodeConfiguration,
        Environment,
        ManagedOnlineDeployment,
        ManagedOnlineEndpoint,
        Model,
    )

    code, model = tmp / "peer-code", tmp / "peer-model"
    code.mkdir(exist_ok=True)
    model.mkdir(exist_ok=True)
    (code / "score.py").write_text(PEER_SCORE)
    (model / "m.txt").write_text("model")
    (s.path / "server.token").write_text("planted-server-token")  # stands for a token server's file
    runner = next(iter(sorted(s.path.glob("jobs/*/user_logs/std_log.txt"))), s.path / "jobs" / "none" / "std_log.txt")
    with MLClient(workspace=s.url) as client:
        client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="probe-peer"))
        dep = ManagedOnlineDeployment(name="blue", endpoint_name="probe-peer", model=Model(path=str(model)),
                                      code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
                                      environment=Environment(image="python:3.11"), instance_count=1)
        state = client.online_deployments.begin_create_or_update(dep).result(timeout=300).provisioning_state
        if state != "Succeeded":
            return False, f"deployment {state}"
        client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="probe-peer", traffic={"blue": 100}))
        ep = client.online_endpoints.get("probe-peer")
        key = client.online_endpoints.get_keys("probe-peer").primary_key
        paths = [str(p) for p in (s.path / "server.token", s.path / "secret.key", s.path / "openaml.db", runner)]
        r = httpx.post(ep.scoring_uri, json={"x": [1, 2], "paths": paths, "server": s.url},
                       headers={"Authorization": f"Bearer {key}"}, timeout=60)
        log = client.online_deployments.get_logs("blue", "probe-peer")
        client.online_endpoints.begin_delete("probe-peer")
    (s.path / "server.token").unlink(missing_ok=True)
    if r.status_code != 200:
        return False, f"scoring {r.status_code} {r.text[:200]}"
    seen = r.json()["seen"]
    read = [p for p in paths if seen[p].startswith("READ")]
    if "NOT hidden" in log:
        raise Skip("mount namespaces unavailable here: the deployment log says its secrets are not hidden")
    return (not read and seen["tokenless"] == 401 and r.json()["sum"] == 3,
            f"read {read or 'nothing'} ({', '.join(sorted(set(seen[p] for p in paths)))}), tokenless POST "
            f"{seen['tokenless']}, scored sum {r.json()['sum']}")


# ---------------------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upload-mb", type=int, default=300, help="size of the large-upload probe (MB)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--only", action="append", default=[], help="run probes whose name contains this (repeatable)")
    args = ap.parse_args()
    ONLY.extend(args.only)
    root = Path(tempfile.mkdtemp(prefix="openaml-probe-"))
    os.environ["OPENAML_HOME"] = str(root / "home")
    os.environ.pop("OPENAML_WORKSPACE", None)
    os.environ.pop("OPENAML_TOKEN", None)
    tmp = root / "tmp"
    tmp.mkdir()
    token = "probe-token-" + os.urandom(16).hex()
    (root / "token.txt").write_text(token)
    servers: list[Server] = []
    try:
        s = Server(root, "plain", "--header-timeout", "3", "--body-timeout", "3")
        servers.append(s)
        t = Server(root, "token", "--token-file", str(root / "token.txt"))
        servers.append(t)
        try:
            t2: Server | None = Server(root, "host2", "--host", "127.0.0.2", "--token-file", str(root / "token.txt"))
            servers.append(t2)  # type: ignore[arg-type]
        except (RuntimeError, OSError):
            t2 = None
        p_rebinding(s, tmp)
        p_csrf_keys(s, tmp)
        p_csrf_plain(s, tmp)
        p_mlflow_csrf(s, tmp)
        p_slowloris(s, tmp)
        p_mltable_bomb(s, tmp)
        p_client_bomb(s, tmp)
        p_big_upload(s, tmp, args.upload_mb)
        p_bad_uploads(s, tmp)
        p_staging(root)
        p_swagger(s, tmp)
        p_model_tag(s, tmp)
        p_datastore_etc(s, tmp)
        p_stale_pid(root)
        p_loopback()
        p_short_token(root)
        p_token_values(t, tmp, token)
        p_mlflow_host(t2, tmp, token)
        p_planted(tmp)
        p_tls(root, tmp)
        p_modes(s, tmp)
        p_reader(s, tmp)
        p_job_tokenless(s, tmp)
        p_breakout(s, tmp)
        p_other_uid(s, tmp)
        p_deployment_secrets(s, tmp)
    finally:
        for srv in servers:
            srv.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    failed = [r for r in RESULTS if r[0] == "FAIL"]
    print(f"\n{len(RESULTS)} probes: {sum(r[0] == 'PASS' for r in RESULTS)} pass, {len(failed)} fail, "
          f"{sum(r[0] == 'SKIP' for r in RESULTS)} skip")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
