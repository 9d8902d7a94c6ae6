"""Conformance: azureml-examples ``cli/jobs/basics`` jobs and ``cli/assets/model`` files run unchanged.

The files under tests/conformance/ have the fields of the public ones (our own wording and
scripts). Each runs through the real CLI, ``openaml job create -f <file> --stream``; only inputs
that point at the internet are replaced with ``--set`` (local copies of iris.csv), as the issue
allows. The MLflow model that ``hello-model-as-*`` and ``local-*.yml`` read is generated here.

All jobs are submitted at once (each by its own CLI process) in a module fixture; the tests then
check each one's log, outputs, downloads and registered assets.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CONFORMANCE = Path(__file__).resolve().parent / "conformance"
IRIS = Path(__file__).resolve().parent / "data" / "iris.csv"
BASICS = "jobs/basics"


@dataclass
class Run:
    yml: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def name(self) -> str:
        m = re.search(r"^RunId: (\S+)", self.stdout, re.MULTILINE)
        assert m, f"no RunId in the output of {self.yml}:\n{self.stdout}\n{self.stderr}"
        return m.group(1)

    @property
    def log(self) -> str:
        """The streamed user log (between the banner and the execution summary)."""
        text = self.stdout.split("===============================", 1)[-1]
        return text.split("Execution Summary", 1)[0]

    def assert_completed(self) -> None:
        assert self.returncode == 0, f"{self.yml} failed ({self.returncode}):\n{self.stdout}\n{self.stderr}"
        assert "Status: Completed" in self.stdout, self.stdout


def _iris() -> Path:
    return IRIS


_MAKE_MODEL = """
import sys
import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

iris = load_iris()
X = pd.DataFrame(iris.data, columns=["sepal_length", "sepal_width", "petal_length", "petal_width"])
y = pd.Series(iris.target_names[iris.target])
clf = LogisticRegression(max_iter=300).fit(X, y)
mlflow.sklearn.save_model(clf, sys.argv[1], serialization_format="cloudpickle",
                          signature=infer_signature(X, clf.predict(X)))
"""
# the environment hello-model-as-output.yml names: the model is made with the versions that load it
# (a model pickled by the server's numpy 2 does not load in sklearn-1.5's numpy 1.x, as on Azure)
_MODEL_ENV = "azureml://registries/azureml/environments/sklearn-1.5/labels/latest"


def _make_mlflow_model(path: Path, envs_dir: Path) -> None:
    """A tiny iris classifier saved as the public sample is (MLflow sklearn flavor, cloudpickle,
    model.pkl), by the interpreter of the curated environment the sample jobs run in. The build goes
    to the session workspace's environment cache, so the jobs reuse it (its file lock serialises the
    two)."""
    from openaml.environments import ensure_environment, resolve_spec

    bin_dir = ensure_environment(resolve_spec(_MODEL_ENV), envs_dir)
    subprocess.run([str(Path(bin_dir) / "python"), "-c", _MAKE_MODEL, str(path)], check=True, capture_output=True,
                   timeout=600)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of tests/conformance laid out as azureml-examples' cli/ folder, plus local iris data."""
    root = tmp_path_factory.mktemp("cli")
    shutil.copytree(CONFORMANCE / "jobs", root / "jobs")
    shutil.copytree(CONFORMANCE / "assets" / "model", root / "assets" / "model")
    data = root / "local-data"  # stands for the public "datasets" container: iris.csv among other files
    data.mkdir()
    shutil.copy(_iris(), data / "iris.csv")
    (data / "README.txt").write_text("local stand-in for wasbs://datasets@azuremlexamples.blob.core.windows.net/\n")
    return root


@pytest.fixture(scope="module")
def mlflow_model(tree: Path, server) -> Path:  # type: ignore[no-untyped-def]
    """assets/model/mlflow-model, which the public repository ships and we generate."""
    path = tree / "assets" / "model" / "mlflow-model"
    _make_mlflow_model(path, server.path / "envs")
    return path


def _cases(tree: Path) -> dict[str, list[str]]:
    """File -> extra CLI arguments (the --set substitutions of internet data)."""
    data = tree / "local-data"
    return {
        "hello-world.yml": [],
        "hello-world-org.yml": [],
        "hello-world-env-var.yml": [],
        "hello-world-input.yml": [],
        "hello-world-output.yml": [],
        "hello-world-output-data.yml": [],
        "hello-code.yml": [],
        "hello-mlflow.yml": [],
        "hello-model-as-input.yml": [],
        "hello-model-as-output.yml": [],
        "hello-iris-file.yml": ["--set", f"inputs.iris_csv.path={data / 'iris.csv'}"],
        "hello-iris-folder.yml": ["--set", f"inputs.data_dir.path={data}"],
    }


