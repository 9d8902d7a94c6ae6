"""``type: ray`` computes: validation at create, and (the ``ray`` tier) jobs run as Ray jobs of a real
local cluster (tests/ray/cluster.py: a head and one worker node on loopback) through the session's
real server, SDK and CLI: a command job with an output, the token kept out of Ray's job list, cancel,
a cluster down at submission (the job waits Queued), and a worker node lost mid-job."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from openaml.errors import ValidationError

DEADLINE = 240.0


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _wait_job(ml_client: Any, name: str, pred: Any, what: str, deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    job = ml_client.jobs.get(name)
    while not pred(job) and time.monotonic() < end:
        time.sleep(0.5)
        job = ml_client.jobs.get(name)
    assert pred(job), f"job {name} never {what}: {job.status} {getattr(job, 'error', None)}"
    return job


# ---------------------------------------------------------------------------------------- no cluster needed
def test_ray_compute_yaml_loads_as_ray_compute(tmp_path: Path) -> None:
    from openaml import load_compute
    from openaml.entities import RayCompute

    f = tmp_path / "ray.yml"
    f.write_text("name: ray-cpu\ntype: ray\naddress: http://127.0.0.1:8265\nruntime_env:\n  env_vars: {A: '1'}\n"
                 "resources:\n  num_cpus: 2\n  custom: {trainer: 1}\n")
    c = load_compute(f)
    assert isinstance(c, RayCompute)
    assert c.address == "http://127.0.0.1:8265" and c.resources is not None
    assert c.resources.num_cpus == 2 and c.resources.custom == {"trainer": 1}
    assert c.runtime_env == {"env_vars": {"A": "1"}}


@pytest.mark.parametrize(("text", "expected"), [
    ("name: r1\ntype: ray\n", "field 'address': Value error, a compute of type 'ray' needs 'address'"),
    # regression (new-user check): an empty address was reported on '<root>'
    ("name: r1\ntype: ray\naddress: \"\"\n", "ray.yml, line 3: field 'address': Value error, an empty address names "
     "no Ray cluster; give the Jobs API's http(s) URL, the dashboard's (e.g. http://127.0.0.1:8265) (got '')"),
    ("name: r1\ntype: ray\naddress: ray://127.0.0.1:10001\n", "field 'address': Value error, not the Jobs API's http(s) URL"),
    # regression (new-user check): a port that is no number was taken, then failed at create on '<root>'
    ("name: r1\ntype: ray\naddress: http://127.0.0.1:notaport\n", "field 'address': Value error, its port is not a number"),
    ("name: r1\ntype: ray\naddress: http://:8265\n", "field 'address': Value error, it names no host"),
    ("name: r1\ntype: amlcompute\naddress: http://127.0.0.1:8265\n", "apply to computes of type 'ray' only"),
    ("name: r1\ntype: ray\naddress: http://h:8265\nresources: {num_gpu: 1}\n", "num_gpu"),
])
def test_bad_ray_compute_yaml_names_the_field(tmp_path: Path, text: str, expected: str) -> None:
    from openaml import load_compute

    f = tmp_path / "ray.yml"
    f.write_text(text)
    with pytest.raises(ValidationError) as err:
        load_compute(f)
    assert expected in err.value.message, err.value.message


def test_create_with_an_unreachable_cluster_names_the_compute_and_address_and_stores_nothing(
        cli: Any, tmp_path: Path) -> None:
    address = f"http://127.0.0.1:{_closed_port()}"
    f = tmp_path / "ray.yml"
    f.write_text(f"name: ray-down\ntype: ray\naddress: {address}\n")
    r = cli("compute", "create", "--file", str(f))
    assert r.returncode != 0
    assert "'ray-down'" in r.stderr and address in r.stderr and "does not answer" in r.stderr, r.stderr
    shown = cli("compute", "show", "--name", "ray-down")
    assert shown.returncode != 0 and "not found" in shown.stderr


def test_status_of_a_job_on_an_unreachable_cluster_does_not_raise() -> None:
    """The port's contract (ComputeBackend.status never raises): regression, it raised RuntimeError for a
    cluster that does not answer; now ALIVE, and the runner's heartbeat timeout decides."""
    pytest.importorskip("ray")
    from openaml.compute import RunnerStatus
    from openaml.compute._base import JobHandle
    from openaml.compute._ray import RayBackend

    backend = RayBackend()
    handle = JobHandle("ray", json.dumps({"address": f"http://127.0.0.1:{_closed_port()}", "submission_id": "x"}))
    assert backend.status(handle) == RunnerStatus.ALIVE
    assert backend.status(handle) == RunnerStatus.ALIVE  # again, from the 'down' memo: no raise either
    backend.cancel(handle)  # no effect, no raise
    assert isinstance(backend.logs(handle), str)


