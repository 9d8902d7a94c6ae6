"""Smaller defects of the security issue: a mutable MLflow tag cannot redirect a model's files;
local datastores only under allowed roots (no /etc/passwd through a model); a job cannot write its
outputs into another job's output folder (review G4: ``azureml/<other job>/<output>/``)."""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path

import httpx
import pytest

from openaml import Output, command, load_job
from openaml.errors import ValidationError

ENV = "AzureML-sklearn-1.5@latest"
BLOB = "azureml://datastores/workspaceblobstore/paths"


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


def _blob_root(url: str) -> Path:
    return Path(httpx.get(f"{url}/api/v1/datastores/workspaceblobstore", timeout=30).json()["local_path"])


def _writer(path: str, typ: str = "uri_folder") -> object:
    target = "${{outputs.o}}" if typ == "uri_file" else "${{outputs.o}}/f.txt"
    return command(command=f"echo mine > {target}", outputs={"o": Output(type=typ, path=path)}, environment=ENV)


@pytest.fixture(scope="module")
def finished_job(ml_client) -> str:  # type: ignore[no-untyped-def]
    """A completed job whose output ``o`` (``azureml/<job>/o/f.txt``) the tests try to overwrite."""
    job = ml_client.jobs.create_or_update(command(command="echo theirs > ${{outputs.o}}/f.txt",
                                                  outputs={"o": Output(type="uri_folder")}, environment=ENV))
    assert ml_client.jobs.wait(job.name, timeout=180).status == "Completed"
    return str(job.name)


def test_output_in_another_jobs_folder_is_refused_at_submission(server, ml_client, cli, finished_job,  # type: ignore[no-untyped-def]
                                                                tmp_path: Path) -> None:
    """Review G4: a job whose output path was ``azureml/<other>/<output>/`` wrote its files into that
    finished job's output (and so into the data assets, models and RAI score cards made from it)."""
    other = finished_job
    theirs = _blob_root(server.url) / "azureml" / other / "o"
    assert (theirs / "f.txt").read_text() == "theirs\n"
    before = len(ml_client.jobs.list(list_view_type="all"))
    refused = {  # path -> what the message says
        f"{BLOB}/azureml/{other}/o/": f"is in azureml/{other}/, the output folder of job '{other}'",
        f"{BLOB}/azureml/{other}": f"is in azureml/{other}/, the output folder of job '{other}'",
        f"{BLOB}/azureml/{other}/o/sub": f"is in azureml/{other}/, the output folder of job '{other}'",
        f"{BLOB}/azureml//{other}/./o/": f"is in azureml/{other}/, the output folder of job '{other}'",
        f"{BLOB}/azureml/": "is the azureml/ folder, which holds every job's output folder",
        f"{BLOB}/": "is the root folder of datastore 'workspaceblobstore'",
        f"{BLOB}/azureml/mine/../{other}/o/": "contains '..'",
    }
    for path, says in refused.items():
        with pytest.raises(ValidationError) as info:
            ml_client.jobs.create_or_update(_writer(path))
        msg = info.value.message
        assert "field 'outputs.o'" in msg and says in msg, (path, msg)
        if "'..'" not in says:
            assert repr(path) in msg and "omit path to get azureml/" in msg, msg
            assert "azureml://datastores/workspaceblobstore/paths/<folder>/" in msg, msg
    with pytest.raises(ValidationError, match=rf"outputs\.o.*output folder of job '{other}'"):
        ml_client.jobs.create_or_update(_writer(f"{BLOB}/azureml/{other}/o/f.txt", "uri_file"))
    link = _blob_root(server.url) / _name("g4-link")  # a link in the datastore leading into that folder
    link.symlink_to(Path("azureml") / other / "o")
    with pytest.raises(ValidationError, match=rf"outputs\.o.*output folder of job '{other}'"):
        ml_client.jobs.create_or_update(_writer(f"{BLOB}/{link.name}/"))
    link.unlink()
    # azureml/<job>/ is every datastore's job area, not only the default one's
    store = _name("g4_store").replace("-", "_")
    r = httpx.put(f"{server.url}/api/v1/datastores/{store}", timeout=30,
                  json={"name": store, "type": "local", "path": str(server.path / "datastores" / store)})
    assert r.status_code == 200, r.text
    with pytest.raises(ValidationError, match=rf"outputs\.o.*output folder of job '{other}'.*paths/<folder>/"):
        ml_client.jobs.create_or_update(_writer(f"azureml://datastores/{store}/paths/azureml/{other}/o/"))
    yml = tmp_path / "job.yml"  # the CLI says the same
    yml.write_text(f"command: echo mine > ${{{{outputs.o}}}}/f.txt\nenvironment: azureml:{ENV}\n"
                   f"outputs:\n  o:\n    type: uri_folder\n    path: {BLOB}/azureml/{other}/o/\n")
    r = cli("job", "create", "-f", str(yml))
    assert r.returncode != 0 and "outputs.o" in r.stderr and f"output folder of job '{other}'" in r.stderr, r.stderr
    assert len(ml_client.jobs.list(list_view_type="all")) == before  # no job was created
    assert sorted(p.name for p in theirs.rglob("*")) == ["f.txt"] and (theirs / "f.txt").read_text() == "theirs\n"