@pytest.fixture(scope="module")
def runs(cli, tree: Path, request: pytest.FixtureRequest) -> dict[str, Run]:  # type: ignore[no-untyped-def]
    cases = _cases(tree)
    folder = tree / BASICS

    def run(yml: str) -> Run:
        r = cli("job", "create", "-f", str(folder / yml), "--stream", *cases[yml], cwd=tree, timeout=300)
        return Run(yml, r.returncode, r.stdout, r.stderr)

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = {yml: pool.submit(run, yml) for yml in cases if "model" not in yml}
        request.getfixturevalue("mlflow_model")  # made while the first jobs run
        futures.update({yml: pool.submit(run, yml) for yml in cases if "model" in yml})
        return {yml: f.result() for yml, f in futures.items()}


def _job(ml_client: Any, run: Run) -> dict[str, Any]:
    return ml_client.jobs.get_raw(run.name)


def _datastore_file(server: Any, uri: str, *rel: str) -> Path:
    m = re.match(r"^azureml://datastores/([^/]+)/paths/(.*)$", uri)
    assert m, uri
    return server.path.joinpath("datastores", m.group(1), m.group(2), *rel)


# ---------------------------------------------------------------------------- hello-world family
def test_hello_world(runs: dict[str, Run], ml_client) -> None:  # type: ignore[no-untyped-def]
    run = runs["hello-world.yml"]
    run.assert_completed()
    assert "hello world" in run.log
    assert "library/python:latest" in run.log  # the image fallback is said, not silent
    job = _job(ml_client, run)
    assert job["type"] == "command" and job["compute"] == "local"
    assert job["experiment_name"] == "basics"  # Azure's default: the folder the YAML is in


def test_hello_world_org(runs: dict[str, Run], ml_client) -> None:  # type: ignore[no-untyped-def]
    run = runs["hello-world-org.yml"]
    run.assert_completed()
    job = _job(ml_client, run)
    assert job["tags"]["hello"] == "world"
    assert job["display_name"] == "hello-world-example"
    assert job["experiment_name"] == "hello-world-example"
    assert job["description"].startswith('# A "hello world" job')
    listed = ml_client.jobs.list(max_results=50)
    assert any(j.name == run.name and j.experiment_name == "hello-world-example" for j in listed)


def test_hello_world_env_var(runs: dict[str, Run], ml_client) -> None:  # type: ignore[no-untyped-def]
    run = runs["hello-world-env-var.yml"]
    run.assert_completed()
    assert "hello world" in run.log
    assert _job(ml_client, run)["environment_variables"] == {"hello_env_var": "hello world"}


def test_hello_world_input(runs: dict[str, Run]) -> None:
    run = runs["hello-world-input.yml"]
    run.assert_completed()
    lines = [ln.strip() for ln in run.log.splitlines()]
    assert "hello world" in lines and "42" in lines


