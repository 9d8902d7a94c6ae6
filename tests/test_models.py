"""Models end to end: the real server, the real SDK and CLI, and the real mlflow client.

Model names carry a random suffix because the session server is shared with other tests.
"""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from openaml.entities import Datastore, Model
from openaml.errors import ConflictError, NotFoundError, PathEscapeError, UnsupportedError, ValidationError


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def mlflow_client(server):  # type: ignore[no-untyped-def]
    """The real mlflow client pointed at ``<server>/mlflow``; the previous tracking URI is restored."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server.url + "/mlflow")
    yield mlflow
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def sk_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Path]]:
    """A tiny fitted scikit-learn model and its MLflow folder (mlflow.sklearn.save_model)."""
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    est = LogisticRegression().fit(x, np.array([0, 0, 1, 1]))
    folder = tmp_path_factory.mktemp("sk") / "sk-model"
    mlflow.sklearn.save_model(est, str(folder), pip_requirements=["scikit-learn"])
    yield est, folder


@pytest.fixture
def run_cli(server, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The real ``openaml`` Typer app, run in this process (no interpreter start per call)."""
    from typer.testing import CliRunner

    from openaml.cli import app

    runner = CliRunner()

    def run(*args: str, cwd: Path | None = None, check: bool = False):  # type: ignore[no-untyped-def]
        if cwd is not None:
            monkeypatch.chdir(cwd)
        result = runner.invoke(app, list(args), env={"OPENAML_WORKSPACE": server.url, "COLUMNS": "200"})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        if check and result.exit_code != 0:
            raise AssertionError(f"openaml {' '.join(args)} failed ({result.exit_code}):\n{result.output}")
        return result

    return run


def _model_files(root: Path) -> Path:
    (root / "weights").mkdir(parents=True)
    (root / "weights" / "w.txt").write_text("0.5\n")
    (root / "score.txt").write_text("hello\n")
    return root


