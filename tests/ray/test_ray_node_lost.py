"""A Ray node whose raylet dies mid-job (review F2), runner folders left by killed entrypoints (F8),
and Ray's own job list for openaml jobs not Completed (F6), on a cluster of this module's own (the
test kills its worker node's raylet)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from openaml import command
from openaml.entities import PyTorchDistribution, RayCompute, RayResources

pytestmark = [pytest.mark.ray, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def lost_cluster() -> Any:
    from tests.ray.cluster import LocalRayCluster, ray_available

    if not ray_available():
        pytest.skip("ray is not installed (pip install 'openaml[ray]')")
    cluster = LocalRayCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _compute(ml_client: Any, cluster: Any, name: str) -> str:
    ml_client.compute.begin_create_or_update(RayCompute(
        name=name, address=cluster.address, max_instances=4, placement="strict_spread",
        resources=RayResources(num_cpus=1))).result()
    return name


def _with(token: str, exact: bool = False) -> list[psutil.Process]:
    """The processes whose command line is (``exact``) or holds ``token``."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            line = " ".join(p.info["cmdline"] or [])
            if line == token or (not exact and token in line):
                found.append(p)
        except psutil.Error:
            continue
    return found


def _ray_status(cluster: Any, job_name: str) -> str:
    jobs = httpx.get(f"{cluster.address}/api/jobs/", timeout=10).json()
    return next(j["status"] for j in jobs if (j.get("metadata") or {}).get("openaml_job") == job_name)


def test_a_failed_job_is_failed_in_rays_job_list_and_dead_runner_folders_are_swept(
        lost_cluster: Any, ml_client: Any) -> None:
    tmp = os.environ.get("TMPDIR") or tempfile.gettempdir()
    left = Path(tempfile.mkdtemp(prefix="openaml-job-", dir=tmp))  # as a killed entrypoint leaves it
    (left / "outputs").mkdir()
    dead = psutil.Popen(["true"])
    dead.wait()
    Path(f"{left}.pid").write_text(f"{dead.pid}\n")
    compute = _compute(ml_client, lost_cluster, "ray-lost-f6")
    job = ml_client.jobs.create_or_update(command(command="echo no; exit 3", compute=compute))
    done = ml_client.jobs.wait(job.name, timeout=600)
    assert done.status == "Failed", done.error
    end = time.monotonic() + 60  # the runner reports its end, then exits
    while _ray_status(lost_cluster, job.name) in ("PENDING", "RUNNING") and time.monotonic() < end:
        time.sleep(0.5)
    assert _ray_status(lost_cluster, job.name) == "FAILED"
    assert not left.exists() and not Path(f"{left}.pid").exists()
    # a canceled distributed job is not SUCCEEDED in Ray's list either
    job = ml_client.jobs.create_or_update(command(
        command="echo up $RANK; sleep 3221", compute=compute, instance_count=2,
        distribution=PyTorchDistribution(process_count_per_instance=1)))
    end = time.monotonic() + 600
    while len(_with("sleep 3221", exact=True)) < 2 and time.monotonic() < end:
        time.sleep(0.5)
    ml_client.jobs.begin_cancel(job.name).result()
    assert ml_client.jobs.wait(job.name, timeout=300).status == "Canceled"
    end = time.monotonic() + 60
    while _ray_status(lost_cluster, job.name) in ("PENDING", "RUNNING") and time.monotonic() < end:
        time.sleep(0.5)
    assert _ray_status(lost_cluster, job.name) in ("STOPPED", "FAILED")


def test_ranks_on_a_node_whose_raylet_dies_are_stopped(lost_cluster: Any, ml_client: Any) -> None:
    compute = _compute(ml_client, lost_cluster, "ray-lost")
    job = ml_client.jobs.create_or_update(command(
        command="echo up $RANK; sleep 3219", compute=compute, instance_count=2,
        distribution=PyTorchDistribution(process_count_per_instance=1)))
    end = time.monotonic() + 600
    while len(_with("sleep 3219", exact=True)) < 2 and time.monotonic() < end:
        time.sleep(0.5)
    ranks = _with("sleep 3219", exact=True)
    assert len(ranks) == 2, ml_client.jobs.get(job.name).status
    on_worker = lost_cluster.procs["worker"].pid
    raylet = [p for p in psutil.Process(on_worker).children(recursive=True) if p.name() == "raylet"]
    assert len(raylet) == 1
    below = {p.pid for p in psutil.Process(on_worker).children(recursive=True)}
    node = {p.environ().get("OPENAML_RAY_NODE_ID") for p in ranks if p.pid in below}
    assert len(node) == 1 and None not in node, node  # one rank on the worker node
    lost = {p.pid for p in _with("sleep 3219")}  # the ranks and their wrappers
    raylet[0].kill()
    done = ml_client.jobs.wait(job.name, timeout=300)
    assert done.status == "Failed"
    assert f"(Ray node {node.pop()}) was lost while the job ran" in (done.error or ""), done.error
    end = time.monotonic() + 60
    while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in lost) \
            and time.monotonic() < end:
        time.sleep(0.5)
    alive = [pid for pid in lost if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    def _desc(pid: int) -> str:
        try:
            p = psutil.Process(pid)
            return f"{pid} ppid={p.ppid()} sid={os.getsid(pid)} {p.cmdline()}"
        except psutil.Error:
            return f"{pid} gone"
    dogs = [_desc(p.pid) for p in _with("import os, select, signal")]
    assert alive == [], f"rank processes outlived the job: {[_desc(p) for p in alive]}; watchdogs {dogs}"
    assert _with("sleep 3219") == []
