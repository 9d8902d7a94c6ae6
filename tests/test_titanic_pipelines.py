"""examples/titanic/pipeline: the book's chapter 3 pipeline (YAML and DSL) and chapter 9 train-and-evaluate.

Each test registers models under its own name (``--set inputs.registered_model_name=...``) so
that what "the registered model" is does not depend on other tests. The chapter 3 pipeline runs
once for real; its rerun and the DSL version reuse every step. The chapter 9 pipeline runs two
real pipelines (five step processes), so it is marked slow.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from openaml import Input, load_job

PIPELINE = Path(__file__).resolve().parents[1] / "examples" / "titanic" / "pipeline"


def _run_name(stdout: str) -> str:
    m = re.search(r"^RunId: (\S+)", stdout, re.MULTILINE)
    assert m, stdout
    return m.group(1)


def _steps(ml_client: Any, name: str) -> dict[str, dict[str, Any]]:
    return {c.name[len(name) + 1:]: ml_client.jobs.get_raw(c.name) for c in ml_client.jobs.list(parent_job_name=name)}


def _reused(steps: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {n: s["properties"]["azureml.isreused"] for n, s in steps.items()}


def _create(cli, yml: str, *sets: str, timeout: float = 600) -> str:  # type: ignore[no-untyped-def]
    args = [x for s in sets for x in ("--set", s)]
    r = cli("job", "create", "--file", str(PIPELINE / yml), "--stream", *args, timeout=timeout)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert "Status: Completed" in r.stdout, r.stdout
    return _run_name(r.stdout)


@pytest.fixture(scope="module")
def ch3(cli, ml_client) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """pipeline.yml run once for real, registering a model of its own name."""
    model = f"titanic-pipe-{uuid.uuid4().hex[:8]}"
    name = _create(cli, "pipeline.yml", f"inputs.registered_model_name={model}")
    return {"name": name, "model": model, "steps": _steps(ml_client, name)}


def test_example_files_load_and_say_the_same_graph() -> None:
    ch3 = load_job(PIPELINE / "pipeline.yml")
    assert list(ch3.jobs) == ["prep_data", "train_model"]
    assert ch3.jobs["train_model"].inputs["train_data"] == "${{parent.jobs.prep_data.outputs.train_data}}"
    assert ch3.settings.default_compute == "local"
    ch9 = load_job(PIPELINE / "train-evaluate.yml")
    assert list(ch9.jobs) == ["prep_data", "train_model", "evaluate_model", "register_model"]
    assert "registered_model_name" not in ch9.jobs["train_model"].inputs  # ch9 registers in its own step
    cwd = os.getcwd()
    sys.path.insert(0, str(PIPELINE))
    try:
        import pipeline_dsl  # builds the components from the same files

        dsl_job = pipeline_dsl.titanic_pipeline(titanic=Input(type="mltable", path="../data"))
    finally:
        sys.path.remove(str(PIPELINE))
        os.chdir(cwd)  # the example changes to its folder, as the notebook does
    assert set(dsl_job.jobs) == set(ch3.jobs)
    for node in ch3.jobs:
        assert dsl_job.jobs[node].inputs.keys() == ch3.jobs[node].inputs.keys(), node
    assert dsl_job.jobs["train_model"].inputs["C"] == ch3.jobs["train_model"].inputs["C"] == "${{parent.inputs.C}}"


def test_ch3_pipeline_trains_and_registers(ch3, ml_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    job = ml_client.jobs.get_raw(ch3["name"])
    assert job["status"] == "Completed" and job["experiment_name"] == "titanic-pipeline"
    steps = ch3["steps"]
    assert _reused(steps) == {"prep_data": "false", "train_model": "false"}
    assert "loaded 891 rows x 12 columns" in "\n".join(steps["prep_data"]["log_tail"])
    assert "train: 712 rows, test: 179 rows" in "\n".join(steps["prep_data"]["log_tail"])
    metrics = steps["train_model"]["metrics"]
    assert metrics["accuracy"] > 0.75 and metrics["AUC"] > 0.8, metrics
    versions = ml_client.models.list(ch3["model"])
    assert [(m.version, m.job_name) for m in versions] == [("1", f"{ch3['name']}-train_model")]
    ml_client.jobs.download(ch3["name"], download_path=tmp_path, output_name="model")
    assert (tmp_path / "named-outputs" / "model" / "MLmodel").is_file()


def test_ch3_rerun_unchanged_reuses_every_step(ch3, cli, ml_client) -> None:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    name = _create(cli, "pipeline.yml", f"inputs.registered_model_name={ch3['model']}", timeout=120)
    elapsed = time.monotonic() - t0
    steps = _steps(ml_client, name)
    assert _reused(steps) == {"prep_data": "true", "train_model": "true"}, elapsed
    assert steps["train_model"]["properties"]["azureml.reusedrunid"] == f"{ch3['name']}-train_model"
    assert steps["prep_data"]["properties"]["openaml.reason"].startswith("reused: same component, code")
    assert [m.version for m in ml_client.models.list(ch3["model"])] == ["1"]  # a reused step registers nothing


def test_ch3_dsl_pipeline_is_the_same_graph_so_every_step_is_reused(ch3, server, ml_client) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "OPENAML_WORKSPACE": server.url}
    r = subprocess.run([sys.executable, str(PIPELINE / "pipeline_dsl.py"), "--registered_model_name", ch3["model"]],
                       env=env, capture_output=True, text=True, timeout=300, cwd="/")
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    m = re.search(r"^pipeline (\S+): Completed$", r.stdout, re.MULTILINE)
    assert m, r.stdout
    steps = _steps(ml_client, m.group(1))
    assert _reused(steps) == {"prep_data": "true", "train_model": "true"}
    assert f"model {ch3['model']}:1" in r.stdout


@pytest.mark.slow
def test_ch9_train_evaluate_registers_only_when_better(cli, ml_client) -> None:  # type: ignore[no-untyped-def]
    model = f"titanic-ch9-{uuid.uuid4().hex[:8]}"
    first = _create(cli, "train-evaluate.yml", f"inputs.registered_model_name={model}")
    steps = _steps(ml_client, first)
    assert set(steps) == {"prep_data", "train_model", "evaluate_model", "register_model"}
    assert "no version of" in "\n".join(steps["evaluate_model"]["log_tail"])
    assert [(m.version, m.job_name) for m in ml_client.models.list(model)] == [("1", f"{first}-register_model")]
    # unchanged rerun: prep and train reused; evaluate and register are not deterministic, so they run,
    # find the new model no better than version 1 (it is the same model) and register nothing
    second = _create(cli, "train-evaluate.yml", f"inputs.registered_model_name={model}")
    steps = _steps(ml_client, second)
    assert _reused(steps) == {"prep_data": "true", "train_model": "true", "evaluate_model": "false",
                              "register_model": "false"}
    assert "is_deterministic: false" in steps["evaluate_model"]["properties"]["openaml.reason"]
    assert "not better" in "\n".join(steps["evaluate_model"]["log_tail"])
    assert "not registered" in "\n".join(steps["register_model"]["log_tail"])
    assert [m.version for m in ml_client.models.list(model)] == ["1"]