# ---------------------------------------------------------------------------------------- a real Ray cluster
class _Relay:
    """A TCP relay on a port of its own to the cluster's Jobs API: :meth:`up` and :meth:`down` make
    the compute's ``address`` answer or not (as a dashboard that stops and starts again)."""

    def __init__(self, target: str) -> None:
        self.target = ("127.0.0.1", int(target.rsplit(":", 1)[1]))
        self.port = _closed_port()
        self.address = f"http://127.0.0.1:{self.port}"
        self._sock: socket.socket | None = None
        self._conns: list[socket.socket] = []

    def up(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self._sock = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def down(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        for c in list(self._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self._conns.clear()

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                client, _ = sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=30)
            except OSError:
                client.close()
                continue
            self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.mark.ray
@pytest.mark.timeout(1200)
def test_a_cluster_down_at_submission_keeps_the_job_queued_with_the_reason_until_it_answers(
        ray_cluster: Any, ml_client: Any, server: Any) -> None:
    """Review F5: a job sent while its Ray cluster's Jobs API does not answer waits Queued, the reason
    (the compute, its address, why in a few words) among its warnings, and runs once the cluster
    answers again; it is never failed for it."""
    from openaml import command
    from openaml.entities import RayCompute

    relay = _Relay(ray_cluster.address)
    relay.up()
    try:
        ml_client.compute.begin_create_or_update(RayCompute(name="ray-flaky", address=relay.address)).result()
        relay.down()
        job = ml_client.jobs.create_or_update(command(command="echo ran-after-the-outage", compute="ray-flaky"))
        end = time.monotonic() + 120
        while not any("ray-flaky" in w for w in _warnings(server, job.name)) and time.monotonic() < end:
            time.sleep(0.5)
        said = next(w for w in _warnings(server, job.name) if "ray-flaky" in w)
        assert ml_client.jobs.get(job.name).status == "Queued"
        assert relay.address in said and "does not answer (connection refused)" in said, said
        assert "waits Queued" in said and "HTTPConnectionPool" not in said, said
        time.sleep(15)  # past a retry or two: still waiting, not failed
        assert ml_client.jobs.get(job.name).status == "Queued"
        # regression (new-user check): a job canceled while it waits no longer says it waits
        other = ml_client.jobs.create_or_update(command(command="echo canceled-in-the-outage", compute="ray-flaky"))
        end = time.monotonic() + 120
        while not any("ray-flaky" in w for w in _warnings(server, other.name)) and time.monotonic() < end:
            time.sleep(0.5)
        ml_client.jobs.begin_cancel(other.name).result()
        assert ml_client.jobs.get(other.name).status == "Canceled"
        assert not any("waits Queued" in w for w in _warnings(server, other.name)), _warnings(server, other.name)
        relay.up()
        done = _wait_job(ml_client, job.name, lambda j: j.status in ("Failed", "Completed", "Canceled"), "ended")
        assert done.status == "Completed", done.error
        assert not any("ray-flaky" in w for w in _warnings(server, job.name))  # the wait is over: its reason went
    finally:
        relay.down()


def _warnings(server: Any, name: str) -> list[str]:
    """The job's ``warnings`` as the REST API gives them (``job show``)."""
    import httpx

    r = httpx.get(f"{server.url}/api/v1/jobs/{name}", timeout=30)
    r.raise_for_status()
    return [str(w) for w in r.json().get("warnings") or []]


@pytest.mark.ray
@pytest.mark.timeout(1200)
def test_command_job_runs_as_a_ray_job_on_the_worker_node(ray_cluster: Any, ml_client: Any, cli: Any,
                                                          tmp_path: Path, server: Any) -> None:
    from ray.job_submission import JobSubmissionClient

    from openaml import Output, command

    f = tmp_path / "ray.yml"
    f.write_text(f"name: ray-cpu\ntype: ray\naddress: {ray_cluster.address}\n"
                 "runtime_env:\n  env_vars: {FROM_COMPUTE: from-the-compute}\n"
                 "resources:\n  num_cpus: 1\n  custom: {worker: 1}\n")
    made = cli("compute", "create", "--file", str(f), check=True).json()
    assert made["type"] == "ray" and made["address"] == ray_cluster.address and made["backend"] == "ray"
    assert made["max_instances"] == 1  # one worker node with the custom resource 'worker'
    job = ml_client.jobs.create_or_update(command(
        command="echo on ray: $FROM_COMPUTE; echo result > ${{outputs.result}}/r.txt",
        outputs={"result": Output(type="uri_folder")}, compute="ray-cpu", experiment_name="ray"))
    job = _wait_job(ml_client, job.name, lambda j: j.status in ("Completed", "Failed", "Canceled"), "ended")
    assert job.status == "Completed", job.error
    log = (server.path / "jobs" / job.name / "user_logs" / "std_log.txt").read_text()
    assert "on ray: from-the-compute" in log
    ray = JobSubmissionClient(ray_cluster.address)
    mine = [j for j in ray.list_jobs() if (j.metadata or {}).get("openaml_job") == job.name]
    assert len(mine) == 1
    end = time.monotonic() + 60  # the runner reports its end, then exits
    while ray.get_job_status(mine[0].submission_id) == "RUNNING" and time.monotonic() < end:
        time.sleep(0.5)
    assert ray.get_job_status(mine[0].submission_id) == "SUCCEEDED"
    # the job's token is nowhere in what Ray shows (entrypoint, runtime_env, metadata), nor in its logs
    shown = json.dumps({"entrypoint": mine[0].entrypoint, "runtime_env": mine[0].runtime_env,
                        "metadata": mine[0].metadata}) + ray.get_job_logs(mine[0].submission_id)
    assert "oaj1." not in shown, shown
    assert str(mine[0].runtime_env.get("working_dir", "")).startswith("gcs://")
    # the declared output landed in the workspace's datastore
    landed = list(server.path.rglob("r.txt"))
    assert [p.read_text() for p in landed if job.name in str(p)] == ["result\n"]


@pytest.mark.ray
@pytest.mark.timeout(1200)
def test_cancel_mid_job_stops_the_ray_job(ray_cluster: Any, ml_client: Any) -> None:
    from ray.job_submission import JobSubmissionClient

    from openaml import command
    from openaml.entities import RayCompute, RayResources

    ml_client.compute.begin_create_or_update(RayCompute(
        name="ray-cancel", address=ray_cluster.address, max_instances=1,
        resources=RayResources(num_cpus=1, custom={"worker": 1}))).result()
    job = ml_client.jobs.create_or_update(command(command="echo started; sleep 300", compute="ray-cancel"))
    _wait_job(ml_client, job.name, lambda j: j.status == "Running", "Running")
    ml_client.jobs.begin_cancel(job.name).result()
    job = _wait_job(ml_client, job.name, lambda j: j.status in ("Canceled", "Failed", "Completed"), "ended", 120)
    assert job.status == "Canceled", job.error
    ray = JobSubmissionClient(ray_cluster.address)
    mine = [j for j in ray.list_jobs() if (j.metadata or {}).get("openaml_job") == job.name]
    assert len(mine) == 1
    end = time.monotonic() + 60
    while ray.get_job_status(mine[0].submission_id) in ("PENDING", "RUNNING") and time.monotonic() < end:
        time.sleep(0.5)
    assert ray.get_job_status(mine[0].submission_id) == "STOPPED"


@pytest.mark.ray
@pytest.mark.timeout(1200)
def test_sweep_trials_run_as_ray_jobs(ray_cluster: Any, ml_client: Any) -> None:
    from ray.job_submission import JobSubmissionClient

    from openaml.entities import RayCompute, RayResources

    ml_client.compute.begin_create_or_update(RayCompute(
        name="ray-sweep", address=ray_cluster.address, max_instances=1,
        resources=RayResources(num_cpus=1, custom={"worker": 1}))).result()
    spec = {"type": "sweep", "compute": "ray-sweep", "experiment_name": "ray-sweep",
            "trial": {"command": "echo trial x=${{inputs.x}}"},
            "search_space": {"x": {"type": "choice", "values": [1, 2]}}, "sampling_algorithm": "grid",
            "objective": {"goal": "maximize", "primary_metric": "m"},
            "limits": {"max_total_trials": 2, "max_concurrent_trials": 1}}
    name = ml_client.jobs._t.post("/jobs", json=spec)["name"]
    _wait_job(ml_client, name, lambda j: j.status in ("Completed", "Failed", "Canceled"), "ended", 600)
    trials = list(ml_client.jobs.list(parent_job_name=name))
    assert len(trials) == 2 and {t.status for t in trials} == {"Completed"}, [(t.name, t.status) for t in trials]
    on_ray = {(j.metadata or {}).get("openaml_job") for j in JobSubmissionClient(ray_cluster.address).list_jobs()}
    assert {t.name for t in trials} <= on_ray


@pytest.mark.ray
@pytest.mark.timeout(1200)
def test_a_worker_node_lost_mid_job_fails_the_job_with_the_reason_and_no_output(
        ray_cluster: Any, ml_client: Any, server: Any) -> None:
    """Last of the tier (tests/ray after tests/contracts): it kills the worker node for good (a new
    one does not reliably register on a busy machine: Ray waits a fixed 30 s for it)."""
    from openaml import Output, command
    from openaml.entities import RayCompute, RayResources

    ml_client.compute.begin_create_or_update(RayCompute(
        name="ray-lost", address=ray_cluster.address, max_instances=1,
        resources=RayResources(num_cpus=1, custom={"worker": 1}))).result()
    job = ml_client.jobs.create_or_update(command(
        command="echo half > ${{outputs.result}}/half-written.txt; echo written; sleep 300",
        outputs={"result": Output(type="uri_folder")}, compute="ray-lost"))
    _wait_job(ml_client, job.name, lambda j: j.status == "Running", "Running")
    log = server.path / "jobs" / job.name / "user_logs" / "std_log.txt"
    end = time.monotonic() + 60
    while not (log.exists() and "written" in log.read_text()) and time.monotonic() < end:
        time.sleep(0.5)
    ray_cluster.kill_node("worker")
    job = _wait_job(ml_client, job.name, lambda j: j.status in ("Failed", "Canceled", "Completed"), "ended")
    assert job.status == "Failed"
    # the runner's end was never reported: Ray's reason (its job failed with the node) or the heartbeat's
    assert ("ended unexpectedly" in job.error or "stopped reporting" in job.error), job.error
    assert not [p for p in server.path.rglob("half-written.txt")], "a half-written output reached the workspace"