def test_hello_world_output_in_default_artifacts(runs: dict[str, Run], cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = runs["hello-world-output.yml"]
    run.assert_completed()
    cli("job", "download", "-n", run.name, "--download-path", str(tmp_path), check=True)
    assert (tmp_path / "artifacts" / "outputs" / "helloworld.txt").read_text() == "hello world\n"
    assert (tmp_path / "artifacts" / "user_logs" / "std_log.txt").is_file()


def test_hello_world_output_data_named_output(runs: dict[str, Run], ml_client, server, cli,  # type: ignore[no-untyped-def]
                                               tmp_path: Path) -> None:
    run = runs["hello-world-output-data.yml"]
    run.assert_completed()
    uri = _job(ml_client, run)["output_uris"]["hello_output"]
    assert uri.rstrip("/") == f"azureml://datastores/workspaceblobstore/paths/azureml/{run.name}/hello_output"
    assert _datastore_file(server, uri, "helloworld.txt").read_text() == "hello world\n"
    cli("job", "download", "-n", run.name, "--output-name", "hello_output", "--download-path", str(tmp_path),
        check=True)
    assert (tmp_path / "named-outputs" / "hello_output" / "helloworld.txt").read_text() == "hello world\n"


# ---------------------------------------------------------------------------- code and MLflow
def test_hello_code_lists_the_snapshot(runs: dict[str, Run]) -> None:
    run = runs["hello-code.yml"]
    run.assert_completed()
    for script in ("hello-iris.py", "hello-mlflow.py", "hello-model-as-output.py"):
        assert script in run.log


def test_hello_mlflow_logs_on_the_job(runs: dict[str, Run], ml_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = runs["hello-mlflow.yml"]
    run.assert_completed()
    job = _job(ml_client, run)
    assert job["params"] == {"hello_param": "world"}
    assert 0.0 <= job["metrics"]["hello_metric"] <= 1.0
    ml_client.jobs.download(run.name, download_path=tmp_path)
    assert (tmp_path / "artifacts" / "helloworld.txt").read_text() == "hello world\n"


# ---------------------------------------------------------------------------- models
def test_hello_model_as_input(runs: dict[str, Run]) -> None:
    run = runs["hello-model-as-input.yml"]
    run.assert_completed()
    for name in ("MLmodel", "model.pkl", "conda.yaml"):
        assert name in run.log


def test_hello_model_as_output(runs: dict[str, Run], ml_client, server) -> None:  # type: ignore[no-untyped-def]
    run = runs["hello-model-as-output.yml"]
    run.assert_completed()
    uri = _job(ml_client, run)["output_uris"]["output_folder"]
    saved = _datastore_file(server, uri, "my_model")
    assert (saved / "MLmodel").is_file(), sorted(p.name for p in saved.parent.rglob("*"))

    import mlflow.pyfunc
    import pandas as pd

    model = mlflow.pyfunc.load_model(str(saved))
    row = pd.DataFrame([[5.1, 3.5, 1.4, 0.2]], columns=["sepal_length", "sepal_width", "petal_length",
                                                         "petal_width"])
    assert list(model.predict(row)) == ["setosa"]


@pytest.mark.parametrize("yml,type_,tail", [
    ("local-file.yml", "custom_model", "model.pkl"),
    ("local-mlflow.yml", "mlflow_model", "mlflow-model"),
])
def test_model_assets_from_local_files(cli, ml_client, tree: Path, mlflow_model: Path,  # type: ignore[no-untyped-def]
                                      yml: str, type_: str, tail: str) -> None:
    out = cli("model", "create", "--file", str(tree / "assets" / "model" / yml), check=True).json()
    assert out["name"] == yml.replace(".yml", "-example")
    assert out["type"] == type_
    assert out["path"].rstrip("/").endswith(tail)
    shown = ml_client.models.get(out["name"], version=out["version"])
    assert (shown.type, shown.version) == (type_, out["version"])


# ---------------------------------------------------------------------------- internet data
def test_hello_iris_file_with_local_copy(runs: dict[str, Run], ml_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = runs["hello-iris-file.yml"]
    run.assert_completed()
    assert re.search(r"--iris-csv: /\S+/iris\.csv", run.log), run.log
    ml_client.jobs.download(run.name, download_path=tmp_path)
    copied = tmp_path / "artifacts" / "outputs" / "iris.csv"
    assert len(copied.read_text().splitlines()) == len(_iris().read_text().splitlines())


def test_hello_iris_folder_with_local_copy(runs: dict[str, Run]) -> None:
    run = runs["hello-iris-folder.yml"]
    run.assert_completed()
    lines = run.log.splitlines()
    assert "iris.csv" in [ln.strip() for ln in lines]  # the `ls` of the input folder
    assert re.search(r"--iris-csv: /\S+/iris\.csv", run.log), run.log


@pytest.mark.parametrize("yml,field", [("hello-iris-file.yml", "inputs.iris_csv"),
                                       ("hello-iris-folder.yml", "inputs.data_dir")])
def test_internet_inputs_unchanged_are_refused_clearly(cli, tree: Path, yml: str, field: str) -> None:  # type: ignore[no-untyped-def]
    r = cli("job", "create", "-f", str(tree / BASICS / yml), "--stream")
    assert r.returncode == 1
    assert field in r.stderr and "remote" in r.stderr and "--set" in r.stderr, r.stderr
    assert "RunId" not in r.stdout  # refused before anything ran


def test_hello_iris_file_after_folder_with_only_iris_csv(cli, tree: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """hello-iris-folder then hello-iris-file, each given a local copy: a folder holding only iris.csv,
    then that iris.csv. Regression: both uploads once hashed to the same LocalUpload/<digest>/ and the file
    was lost."""
    folder = tmp_path / "only-iris"
    folder.mkdir()
    # content of its own, so that no earlier upload in the session has the same hash
    (folder / "iris.csv").write_text(_iris().read_text() + f"# {uuid.uuid4().hex}\n")
    first = cli("job", "create", "-f", str(tree / BASICS / "hello-iris-folder.yml"),
                "--set", f"inputs.data_dir.path={folder}")
    assert first.returncode == 0, first.stderr
    second = cli("job", "create", "-f", str(tree / BASICS / "hello-iris-file.yml"),
                 "--set", f"inputs.iris_csv.path={folder / 'iris.csv'}")
    assert second.returncode == 0, second.stderr
