"""A batch deployment's warm pool (issue 13, job start with a warm environment; runner._pool): the
second job of a deployment forks its workers from a pool that imported the environment's libraries,
inside the job's own sandbox; a changed scoring script is not served by the stale pool; a canceled
job leaves no worker; the pool dies with its server; ``OPENAML_PARALLEL_POOL=0`` turns it off.
Each test runs its own server (its pools are checked by pid)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from openaml import MLClient
from openaml.entities import BatchDeployment, BatchEndpoint, BatchRetrySettings, Environment, Input, Model
from openaml.environments import read_only_mounts_available
from tests.conftest import ServerHandle, start_server

ENV = Environment(image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest")

SCORE = '''
import os, sys, time
PRELOADED = "sklearn" in sys.modules  # imported by the pool before this worker was forked
import joblib

VERSION = "{version}"


def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "model.joblib"))


def _same(ns):
    # the job's driver, as this worker's /proc shows processes (the job's PID namespace: its only driver)
    drivers = []
    for d in os.listdir("/proc"):
        try:
            if d.isdigit() and b"_openaml_parallel_driver.py\\x00--config" in open(f"/proc/{{d}}/cmdline", "rb").read():
                drivers.append(d)
        except OSError:
            pass
    if len(drivers) != 1:
        return f"drivers:{{len(drivers)}}"
    try:
        return os.readlink(f"/proc/self/ns/{{ns}}") == os.readlink(f"/proc/{{drivers[0]}}/ns/{{ns}}")
    except OSError:
        return None


def run(mini_batch):
    out = []
    for f in mini_batch:
        if "slow" in os.path.basename(f):
            time.sleep(120)
        token = os.path.join(os.environ["OPENAML_TEST_WORKSPACE"], "server.token")
        try:
            open(token).read()
            token_seen = True
        except OSError:
            token_seen = False
        out.append(" ".join(str(x) for x in (
            VERSION, PRELOADED, os.environ.get("AZUREML_RUN_ID"), os.getcwd(), _same("mnt"), _same("pid"),
            token_seen, model.predict([[1.0]])[0])))
    return out
'''


def _model(root: Path) -> Path:
    import joblib
    from sklearn.linear_model import LinearRegression

    folder = root / "model"
    folder.mkdir()
    joblib.dump(LinearRegression().fit([[0.0], [1.0]], [1.0, 3.0]), folder / "model.joblib")
    return folder


@pytest.fixture
def pool_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[ServerHandle, MLClient]]:
    import hashlib

    name = "pool-" + hashlib.sha256(request.node.name.encode()).hexdigest()[:8]  # workspace names are per user
    server = start_server(tmp_path / "ws", name=name,
                          env={"OPENAML_PARALLEL_POOL_IDLE_SECONDS": "600"})
    try:
        with MLClient(workspace=server.url) as ml:
            yield server, ml
    finally:
        server.stop()


def _deploy(ml: MLClient, root: Path, version: str, model: Path) -> None:
    code = root / f"code-{version}"
    code.mkdir()
    (code / "score.py").write_text(SCORE.format(version=version))
    ml.batch_deployments.begin_create_or_update(BatchDeployment(
        name="dep", endpoint_name="pool-ep", model=Model(name="pool-lr", path=str(model)), code_path=str(code),
        scoring_script="score.py", environment=ENV, compute="local", instance_count=1,
        max_concurrency_per_instance=2, mini_batch_size=1, output_file_name="predictions.csv",
        environment_variables={"OPENAML_TEST_WORKSPACE": str(root / "ws")},
        retry_settings=BatchRetrySettings(max_retries=0, timeout=300))).result()


def _invoke(ml: MLClient, data: Path, wait: bool = True) -> str:
    job = ml.batch_endpoints.invoke("pool-ep", deployment_name="dep", input=Input(type="uri_folder", path=str(data)))
    if wait:
        ml.jobs.stream(job.name)
        assert ml.jobs.get(job.name).status == "Completed", ml.jobs.get_raw(job.name).get("error")
    return job.name


def _lines(server: ServerHandle, name: str) -> list[list[str]]:
    out = server.path / "jobs" / name / "wd" / ".openaml_parallel" / "rows"
    return [line.split() for f in sorted(out.glob("*.txt")) for line in f.read_text().splitlines()]


def _log(server: ServerHandle, name: str) -> str:
    return "".join(p.read_text(errors="replace") for p in (server.path / "jobs" / name).rglob("std_log.txt"))


def _pools(server: ServerHandle) -> list[dict[str, Any]]:
    return [json.loads(m.read_text()) for m in (server.path / "pools").glob("*/meta.json")]


def _wait_ready(server: ServerHandle, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready = [m for m in _pools(server) if (server.path / "pools" / m["key"] / "ready").exists()]
        if len(ready) >= n:
            return ready
        time.sleep(0.2)
    raise AssertionError(f"no warm pool ready: {_pools(server)}")


def _gone(pids: list[int], seconds: float = 30) -> list[int]:
    deadline = time.monotonic() + seconds
    alive = pids
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            break
        time.sleep(0.2)
    return alive


@pytest.mark.slow
def test_warm_pool_serves_the_next_job_in_its_own_sandbox_and_never_a_changed_script(
        pool_server: tuple[ServerHandle, MLClient], tmp_path: Path) -> None:
    server, ml = pool_server
    model = _model(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        (data / f"f{i}.txt").write_text("x\n")
    ml.batch_endpoints.begin_create_or_update(BatchEndpoint(name="pool-ep")).result()
    _deploy(ml, tmp_path, "v1", model)
    cold = _invoke(ml, data)
    rows = _lines(server, cold)
    assert len(rows) == 3 and {r[0] for r in rows} == {"v1"} and {r[1] for r in rows} == {"False"}  # cold: no pool
    assert "warm pool" not in _log(server, cold)
    (pool,) = _wait_ready(server, 1)
    warm = _invoke(ml, data)
    rows = _lines(server, warm)
    assert len(rows) == 3
    for version, preloaded, run_id, cwd, same_mnt, same_pid, token_seen, pred in rows:
        assert (version, preloaded, run_id) == ("v1", "True", warm)  # the job's own variables
        assert cwd == str(server.path / "jobs" / warm / "wd")  # the job's own folder
        assert float(pred) == 3.0
        if read_only_mounts_available():  # the job runs in namespaces of its own
            assert (same_mnt, same_pid) == ("True", "True")  # the worker is in the job's namespaces
            assert token_seen == "False"  # the workspace's secrets stay hidden
    assert "forked from the deployment's warm pool" in _log(server, warm)
    assert (server.path / "jobs" / warm / "wd" / "logs" / "sys" / "warm_pool.txt").read_text().count("host pid") == 2

    # a changed scoring script: a new pool key; the stale pool never serves it
    _deploy(ml, tmp_path, "v2", model)
    changed = _invoke(ml, data)
    rows = _lines(server, changed)
    assert {r[0] for r in rows} == {"v2"} and {r[1] for r in rows} == {"False"}
    assert "warm pool" not in _log(server, changed)

    # a canceled job of the warm pool leaves no worker behind
    pools = _wait_ready(server, 2)
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "slow-0.txt").write_text("x\n")
    (slow / "slow-1.txt").write_text("x\n")
    name = _invoke(ml, slow, wait=False)
    record = server.path / "jobs" / name / "wd" / "logs" / "sys" / "warm_pool.txt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not record.exists() or record.read_text().count("host pid") < 2):
        time.sleep(0.2)
    workers = [int(line.rsplit(" ", 1)[1]) for line in record.read_text().splitlines()]
    assert len(workers) == 2 and all(psutil.pid_exists(p) for p in workers)
    time.sleep(1.0)
    ml.jobs.begin_cancel(name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and ml.jobs.get(name).status not in ("Canceled", "Failed", "Completed"):
        time.sleep(0.2)
    assert ml.jobs.get(name).status == "Canceled"
    assert _gone(workers) == []
    pids = [int(p["pid"]) for p in pools]
    assert all(psutil.pid_exists(p) for p in pids)  # the pools outlive the job

    # the pools die with their server
    server.stop()
    assert _gone(pids) == []
    assert pool["pid"] in pids


@pytest.mark.slow
def test_warm_pool_switched_off(tmp_path: Path) -> None:
    _assert_no_pool(start_server(tmp_path / "ws", name="pool-off", env={"OPENAML_PARALLEL_POOL": "0"}), tmp_path)


def _assert_no_pool(server: ServerHandle, tmp_path: Path, setup: Any = None) -> None:
    """Two invocations of a deployment on ``server`` (after ``setup(ml)``): neither uses a warm pool."""
    try:
        with MLClient(workspace=server.url) as ml:
            if setup is not None:
                setup(ml)
            data = tmp_path / "data"
            data.mkdir()
            (data / "f0.txt").write_text("x\n")
            ml.batch_endpoints.begin_create_or_update(BatchEndpoint(name="pool-ep")).result()
            _deploy(ml, tmp_path, "v1", _model(tmp_path))
            first = _invoke(ml, data)
            second = _invoke(ml, data)
            assert _lines(server, second)[0][1] == "False"
            assert "warm pool" not in _log(server, first) + _log(server, second)
            assert _pools(server) == []
    finally:
        server.stop()


@pytest.mark.slow
def test_deleting_the_deployment_ends_its_warm_pool(pool_server: tuple[ServerHandle, MLClient],
                                                    tmp_path: Path) -> None:
    server, ml = pool_server
    data = tmp_path / "data"
    data.mkdir()
    (data / "f0.txt").write_text("x\n")
    ml.batch_endpoints.begin_create_or_update(BatchEndpoint(name="pool-ep")).result()
    _deploy(ml, tmp_path, "v1", _model(tmp_path))
    _invoke(ml, data)
    (pool,) = _wait_ready(server, 1)
    ml.batch_deployments.begin_delete(name="dep", endpoint_name="pool-ep").result()
    assert _gone([int(pool["pid"])]) == []
    assert _pools(server) == []


@pytest.mark.slow
def test_an_idle_warm_pool_ends(tmp_path: Path) -> None:
    server = start_server(tmp_path / "ws", name="pool-idle", env={"OPENAML_PARALLEL_POOL_IDLE_SECONDS": "6"})
    try:
        with MLClient(workspace=server.url) as ml:
            data = tmp_path / "data"
            data.mkdir()
            (data / "f0.txt").write_text("x\n")
            ml.batch_endpoints.begin_create_or_update(BatchEndpoint(name="pool-ep")).result()
            _deploy(ml, tmp_path, "v1", _model(tmp_path))
            _invoke(ml, data)
            (pool,) = _wait_ready(server, 1)
            assert _gone([int(pool["pid"])], seconds=60) == []
            assert server.proc.poll() is None  # the server goes on; the next invocation starts cold again
            assert "idle for 6 s" in (server.path / "pools" / pool["key"] / "pool.log").read_text()
    finally:
        server.stop()


@pytest.mark.slow
def test_a_workspace_with_users_has_no_warm_pool_unless_the_administrator_turns_it_on(tmp_path: Path) -> None:
    # the pool imports the environment's packages outside every job's sandbox, with the runner's
    # rights: with several users that is an escalation, so it is off unless OPENAML_PARALLEL_POOL=1
    _assert_no_pool(start_server(tmp_path / "ws", name="pool-users"), tmp_path,
                    setup=lambda ml: ml.users.create("ann", "AzureML Data Scientist"))
