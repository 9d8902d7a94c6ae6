"""A distributed job on a Ray cluster whose nodes do not share a disk (the ``ray`` tier): the
worker node of this file's own cluster does not see the folder where the job's runner works (an
empty tmpfs over it in the worker's mount namespace, tests/ray/cluster.py ``hide``), as a node on
another host would not. The instance there gets the job's folder (code, a download input) through
Ray's object store and its environment built on the node; its rank's log and output come back."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from openaml import Input, Output, command
from openaml.entities import PyTorchDistribution, RayCompute, RayResources

pytestmark = [pytest.mark.ray, pytest.mark.timeout(1200)]

TRAIN = """\
import os, sys
rank = os.environ["RANK"]
data = open(sys.argv[1]).read().strip()
os.makedirs(sys.argv[2], exist_ok=True)
open(os.path.join(sys.argv[2], f"rank-{rank}.txt"), "w").write(f"{data} from rank {rank}\\n")
print(f"RANK {rank} read {data!r} on node {os.environ['OPENAML_RAY_NODE_ID']} in {os.getcwd()}", flush=True)
"""


@pytest.fixture(scope="module")
def apart_cluster() -> Any:
    from tests.ray.cluster import LocalRayCluster, ray_available

    if not ray_available():
        pytest.skip("ray is not installed (pip install 'openaml[ray]')")
    hidden = tempfile.mkdtemp(prefix="oahide-", dir="/tmp")
    cluster = LocalRayCluster(hide=hidden).start()
    try:
        yield cluster, hidden
    finally:
        cluster.stop()


def test_an_instance_on_a_node_without_the_job_folder_gets_it_and_its_output_comes_back(
        apart_cluster: Any, ml_client: Any, tmp_path: Path) -> None:
    cluster, hidden = apart_cluster
    # the runners work under `hidden` (TMPDIR), which the worker node does not see
    ml_client.compute.begin_create_or_update(RayCompute(
        name="ray-apart", address=cluster.address, max_instances=4, placement="strict_spread",
        resources=RayResources(num_cpus=1), runtime_env={"env_vars": {"TMPDIR": hidden}})).result()
    code = tmp_path / "src"
    code.mkdir()
    (code / "train.py").write_text(TRAIN)
    data = tmp_path / "data.txt"
    data.write_text("forty-two\n")
    job = ml_client.jobs.create_or_update(command(
        code=str(code), command="python train.py ${{inputs.data}} ${{outputs.model}}", compute="ray-apart",
        inputs={"data": Input(type="uri_file", path=str(data))}, outputs={"model": Output(type="uri_folder")},
        instance_count=2, distribution=PyTorchDistribution(process_count_per_instance=1),
        experiment_name="ray-apart"))
    done = ml_client.jobs.wait(job.name, timeout=900)
    raw = ml_client.jobs.get_raw(job.name)
    log = "\n".join(raw.get("log_tail") or [])
    assert done.status == "Completed", (done.error, log)
    assert "do not see the job's folder: it is shipped there" in log, log
    said = sorted(line.split("RANK ", 1)[1] for line in log.splitlines() if "RANK " in line and " read " in line)
    assert [s.split(" read ")[0] for s in said] == ["0", "1"], log
    assert all("'forty-two'" in s for s in said), log
    nodes = {s.split(" on node ")[1].split()[0] for s in said}
    assert len(nodes) == 2, said  # the two ranks ran on the two nodes
    # both ranks' outputs are in the job's output (the worker's came back from its node)
    ml_client.jobs.download(job.name, output_name="model", download_path=tmp_path / "out")
    got = sorted(p.read_text() for p in (tmp_path / "out").rglob("rank-*.txt"))
    assert got == ["forty-two from rank 0\n", "forty-two from rank 1\n"], got
