"""What a job and a deployment worker can WRITE (issue 10, a reviewer's findings M1, M2, M4, m1).

In the job's (and worker's) mount namespace only its own folder is writable: ``envs/`` (a ``.pth``
planted in another environment's site-packages ran in the next job), the code snapshots and models
(a score.py rewrote the shared ``code/<hash>/``), ``datastores/`` and every registered local
datastore's folder (a job overwrote a registered data asset's files) are read-only. A local datastore
cannot be registered on the workspace folder (or anywhere in it but ``datastores/``), whose secrets
every job would then read through it.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import httpx
import pytest

from openaml import Input, MLClient, Output, command
from openaml.entities import Datastore
from tests.security.conftest import launch, needs_namespaces
from tests.security.test_deployment_secrets import _deploy, _score

WRITER = """
import json, os, sys
seen = {}
for path in sys.argv[1:]:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a") as fh:
            fh.write("import os; os.system('echo poisoned')\\n")
        seen[path] = "written"
    except OSError as exc:
        seen[path] = "error: " + type(exc).__name__
os.makedirs("outputs", exist_ok=True)
with open("outputs/seen.json", "w") as fh:
    json.dump(seen, fh)
"""


@needs_namespaces
def test_job_cannot_write_envs_code_nor_datastores(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    data_root = tmp_path / "data-root"
    store = data_root / "rvds"
    store.mkdir(parents=True)
    (store / "part.csv").write_text("a,b\n1,2\n")
    srv = launch(ws, "--datastore-root", str(data_root), env={"OPENAML_HOME": str(tmp_path / "home")})
    try:
        client = MLClient(workspace=srv.url)
        client.datastores.create_or_update(Datastore(name="rvds", type="local", path=str(store)))
        # another environment's site-packages (as a built one lies in envs/<hash>/), and the default datastore
        site = ws / "envs" / ("0" * 16) / "lib" / "python3.11" / "site-packages"
        site.mkdir(parents=True)
        blob = ws / "datastores" / "workspaceblobstore" / "registered.txt"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_text("version 1\n")
        src = tmp_path / "src"
        src.mkdir()
        (src / "writer.py").write_text(textwrap.dedent(WRITER))
        targets = [site / "zz_poison.pth", ws / "envs" / "zz_poison.pth", blob, store / "part.csv",
                   store / "new.csv"]
        first = client.jobs.create_or_update(command(code=str(src), command="true", experiment_name="rw"))
        assert client.jobs.wait(first.name, timeout=300).status == "Completed"
        snapshots = [p for p in (ws / "code").iterdir() if p.is_dir()]
        assert snapshots, list((ws / "code").iterdir())
        targets += [snapshots[0] / "writer.py"]
        job = client.jobs.create_or_update(command(
            code=str(src), experiment_name="rw",
            command="python writer.py " + " ".join(str(t) for t in targets)
                    + " && cat ${{inputs.d}}/part.csv > ${{outputs.o}}/copy.csv",
            inputs={"d": Input(type="uri_folder", path="azureml://datastores/rvds/paths/", mode="ro_mount")},
            outputs={"o": Output(type="uri_folder", path="azureml://datastores/rvds/paths/out/${{name}}")}))
        final = client.jobs.wait(job.name, timeout=300)
        raw = client.jobs.get_raw(job.name)
        assert final.status == "Completed", (raw["error"], raw["log_tail"])
        seen = json.loads((ws / "jobs" / job.name / "wd" / "outputs" / "seen.json").read_text())
        for t in targets:
            assert seen[str(t)].startswith("error:"), (t, seen[str(t)])
        assert not (site / "zz_poison.pth").exists() and not (ws / "envs" / "zz_poison.pth").exists()
        assert blob.read_text() == "version 1\n"
        assert (store / "part.csv").read_text() == "a,b\n1,2\n" and not (store / "new.csv").exists()
        assert (snapshots[0] / "writer.py").read_text() == (src / "writer.py").read_text()
        # the output still lands in the datastore (placed by the runner, outside the job's namespace)
        assert (store / "out" / job.name / "copy.csv").read_text() == "a,b\n1,2\n"
        client.close()
    finally:
        srv.stop()


SCORE_WRITER = '''
import json, os

factor = None
seen = {}


def _write(path):
    try:
        with open(path, "a") as fh:
            fh.write("tampered")
        return "written"
    except OSError as exc:
        return "error: " + type(exc).__name__


def init():
    global factor
    model = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "factor.txt")
    with open(model) as fh:
        factor = float(fh.read())
    for path in [os.path.join(os.environ["AML_APP_ROOT"], "score.py"), model,
                 os.path.join(os.environ["AML_APP_ROOT"], "planted.py")] + json.loads(os.environ["WRITE_ME"]):
        seen[path] = _write(path)


def run(raw):
    data = json.loads(raw)
    return {"prediction": [x * factor for x in data["x"]], "seen": seen}
'''


@needs_namespaces
def test_score_py_cannot_write_code_model_envs_nor_datastores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.security.test_deployment_secrets as dep

    ws = tmp_path / "ws"
    data_root = tmp_path / "data-root"
    store = data_root / "rvds"
    store.mkdir(parents=True)
    (store / "part.csv").write_text("1\n")
    env_file = ws / "envs" / "zz_poison.pth"
    write_me = [str(env_file), str(store / "part.csv"), str(ws / "datastores" / "x.txt")]
    srv = launch(ws, "--datastore-root", str(data_root),
                 env={"OPENAML_HOME": str(tmp_path / "home"), "WRITE_ME": json.dumps(write_me)})
    try:
        client = MLClient(workspace=srv.url)
        client.datastores.create_or_update(Datastore(name="rvds", type="local", path=str(store)))
        monkeypatch.setattr(dep, "SCORE", SCORE_WRITER)
        ep = _deploy(client, tmp_path, f"rw-{uuid.uuid4().hex[:6]}")
        out = _score(client, ep, {"x": [1]})
        assert out["prediction"] == [3.0]
        seen = out["seen"]
        assert len(seen) == 3 + len(write_me), seen
        for path, got in seen.items():
            assert got.startswith("error:"), (path, got)
        # the shared snapshot and the registered model are intact
        snaps = [p for p in (ws / "code").rglob("score.py")]
        assert snaps and all(p.read_text() == SCORE_WRITER for p in snaps)
        assert all(p.read_text() == "3" for p in ws.rglob("factor.txt"))
        assert not env_file.exists() and (store / "part.csv").read_text() == "1\n"
        client.close()
    finally:
        srv.stop()


def test_local_datastore_on_the_workspace_is_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    srv = launch(ws, env={"OPENAML_HOME": str(tmp_path / "home"), "OPENAML_DATASTORE_ROOTS": ""})
    try:
        real = ws.resolve()
        for path in (real, real / "jobs", real / "code" / "x", real / "mlartifacts"):
            r = httpx.put(f"{srv.url}/api/v1/datastores/sec_ws", json={"name": "sec_ws", "type": "local",
                                                                        "path": str(path)})
            assert r.status_code == 400, (path, r.text)
            msg = r.json()["error"]["message"]
            assert repr(str(path)) in msg and "datastores" in msg and "secret.key" in msg, msg
        assert not (real / "code" / "x").exists()  # refused before anything is created
        assert httpx.get(f"{srv.url}/api/v1/datastores/sec_ws").status_code == 404
        ok = real / "datastores" / "mine"
        r = httpx.put(f"{srv.url}/api/v1/datastores/sec_ok", json={"name": "sec_ok", "type": "local", "path": str(ok)})
        assert r.status_code == 200, r.text
        assert r.json()["local_path"] == str(ok)
    finally:
        srv.stop()


def test_local_datastore_holding_the_workspace_is_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    home = tmp_path / "home"
    srv = launch(ws, "--datastore-root", str(tmp_path), env={"OPENAML_HOME": str(home)})
    try:
        for path in (tmp_path, home, home / "workspaces"):
            r = httpx.put(f"{srv.url}/api/v1/datastores/sec_up", json={"name": "sec_up", "type": "local",
                                                                        "path": str(path)})
            assert r.status_code == 400, (path, r.text)
            assert repr(str(path)) in r.json()["error"]["message"]
    finally:
        srv.stop()


def test_local_datastore_registered_on_the_workspace_before_the_rule_is_not_opened(tmp_path: Path) -> None:
    """A datastore row made before the rule (here written straight into the store) is not opened: a job
    reading it is refused at submission, naming the path, instead of mounting server.token for the job."""
    from openaml._settings import Settings
    from openaml.errors import OpenAMLError
    from openaml.store import MetadataStore

    ws = tmp_path / "ws"
    srv = launch(ws, env={"OPENAML_HOME": str(tmp_path / "home")})
    try:
        store = MetadataStore(Settings(workspace=ws).metadata_url).start()
        try:
            store.put_datastore("legacy", "local", {"path": str(ws.resolve())}, False)
        finally:
            store.close()
        client = MLClient(workspace=srv.url)
        with pytest.raises(OpenAMLError) as info:
            client.jobs.create_or_update(command(
                command="cat ${{inputs.d}}/server.json", experiment_name="legacy",
                inputs={"d": Input(type="uri_folder", path="azureml://datastores/legacy/paths/", mode="ro_mount")}))
        assert repr(str(ws.resolve())) in str(info.value) and "secret.key" in str(info.value), str(info.value)
        assert client.jobs.list() == [] or all(j.experiment_name != "legacy" for j in client.jobs.list())
        client.close()
    finally:
        srv.stop()


def test_no_bytecode_compile_outlives_the_server(tmp_path: Path) -> None:
    """Regression: the background ``compileall`` that fills an environment's shared bytecode cache
    was left running after its server stopped (the acceptance check's ``rm -rf`` of the workspace
    then raced it); stopping the server stops it and drops its ``.compiling`` marker."""
    import time

    import psutil

    from tests.conftest import start_server

    ws = tmp_path / "ws"
    server = start_server(ws, name="precompile")
    try:
        with MLClient(workspace=server.url) as client:
            job = client.jobs.create_or_update(command(command="echo hi", environment="AzureML-sklearn-1.5@latest"))
            assert client.jobs.wait(job.name, timeout=300).status == "Completed"
    finally:
        server.stop()

    def compiles() -> list[int]:
        out = []
        for p in psutil.process_iter(["cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if "compileall" in cmd and str(ws) in cmd:
                out.append(p.pid)
        return out

    deadline = time.time() + 30
    while compiles() and time.time() < deadline:
        time.sleep(0.5)
    assert compiles() == []
    assert list(ws.glob("envs/.*.pycache/.compiling")) == []
