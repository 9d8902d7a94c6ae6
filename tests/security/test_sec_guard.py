"""No drive-by access: DNS rebinding and cross-site requests are refused and change nothing.

Real server (the session one, loopback, no token), raw httpx requests shaped as a browser or an
attacker would send them, then the real SDK, CLI and mlflow client to show normal traffic works.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

JOB = {"type": "command", "command": "touch {marker}", "environment": "azureml:AzureML-sklearn-1.5@latest"}


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def _job_count(url: str) -> int:
    r = httpx.get(f"{url}/api/v1/jobs")
    assert r.status_code == 200, r.text
    return len(r.json())


@pytest.fixture
def endpoint(server) -> str:  # type: ignore[no-untyped-def]
    r = httpx.put(f"{server.url}/api/v1/online-endpoints/sec-guard-ep", json={"auth_mode": "key"})
    assert r.status_code == 200, r.text
    return "sec-guard-ep"


def _keys(url: str, name: str) -> dict[str, str]:
    r = httpx.post(f"{url}/api/v1/online-endpoints/{name}/keys")
    assert r.status_code == 200, r.text
    return r.json()


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_rebinding_post_is_refused_and_runs_nothing(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "rebind-pwned"
    before = _job_count(server.url)
    body = json.dumps({**JOB, "command": f"touch {marker}"})
    r = httpx.post(f"{server.url}/api/v1/jobs", content=body,
                   headers={"Host": f"attacker.example:{_port(server.url)}", "Content-Type": "application/json"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden_host"
    assert "--allowed-host" in r.json()["error"]["message"]
    # every door is guarded: the MLflow mount, scoring, health
    for method, path in (("GET", "/mlflow/api/2.0/mlflow/experiments/search?max_results=1"),
                         ("POST", "/endpoints/x/score"), ("GET", "/health"), ("GET", "/api/v1/jobs")):
        r2 = httpx.request(method, server.url + path, headers={"Host": "attacker.example"})
        assert r2.status_code == 403, (path, r2.status_code)
    assert _job_count(server.url) == before
    assert not marker.exists()


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example", "Content-Type": "text/plain"},
    {"Origin": "http://evil.example", "Content-Type": "application/json"},
    {"Origin": "null", "Content-Type": "application/json"},
    {"Referer": "http://evil.example/page.html", "Content-Type": "application/json"},
    {"Content-Type": "text/plain"},
    {"Content-Type": "application/x-www-form-urlencoded"},
    {"Content-Type": "multipart/form-data; boundary=x"},
], ids=["origin-text", "origin-json", "origin-null", "referer", "text-plain", "form", "multipart"])
def test_cross_site_job_post_is_refused(server, tmp_path: Path, headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "csrf-pwned"
    before = _job_count(server.url)
    r = httpx.post(f"{server.url}/api/v1/jobs", headers=headers,
                   content=json.dumps({**JOB, "command": f"touch {marker}"}))
    assert r.status_code in (403, 415), r.text
    assert r.json()["error"]["code"] in ("cross_origin", "unsupported_media_type")
    assert _job_count(server.url) == before
    assert not marker.exists()


def test_cross_site_bodyless_key_regeneration_changes_nothing(server, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    keys = _keys(server.url, endpoint)
    r = httpx.post(f"{server.url}/api/v1/online-endpoints/{endpoint}/regenerate-keys",
                   headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    assert _keys(server.url, endpoint) == keys
    # the same request from the server's own origin (its own pages) is a normal request
    r = httpx.post(f"{server.url}/api/v1/online-endpoints/{endpoint}/regenerate-keys",
                   headers={"Origin": server.url})
    assert r.status_code == 200, r.text
    assert _keys(server.url, endpoint)["primary_key"] != keys["primary_key"]


def test_cross_site_upload_writes_nothing(server) -> None:  # type: ignore[no-untyped-def]
    root = server.path / "datastores"
    before = sorted(str(p) for p in root.rglob("*"))
    payload = _tar("evil.txt", b"written cross-site")
    for headers in ({"Content-Type": "text/plain"}, {"Origin": "http://evil.example", "Content-Type": "text/plain"},
                    {"Origin": "http://evil.example", "Content-Type": "application/x-tar"}):
        r = httpx.post(f"{server.url}/api/v1/uploads", params={"name": "evil"}, content=payload, headers=headers)
        assert r.status_code in (403, 415), (headers, r.status_code)
    assert sorted(str(p) for p in root.rglob("*")) == before
    assert not list(server.path.rglob("evil.txt"))


def test_mlflow_mount_refuses_cross_site_writes_and_sends_no_cors(server) -> None:  # type: ignore[no-untyped-def]
    r = httpx.post(f"{server.url}/mlflow/api/2.0/mlflow/experiments/create", json={"name": "sec-csrf"},
                   headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = httpx.get(f"{server.url}/mlflow/api/2.0/mlflow/experiments/get-by-name",
                  params={"experiment_name": "sec-csrf"})
    assert r.status_code == 404
    # a page on another localhost port cannot read either: no CORS headers (MLflow's own allow localhost)
    r = httpx.get(f"{server.url}/mlflow/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                  headers={"Origin": "http://localhost:3000"})
    assert not [k for k in r.headers if k.lower().startswith("access-control-")]


def test_scoring_keeps_working_without_origin(server, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    """Non-browser clients (no Origin) reach the scoring router; the guard only checks Host."""
    r = httpx.post(f"{server.url}/endpoints/{endpoint}/score", json={"data": [1]},
                   headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401  # past the guard, refused by the endpoint's key check
    r = httpx.get(f"{server.url}/endpoints/{endpoint}/swagger.json")
    assert r.status_code == 401  # the swagger document needs the key, as Azure's does
    r = httpx.post(f"{server.url}/endpoints/{endpoint}/score", json={"data": [1]},
                   headers={"Host": f"localhost:{_port(server.url)}", "Authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_normal_sdk_cli_and_mlflow_traffic_still_works(server, ml_client, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import mlflow
    from mlflow.tracking import MlflowClient

    # SDK: JSON and the tar upload
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("x\n1\n")
    from openaml.entities import Data

    asset = ml_client.data.create_or_update(Data(name="sec-guard-data", path=str(tmp_path / "d"),
                                                 type="uri_folder"))
    assert asset.version == "1"
    # CLI
    res = cli("data", "show", "--name", "sec-guard-data", "--version", "1", "-o", "json", check=True)
    assert res.json()["name"] == "sec-guard-data"
    # mlflow client (its own User-Agent, JSON bodies, no Origin)
    client = MlflowClient(tracking_uri=f"{server.url}/mlflow")
    exp = client.create_experiment("sec-guard-mlflow")
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "m", 1.0)
    assert client.get_run(run.info.run_id).data.metrics["m"] == 1.0
    _ = mlflow
    # loopback spelled differently
    r = httpx.get(f"http://localhost:{_port(server.url)}/api/v1/jobs")
    assert r.status_code == 200


def test_guard_unit_host_forms_and_websocket() -> None:
    """In-process: IPv6 and differently spelled loopback hosts, trailing dots, a websocket refused."""
    import asyncio

    from openaml.server._guard import RequestGuard, allowed_host_names, split_host

    assert split_host("[::1]:8080") == ("::1", "8080")
    assert split_host("Example.ORG:80") == ("example.org", "80")
    assert split_host("::1") == ("::1", None)
    reached: list[str] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        reached.append(scope["path"])

    sent: list[dict] = []

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    guard = RequestGuard(app, allowed_hosts=allowed_host_names("127.0.0.1", ["lab.example"]))

    def call(host: bytes, kind: str = "http", method: str = "GET") -> None:
        scope = {"type": kind, "method": method, "path": f"/{host.decode()}", "scheme": "http",
                 "headers": [(b"host", host)]}
        asyncio.run(guard(scope, None, send))  # type: ignore[arg-type]

    for ok in (b"[::1]:1234", b"localhost", b"LOCALHOST:80", b"127.0.0.1", b"lab.example:443", b"lab.example."):
        call(ok)
    assert len(reached) == 6
    for bad in (b"127.0.0.1.evil.example", b"evil.example", b"[::2]:80", b"0.0.0.0:80"):
        call(bad)
    assert len(reached) == 6 and [m["status"] for m in sent if m["type"] == "http.response.start"] == [403] * 4
    call(b"evil.example", kind="websocket")
    assert sent[-1]["type"] == "websocket.close"


def test_pages_refuse_to_be_framed_by_another_site(server) -> None:  # type: ignore[no-untyped-def]
    """Clickjacking (studio review): a framed studio Cancel clicked by the owner carries the studio's
    own Origin, so the Origin check cannot stop it; the pages must refuse framing instead."""
    for path in ("/", "/jobs", "/mlflow/", "/api/v1/jobs", "/no-such-page"):
        r = httpx.get(f"{server.url}{path}", headers={"Accept": "text/html"}, follow_redirects=True)
        assert r.headers.get("x-frame-options") == "DENY", (path, dict(r.headers))
        assert "frame-ancestors 'none'" in r.headers.get_list("content-security-policy"), (path, dict(r.headers))
