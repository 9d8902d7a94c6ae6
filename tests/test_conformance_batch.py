"""Conformance: azureml-examples ``cli/endpoints/batch`` YAML run unchanged (issue 13 item 6).

The files under tests/conformance/batch/ are copies of the public ones (see its README for what is
ours: data, model, scoring script, conda file). Each step is the public ``deploy-and-run.sh``'s
``az ml`` call with ``openaml`` in its place, run from the example's folder.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import pytest

CONFORMANCE = Path(__file__).resolve().parent / "conformance" / "batch"


def _heart_model(dest: Path, heart_csv: Path) -> None:
    """The heart classifier as an MLflow model (the public one is an XGBoost binary; ours scikit-learn)."""
    import mlflow.sklearn
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = pd.read_csv(heart_csv)
    y = df.pop("target")
    num = [c for c in df.columns if c != "thal"]
    model = Pipeline([("p", ColumnTransformer([("n", StandardScaler(), num),
                                               ("c", OneHotEncoder(handle_unknown="ignore"), ["thal"])])),
                      ("lr", LogisticRegression(max_iter=1000))]).fit(df, y)
    mlflow.sklearn.save_model(model, str(dest), serialization_format="cloudpickle", input_example=df.head(2))


@pytest.fixture(scope="module")
def heart(tmp_path_factory: pytest.TempPathFactory, cli: Any) -> Path:
    """The example folder with its model registered, data asset and compute created (as deploy-and-run.sh)."""
    root = tmp_path_factory.mktemp("batch-conf")
    shutil.copytree(CONFORMANCE, root, dirs_exist_ok=True)
    folder = root / "heart-classifier-mlflow"
    _heart_model(folder / "model", CONFORMANCE / "heart.csv")
    cli("model", "create", "--name", "heart-classifier-mlflow", "--type", "mlflow_model", "--path", "model",
        cwd=folder, check=True)
    cli("data", "create", "-f", "heart-dataset-unlabeled.yml", cwd=folder, check=True)
    r = cli("compute", "create", "-n", "batch-cluster", "--type", "amlcompute", "--min-instances", "0",
            "--max-instances", "5", cwd=folder)
    assert r.returncode == 0 or "exists" in r.stderr, r.stderr
    return folder


def _predictions(cli: Any, job: str, dest: Path) -> list[list[str]]:
    cli("job", "download", "--name", job, "--output-name", "score", "--download-path", str(dest), check=True)
    found = list(dest.rglob("predictions.csv"))
    assert found, [str(p) for p in dest.rglob("*")]
    return [row for row in csv.reader(found[0].read_text().splitlines()) if row]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_heart_classifier_mlflow_simple(cli: Any, heart: Path, tmp_path: Path) -> None:
    """endpoint.yml + deployment-simple (MLflow no-code) unchanged; invoke on the data asset; 303 predictions."""
    name = "heart-classifier-conf"
    cli("batch-endpoint", "create", "-n", name, "-f", "endpoint.yml", cwd=heart, check=True)
    cli("batch-deployment", "create", "--file", "deployment-simple/deployment.yml", "--endpoint-name", name,
        "--set-default", cwd=heart, check=True)
    cli("batch-endpoint", "update", "--name", name, "--set", "defaults.deployment_name=classifier-xgboost-mlflow",
        cwd=heart, check=True)
    assert cli("batch-endpoint", "show", "--name", name, check=True).json()["defaults"]["deployment_name"] == \
        "classifier-xgboost-mlflow"
    dep = cli("batch-deployment", "show", "--name", "classifier-xgboost-mlflow", "--endpoint-name", name,
              check=True).json()
    assert dep["compute"] == "batch-cluster" and dep["resources"]["instance_count"] == 2
    job = cli("batch-endpoint", "invoke", "--name", name, "--input", "azureml:heart-dataset-unlabeled@latest",
              check=True).json()["name"]
    assert job in cli("batch-deployment", "list-jobs", "--name", "classifier-xgboost-mlflow", "--endpoint-name", name,
                      "-o", "json", check=True).stdout
    cli("job", "stream", "-n", job, timeout=900)
    assert cli("job", "show", "-n", job, "--query", "status", "-o", "tsv", check=True).stdout.strip() == "Completed"
    rows = _predictions(cli, job, tmp_path / "simple")
    assert len(rows) == 303 and {r[2] for r in rows} == {f"heart-unlabeled-{i}.csv" for i in range(4)}
    assert {r[1] for r in rows} <= {"0", "1"}
    cli("batch-endpoint", "delete", "--name", name, "--yes", check=True)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # an environment built with uv from the conda file
def test_heart_classifier_custom_scoring_script(cli: Any, heart: Path, tmp_path: Path) -> None:
    """deployment-custom (a scoring script, inline image + conda environment) unchanged, invoked by name."""
    name = "heart-classifier-cust"
    cli("batch-endpoint", "create", "-n", name, "-f", "endpoint.yml", cwd=heart, check=True)
    cli("batch-deployment", "create", "--file", "deployment-custom/deployment.yml", "--endpoint-name", name,
        cwd=heart, check=True, timeout=1200)
    job = cli("batch-endpoint", "invoke", "--name", name, "--deployment-name", "classifier-xgboost-custom",
              "--input", "azureml:heart-dataset-unlabeled@latest", "--input-type", "uri_folder", "--query", "name",
              "-o", "tsv", check=True).stdout.strip()
    cli("job", "stream", "-n", job, timeout=1200)
    assert cli("job", "show", "-n", job, "--query", "status", "-o", "tsv", check=True).stdout.strip() == "Completed"
    cli("job", "download", "--name", job, "--output-name", "score", "--download-path", str(tmp_path), check=True)
    lines = next(tmp_path.rglob("predictions.csv")).read_text().split("\n")
    assert len([ln for ln in lines if ln.strip()]) == 303  # DataFrame rows, space-separated
    cli("batch-endpoint", "delete", "--name", name, "--yes", check=True)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the component's curated environment is built once
def test_hello_batch_pipeline_deployment(cli: Any, heart: Path) -> None:
    """deploy-pipelines/hello-batch: a type: pipeline deployment of a registered pipeline component, invoked
    with no input (the public script's calls)."""
    folder = heart.parent / "hello-batch"
    name = "hello-batch-conf"
    cli("component", "create", "-f", "hello-component/hello.yml", cwd=folder, check=True)
    cli("batch-endpoint", "create", "--name", name, "-f", "endpoint.yml", cwd=folder, check=True)
    cli("batch-endpoint", "show", "--name", name, cwd=folder, check=True)
    cli("batch-deployment", "create", "--endpoint", name, "-f", "deployment.yml", "--set-default", cwd=folder,
        check=True)
    job = cli("batch-endpoint", "invoke", "-n", name, "--query", "name", "-o", "tsv", cwd=folder,
              check=True).stdout.strip()
    cli("job", "stream", "-n", job, timeout=1500)
    assert cli("job", "show", "-n", job, "--query", "status", "-o", "tsv", check=True).stdout.strip() == "Completed"
    cli("batch-endpoint", "delete", "-n", name, "--yes", check=True)
