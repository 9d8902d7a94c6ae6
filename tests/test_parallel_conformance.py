"""Conformance: azureml-examples parallel jobs run with ``openaml job create --file`` (2a iris over an
MLTable, 1a OJ sales with partition_keys after a command step writing the MLTable).

``tests/conformance/parallel/jobs/parallel/2a_iris_batch_prediction/pipeline.yml`` is the public
pipeline byte for byte (an inline ``type: parallel`` node over an MLTable given ``mode: direct``,
``mini_batch_size: "10kb"``, 2 instances x 2, PRS tuning flags in ``program_arguments``, an
``append_row_to`` ``uri_file`` output at ``azureml://datastores/${{default_datastore}}/paths/${{name}}/
aggregated_returns.csv``); its script, model and data are ours (see the folder's README). The public
environment pins packages that cannot be installed offline, so ``task.environment`` is set to a
curated one with ``--set`` (the only substitution).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CONFORMANCE = Path(__file__).resolve().parent / "conformance" / "parallel"
IRIS = "jobs/parallel/2a_iris_batch_prediction"


@pytest.mark.slow  # builds the curated environment the first time: ~100 s here
def test_iris_batch_prediction_pipeline_runs_unchanged(cli, ml_client, tmp_path):
    shutil.copytree(CONFORMANCE / "jobs", tmp_path / "jobs")
    if "cpu-cluster" not in {c.name for c in ml_client.compute.list()}:
        cli("compute", "create", "--name", "cpu-cluster", "--max-instances", "2", check=True)
    folder = tmp_path / IRIS
    r = cli("job", "create", "--file", str(folder / "pipeline.yml"), "-o", "json",
            "--set", "jobs.batch_prediction.task.environment=azureml:AzureML-sklearn-1.5@latest", cwd=folder)
    assert r.returncode == 0, r.stdout + r.stderr
    name = r.json()["name"]
    final = ml_client.jobs.wait(name, timeout=600)
    children = ml_client.jobs.list_raw(parent_job_name=name)
    step = children[0]
    assert final.status == "Completed", (step["status"], step.get("error"), step.get("log_tail"))
    assert step["type"] == "parallel" and step["compute"] == "cpu-cluster"
    log = cli("job", "stream", "--name", step["name"]).stdout
    assert "has mode direct: the engine reads it as ro_mount" in log
    assert "4 workers" in log and "--allowed_failed_percent" in log
    out = tmp_path / "out"
    ml_client.jobs.download(step["name"], output_name="job_output_file", download_path=out)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["aggregated_returns.csv"], files
    lines = files[0].read_text().splitlines()
    assert len(lines) == 75  # one line per row of the 75-row neural iris table, in order
    assert all(x.endswith(" 2a_yaml") and x.split()[1] in ("setosa", "versicolor", "virginica") for x in lines)
    assert lines[0].split()[0] == "1.4"


OJ = "jobs/parallel/1a_oj_sales_prediction"


@pytest.mark.slow  # a curated environment, 2 steps, 99 models: ~2 min here
def test_oj_sales_partition_keys_pipeline_runs_unchanged(cli, ml_client, tmp_path):
    shutil.copytree(CONFORMANCE / "jobs", tmp_path / "jobs")
    if "cpu-cluster" not in {c.name for c in ml_client.compute.list()}:
        cli("compute", "create", "--name", "cpu-cluster", "--max-instances", "2", check=True)
    folder = tmp_path / OJ
    env = "azureml:AzureML-sklearn-1.5@latest"
    r = cli("job", "create", "--file", str(folder / "pipeline.yml"), "-o", "json",
            "--set", f"jobs.partition_job.environment={env}", "--set", f"jobs.parallel_train.task.environment={env}",
            cwd=folder)
    assert r.returncode == 0, r.stdout + r.stderr
    name = r.json()["name"]
    final = ml_client.jobs.wait(name, timeout=900)
    steps = {c["display_name"]: c for c in ml_client.jobs.list_raw(parent_job_name=name)}
    assert final.status == "Completed", {k: (s["status"], s.get("error"), s.get("log_tail")) for k, s in steps.items()}
    train = steps["parallel_train"]
    assert train["type"] == "parallel" and train["partition_keys"] == ["Store", "Brand"]
    log = cli("job", "stream", "--name", train["name"]).stdout
    assert "mini-batches 99/99 done, 0 failed" in log
    out = tmp_path / "out"
    ml_client.jobs.download(train["name"], output_name="model_folder", download_path=out)
    models = sorted(p.relative_to(out).parts[-3:-1] for p in out.rglob("my_model.pkl"))
    assert len(models) == 99 and models[0] == ("1000", "dominicks")
