"""examples/titanic/batch (the book's chapter 7): the example's files, as they are, with the real CLI and SDK.

titanic-model is registered here from the example's own training pipeline (``src/train.py``'s
``build_pipeline``, fitted in-process: the training job itself is tested by test_titanic_example.py).
"""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "titanic"
BATCH = EXAMPLE / "batch"


def _register_titanic_model(ml_client: Any, dest: Path) -> None:
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature

    from openaml.entities import Model

    spec = importlib.util.spec_from_file_location("titanic_train", EXAMPLE / "src" / "train.py")
    assert spec is not None and spec.loader is not None
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    df = pd.read_csv(EXAMPLE / "data" / "titanic.csv")
    x = df.drop(columns=[train.TARGET, *train.DROPPED]).astype(
        {"Pclass": "float64", "SibSp": "float64", "Parch": "float64", "Sex": object, "Embarked": object})
    pipe = train.build_pipeline(1.0, 200).fit(x, df[train.TARGET])
    mlflow.sklearn.save_model(pipe, str(dest), signature=infer_signature(x, pipe.predict(x)),
                              input_example=x.head(3), serialization_format="cloudpickle")
    ml_client.models.create_or_update(Model(name="titanic-model", path=str(dest), type="mlflow_model"))


def test_example_files_load() -> None:
    from openaml import load_batch_deployment, load_batch_endpoint

    ep = load_batch_endpoint(BATCH / "endpoint.yml")
    dep = load_batch_deployment(BATCH / "deployment.yml")
    nocode = load_batch_deployment(BATCH / "mlflow-deployment.yml")
    assert ep.name == dep.endpoint_name == nocode.endpoint_name == "titanic-batch"
    assert dep.code_configuration is not None and (BATCH / "code" / "score.py").is_file()
    assert nocode.code_configuration is None and nocode.environment is None
    assert len(list((BATCH / "data").glob("*.csv"))) == 4


@pytest.mark.slow
@pytest.mark.timeout(1800)  # titanic-env is built once with uv (shared with test_titanic_example.py)
def test_chapter7_cli_and_sdk(cli: Any, ml_client: Any, server: Any, tmp_path: Path) -> None:
    """run.sh's CLI calls (score.py in titanic-env, then the no-code MLflow deployment with --output-path), then
    batch_sdk.py: 891 passengers scored each time."""
    _register_titanic_model(ml_client, tmp_path / "titanic_model")
    work = tmp_path / "batch"
    shutil.copytree(BATCH, work)
    cli("environment", "create", "--file", str(EXAMPLE / "environment.yml"), check=True)
    cli("batch-endpoint", "create", "--file", "endpoint.yml", cwd=work, check=True)
    cli("batch-deployment", "create", "--file", "deployment.yml", "--set-default", cwd=work, check=True)
    cli("batch-deployment", "create", "--file", "mlflow-deployment.yml", cwd=work, check=True)
    job = cli("batch-endpoint", "invoke", "--name", "titanic-batch", "--input", "./data", "--input-type", "uri_folder",
              "--query", "name", "-o", "tsv", cwd=work, check=True).stdout.strip()
    cli("job", "stream", "--name", job, timeout=1500)
    assert cli("job", "show", "-n", job, "--query", "status", "-o", "tsv", check=True).stdout.strip() == "Completed"
    cli("job", "download", "--name", job, "--output-name", "score", "--download-path", "./scored", cwd=work,
        check=True)
    rows = list(csv.reader(next((work / "scored").rglob("predictions.csv")).read_text().splitlines()))
    assert len(rows) == 891 and sorted(int(r[0]) for r in rows) == list(range(1, 892))
    assert {r[1] for r in rows} == {"0", "1"}
    out = "azureml://datastores/workspaceblobstore/paths/titanic-batch-test/mlflow"
    job2 = cli("batch-endpoint", "invoke", "--name", "titanic-batch", "--deployment-name", "titanic-mlflow",
               "--input", "./data", "--output-path", out, "--query", "name", "-o", "tsv", cwd=work,
               check=True).stdout.strip()
    cli("job", "stream", "--name", job2, timeout=900)
    cli("job", "download", "--name", job2, "--output-name", "score", "--download-path", "./scored-mlflow", cwd=work,
        check=True)
    rows2 = list(csv.reader(next((work / "scored-mlflow").rglob("predictions.csv")).read_text().splitlines()))
    assert len(rows2) == 891 and {r[2] for r in rows2} == {f"passengers-{i}.csv" for i in range(4)}
    # the same flow with the SDK script (no-code deployment: no environment to build again)
    p = subprocess.run([sys.executable, "batch_sdk.py", "--mlflow", "--download-path", "./sdk-scored"], cwd=work,
                       env={**os.environ, "OPENAML_WORKSPACE": server.url}, capture_output=True,
                       text=True, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "891 passengers scored" in p.stdout
    cli("batch-endpoint", "delete", "--name", "titanic-batch", "--yes", check=True)
