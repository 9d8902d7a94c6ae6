"""Distributed jobs (pytorch, tensorflow, mpi) on a ``type: ray`` compute (the ``ray`` tier): the
instances on distinct nodes of the local cluster (tests/ray/cluster.py: a head and a worker node,
one CPU each, so a placement group of two one-CPU bundles takes both raylets), Azure's variables
with the nodes' addresses, per-rank logs, a failing rank, cancel, and refusals before anything runs.

The file's name sorts before test_ray_compute.py, whose last test kills the worker node."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from openaml import command
from openaml.entities import (
    MpiDistribution,
    PyTorchDistribution,
    RayCompute,
    RayResources,
    TensorFlowDistribution,
)
from openaml.errors import ValidationError

pytestmark = [pytest.mark.ray, pytest.mark.timeout(1200)]

#: prints one line per process: the variables it was given
SHOW = ("python -c \"import os, json; print('VARS', json.dumps({k: v for k, v in os.environ.items() "
        "if k in ('RANK', 'LOCAL_RANK', 'NODE_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', "
        "'MASTER_PORT', 'AZUREML_PROCESS_NAME', 'AZUREML_CR_NODE_RANK', 'AZUREML_NODE_COUNT', 'TF_CONFIG', "
        "'AZ_BATCH_HOST_LIST', 'OPENAML_RAY_NODE_ID')}, sort_keys=True))\"")


def _vars(text: str) -> list[dict[str, str]]:
    return [json.loads(line.split("VARS ", 1)[1]) for line in text.splitlines() if "VARS {" in line]


def _compute(ml_client: Any, ray_cluster: Any, name: str, placement: str | None = "strict_spread") -> str:
    ml_client.compute.begin_create_or_update(RayCompute(
        name=name, address=ray_cluster.address, max_instances=4, placement=placement,
        resources=RayResources(num_cpus=1))).result()
    return name


def _live_nodes(ray_cluster: Any) -> set[str]:
    r = httpx.get(f"{ray_cluster.address}/api/v0/nodes", params={"limit": 100}, timeout=10)
    return {n["node_id"] for n in r.json()["data"]["result"]["result"] if n.get("state") == "ALIVE"}


def _gone(token: str, seconds: float = 60.0) -> list[str]:
    """The processes whose command line is ``token`` after ``seconds`` at most ([] once none)."""
    end = time.monotonic() + seconds
    while True:
        left = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if " ".join(p.info["cmdline"] or []) == token:
                    left.append(" ".join(p.info["cmdline"]))
            except psutil.Error:
                continue
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.5)


def test_pytorch_instances_run_on_distinct_ray_nodes_with_azure_variables_and_rank_logs(
        ray_cluster: Any, ml_client: Any, cli: Any, tmp_path: Path) -> None:
    compute = _compute(ml_client, ray_cluster, "ray-dist")
    job = ml_client.jobs.create_or_update(command(
        command=SHOW, compute=compute, instance_count=2, experiment_name="ray-dist",
        distribution=PyTorchDistribution(process_count_per_instance=2)))
    done = ml_client.jobs.wait(job.name, timeout=600)
    assert done.status == "Completed", done.error
    cli("job", "download", "-n", job.name, "--download-path", str(tmp_path / "dl"), check=True)
    logs = tmp_path / "dl" / "artifacts" / "user_logs"
    seen = []
    for rank in range(4):
        own = _vars((logs / f"std_log_process_{rank}.txt").read_text())
        assert [v["RANK"] for v in own] == [str(rank)]
        seen += own
    assert [(v["RANK"], v["LOCAL_RANK"], v["NODE_RANK"]) for v in seen] == [
        ("0", "0", "0"), ("1", "1", "0"), ("2", "0", "1"), ("3", "1", "1")]
    assert {v["WORLD_SIZE"] for v in seen} == {"4"} and {v["LOCAL_WORLD_SIZE"] for v in seen} == {"2"}
    combined = (logs / "std_log.txt").read_text()
    placed = dict(re.findall(r"instance (\d) on Ray node \w+ \(([^)]+)\)", combined))
    assert sorted(placed) == ["0", "1"], combined
    assert {v["MASTER_ADDR"] for v in seen} == {placed["0"]}  # instance 0's node address
    assert len({v["MASTER_PORT"] for v in seen}) == 1
    assert {v["AZ_BATCH_HOST_LIST"] for v in seen} == {f"{placed['0']},{placed['1']}"}
    # the two instances on two distinct raylets of the cluster; an instance's processes on the same one
    nodes = [v["OPENAML_RAY_NODE_ID"] for v in seen]
    assert nodes[0] == nodes[1] and nodes[2] == nodes[3] and nodes[0] != nodes[2], nodes
    assert set(nodes) <= _live_nodes(ray_cluster)
    assert "[rank 3] VARS" in combined


def test_tensorflow_workers_get_tf_config_with_their_nodes(ray_cluster: Any, ml_client: Any) -> None:
    compute = _compute(ml_client, ray_cluster, "ray-tf", placement=None)  # default: spread
    job = ml_client.jobs.create_or_update(command(
        command=SHOW, compute=compute, instance_count=2, distribution=TensorFlowDistribution(worker_count=2)))
    done = ml_client.jobs.wait(job.name, timeout=600)
    assert done.status == "Completed", done.error
    raw = ml_client.jobs.get_raw(job.name)
    seen = sorted(_vars("\n".join(raw["log_tail"])), key=lambda v: int(v["AZUREML_PROCESS_NAME"][5:]))
    configs = [json.loads(v["TF_CONFIG"]) for v in seen]
    assert [c["task"] for c in configs] == [{"type": "worker", "index": 0}, {"type": "worker", "index": 1}]
    assert len({v["OPENAML_RAY_NODE_ID"] for v in seen}) == 2  # spread: distinct nodes where there are enough
    assert len(configs[0]["cluster"]["worker"]) == 2 and all(":" in a for a in configs[0]["cluster"]["worker"])


def test_a_failing_rank_fails_the_job_naming_it_and_stops_the_others(ray_cluster: Any, ml_client: Any) -> None:
    compute = _compute(ml_client, ray_cluster, "ray-fail")
    job = ml_client.jobs.create_or_update(command(
        command='if [ "$RANK" = 1 ]; then sleep 3; echo bye; exit 7; fi; echo up; sleep 3217',
        compute=compute, instance_count=2, distribution=PyTorchDistribution(process_count_per_instance=1)))
    done = ml_client.jobs.wait(job.name, timeout=600)
    assert done.status == "Failed"
    assert "rank 1 exited with code 7" in done.error, done.error
    assert _gone("sleep 3217") == [], "rank 0 kept running after rank 1 failed"


def test_cancel_stops_every_process_on_every_node(ray_cluster: Any, ml_client: Any, server: Any) -> None:
    compute = _compute(ml_client, ray_cluster, "ray-stop")
    job = ml_client.jobs.create_or_update(command(
        command="echo started $RANK; sleep 3218", compute=compute, instance_count=2,
        distribution=PyTorchDistribution(process_count_per_instance=1)))
    end = time.monotonic() + 600
    while len(_gone("sleep 3218", 0)) < 2 and time.monotonic() < end:
        time.sleep(0.5)
    if len(_gone("sleep 3218", 0)) != 2:
        raw = ml_client.jobs.get_raw(job.name)
        raise AssertionError(f"{raw['status']}: {raw.get('error')}\n" + "\n".join(raw.get("log_tail") or []))
    ml_client.jobs.begin_cancel(job.name).result()
    done = ml_client.jobs.wait(job.name, timeout=300)
    assert done.status == "Canceled", done.error
    assert _gone("sleep 3218") == []


@pytest.mark.parametrize(("placement", "count", "expected"), [
    ("strict_spread", 3, "needs 3 distinct Ray nodes"),
    ("spread", 3, "do not fit the Ray cluster"),
])
def test_more_instances_than_the_cluster_holds_are_refused_before_anything_runs(
        ray_cluster: Any, ml_client: Any, placement: str, count: int, expected: str) -> None:
    compute = _compute(ml_client, ray_cluster, f"ray-{placement.replace('_', '-')}", placement)
    before = len(list(ml_client.jobs.list()))
    with pytest.raises(ValidationError) as err:
        ml_client.jobs.create_or_update(command(
            command="echo never", compute=compute, instance_count=count,
            distribution=PyTorchDistribution(process_count_per_instance=1)))
    assert "resources.instance_count" in err.value.message and expected in err.value.message, err.value.message
    assert "has 2" in err.value.message or "hold 2" in err.value.message, err.value.message
    assert len(list(ml_client.jobs.list())) == before  # nothing stored


def test_a_runner_no_live_node_holds_is_refused_not_left_pending(ray_cluster: Any, ml_client: Any) -> None:
    """Regression (a new user's test): a plain job on a Ray compute whose ``resources`` no live node
    has was accepted, sat Preparing while Ray kept its job PENDING, and failed a minute later with "the
    job's runner stopped reporting". It is refused at submission, naming the compute and the resources."""
    ml_client.compute.begin_create_or_update(RayCompute(
        name="ray-nowhere", address=ray_cluster.address, max_instances=1,
        resources=RayResources(num_cpus=1, custom={"no_such_accelerator": 1}))).result()
    before = len(list(ml_client.jobs.list()))
    with pytest.raises(ValidationError) as err:
        ml_client.jobs.create_or_update(command(command="echo never", compute="ray-nowhere"))
    msg = err.value.message
    assert "compute" in msg and "one runner of" in msg and "no_such_accelerator" in msg, msg
    assert "hold 0" in msg and "add a node that has them" in msg, msg
    assert len(list(ml_client.jobs.list())) == before  # nothing stored


def test_placement_per_job_and_mpi_on_several_instances_are_checked(ray_cluster: Any, ml_client: Any) -> None:
    compute = _compute(ml_client, ray_cluster, "ray-checks", None)
    with pytest.raises(ValidationError) as err:
        ml_client.jobs.create_or_update(command(
            command="echo never", compute=compute, instance_count=2,
            distribution=MpiDistribution(process_count_per_instance=1)))
    assert "mpirun does not reach other Ray nodes" in err.value.message, err.value.message
    spec = {"type": "command", "command": "echo never", "compute": compute,
            "distribution": {"type": "pytorch"}, "resources": {"instance_count": 2, "properties": {"placement": "wide"}}}
    with pytest.raises(ValidationError) as err:
        ml_client.jobs._t.post("/jobs", json=spec)
    assert "resources.properties.placement" in err.value.message and "strict_spread" in err.value.message
    spec["resources"] = {"instance_count": 3, "properties": {"placement": "strict_spread"}}  # the job's own placement
    with pytest.raises(ValidationError) as err:
        ml_client.jobs._t.post("/jobs", json=spec)
    assert "needs 3 distinct Ray nodes" in err.value.message, err.value.message


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "distributed"


def test_the_tensorflow_example_runs_on_the_ray_cluster_with_only_the_compute_swapped(
        ray_cluster: Any, ml_client: Any, tmp_path: Path) -> None:
    """examples/distributed/job-tensorflow.yml on ray-compute.yml's compute (its address swapped for the
    test cluster's): each worker on its own node with its TF_CONFIG (the example's --dry-run: no TensorFlow)."""
    from openaml import load_compute, load_job

    made = load_compute(EXAMPLE / "ray-compute.yml", params_override=[{"address": ray_cluster.address}])
    assert made.type == "ray" and made.placement == "spread"
    ml_client.compute.begin_create_or_update(made).result()
    job = load_job(EXAMPLE / "job-tensorflow.yml", params_override=[
        {"compute": f"azureml:{made.name}"}, {"resources.instance_count": 2}])
    job.command = "python train_tf.py --dry-run"
    job.environment = None
    created = ml_client.jobs.create_or_update(job)
    done = ml_client.jobs.wait(created.name, timeout=600)
    assert done.status == "Completed", done.error
    tail = ml_client.jobs.get_raw(created.name)["log_tail"]
    tasks = sorted((t["type"], t["index"], t["workers"]) for t in
                   (json.loads(line.split("TFTASK ", 1)[1]) for line in tail if "TFTASK {" in line))
    assert tasks == [("worker", 0, 2), ("worker", 1, 2)]
    assert sum("on Ray node" in line for line in tail) == 2


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed here: "
                    "bash scripts/install.sh --with-torch")
def test_the_pytorch_per_node_example_trains_across_two_ray_nodes(ray_cluster: Any, ml_client: Any) -> None:
    sys.path.insert(0, str(EXAMPLE))
    try:
        from train_sdk import build_job  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(EXAMPLE))
    compute = _compute(ml_client, ray_cluster, "ray-ddp")
    created = ml_client.jobs.create_or_update(build_job(per_node=True, epochs=1, samples=256, compute=compute))
    done = ml_client.jobs.wait(created.name, timeout=900)
    tail = ml_client.jobs.get_raw(created.name)["log_tail"]
    assert done.status == "Completed", tail
    (throughput,) = [json.loads(line.split("THROUGHPUT ", 1)[1]) for line in tail if "THROUGHPUT {" in line]
    assert throughput["world_size"] == 2 and throughput["samples_per_s"] > 0