def test_a_submission_cannot_claim_a_parent_to_write_in_its_folder(server, ml_client, finished_job) -> None:  # type: ignore[no-untyped-def]
    """A pipeline's step may write under its pipeline's ``azureml/<pipeline>/``; a submitted
    ``parent_job_name`` is not the server's word that the job is one, so it is dropped."""
    other = finished_job
    body = {"type": "command", "command": "echo mine > ${{outputs.o}}/f.txt", "environment": f"azureml:{ENV}",
            "parent_job_name": other, "outputs": {"o": {"type": "uri_folder", "path": f"{BLOB}/azureml/{other}/o/"}}}
    r = httpx.post(f"{server.url}/api/v1/jobs", json=body, timeout=60)
    assert r.status_code == 400 and f"output folder of job '{other}'" in r.text, r.text
    body["outputs"] = {"o": {"type": "uri_folder"}}
    r = httpx.post(f"{server.url}/api/v1/jobs", json=body, timeout=60)
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    assert not r.json().get("parent_job_name")
    assert name not in {j.name for j in ml_client.jobs.list(parent_job_name=other)}
    assert ml_client.jobs.wait(name, timeout=180).status == "Completed"
    assert (_blob_root(server.url) / "azureml" / other / "o" / "f.txt").read_text() == "theirs\n"


def test_own_folder_by_name_and_the_pipelines_folder_are_still_writable(tmp_path: Path) -> None:
    """``${{name}}`` in an output path is the job's own name; a pipeline's step may write under its
    pipeline's ``azureml/<pipeline>/`` (a pipeline output given that path and bound to the step). On a
    server of its own: a pipeline job on the session's server changes what its other tests list."""
    from openaml import MLClient
    from tests.conftest import start_server

    handle = start_server(tmp_path / "ws", name="own-folder")
    try:
        with MLClient(workspace=handle.url) as ml_client:
            _own_and_pipeline_folders(handle.url, ml_client, tmp_path)
    finally:
        handle.stop()


def _own_and_pipeline_folders(url: str, ml_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = _blob_root(url)
    job = ml_client.jobs.create_or_update(_writer(f"{BLOB}/azureml/${{{{name}}}}/custom/"))
    assert ml_client.jobs.wait(job.name, timeout=180).status == "Completed"
    assert (root / "azureml" / job.name / "custom" / "f.txt").read_text() == "mine\n"
    pipe = _name("sec_pipe").replace("-", "_")
    yml = tmp_path / "pipeline.yml"
    yml.write_text(f"""type: pipeline
name: {pipe}
outputs:
  final: {{type: uri_folder, path: {BLOB}/azureml/{pipe}/final/}}
settings: {{default_compute: azureml:local, force_rerun: true}}
jobs:
  step:
    command: echo piped > ${{{{outputs.o}}}}/f.txt
    environment: azureml:{ENV}
    outputs: {{o: "${{{{parent.outputs.final}}}}"}}
""")
    done = ml_client.jobs.wait(ml_client.jobs.create_or_update(load_job(yml)).name, timeout=240)
    assert done.status == "Completed", ml_client.jobs.get_raw(pipe)
    assert (root / "azureml" / pipe / "final" / "f.txt").read_text() == "piped\n"


def test_sweep_output_in_another_jobs_folder_is_refused_at_submission(server, ml_client, finished_job) -> None:  # type: ignore[no-untyped-def]
    """A sweep's trials keep an output path with ``${{name}}`` in it: checked when the sweep is
    submitted, not when its first trial is."""
    other = finished_job
    body = {"type": "sweep", "compute": "local", "sampling_algorithm": "grid",
            "trial": {"command": "echo ${{search_space.x}} > ${{outputs.o}}/f.txt", "environment": f"azureml:{ENV}"},
            "search_space": {"x": {"type": "choice", "values": [1]}},
            "objective": {"goal": "maximize", "primary_metric": "m"}, "limits": {"max_total_trials": 1},
            "outputs": {"o": {"type": "uri_folder", "path": f"{BLOB}/azureml/{other}/${{{{name}}}}/"}}}
    before = len(ml_client.jobs.list(list_view_type="all"))
    r = httpx.post(f"{server.url}/api/v1/jobs", json=body, timeout=60)
    assert r.status_code == 400, r.text
    assert "outputs.o" in r.text and f"output folder of job '{other}'" in r.text, r.text
    assert len(ml_client.jobs.list(list_view_type="all")) == before
