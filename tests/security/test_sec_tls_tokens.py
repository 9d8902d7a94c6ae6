"""TLS, server tokens (generated, from a file or env, minimum length, odd values), per-URL client
credentials (a planted config gets no token), MLflow on another loopback host, stale pid files,
loopback decided on resolved addresses."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = tmp / "cert.pem", tmp / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    keyfile.chmod(0o600)
    return certfile, keyfile


def _openaml(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "openaml", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, cwd=cwd, timeout=timeout)


def test_tls_server(serve_with, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    certfile, keyfile = _self_signed(tmp_path)
    srv = serve_with("--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile))
    assert srv.url.startswith("https://127.0.0.1:")
    r = httpx.get(f"{srv.url}/health", verify=str(certfile))
    assert r.status_code == 200
    with pytest.raises(httpx.HTTPError):  # an unverified certificate is refused by default
        httpx.get(f"{srv.url}/health")
    with pytest.raises(httpx.HTTPError):  # no plain HTTP on that port
        httpx.get(srv.url.replace("https://", "http://") + "/health")
    # the real CLI over TLS, trusting the certificate through SSL_CERT_FILE
    res = _openaml("job", "list", "-o", "json", env={"OPENAML_WORKSPACE": srv.url, "SSL_CERT_FILE": str(certfile)})
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == []
    # what jobs get from the server (MLFLOW_TRACKING_SERVER_CERT_PATH): their mlflow client trusts
    # the certificate for the tracking server only (other hosts keep the system CAs)
    inherited = str(certfile.resolve())
    code = ("import mlflow\nmlflow.set_experiment('tls')\nwith mlflow.start_run() as r:\n"
            "    mlflow.log_metric('m', 3.0)\nprint(mlflow.get_run(r.info.run_id).data.metrics['m'])\n")
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")}
    env.update(MLFLOW_TRACKING_URI=f"{srv.url}/mlflow", MLFLOW_TRACKING_SERVER_CERT_PATH=inherited)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "3.0"


@pytest.mark.slow
def test_job_logs_to_a_tls_server(serve_with, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    certfile, keyfile = _self_signed(tmp_path)
    srv = serve_with("--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile))
    job = tmp_path / "job.yml"
    job.write_text("type: command\ncommand: python -c \"import mlflow; mlflow.log_metric('m', 3.0)\"\n"
                   "environment: azureml:AzureML-sklearn-1.5@latest\n")
    env = {"OPENAML_WORKSPACE": srv.url, "SSL_CERT_FILE": str(certfile)}
    res = _openaml("job", "create", "--file", str(job), "-o", "json", env=env)
    assert res.returncode == 0, res.stderr
    name = json.loads(res.stdout)["name"]
    _openaml("job", "stream", "--name", name, env=env, timeout=900)
    shown = json.loads(_openaml("job", "show", "--name", name, "-o", "json", env=env).stdout)
    assert shown["status"] == "Completed", shown
    r = httpx.get(f"{srv.url}/mlflow/api/2.0/mlflow/runs/get", params={"run_id": name}, verify=str(certfile))
    assert {"key": "m", "value": 3.0} in [{k: m[k] for k in ("key", "value")} for m in r.json()["run"]["data"]["metrics"]]


def test_tls_needs_both_files(tmp_path: Path) -> None:
    certfile, _ = _self_signed(tmp_path)
    res = _openaml("server", "-w", str(tmp_path / "nows"), "--ssl-certfile", str(certfile))
    assert res.returncode != 0
    assert "--ssl-keyfile" in res.stderr


def test_beyond_loopback_generates_a_token_and_warns(serve_with) -> None:  # type: ignore[no-untyped-def]
    srv = serve_with("--host", "0.0.0.0")
    out = srv.output()
    assert "without TLS" in out and "generated one" in out
    token_file = srv.path / "server.token"
    mode = stat.S_IMODE(token_file.stat().st_mode)
    assert mode == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    assert token not in out
    port = srv.url.rsplit(":", 1)[1]
    assert httpx.get(f"http://127.0.0.1:{port}/api/v1/jobs").status_code == 401
    r = httpx.get(f"http://127.0.0.1:{port}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    # a wildcard bind answers to the machine's interface addresses, and still not to other names
    import psutil

    lan = [a.address for addrs in psutil.net_if_addrs().values() for a in addrs
           if a.family == socket.AF_INET and not a.address.startswith("127.")]
    if lan:
        r = httpx.get(f"http://{lan[0]}:{port}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    r = httpx.get(f"http://127.0.0.1:{port}/api/v1/jobs",
                  headers={"Authorization": f"Bearer {token}", "Host": f"attacker.example:{port}"})
    assert r.status_code == 403
    # the local CLI reads the owner-only token file of the workspace
    res = _openaml("job", "list", "-o", "json", env={"OPENAML_WORKSPACE": str(srv.path)})
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("value", ["x", "short-token"])
def test_short_tokens_are_refused_at_start(tmp_path: Path, value: str) -> None:
    f = tmp_path / "tok"
    f.write_text(value + "\n")
    res = _openaml("server", "-w", str(tmp_path / "ws"), "--token-file", str(f), timeout=60)
    assert res.returncode != 0
    assert "at least 16" in res.stderr
    res = _openaml("server", "-w", str(tmp_path / "ws"), env={"OPENAML_TOKEN": value}, timeout=60)
    assert res.returncode != 0 and "at least 16" in res.stderr


def test_token_from_file_and_odd_values(serve_with, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    token = "file-token-0123456789abcdef"
    f = tmp_path / "tok"
    f.write_text(token + "\n")
    srv = serve_with("--token-file", str(f), name="ws-file")
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{srv.url}/api/v1/jobs").status_code == 401
    assert httpx.get(f"{srv.url}/api/v1/jobs", headers=auth).status_code == 200
    # odd values: never 500, never a traceback or a server path
    for value in ("Bearer \u00e9\u00e8", "Bearer " + "\u2603" * 40, "Basic Zm9vOmJhcg==", "Bearer",
                  "bearer " + token[:-1], "Bearer " + token + "\u00e9"):
        r = httpx.get(f"{srv.url}/api/v1/jobs", headers={"Authorization": value.encode("utf-8")})
        assert r.status_code == 401, (value, r.status_code, r.text)
        assert "Traceback" not in r.text and str(srv.path) not in r.text


def test_token_from_env(serve_with) -> None:  # type: ignore[no-untyped-def]
    srv = serve_with(env={"OPENAML_TOKEN": "env-token-0123456789abcdef"}, name="ws-env")
    assert httpx.get(f"{srv.url}/api/v1/jobs").status_code == 401
    assert httpx.get(f"{srv.url}/api/v1/jobs",
                     headers={"Authorization": "Bearer env-token-0123456789abcdef"}).status_code == 200


def test_token_from_argv_warns(serve_with) -> None:  # type: ignore[no-untyped-def]
    srv = serve_with("--token", "argv-token-0123456789abcdef", name="ws-argv")
    assert "shows in `ps`" in srv.output()
    assert httpx.get(f"{srv.url}/api/v1/jobs",
                     headers={"Authorization": "Bearer argv-token-0123456789abcdef"}).status_code == 200


def test_parse_bearer_never_raises() -> None:
    from openaml.server._guard import parse_bearer

    def scope(*values: bytes) -> dict:
        return {"headers": [(b"authorization", v) for v in values]}

    assert parse_bearer(scope(b"Bearer abc")) == "abc"
    assert parse_bearer(scope(b"bearer   abc  ")) == "abc"
    assert parse_bearer(scope("Bearer \u00e9".encode())) is None
    assert parse_bearer(scope(b"Bearer \xff\xfe")) is None
    assert parse_bearer(scope(b"Basic abc")) is None
    assert parse_bearer(scope(b"Bearer")) is None
    assert parse_bearer(scope(b"Bearer a\x00b")) is None
    assert parse_bearer({"headers": None}) is None
    assert parse_bearer({}) is None
    assert parse_bearer({"headers": [(b"authorization", None)]}) is None  # type: ignore[list-item]


def test_parse_query_token_only_on_browser_entry_pages() -> None:
    from openaml.server._guard import parse_query_token

    def scope(path: str, qs: bytes, method: str = "GET") -> dict:
        return {"method": method, "path": path, "query_string": qs, "headers": []}

    assert parse_query_token(scope("/mlflow/", b"token=abc")) == "abc"
    assert parse_query_token(scope("/", b"x=1&token=abc")) == "abc"
    assert parse_query_token(scope("/api/v1/jobs", b"token=abc")) is None
    assert parse_query_token(scope("/mlflow/api/2.0/mlflow/experiments/search", b"token=abc")) is None
    assert parse_query_token(scope("/endpoints/e/score", b"token=abc")) is None
    assert parse_query_token(scope("/mlflow/", b"token=abc", method="POST")) is None
    assert parse_query_token(scope("/mlflow/", b"token=%C3%A9")) is None  # non-ASCII: no token
    assert parse_query_token(scope("/mlflow/", b"\xff\xfe")) is None
    assert parse_query_token({}) is None


def test_planted_config_gets_no_token(tmp_path: Path) -> None:
    """A .openaml/config.json in a parent folder pointing to another URL must not collect the token."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen: list[str | None] = []

    class Thief(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            body = b'{"status": "ok", "name": "evil"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    thief = HTTPServer(("127.0.0.1", 0), Thief)
    threading.Thread(target=thief.serve_forever, daemon=True).start()
    try:
        evil = f"http://127.0.0.1:{thief.server_address[1]}"
        repo = tmp_path / "cloned" / "repo" / "src"
        repo.mkdir(parents=True)
        (tmp_path / "cloned" / ".openaml").mkdir()
        (tmp_path / "cloned" / ".openaml" / "config.json").write_text(json.dumps({"workspace": evil}))
        env = {"OPENAML_TOKEN": "the-users-secret-token-123456", "OPENAML_WORKSPACE": ""}
        _openaml("job", "list", env=env, cwd=repo, timeout=60)
        assert seen, "the CLI did not follow the config (test premise)"
        assert all(a is None for a in seen), seen
        # a token saved for that URL is sent to it, and only to it
        seen.clear()
        res = _openaml("workspace", "login", "--url", evil, env={"OPENAML_TOKEN": "saved-for-this-url-123456"})
        assert res.returncode == 0, res.stderr
        cred = Path(os.environ["OPENAML_HOME"]) / "credentials.json"
        assert stat.S_IMODE(cred.stat().st_mode) == 0o600
        _openaml("job", "list", env={"OPENAML_WORKSPACE": ""}, cwd=repo, timeout=60)
        assert "Bearer saved-for-this-url-123456" in seen  # (the /health probe carries no token)
        assert set(seen) <= {None, "Bearer saved-for-this-url-123456"}, seen
        _openaml("workspace", "logout", "--url", evil)
    finally:
        thief.shutdown()


def test_mlflow_on_another_loopback_host_with_token(serve_with, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    try:
        probe = socket.create_server(("127.0.0.2", 0))
        probe.close()
    except OSError:
        pytest.skip("127.0.0.2 does not bind here")
    f = tmp_path / "tok"
    f.write_text("mlflow-host-token-0123456789\n")
    srv = serve_with("--host", "127.0.0.2", "--token-file", str(f))
    assert srv.url.startswith("http://127.0.0.2:")
    code = ("import mlflow\n"
            "mlflow.set_experiment('sec-host')\n"
            "with mlflow.start_run() as r:\n"
            "    mlflow.log_metric('m', 2.0)\n"
            "print(mlflow.get_run(r.info.run_id).data.metrics['m'])\n")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"{srv.url}/mlflow",
           "MLFLOW_TRACKING_TOKEN": "mlflow-host-token-0123456789"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().endswith("2.0")


def test_server_stop_with_stale_pid_file_kills_nothing(tmp_path: Path) -> None:
    from openaml.server._serve import stop_server
    from openaml.workspace import WorkspaceLayout, create_workspace

    create_workspace("sec-stale", tmp_path / "ws", home=Path(os.environ["OPENAML_HOME"]), exist_ok=True)
    layout = WorkspaceLayout(tmp_path / "ws")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        time.sleep(0.2)
        # an old server.json whose pid now belongs to an unrelated process: start time differs
        layout.server_file.write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": bystander.pid,
                                                  "pid_started": time.time() - 3600}))
        assert stop_server(layout, timeout=2) is None
        assert bystander.poll() is None
        assert not layout.server_file.exists()
        # a server.json from before start times were recorded: the command line decides
        layout.server_file.write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": bystander.pid}))
        res = _openaml("server", "stop", "-w", str(layout.root))
        assert res.returncode == 0
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.parametrize("host,expected", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True),
    ("0.0.0.0", False), ("::", False), ("127.example.invalid", False), ("127.0.0.1.nip.invalid", False),
])
def test_loopback_decided_on_resolved_addresses(host: str, expected: bool) -> None:
    from openaml.server._serve import is_loopback

    assert is_loopback(host) is expected


def test_health_answers_everyone_but_names_the_workspace_only_to_the_authenticated(serve_with) -> None:  # type: ignore[no-untyped-def]
    """Review: /health on a token server told anyone the workspace name. It still answers 200
    without a token (liveness probes, the SDK's check) but names the workspace only to a caller
    with a valid token."""
    token = "health-token-0123456789abcdef"
    srv = serve_with(env={"OPENAML_TOKEN": token}, name="ws-health")
    name = json.loads((srv.path / "workspace.json").read_text())["name"]
    for path in ("/health", "/api/v1/health"):
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789abcdef"}):
            r = httpx.get(f"{srv.url}{path}", headers=headers)
            assert r.status_code == 200 and r.json() == {"status": "ok"}, (path, headers, r.text)
            assert name not in r.text
        r = httpx.get(f"{srv.url}{path}", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json() == {"status": "ok", "workspace": name, "role": "leader",
                                                     "leader": srv.url}, (path, r.text)
    # the CLI (its health check, then an authenticated call) still works against it
    res = _openaml("job", "list", "-o", "json", env={"OPENAML_WORKSPACE": srv.url, "OPENAML_TOKEN": token})
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == []
