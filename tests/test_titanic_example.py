"""examples/titanic end to end: data asset, environment, training job, registered model, download.

The job runs in the example's own ``titanic-env`` (image + conda file: scikit-learn, pandas, mlflow,
mltable), built once with uv; curated environments carry Azure's package lists, and Azure's
``AzureML-sklearn-1.5`` has no mltable.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from openaml.errors import NotFoundError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "titanic"
ENV = "azureml:titanic-env@latest"


def _job_name(stream_output: str) -> str:
    m = re.search(r"^RunId: (\S+)", stream_output, re.MULTILINE)
    assert m, stream_output
    return m.group(1)


@pytest.fixture(scope="module")
def titanic_job(cli) -> dict:  # type: ignore[no-untyped-def]
    """Register the data and environment with the CLI and run job.yml once: the job's name and log."""
    cli("data", "create", "--file", str(EXAMPLE / "data.yml"), check=True)
    cli("environment", "create", "--file", str(EXAMPLE / "environment.yml"), check=True)
    r = cli("job", "create", "--file", str(EXAMPLE / "job.yml"), "--stream", "--set", f"environment={ENV}",
            timeout=600)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    return {"name": _job_name(r.stdout), "log": r.stdout}


def test_example_files_are_consistent() -> None:
    from openaml import load_data, load_environment, load_job

    job = load_job(EXAMPLE / "job.yml")
    assert job.inputs["titanic"].type == "mltable"
    assert job.inputs["titanic"].path == "azureml:titanic-mltable@latest"
    assert job.environment == "azureml:titanic-env@latest"
    assert (job.compute, job.experiment_name) == ("local", "titanic")
    assert load_data(EXAMPLE / "data.yml").name == "titanic-mltable"
    env = load_environment(EXAMPLE / "environment.yml")
    assert env.name == "titanic-env" and (EXAMPLE / str(env.conda_file)).is_file()
    assert (EXAMPLE / "data" / "MLTable").is_file() and (EXAMPLE / "data" / "titanic.csv").is_file()


def test_titanic_job_completes_with_metrics(titanic_job, ml_client) -> None:  # type: ignore[no-untyped-def]
    raw = ml_client.jobs.get_raw(titanic_job["name"])
    assert raw["status"] == "Completed"
    assert raw["experiment_name"] == "titanic"
    assert raw["display_name"] == "titanic-logistic-regression"
    metrics = raw["metrics"]
    assert metrics["accuracy"] > 0.75, metrics
    assert metrics["AUC"] > 0.8, metrics
    assert raw["params"]["C"] == "1.0" and raw["params"]["max_iter"] == "200"
    assert "loaded 891 rows x 12 columns" in titanic_job["log"]
    assert "Completed" in titanic_job["log"]


def test_titanic_model_is_registered_by_the_job(titanic_job, ml_client) -> None:  # type: ignore[no-untyped-def]
    versions = ml_client.models.list("titanic-model")
    mine = [m for m in versions if m.job_name == titanic_job["name"]]
    assert len(mine) == 1, [(m.version, m.job_name) for m in versions]
    model = ml_client.models.get("titanic-model", version=mine[0].version)
    assert model.type == "mlflow_model"
    assert "sklearn" in (model.flavors or {})


def test_titanic_artifacts_download_and_model_scores_raw_rows(titanic_job, cli, tmp_path, titanic_csv) -> None:  # type: ignore[no-untyped-def]
    import mlflow.sklearn
    import pandas as pd

    r = cli("job", "download", "-n", titanic_job["name"], "--download-path", str(tmp_path))
    assert r.returncode == 0, r.stderr
    model_dir = tmp_path / "artifacts" / "outputs" / "model"
    assert (model_dir / "MLmodel").is_file(), sorted(p.name for p in (tmp_path / "artifacts").rglob("*"))
    assert (tmp_path / "artifacts" / "user_logs" / "std_log.txt").is_file()
    model = mlflow.sklearn.load_model(str(model_dir))
    rows = pd.read_csv(titanic_csv).head(20)  # raw rows, with missing Age values
    X = rows.drop(columns=["Survived", "PassengerId", "Name", "Ticket", "Cabin"])
    X = X.astype({"Pclass": "float64", "SibSp": "float64", "Parch": "float64", "Sex": object, "Embarked": object})
    assert X["Age"].isna().any()
    preds = model.predict(X)
    assert set(preds) <= {0, 1} and len(preds) == 20


def test_demo_titanic_makes_next_versions(titanic_job, cli, ml_client) -> None:  # type: ignore[no-untyped-def]
    data_before = int(ml_client.data.get("titanic-mltable", label="latest").version)
    env_before = int(ml_client.environments.get("titanic-env", label="latest").version)
    r = cli("demo", "titanic", "--environment", ENV, "--output", "json", timeout=600)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    summary = r.json()
    assert summary["status"] == "Completed"
    assert summary["data"] == f"titanic-mltable:{data_before + 1}"
    assert summary["accuracy"] > 0.75 and summary["AUC"] > 0.8
    name, version = summary["model"].split(":")
    assert ml_client.models.get(name, version=version).job_name == summary["job"]
    assert summary["mlflow_ui"].endswith("/mlflow/")
    assert ml_client.environments.get("titanic-env", label="latest").version == str(env_before + 1)
    assert "[1/4] data create" in r.stderr and "Execution Summary" in r.stderr


def test_demo_fails_with_exit_code_1(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = cli("demo", "titanic", "--path", str(tmp_path))
    assert r.returncode == 1
    assert "titanic example was not found" in r.stderr
    r = cli("demo", "titanic", "--environment", "azureml:no-such-env:1")
    assert r.returncode == 1
    assert "no-such-env" in r.stderr


def test_demo_creates_a_named_workspace(openaml_home) -> None:  # type: ignore[no-untyped-def]
    from openaml.cli._demo import ensure_workspace
    from openaml.workspace import get_workspace_path

    with pytest.raises(NotFoundError):
        get_workspace_path("demo-ws-test")
    assert ensure_workspace("demo-ws-test") == "demo-ws-test"
    assert (get_workspace_path("demo-ws-test") / "workspace.json").is_file()
    assert ensure_workspace("demo-ws-test") == "demo-ws-test"  # existing: unchanged
