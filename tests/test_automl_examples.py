"""The AutoML examples (issue 14 item 7): examples/bank-marketing-automl (classification) and
examples/bike-share-forecasting (forecasting), each run from its YAML and its SDK script on a real
server (shorter limits than the examples' own, so that the suite stays in minutes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1] / "examples"


def test_the_examples_are_valid_jobs() -> None:
    from openaml import load_job
    from openaml.entities._automl import automl_problems

    for folder in ("bank-marketing-automl", "bike-share-forecasting"):
        job = load_job(ROOT / folder / "automl-job.yml")
        problems, _ = automl_problems(job)
        assert not problems, (folder, problems)
        assert (job.base_path / job.training_data.path / "MLTable").is_file()


def _run_yaml(ml_client: Any, folder: str, **limits: Any) -> dict[str, Any]:
    from openaml import load_job

    job = load_job(ROOT / folder / "automl-job.yml")
    job.set_limits(**limits)
    job.set_training(enable_model_explainability=False)
    created = ml_client.jobs.create_or_update(job)
    done = ml_client.jobs.wait(created.name, timeout=900)
    raw: dict[str, Any] = ml_client.jobs.get_raw(created.name)
    assert done.status == "Completed", raw.get("error")
    return raw


@pytest.mark.slow
def test_bank_marketing_example_yaml(ml_client: Any) -> None:
    from mlflow.tracking import MlflowClient

    raw = _run_yaml(ml_client, "bank-marketing-automl", timeout_minutes=3, max_trials=3)
    assert len([t for t in raw["trials"] if t["status"] == "Completed"]) >= 2
    client = MlflowClient(tracking_uri=ml_client.workspaces.get().mlflow_tracking_uri)
    run = client.get_run(raw["best_child_run_id"])
    assert run.data.metrics["AUC_weighted"] > 0.85 and run.data.metrics["test_AUC_weighted"] > 0.85


@pytest.mark.slow
def test_bike_share_example_yaml(ml_client: Any) -> None:
    raw = _run_yaml(ml_client, "bike-share-forecasting", timeout_minutes=3, max_trials=4)
    assert {g["name"] for g in raw["guardrails"]} >= {"Short series handling", "Frequency detection"}
    assert raw["best_score"] < 0.35  # normalized RMSE over 3 rolling origins of 14 days (measured 0.227)


@pytest.mark.slow
@pytest.mark.parametrize(("folder", "expected"), [("bank-marketing-automl", "held-out AUC of model.pkl"),
                                                  ("bike-share-forecasting", "14-day forecast MAPE")])
def test_the_example_sdk_scripts_run(server: Any, folder: str, expected: str) -> None:
    env = {**os.environ, "OPENAML_WORKSPACE": server.url}
    out = subprocess.run([sys.executable, str(ROOT / folder / "automl_sdk.py"), "--quick"], env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert expected in out.stdout, out.stdout[-2000:]
