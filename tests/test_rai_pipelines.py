"""Issue 16, the rai tier: the RAI pipelines of the examples run on a real server, from the azureml
registry's components, and their gathered dashboard holds every insight (dashboard.json schema
``openaml.rai.dashboard/1``, docs/guide/rai.md). ``pytest -m rai tests/test_rai_pipelines.py``.
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytestmark = [pytest.mark.rai, pytest.mark.timeout(900)]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(cli: Any, ml_client: Any, yml: Path) -> str:
    r = cli("job", "create", "--file", str(yml), "-o", "json", cwd=yml.parent)
    assert r.returncode == 0, r.stderr
    name = r.json()["name"]
    cli("job", "stream", "--name", name, timeout=900)
    return str(name)


def _dashboard(cli: Any, name: str, where: Path, step: str = "gather_01") -> dict[str, Any]:
    r = cli("job", "download", "--name", name, "--all", "--download-path", str(where))
    assert r.returncode == 0, r.stderr
    return dict(json.loads((where / step / "named-outputs" / "dashboard" / "dashboard.json").read_text()))


def test_housing_pipeline_gathers_explanation_error_analysis_and_counterfactuals(cli: Any, ml_client: Any,
                                                                                 tmp_path: Path) -> None:
    work = tmp_path / "housing"
    shutil.copytree(EXAMPLES / "housing" / "rai", work)
    model = f"housing-rf-{uuid.uuid4().hex[:6]}"
    r = cli("job", "create", "--file", "train-job.yml", "--set", f"inputs.model_name={model}", "--stream", cwd=work,
            timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    yml = work / "rai-pipeline.yml"
    yml.write_text(yml.read_text().replace("housing-rf", model))
    name = _run(cli, ml_client, yml)
    job = ml_client.jobs.get_raw(name)
    assert job["status"] == "Completed", job.get("error")
    d = _dashboard(cli, name, tmp_path / "dl")
    assert d["schema"] == "openaml.rai.dashboard/1" and d["task_type"] == "classification"
    assert d["model"] == {"name": model, "version": "1", "uri": f"azureml:{model}:1"}
    assert d["classes"] == ["Less than median", "More than median"]
    n = d["test"]["n_rows"]
    assert n == len(pd.read_parquet(work / "data" / "test" / "test.parquet"))
    assert len(d["explanation"]["local_importance"]) == n
    assert len(d["explanation"]["local_importance"][0]) == len(d["features"]) == 32
    assert d["error_analysis"]["tree"]["n"] == n and d["error_analysis"]["heatmap"]["features"] == \
        ["OverallQual", "GrLivArea"]
    assert len(d["counterfactual"]["rows"]) == 20 and d["counterfactual"]["desired_class"] == "opposite"
    assert 0.7 < d["metrics"]["overall"]["accuracy"] <= 1.0
    assert d["causal"] is None and d["fairness"] is None and d["scorecard"] is None


def test_titanic_chapter8_fairness_mitigation_and_score_card(cli: Any, ml_client: Any, server: Any,
                                                             tmp_path: Path) -> None:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    sys.path.insert(0, str(EXAMPLES / "titanic" / "src"))
    try:
        from train import build_pipeline  # the example's own model: the book's chapter 3 pipeline
    finally:
        sys.path.pop(0)
    work = tmp_path / "titanic"
    shutil.copytree(EXAMPLES / "titanic" / "rai", work)
    train = pd.read_parquet(work / "data" / "train" / "train.parquet")
    X, y = train.drop(columns=["Survived"]), train["Survived"]
    model = build_pipeline(1.0, 200).fit(X, y)
    mlflow.sklearn.save_model(model, str(tmp_path / "m"), signature=infer_signature(X, model.predict(X)),
                              skops_trusted_types=["numpy.dtype"])
    name = f"titanic-{uuid.uuid4().hex[:6]}"
    cli("model", "create", "--name", name, "--version", "1", "--path", str(tmp_path / "m"), "--type", "mlflow_model",
        check=True)
    yml = work / "rai-pipeline.yml"
    yml.write_text(yml.read_text().replace("titanic-model-fair", f"{name}-fair").replace("titanic-model", name))
    job_name = _run(cli, ml_client, yml)
    job = ml_client.jobs.get_raw(job_name)
    assert job["status"] == "Completed", job.get("error")
    d = _dashboard(cli, job_name, tmp_path / "dl")
    sex = d["fairness"]["sensitive_features"]["Sex"]
    assert set(sex["by_group"]) == {"female", "male"}
    mit = d["fairness"]["mitigation"]
    assert mit["method"] == "threshold_optimizer" and mit["constraint"] == "demographic_parity"
    before = mit["before"]["Sex"]["difference"]["selection_rate"]
    after = mit["after"]["Sex"]["difference"]["selection_rate"]
    assert after < before / 2, (before, after)
    fair = ml_client.models.get(f"{name}-fair", version="1")
    assert fair.type == "mlflow_model"
    # the before/after comparison is on the fairness step's run as metrics too (review16 F1: leaving
    # the mitigated model's mlflow run unset MLFLOW_RUN_ID, so none were logged)
    from mlflow import MlflowClient

    metrics = MlflowClient(f"{server.url}/mlflow").get_run(f"{job_name}-fairness_01").data.metrics
    assert metrics["fairness_Sex_selection_rate_difference"] == pytest.approx(before, abs=1e-6)
    assert metrics["mitigated_fairness_Sex_selection_rate_difference"] == pytest.approx(after, abs=1e-6)
    # the model's studio page shows the dashboard of the pipeline run on it (review16 F2: only the
    # gather step holds it, and its definition names no model)
    import httpx

    page = httpx.get(f"{server.url}/models/{name}/rai", params={"version": "1"}, headers={"Accept": "text/html"},
                     timeout=120)
    assert page.status_code == 200 and 'id="no-dashboard"' not in page.text and job_name in page.text
    assert {e["feature"] for e in d["causal"]["global_effects"]} == {"Fare", "Pclass"}
    card_dir = tmp_path / "dl" / "scorecard_01" / "named-outputs" / "scorecard"
    assert (card_dir / "scorecard.pdf").read_bytes().startswith(b"%PDF")
    card = json.loads((card_dir / "dashboard.json").read_text())["scorecard"]
    assert card["verdict"] in ("pass", "fail")
    assert {c["metric"] for c in card["checks"]} >= {"accuracy", "recall", "selection_rate_difference(Sex)"}
    assert card["verdict"] == ("pass" if all(c["passed"] for c in card["checks"]) else "fail")
    # the chapter 8 pipeline is the built-in chain: its score card is trusted by the RAI gate (review16 F7)
    linked = ml_client.models.update(name, "1", tags={"rai.scorecard": f"{job_name}-scorecard_01/scorecard"})
    assert linked.tags["rai.verdict"] == card["verdict"]


def test_a_bad_input_fails_the_constructor_step_naming_the_column(cli: Any, ml_client: Any, tmp_path: Path) -> None:
    work = tmp_path / "bad"
    shutil.copytree(EXAMPLES / "titanic" / "rai", work)
    model_dir = tmp_path / "m"
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    train = pd.read_parquet(work / "data" / "train" / "train.parquet")
    X = train[["Pclass", "SibSp"]]
    mlflow.sklearn.save_model(LogisticRegression().fit(X, train["Survived"]), str(model_dir))
    name = f"bad-{uuid.uuid4().hex[:6]}"
    cli("model", "create", "--name", name, "--version", "1", "--path", str(model_dir), "--type", "mlflow_model",
        check=True)
    (work / "bad.yml").write_text(f"""
type: pipeline
jobs:
  create_rai_job:
    type: command
    component: azureml://registries/azureml/components/rai_tabular_insight_constructor/versions/0.18.0
    inputs:
      title: bad
      task_type: classification
      model_info: {name}:1
      model_input: {{type: mlflow_model, path: azureml:{name}:1}}
      train_dataset: {{type: mltable, path: ./data/train}}
      test_dataset: {{type: mltable, path: ./data/test}}
      target_column_name: Survivors
""")
    job_name = _run(cli, ml_client, work / "bad.yml")
    job = ml_client.jobs.get_raw(job_name)
    assert job["status"] == "Failed"
    step = ml_client.jobs.get_raw(f"{job_name}-create_rai_job")
    assert "column 'Survivors' is missing from the train data" in (step.get("error") or ""), step.get("error")
