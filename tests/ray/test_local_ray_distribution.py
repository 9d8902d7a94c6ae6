"""The ``ray`` distribution on local compute: a Ray cluster of ``instance_count`` nodes started on
loopback for the job, its address in ``RAY_ADDRESS``, torn down after the job whatever its end
(completed, failed, canceled): no raylet left. The ``ray`` tier (it starts real Ray nodes)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import psutil
import pytest

from openaml import command
from openaml.entities import RayDistribution
from openaml.errors import ValidationError

SCRIPT = ("python -c \"import ray, json; ray.init(); "
          "n = sum(1 for x in ray.nodes() if x['Alive']); "
          "f = ray.remote(lambda x: x * 2); "
          "print('RAYJOB', json.dumps({'nodes': n, 'result': ray.get(f.remote(21))}))\"")


def _cluster_of(ml_client: Any, server: Any, name: str) -> dict[str, Any]:
    """The ``Ray cluster up`` line of the job's log (the server's copy, as it grows)."""
    end = time.monotonic() + 600
    log = server.path / "jobs" / name / "user_logs" / "std_log.txt"
    while time.monotonic() < end:
        raw = ml_client.jobs.get_raw(name)
        for line in (log.read_text(errors="replace").splitlines() if log.exists() else []):
            if "Ray cluster up: " in line:
                return dict(json.loads(line.split("Ray cluster up: ", 1)[1]))
        if raw["status"] in ("Completed", "Failed", "Canceled"):
            break
        time.sleep(0.5)
    raise AssertionError(f"job {name} never said its Ray cluster was up: {ml_client.jobs.get_raw(name)}")


def _torn_down(info: dict[str, Any], seconds: float = 60.0) -> list[str]:
    """What is left of the job's cluster after ``seconds`` at most: processes naming its folder, its GCS port."""
    end = time.monotonic() + seconds
    while True:
        left = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if any(info["temp_dir"] in a for a in (p.info["cmdline"] or [])):
                    left.append(" ".join(p.info["cmdline"])[:200])
            except psutil.Error:
                continue
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", int(info["address"].rsplit(":", 1)[1]))) == 0:
                left.append(f"something still listens on {info['address']}")
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.5)


@pytest.mark.parametrize(("dist", "field"), [
    ({"type": "ray", "process_count_per_instance": 2}, "distribution.process_count_per_instance"),
    ({"type": "ray", "worker_count": 2}, "distribution.worker_count"),
])
def test_a_ray_distribution_with_fields_of_another_type_is_refused(ml_client: Any, dist: dict[str, Any],
                                                                   field: str) -> None:
    with pytest.raises(ValidationError) as err:
        ml_client.jobs._t.post("/jobs", json={"type": "command", "command": "echo never", "distribution": dist})
    assert field in err.value.message and "ray takes" in err.value.message, err.value.message


@pytest.mark.ray
@pytest.mark.timeout(1200)
def test_a_ray_cluster_of_instance_count_nodes_is_started_for_the_job_and_torn_down(ml_client: Any,
                                                                                     server: Any) -> None:
    job = ml_client.jobs.create_or_update(command(
        command=SCRIPT, instance_count=2, distribution=RayDistribution(), experiment_name="ray-dist"))
    info = _cluster_of(ml_client, server, job.name)
    assert info["nodes"] == 2 and info["address"].startswith("127.0.0.1:")
    done = ml_client.jobs.wait(job.name, timeout=600)
    assert done.status == "Completed", done.error
    raw = ml_client.jobs.get_raw(job.name)
    said = [json.loads(line.split("RAYJOB ", 1)[1]) for line in raw["log_tail"] if "RAYJOB {" in line]
    assert said == [{"nodes": 2, "result": 42}]  # the script joined the job's own 2-node cluster
    assert _torn_down(info) == []


@pytest.mark.ray
@pytest.mark.timeout(1200)
def test_a_failed_or_canceled_ray_job_leaves_no_raylet(ml_client: Any, server: Any) -> None:
    failing = ml_client.jobs.create_or_update(command(
        command="python -c \"import ray; ray.init(); print('joined')\"; exit 3", distribution={"type": "ray"}))
    info = _cluster_of(ml_client, server, failing.name)
    done = ml_client.jobs.wait(failing.name, timeout=600)
    assert done.status == "Failed" and "exited with code 3" in done.error, done.error
    assert _torn_down(info) == []

    long = ml_client.jobs.create_or_update(command(command="echo waiting; sleep 3219", distribution={"type": "ray"}))
    info = _cluster_of(ml_client, server, long.name)
    ml_client.jobs.begin_cancel(long.name).result()
    done = ml_client.jobs.wait(long.name, timeout=300)
    assert done.status == "Canceled", done.error
    assert _torn_down(info) == []


def _runner_of(name: str) -> psutil.Process:
    """The job's runner process (``python -m openaml.runner ... --job <name>``)."""
    for p in psutil.process_iter(["cmdline"]):
        args = p.info["cmdline"] or []
        if "openaml.runner" in args and name in args:
            return p
    raise AssertionError(f"no runner process for job {name}")


@pytest.mark.ray
@pytest.mark.timeout(1200)
def test_a_sigkilled_runner_leaves_no_ray_cluster(ml_client: Any, server: Any) -> None:
    """The runner of a ``ray`` distribution job killed with SIGKILL (no chance to tear its cluster
    down): the job fails, and the compute's kill ends the cluster's nodes (``runner/rank_sessions``)."""
    job = ml_client.jobs.create_or_update(command(command="echo waiting; sleep 3219", distribution={"type": "ray"}))
    info = _cluster_of(ml_client, server, job.name)
    assert _torn_down(info, seconds=0) != []  # the cluster is up
    _runner_of(job.name).kill()
    done = ml_client.jobs.wait(job.name, timeout=300)
    assert done.status == "Failed", (done.status, done.error)
    assert _torn_down(info) == []
