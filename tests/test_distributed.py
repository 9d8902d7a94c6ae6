"""Distributed command jobs on local compute (spec 2.4, 14.2): real server, CLI, SDK and processes."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from openaml import command
from openaml.entities import AmlCompute, MpiDistribution, PyTorchDistribution, TensorFlowDistribution
from openaml.errors import ValidationError
from openaml.runner._launch import Combiner, per_node_launch, plan_processes

ENV = "azureml:AzureML-sklearn-1.5@latest"
#: prints one line per process: the distributed variables it was given
SHOW = ("python -c \"import os, json; print('VARS', json.dumps({k: v for k, v in os.environ.items() "
        "if k in ('RANK', 'LOCAL_RANK', 'NODE_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', "
        "'MASTER_PORT', 'AZUREML_PROCESS_NAME', 'AZUREML_CR_NODE_RANK', 'AZUREML_NODE_COUNT', 'TF_CONFIG', "
        "'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'AZ_BATCH_HOST_LIST', 'OMP_NUM_THREADS')}, sort_keys=True))\"")
needs_mpirun = pytest.mark.skipif(shutil.which("mpirun") is None and os.environ.get("CI") != "true",
                                  reason="mpirun (Debian openmpi-bin) is not installed: apt-get install openmpi-bin")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def _vars(text: str) -> list[dict[str, str]]:
    return [json.loads(line.split("VARS ", 1)[1]) for line in text.splitlines() if "VARS {" in line]


@pytest.fixture(scope="module")
def four(ml_client):  # type: ignore[no-untyped-def]
    """A compute of 4 slots (the machine may have fewer CPUs than the tests' processes)."""
    ml_client.compute.begin_create_or_update(AmlCompute(name="four-slots", max_instances=4)).result()
    return "four-slots"


def test_pytorch_two_instances_of_two_processes_get_azure_variables_and_own_logs(ml_client, cli, tmp_path, four):
    yml = _write(tmp_path / "pt.yml", f"""
        command: {json.dumps(SHOW)}
        environment: {ENV}
        compute: azureml:{four}
        distribution:
          type: pytorch
          process_count_per_instance: 2
        resources:
          instance_count: 2
        """)
    name = cli("job", "create", "-f", str(yml), "-o", "json", check=True).json()["name"]
    streamed = cli("job", "stream", "-n", name).stdout
    job = cli("job", "show", "-n", name).json()
    assert job["status"] == "Completed", job
    assert job["distribution"] == {"type": "pytorch", "process_count_per_instance": 2}
    seen = sorted(_vars(streamed), key=lambda v: int(v["RANK"]))
    assert [(v["RANK"], v["LOCAL_RANK"], v["NODE_RANK"]) for v in seen] == [
        ("0", "0", "0"), ("1", "1", "0"), ("2", "0", "1"), ("3", "1", "1")]
    assert {v["WORLD_SIZE"] for v in seen} == {"4"}
    assert {v["LOCAL_WORLD_SIZE"] for v in seen} == {"2"}
    assert {v["MASTER_ADDR"] for v in seen} == {"127.0.0.1"}
    assert len({v["MASTER_PORT"] for v in seen}) == 1 and int(seen[0]["MASTER_PORT"]) > 0
    assert [v["AZUREML_PROCESS_NAME"] for v in seen] == ["rank_0", "rank_1", "rank_2", "rank_3"]
    assert {v["AZUREML_NODE_COUNT"] for v in seen} == {"2"}
    assert {v["AZ_BATCH_HOST_LIST"] for v in seen} == {"127.0.0.1,127.0.0.1"}
    assert {v.get("OMP_NUM_THREADS") for v in seen} == {"1"}  # as torchrun sets it (regression: 0.3x its speed)
    assert "[rank 3] VARS" in streamed  # the combined stream names each line's process
    cli("job", "download", "-n", name, "--download-path", str(tmp_path / "dl"), check=True)
    logs = tmp_path / "dl" / "artifacts" / "user_logs"
    for rank in range(4):
        own = _vars((logs / f"std_log_process_{rank}.txt").read_text())
        assert [v["RANK"] for v in own] == [str(rank)]


def test_per_node_launch_runs_the_launcher_once_per_instance(ml_client, tmp_path, four):
    # a command that starts PyTorch's launcher (here a shell function of that name: torch need not be installed)
    job = command(command=f"torchrun() {{ {SHOW}; }}; torchrun --nproc_per_node 2 --nnodes 2 train.py",
                  environment=ENV, instance_count=2, compute=four,
                  distribution=PyTorchDistribution(process_count_per_instance=2))
    created = ml_client.jobs.create_or_update(job)
    assert ml_client.jobs.wait(created.name, timeout=120).status == "Completed"
    raw = ml_client.jobs.get_raw(created.name)
    seen = sorted(_vars("\n".join(raw["log_tail"])), key=lambda v: int(v["NODE_RANK"]))
    assert [(v["NODE_RANK"], v["AZUREML_CR_NODE_RANK"]) for v in seen] == [("0", "0"), ("1", "1")]
    assert {v["AZUREML_NODE_COUNT"] for v in seen} == {"2"}
    assert len({v["MASTER_PORT"] for v in seen}) == 1
    assert any("per-node launch" in line for line in raw["log_tail"])


def test_tensorflow_workers_and_parameter_server_get_tf_config(ml_client, tmp_path, four):
    job = command(command=SHOW, environment=ENV, compute=four,
                  distribution=TensorFlowDistribution(worker_count=2, parameter_server_count=1))
    created = ml_client.jobs.create_or_update(job)
    assert ml_client.jobs.wait(created.name, timeout=120).status == "Completed"
    configs = [json.loads(v["TF_CONFIG"]) for v in _vars("\n".join(ml_client.jobs.get_raw(created.name)["log_tail"]))]
    tasks = sorted((c["task"]["type"], c["task"]["index"]) for c in configs)
    assert tasks == [("ps", 0), ("worker", 0), ("worker", 1)]
    clusters = {json.dumps(c["cluster"], sort_keys=True) for c in configs}
    assert len(clusters) == 1  # every process sees the same cluster
    cluster = configs[0]["cluster"]
    assert len(cluster["worker"]) == 2 and len(cluster["ps"]) == 1
    addrs = cluster["worker"] + cluster["ps"]
    assert len(set(addrs)) == 3 and all(a.startswith("127.0.0.1:") for a in addrs)


def test_failing_rank_fails_the_job_naming_it_and_stops_the_others(ml_client, tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    script = _write(tmp_path / "src" / "rank.py", f"""
        import os, sys, time, pathlib
        rank = int(os.environ["RANK"])
        pathlib.Path(r"{pids}", str(rank)).write_text(str(os.getpid()))
        if rank == 1:
            while not pathlib.Path(r"{pids}", "0").exists():
                time.sleep(0.05)
            sys.exit(7)
        time.sleep(300)
        """)
    job = command(command="python rank.py", code=str(script.parent), environment=ENV,
                  distribution={"type": "pytorch", "process_count_per_instance": 2})
    created = ml_client.jobs.create_or_update(job)
    started = time.monotonic()
    final = ml_client.jobs.wait(created.name, timeout=120)
    raw = ml_client.jobs.get_raw(created.name)
    assert final.status == "Failed"
    assert "rank 1 exited with code 7" in raw["error"]
    assert raw["exit_code"] == 7
    assert time.monotonic() - started < 90  # not the 300 s rank 0 would sleep
    assert not _alive_sleepers(created.name)


def _alive_sleepers(job_name: str) -> list[int]:
    """Processes still running a rank of the job (none must outlive it)."""
    found = []
    for p in psutil.process_iter(["cmdline", "environ"]):
        try:
            env = p.info["environ"] or {}
            if env.get("AZUREML_RUN_ID") == job_name and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        except (psutil.Error, OSError):
            continue
    return found


def test_cancel_stops_every_process(ml_client, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    job = command(command=f"touch {marks}/$RANK; sleep 300", environment=ENV,
                  distribution={"type": "pytorch", "process_count_per_instance": 2})
    created = ml_client.jobs.create_or_update(job)
    deadline = time.monotonic() + 60
    while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(list(marks.iterdir())) == 2
    assert _alive_sleepers(created.name)
    ml_client.jobs.cancel(created.name)
    assert ml_client.jobs.wait(created.name, timeout=60).status == "Canceled"
    deadline = time.monotonic() + 15
    while _alive_sleepers(created.name) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive_sleepers(created.name)


@pytest.mark.parametrize(
    ("dist", "extra", "expected"),
    [
        ("{type: horovod}", "", ["distribution.type", "'horovod'", "pytorch, tensorflow, mpi, ray"]),
        ("{type: pytorch, worker_count: 2}", "", ["distribution.worker_count", "type tensorflow",
                                                   "pytorch takes process_count_per_instance"]),
        ("{type: pytorch, process_count_per_instance: 0}", "", ["distribution.process_count_per_instance", "0"]),
        ("{type: tensorflow, worker_count: 2, parameter_server_count: -1}", "",
         ["distribution.parameter_server_count", "-1"]),
        ("{type: pytorch, process_count_per_instance: 3}", "resources: {instance_count: 2}",
         ["6 processes", "instance_count 2 x process_count_per_instance 3", "hosts at most 4", "max_instances"]),
        # a ray distribution runs on local compute (a Ray cluster for the job: tests/ray), checked as the others
        ("{type: ray, process_count_per_instance: 2}", "", ["distribution.process_count_per_instance",
                                                            "type pytorch / mpi", "ray takes port"]),
        ("{type: ray}", "resources: {instance_count: 5}", ["resources.instance_count", "5 processes",
                                                           "hosts at most 4"]),
    ],
    ids=["unknown-type", "field-of-another-type", "zero-processes", "negative-ps", "too-many", "ray-other-field",
         "ray-too-many-nodes"],
)
def test_bad_distribution_is_rejected_before_anything_runs(ml_client, cli, tmp_path, four, dist, extra, expected):
    before = len(ml_client.jobs.list(list_view_type="all"))
    yml = _write(tmp_path / "bad.yml", f"command: echo hi\nenvironment: {ENV}\ncompute: {four}\n"
                                        f"distribution: {dist}\n{extra}\n")
    r = cli("job", "create", "-f", str(yml))
    assert r.returncode != 0
    for text in expected:
        assert text in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert len(ml_client.jobs.list(list_view_type="all")) == before


def test_sdk_refuses_more_processes_than_the_default_compute_hosts(ml_client):
    slots = ml_client.compute.get("local").max_instances
    job = command(command="echo hi", environment=ENV, instance_count=slots + 1,
                  distribution=MpiDistribution(process_count_per_instance=1))
    with pytest.raises(ValidationError, match=f"{slots + 1} processes"):
        ml_client.jobs.create_or_update(job)


@pytest.mark.skipif(shutil.which("mpirun") is not None, reason="mpirun is installed here")
def test_mpi_without_mpirun_is_refused_saying_how_to_install_it(ml_client):
    job = command(command="echo hi", environment=ENV, distribution=MpiDistribution(process_count_per_instance=2))
    with pytest.raises(ValidationError, match="apt-get install openmpi-bin"):
        ml_client.jobs.create_or_update(job)


@needs_mpirun
def test_mpi_on_two_instances_gives_each_rank_its_node_rank(ml_client, four):
    """Review F7: 2 instances x 1 process: rank 1 is on node 1, as on Azure (it said 0)."""
    job = command(command=SHOW, environment=ENV, compute=four, instance_count=2,
                  distribution=MpiDistribution(process_count_per_instance=1))
    created = ml_client.jobs.create_or_update(job)
    assert ml_client.jobs.wait(created.name, timeout=120).status == "Completed", \
        ml_client.jobs.get_raw(created.name)["log_tail"]
    seen = _vars("\n".join(ml_client.jobs.get_raw(created.name)["log_tail"]))
    by_rank = {v["OMPI_COMM_WORLD_RANK"]: v for v in seen}
    assert {r: v["AZUREML_CR_NODE_RANK"] for r, v in by_rank.items()} == {"0": "0", "1": "1"}
    assert {v["AZUREML_NODE_COUNT"] for v in seen} == {"2"}


@needs_mpirun
def test_mpi_ranks_get_open_mpi_variables_own_logs_and_a_failing_rank_is_named(ml_client, cli, tmp_path):
    job = command(command=SHOW, environment=ENV, distribution=MpiDistribution(process_count_per_instance=2))
    created = ml_client.jobs.create_or_update(job)
    assert ml_client.jobs.wait(created.name, timeout=120).status == "Completed", \
        ml_client.jobs.get_raw(created.name)["log_tail"]
    seen = _vars("\n".join(ml_client.jobs.get_raw(created.name)["log_tail"]))
    assert sorted(v["OMPI_COMM_WORLD_RANK"] for v in seen) == ["0", "1"]
    assert {v["OMPI_COMM_WORLD_SIZE"] for v in seen} == {"2"}
    cli("job", "download", "-n", created.name, "--download-path", str(tmp_path / "dl"), check=True)
    own = _vars((tmp_path / "dl" / "artifacts" / "user_logs" / "std_log_process_1.txt").read_text())
    assert [v["OMPI_COMM_WORLD_RANK"] for v in own] == ["1"]
    bad = command(command='sleep 1; [ "$OMPI_COMM_WORLD_RANK" = 1 ] && exit 5; sleep 300', environment=ENV,
                  distribution=MpiDistribution(process_count_per_instance=2))
    created = ml_client.jobs.create_or_update(bad)
    assert ml_client.jobs.wait(created.name, timeout=120).status == "Failed"
    assert "rank 1 exited with code 5" in ml_client.jobs.get_raw(created.name)["error"]
    assert not _alive_sleepers(created.name)
    # cancel: mpirun and every rank gone
    marks = tmp_path / "marks"
    marks.mkdir()
    sleepy = command(command=f"touch {marks}/$OMPI_COMM_WORLD_RANK; sleep 300", environment=ENV,
                     distribution=MpiDistribution(process_count_per_instance=2))
    created = ml_client.jobs.create_or_update(sleepy)
    deadline = time.monotonic() + 60
    while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    ml_client.jobs.cancel(created.name)
    assert ml_client.jobs.wait(created.name, timeout=60).status == "Canceled"
    deadline = time.monotonic() + 15
    while _alive_sleepers(created.name) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive_sleepers(created.name)


def test_plan_of_a_job_without_distribution_and_of_several_instances(tmp_path):
    assert plan_processes({"command": "x"}, "x", tmp_path, tmp_path / "s") is None
    launch = plan_processes({"resources": {"instance_count": 3}}, "echo hi", tmp_path, tmp_path / "s")
    assert launch is not None
    assert [p.env["AZUREML_CR_NODE_RANK"] for p in launch.processes] == ["0", "1", "2"]
    assert "RANK" not in launch.processes[0].env
    assert any("without a distribution" in n for n in launch.notes)


def test_combined_log_prefixes_each_line_with_its_process_and_keeps_a_last_partial_line(tmp_path):
    a, b, out = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "std_log.txt"
    a.write_bytes(b"one\ntw")
    b.write_bytes(b"x\n")
    c = Combiner({"rank 0": a, "rank 1": b}, out)
    c.pump()
    with open(a, "ab") as fh:
        fh.write(b"o\nthree")
    c.pump(final=True)
    assert out.read_text().splitlines() == ["[rank 0] one", "[rank 1] x", "[rank 0] two", "[rank 0] three"]


@pytest.mark.parametrize(("cmd", "expected"), [
    ("torchrun --nproc_per_node 2 train.py", True),
    ("python -m torch.distributed.launch --nproc_per_node 2 train.py", True),
    ("python -m torch.distributed.run train.py", True),
    ("/opt/venv/bin/torchrun train.py", True),
    ("python train.py --torchrun-like-flag", False),
    ("python torchrun_helper.py", False),
])
def test_per_node_launch_is_recognised_from_the_command(cmd, expected):
    assert per_node_launch(cmd) is expected


def test_several_processes_per_instance_get_one_openmp_thread_unless_the_job_sets_it(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    spec = {"distribution": {"type": "pytorch", "process_count_per_instance": 2}}
    launch = plan_processes(spec, "python train.py", tmp_path, tmp_path / "s")
    assert launch is not None and {p.env["OMP_NUM_THREADS"] for p in launch.processes} == {"1"}
    spec["environment_variables"] = {"OMP_NUM_THREADS": "3"}
    launch = plan_processes(spec, "python train.py", tmp_path, tmp_path / "s")
    assert launch is not None and all("OMP_NUM_THREADS" not in p.env for p in launch.processes)
    one = plan_processes({"distribution": {"type": "pytorch"}}, "python train.py", tmp_path, tmp_path / "s")
    assert one is not None and "OMP_NUM_THREADS" not in one.processes[0].env


def test_a_distributed_job_holds_one_slot_per_process(ml_client, tmp_path):
    ml_client.compute.begin_create_or_update(AmlCompute(name="two-slots", max_instances=2)).result()
    go = tmp_path / "go"
    big = ml_client.jobs.create_or_update(command(
        command=f"while [ ! -e {go} ]; do sleep 0.1; done", environment=ENV, compute="two-slots",
        distribution=PyTorchDistribution(process_count_per_instance=2)))
    deadline = time.monotonic() + 60
    while ml_client.jobs.get(big.name).status != "Running" and time.monotonic() < deadline:
        time.sleep(0.1)
    small = ml_client.jobs.create_or_update(command(command="echo small", environment=ENV, compute="two-slots"))
    time.sleep(2)  # several scheduler passes: the small job must wait for a free slot
    assert ml_client.jobs.get(small.name).status == "Queued"
    go.touch()
    assert ml_client.jobs.wait(big.name, timeout=60).status == "Completed"
    assert ml_client.jobs.wait(small.name, timeout=60).status == "Completed"


def test_ranks_of_a_runner_killed_from_outside_are_stopped_with_it(ml_client, tmp_path):
    # each rank runs in a session of its own (as torchrun's workers); the backend's kill finds them
    marks = tmp_path / "marks"
    marks.mkdir()
    job = command(command=f"touch {marks}/$RANK; sleep 300", environment=ENV,
                  distribution={"type": "pytorch", "process_count_per_instance": 2})
    created = ml_client.jobs.create_or_update(job)
    deadline = time.monotonic() + 60
    while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    runner = [p for p in psutil.process_iter(["cmdline"])
              if "openaml.runner" in (p.info["cmdline"] or []) and created.name in (p.info["cmdline"] or [])]
    assert len(runner) == 1
    runner[0].kill()
    assert ml_client.jobs.wait(created.name, timeout=120).status == "Failed"
    deadline = time.monotonic() + 15
    while _alive_sleepers(created.name) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive_sleepers(created.name)
