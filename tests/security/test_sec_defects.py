"""Smaller defects of the security issue: a mutable MLflow tag cannot redirect a model's files;
local datastores only under allowed roots (no /etc/passwd through a model)."""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path

import httpx
import pytest


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _download(url: str, name: str, version: str) -> dict[str, bytes]:
    r = httpx.get(f"{url}/api/v1/models/{name}/versions/{version}/download", timeout=60)
    assert r.status_code == 200, r.text
    out = {}
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        for m in tar:
            if m.isfile():
                f = tar.extractfile(m)
                assert f is not None
                out[m.name] = f.read()
    return out


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_openaml_path_tag_does_not_redirect_model_files(server, ml_client, tmp_path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    from openaml.entities import Model

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "weights.txt").write_text("mine\n")
    (tmp_path / "other.txt").write_text("someone else's files\n")
    mine = _name("sec-mine")
    other = _name("sec-other")
    src = tmp_path / "mine" / "weights.txt" if kind == "file" else tmp_path / "mine"
    ml_client.models.create_or_update(Model(name=mine, path=str(src)))
    ml_client.models.create_or_update(Model(name=other, path=str(tmp_path / "other.txt")))
    before = _download(server.url, mine, "1")
    client = MlflowClient(tracking_uri=f"{server.url}/mlflow", registry_uri=f"{server.url}/mlflow")
    for target in (f"mlflow-artifacts:/models/{other}/1/other.txt", "mlflow-artifacts:/models", "/etc/passwd"):
        client.set_model_version_tag(mine, "1", "openaml.path", target)
        assert _download(server.url, mine, "1") == before
        shown = ml_client.models.get(mine, version="1")
        assert other not in str(shown.path) and "passwd" not in str(shown.path)
        assert shown.path.startswith("azureml://") or f"models/{mine}/1" in shown.path


def test_local_datastore_outside_allowed_roots_is_refused(serve_with, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv = serve_with(env={"OPENAML_DATASTORE_ROOTS": ""})
    for path in ("/etc", "/", str(tmp_path / "elsewhere")):
        r = httpx.put(f"{srv.url}/api/v1/datastores/sec_etc", json={"name": "sec_etc", "type": "local", "path": path})
        assert r.status_code == 400, (path, r.text)
        msg = r.json()["error"]["message"]
        assert "--datastore-root" in msg and "outside" in msg
    assert not (tmp_path / "elsewhere").exists()  # refused before anything is created
    r = httpx.get(f"{srv.url}/api/v1/datastores/sec_etc")
    assert r.status_code == 404
    # no model can then be registered from /etc/passwd through a datastore
    r = httpx.post(f"{srv.url}/api/v1/models/sec-passwd/versions",
                   json={"name": "sec-passwd", "path": "azureml://datastores/sec_etc/paths/passwd"})
    assert r.status_code in (400, 404)
    # inside the workspace's datastores/ folder: accepted (elsewhere in the workspace: refused, its secrets)
    inside = srv.path / "datastores" / "extra-store"
    r = httpx.put(f"{srv.url}/api/v1/datastores/sec_in", json={"name": "sec_in", "type": "local", "path": str(inside)})
    assert r.status_code == 200, r.text
    # a link inside an allowed root pointing out of it is judged by where it leads
    link = srv.path / "to-etc"
    link.symlink_to("/etc")
    r = httpx.put(f"{srv.url}/api/v1/datastores/sec_link", json={"name": "sec_link", "type": "local",
                                                                  "path": str(link)})
    assert r.status_code == 400, r.text


def test_datastore_root_flag_allows_a_folder(serve_with, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    allowed = tmp_path / "data-root"
    allowed.mkdir()
    srv = serve_with("--datastore-root", str(allowed), env={"OPENAML_DATASTORE_ROOTS": ""})
    r = httpx.put(f"{srv.url}/api/v1/datastores/sec_ok", json={"name": "sec_ok", "type": "local",
                                                                "path": str(allowed / "sub")})
    assert r.status_code == 200, r.text
    r = httpx.put(f"{srv.url}/api/v1/datastores/sec_ws", json={"name": "sec_ws", "type": "local",
                                                                "path": str(srv.path / "x")})
    assert r.status_code == 400  # the flag replaces the default roots