# ---------------------------------------------------------------------- CLI
def test_cli_create_file_and_folder_list_show_download(cli, run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name = _name("cli")
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    # one run through the installed entry point (a real subprocess), the rest in process
    created = cli("model", "create", "--name", name, "--path", "model.pkl", "--description", "a file",
                  cwd=tmp_path, check=True).json()
    assert created["version"] == "1" and created["type"] == "custom_model"
    assert created["path"].endswith(f"/models/{name}/1/model.pkl")
    assert created["id"].endswith(f"/models/{name}/versions/1")

    # YAML: path relative to the YAML's folder, whatever the current folder is
    spec_dir = tmp_path / "spec"
    _model_files(spec_dir / "my-model")
    (spec_dir / "model.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/model.schema.json\n"
        f"name: {name}\npath: my-model\ndescription: a folder\ntags:\n  team: ml\n")
    second = json.loads(run_cli("model", "create", "--file", str(spec_dir / "model.yml"), "--set", "tags.stage=dev",
                                cwd=tmp_path, check=True).stdout)
    assert second["version"] == "2" and second["tags"] == {"team": "ml", "stage": "dev"}

    listing = json.loads(run_cli("model", "list", "-n", name, "-o", "json", check=True).stdout)
    assert [m["version"] for m in listing] == ["2", "1"]
    assert json.loads(run_cli("model", "show", "-n", name, "-l", "latest", check=True).stdout)["version"] == "2"

    out = tmp_path / "dl"
    run_cli("model", "download", "-n", name, "-v", "2", "--download-path", str(out), check=True)
    assert (out / name / "my-model" / "weights" / "w.txt").read_text() == "0.5\n"


def test_cli_bad_input(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name = _name("bad")
    (tmp_path / "m.yml").write_text(f"name: {name}\npath: ./m\ncolour: red\n")
    r = run_cli("model", "create", "-f", str(tmp_path / "m.yml"))
    assert r.exit_code == 1 and "line 3" in r.stderr and "colour" in r.stderr and "unknown field" in r.stderr

    _model_files(tmp_path / "plain")
    r = run_cli("model", "create", "-n", name, "-p", "plain", "-t", "mlflow_model", cwd=tmp_path)
    assert r.exit_code == 1 and "MLmodel" in r.stderr and "custom_model" in r.stderr

    r = run_cli("model", "create", "-n", name, "-p", "plain", "-v", "1.5", cwd=tmp_path)
    assert r.exit_code == 1 and "positive integers" in r.stderr and "'1.5'" in r.stderr

    r = run_cli("model", "create", "-n", name, "-p", "missing-dir", cwd=tmp_path)
    assert r.exit_code == 1 and "does not exist" in r.stderr and "missing-dir" in r.stderr

    r = run_cli("model", "show", "-n", name)
    assert r.exit_code == 1 and "label" in r.stderr
    assert not json.loads(run_cli("model", "list", "-n", name, "-o", "json", check=True).stdout)  # nothing made


# ---------------------------------------------------------------------- SDK
def test_sdk_create_get_list_versions(ml_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name = _name("sdk")
    (tmp_path / "model.txt").write_text("w=1\n")
    m1 = ml_client.models.create_or_update(Model(name=name, path=str(tmp_path / "model.txt"), tags={"k": "v"}))
    assert isinstance(m1, Model) and m1.version == "1" and m1.id and m1.path and m1.tags == {"k": "v"}

    folder = _model_files(tmp_path / "folder")
    m5 = ml_client.models.create_or_update(Model(name=name, version="5", path=str(folder), type="custom_model"))
    assert m5.version == "5"
    m6 = ml_client.models.create_or_update(Model(name=name, path=str(folder)))
    assert m6.version == "6"
    with pytest.raises(ConflictError, match="already exists"):
        ml_client.models.create_or_update(Model(name=name, version=5, path=str(folder)))
    with pytest.raises(ValidationError, match="positive integers"):
        ml_client.models.create_or_update(Model(name=name, version="v2", path=str(folder)))

    assert ml_client.models.get(name, version=5).path.endswith(f"/models/{name}/5/folder")
    assert ml_client.models.get(name, label="latest").version == "6"
    assert [m.version for m in ml_client.models.list(name)] == ["6", "5", "1"]
    assert name in {m.name for m in ml_client.models.list()}
    with pytest.raises(NotFoundError, match="versions are: 1, 5, 6"):
        ml_client.models.get(name, version="2")

    ml_client.models.download(name, "5", download_path=tmp_path / "dl")
    assert (tmp_path / "dl" / name / "folder" / "score.txt").read_text() == "hello\n"
    ml_client.models.download(name, "1", download_path=tmp_path / "dl")
    assert (tmp_path / "dl" / name / "model.txt").read_text() == "w=1\n"


def test_sdk_bad_input(ml_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from openaml import load_model

    (tmp_path / "m.txt").write_text("m\n")
    (tmp_path / "m.yml").write_text("name: x\npath: m.txt\nversion: [1]\n")
    with pytest.raises(ValidationError, match=r"m.yml, line 3: field 'version'"):
        load_model(tmp_path / "m.yml")
    with pytest.raises(ValidationError, match="field 'type'.*mlflow_model"):
        load_model(tmp_path / "m.yml", params_override=[{"version": 1}, {"type": "pickle_model"}])
    with pytest.raises(ValidationError, match="needs a name"):
        ml_client.models.create_or_update(Model(path=str(tmp_path / "m.txt")))
    with pytest.raises(ValidationError, match="'path' is required"):
        ml_client.models.create_or_update(Model(name=_name("nopath")))
    with pytest.raises(NotFoundError, match="not found"):
        ml_client.models.get(_name("nobody"), version="1")
    with pytest.raises(NotFoundError, match="does not exist"):
        ml_client.models.create_or_update(Model(name=_name("ds"), path="azureml://datastores/workspaceblobstore/paths/no/such"))
    with pytest.raises(NotFoundError, match="not found"):
        ml_client.models.create_or_update(Model(name=_name("job"), path="azureml://jobs/no-such-job/outputs/artifacts/paths/m"))
    with pytest.raises(ValidationError, match="local path of the client"):
        ml_client._transport.post("/models/x/versions", json={"path": "/etc"})


def test_mlflow_model_loads_through_mlflow_client(ml_client, mlflow_client, sk_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    est, folder = sk_model
    name = _name("mlf")
    created = ml_client.models.create_or_update(Model(name=name, path=str(folder), type="mlflow_model",
                                                      description="tiny logistic regression"))
    assert created.type == "mlflow_model" and {"sklearn", "python_function"} <= set(created.flavors or {})

    import numpy as np

    loaded = mlflow_client.pyfunc.load_model(f"models:/{name}/{created.version}")
    x = np.array([[0.0], [3.0]])
    assert list(loaded.predict(x)) == list(est.predict(x))  # type: ignore[attr-defined]

    versions = mlflow_client.MlflowClient().search_model_versions(f"name='{name}'")
    assert [v.version for v in versions] == ["1"]
    assert versions[0].source.startswith("mlflow-artifacts:/models/")


def test_models_registered_through_mlflow_appear(run_cli, ml_client, mlflow_client, sk_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    est, _ = sk_model
    logged, registered = _name("logged"), _name("registered")
    mlflow_client.set_experiment(_name("models-exp"))
    with mlflow_client.start_run() as run:
        mlflow_client.sklearn.log_model(est, name="model", registered_model_name=logged,
                                        pip_requirements=["scikit-learn"])
        mlflow_client.log_text("weights\n", "outputs/weights.txt")
    run_id = run.info.run_id
    mlflow_client.register_model(f"runs:/{run_id}/model", registered)

    table = run_cli("model", "list", check=True).stdout
    assert logged in table and registered in table
    shown = json.loads(run_cli("model", "show", "-n", logged, "-v", "1", check=True).stdout)
    assert shown["type"] == "mlflow_model" and shown["version"] == "1" and shown["job_name"] == run_id
    assert "sklearn" in shown["flavors"]

    out = tmp_path / "dl"
    run_cli("model", "download", "-n", registered, "-v", "1", "--download-path", str(out), check=True)
    assert (out / registered / "model" / "MLmodel").is_file()

    # the Azure path forms that point into a job's (run's) artifacts
    from_run = ml_client.models.create_or_update(Model(name=_name("fromrun"), path=f"runs:/{run_id}/model",
                                                       type="mlflow_model"))
    assert from_run.job_name == run_id and "sklearn" in (from_run.flavors or {})
    from_job = ml_client.models.create_or_update(
        Model(name=_name("fromjob"), path=f"azureml://jobs/{run_id}/outputs/artifacts/paths/outputs/weights.txt"))
    ml_client.models.download(from_job.name, from_job.version, download_path=out)
    assert (out / from_job.name / "weights.txt").read_text() == "weights\n"
    # the book's forms without /paths/: ch5 ``.../outputs/artifacts/outputs/model.pkl``, ch10 ``.../model/``
    bare = ml_client.models.create_or_update(
        Model(name=_name("bare"), path=f"azureml://jobs/{run_id}/outputs/artifacts/outputs/weights.txt"))
    ml_client.models.download(bare.name, bare.version, download_path=out)
    assert (out / bare.name / "weights.txt").read_text() == "weights\n"
    bare_mlflow = ml_client.models.create_or_update(
        Model(name=_name("baremlflow"), path=f"azureml://jobs/{run_id}/outputs/artifacts/model/", type="mlflow_model"))
    assert "sklearn" in (bare_mlflow.flavors or {})
    with pytest.raises(NotFoundError, match="nothing-here.*outputs"):
        ml_client.models.create_or_update(Model(name=_name("x"), path=f"runs:/{run_id}/nothing-here"))


def test_archive_restore_and_latest(run_cli, ml_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name = _name("arch")
    (tmp_path / "m.txt").write_text("m\n")
    for _ in range(2):
        ml_client.models.create_or_update(Model(name=name, path=str(tmp_path / "m.txt")))
    ml_client.models.archive(name, version="2")
    assert ml_client.models.get(name, label="latest").version == "1"
    assert [m.version for m in ml_client.models.list(name)] == ["1"]
    assert [m.version for m in ml_client.models.list(name, list_view_type="All")] == ["2", "1"]
    assert ml_client.models.get(name, version="2").archived is True

    run_cli("model", "archive", "-n", name, check=True)
    with pytest.raises(NotFoundError, match="archived"):
        ml_client.models.get(name, label="latest")
    assert name not in {m.name for m in ml_client.models.list()}
    assert name in run_cli("model", "list", "--archived-only", check=True).stdout

    run_cli("model", "restore", "-n", name, "-v", "1", check=True)
    assert ml_client.models.get(name, label="latest").version == "1"
    ml_client.models.restore(name)
    assert ml_client.models.get(name, label="latest").version == "2"


# ---------------------------------------------------------------------- paths never escape
def _tar(members: list[tarfile.TarInfo], data: bytes = b"x") -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info in members:
            if info.isfile():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    buf.seek(0)
    return buf


def test_download_extraction_refuses_traversal(tmp_path: Path) -> None:
    from openaml.sdk._models import _extract_download

    dest = tmp_path / "out" / "m"
    evil = tarfile.TarInfo("model/../../../evil.txt")
    with pytest.raises(PathEscapeError, match=r"\.\."):
        _extract_download(_tar([tarfile.TarInfo("model/ok.txt"), evil]), dest)
    link = tarfile.TarInfo("model/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(PathEscapeError, match="link"):
        _extract_download(_tar([link]), dest)
    assert not (tmp_path / "evil.txt").exists() and not dest.exists()  # all or nothing
    assert _extract_download(_tar([tarfile.TarInfo("model/ok.txt")]), dest) == 1
    assert (dest / "model" / "ok.txt").read_bytes() == b"x"


def test_model_paths_cannot_leave_their_folder(ml_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # a datastore folder holding a link to a file outside it
    root = tmp_path / "store"
    (root / "m").mkdir(parents=True)
    (root / "m" / "ok.txt").write_text("ok\n")
    (tmp_path / "secret.txt").write_text("secret\n")
    (root / "m" / "leak.txt").symlink_to(tmp_path / "secret.txt")
    ds = _name("ds").replace("-", "_")
    ml_client.datastores.create_or_update(Datastore(name=ds, type="local", path=str(root)))
    with pytest.raises(PathEscapeError, match="leak.txt"):
        ml_client.models.create_or_update(Model(name=_name("leak"), path=f"azureml://datastores/{ds}/paths/m"))
    with pytest.raises(PathEscapeError):
        ml_client.models.create_or_update(Model(name=_name("up"), path=f"azureml://datastores/{ds}/paths/../secret.txt"))
    with pytest.raises(UnsupportedError, match="https"):
        ml_client.models.create_or_update(Model(name=_name("web"), path="https://example.com/model.pkl"))

    # a model name cannot walk out of the download folder
    with pytest.raises(PathEscapeError, match=r"\.\."):
        ml_client.models.download("../../escape", "1", download_path=tmp_path / "dl")
    assert not (tmp_path / "escape").exists()


# ---------------------------------------------------------------------- service API for jobs
def test_resolve_reference_forms(ml_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name = _name("ref")
    _model_files(tmp_path / "m")
    created = ml_client.models.create_or_update(Model(name=name, path=str(tmp_path / "m")))
    ws = ml_client.workspace_name

    def resolve(ref: str) -> dict:
        return ml_client._transport.get("/models/resolve", params={"reference": ref})

    for ref in (f"azureml:{name}:1", f"azureml:{name}@latest", f"{name}:1", f"{name}@latest",
                f"azureml://models/{name}/versions/1", created.id, f"azureml:{created.id}",
                f"models:/{name}/1", f"azureml://registries/{ws}/models/{name}/versions/1"):
        got = resolve(ref)
        assert got["version"] == "1", ref
        assert (Path(got["local_path"]) / "weights" / "w.txt").is_file(), ref
    with pytest.raises(UnsupportedError, match="registr"):
        resolve(f"azureml://registries/azureml/models/{name}/versions/1")
    with pytest.raises(ValidationError, match="version"):
        resolve(f"azureml:{name}")
    with pytest.raises(NotFoundError, match="versions are: 1"):
        resolve(f"azureml:{name}:9")
    assert json.dumps(resolve(f"{name}:1")["flavors"]) == "null"


@pytest.fixture
def model_service(server):  # type: ignore[no-untyped-def]
    """The real ModelService, in this process, on the session server's workspace (what the jobs
    service calls); MLflow's process-global environment is restored afterwards."""
    import os

    from openaml._settings import Settings
    from openaml.services import WorkspaceContext
    from openaml.services.datastores import DatastoreService
    from openaml.services.models import ModelService
    from openaml.store import MetadataStore
    from openaml.tracking import Tracking
    from openaml.workspace import WorkspaceLayout

    saved = dict(os.environ)
    layout = WorkspaceLayout(server.path)
    settings = Settings(workspace=server.path)
    store = MetadataStore(settings.metadata_url).start()
    tracking = Tracking(layout)
    tracking.start()
    ctx = WorkspaceContext(settings=settings, layout=layout, store=store, tracking=tracking,
                           workspace_name=layout.info()["name"], url=server.url)
    ctx.services["datastores"] = DatastoreService(ctx)
    ctx.services["models"] = ModelService(ctx)
    yield ctx.services["models"]
    store.close()
    os.environ.clear()
    os.environ.update(saved)


def test_register_from_path_for_job_outputs(model_service, ml_client, sk_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, folder = sk_model
    name = _name("jobout")
    got = model_service.register_from_path(name, None, "mlflow_model", folder, description="from a job",
                                           tags={"source": "job"})
    assert got["version"] == "1" and "sklearn" in got["flavors"]
    assert ml_client.models.get(name, label="latest").description == "from a job"
    ref = model_service.resolve_reference(f"azureml:{name}@latest")
    assert (Path(ref["local_path"]) / "MLmodel").is_file()
    assert model_service.register_from_path(name, "7", "custom_model", folder)["version"] == "7"
    with pytest.raises(ConflictError):
        model_service.register_from_path(name, 7, "custom_model", folder)
    with pytest.raises(ValidationError, match="type"):
        model_service.register_from_path(name, None, "onnx", folder)
    _model_files(tmp_path / "plain")
    with pytest.raises(ValidationError, match="MLmodel"):
        model_service.register_from_path(name, None, "mlflow_model", tmp_path / "plain")
    with pytest.raises(NotFoundError, match="does not exist"):
        model_service.register_from_path(name, None, "custom_model", tmp_path / "nothing")
    assert [m.version for m in ml_client.models.list(name)] == ["7", "1"]
