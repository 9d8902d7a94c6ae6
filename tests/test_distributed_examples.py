"""examples/distributed (book chapter 11) run as the README says: real server, SDK and processes.

The PyTorch jobs need torch in the server's environment (``bash scripts/install.sh --with-torch``;
CI installs it): they skip without it unless CI=true, and are ``slow`` (two torch processes with
gloo on a small CPU). TensorFlow is not installed by default: its test checks the ``TF_CONFIG``
contract with the example's ``--dry-run``, which stops before importing TensorFlow.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from openaml import load_job

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "distributed"
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None and os.environ.get("CI") != "true",
                                 reason="torch is not installed here: bash scripts/install.sh --with-torch")


def _lines(ml_client, name: str, tag: str) -> list[dict]:  # type: ignore[no-untyped-def]
    tail = ml_client.jobs.get_raw(name)["log_tail"]
    return [json.loads(line.split(tag + " ", 1)[1]) for line in tail if tag + " {" in line]


def test_tensorflow_example_gives_each_worker_its_tf_config(ml_client):
    job = load_job(EXAMPLE / "job-tensorflow.yml")
    assert job.distribution == {"type": "tensorflow", "worker_count": 2}
    job.command = "python train_tf.py --dry-run"
    job.environment = None  # TensorFlow's environment is not needed for the contract
    created = ml_client.jobs.create_or_update(job)
    assert ml_client.jobs.wait(created.name, timeout=120).status == "Completed"
    tasks = sorted((t["type"], t["index"], t["workers"], t["chief"]) for t in _lines(ml_client, created.name, "TFTASK"))
    assert tasks == [("worker", 0, 2, True), ("worker", 1, 2, False)]


@pytest.mark.slow
@needs_torch
@pytest.mark.parametrize("yml", ["job-pytorch.yml", "job-pytorch-per-node.yml"])
def test_pytorch_ddp_example_trains_on_two_ranks(ml_client, cli, server, tmp_path, yml):
    created = cli("job", "create", "-f", str(EXAMPLE / yml), "--set", "inputs.epochs=1", "--set",
                  "inputs.samples=512", "-o", "json", check=True).json()
    created = ml_client.jobs.get(created["name"])
    final = ml_client.jobs.wait(created.name, timeout=600)
    assert final.status == "Completed", ml_client.jobs.get_raw(created.name)["log_tail"]
    (throughput,) = _lines(ml_client, created.name, "THROUGHPUT")
    assert throughput["world_size"] == 2 and throughput["samples_per_s"] > 0
    ml_client.jobs.download(created.name, download_path=tmp_path)
    assert (tmp_path / "artifacts" / "outputs" / "model.pt").stat().st_size > 0
    logs = sorted(p.name for p in (tmp_path / "artifacts" / "user_logs").glob("std_log_process_*.txt"))
    assert logs == ["std_log_process_0.txt", "std_log_process_1.txt"]
    from mlflow.tracking import MlflowClient

    run = MlflowClient(f"{server.url}/mlflow").get_run(created.name)
    assert 0 <= run.data.metrics["accuracy"] <= 1  # logged by rank 0 only: one value per epoch
    assert len(MlflowClient(f"{server.url}/mlflow").get_metric_history(created.name, "accuracy")) == 1


@pytest.mark.slow
@needs_torch
def test_sdk_example_builds_both_launches():
    sys.path.insert(0, str(EXAMPLE))
    try:
        import train_sdk
    finally:
        sys.path.remove(str(EXAMPLE))
    per_process = train_sdk.build_job()
    assert per_process.distribution == {"type": "pytorch", "process_count_per_instance": 2}
    assert per_process.resources.instance_count == 1
    per_node = train_sdk.build_job(per_node=True)
    assert per_node.resources.instance_count == 2
    assert "torch.distributed.launch" in per_node.command
