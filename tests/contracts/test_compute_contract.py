"""Contract of the compute port (``openaml.compute.ComputeBackend``), run on every registered backend.

A real server runs in this process on an OS-assigned port with its scheduler stopped, so each
test drives the backend itself as the scheduler would: it takes a queued job's slot (Preparing),
hands the backend a ``JobSpec`` with the job's real runner token, and watches what the runner
reports over HTTP on the job's row. The runner routes' own rules (only the job's own runner token;
idempotent, append-only log chunks) are checked at the end.
"""

from __future__ import annotations

import base64
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from openaml.compute import BACKENDS, BackendRegistry, ComputeBackend, JobHandle, JobSpec, RunnerStatus
from openaml.constants import JobStatus

DEADLINE = 60.0


@dataclass
class Harness:
    ctx: Any
    url: str
    registry: BackendRegistry
    compute: dict[str, Any] | None = None  # the compute record a backend's specs name (ray: the test cluster)

    def queue(self, command: str) -> dict[str, Any]:
        """Submit a command job and take its slot (as the scheduler's dispatch does)."""
        name = self.ctx.services["jobs"].submit({"type": "command", "command": command,
                                                 "experiment_name": "compute-contract"})["name"]
        row = self.ctx.store.transition_job(name, JobStatus.PREPARING, from_statuses=[JobStatus.QUEUED])
        assert row is not None
        return row

    def spec(self, row: dict[str, Any], *, work_dir: str | None) -> JobSpec:
        compute = self.compute or self.ctx.store.get_compute(row["compute"])
        return JobSpec(job_name=row["name"], compute=compute, server_url=self.url,
                       token=self.ctx.services["users"].runner_token(row), work_dir=work_dir)

    def state(self, name: str) -> dict[str, Any]:
        return dict(self.ctx.store.get_job(name)["runtime"].get("runner") or {})

    def wait_state(self, name: str, pred: Any, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            state = self.state(name)
            if pred(state):
                return state
            time.sleep(0.1)
        raise AssertionError(f"job {name}: runner never reported {what}; last state {self.state(name)}")

    def log(self, name: str) -> str:
        path = self.ctx.layout.job_dir(name) / "user_logs" / "std_log.txt"
        return path.read_text() if path.exists() else ""


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    import uvicorn

    from openaml._settings import Settings
    from openaml.server import create_app
    from openaml.workspace import create_workspace

    ws = tmp_path_factory.mktemp("compute-contract") / "ws"
    create_workspace("compute-contract", ws)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # runners report every second (a quarter of the timeout); no scheduler here acts on the timeout
    app = create_app(Settings(workspace=ws, heartbeat_timeout=4.0), url=url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    ctx = app.state.ctx
    ctx.services["jobs"].stop()  # this suite is the scheduler
    yield Harness(ctx, url, BackendRegistry())
    server.should_exit = True
    thread.join(timeout=20)


def _backend_params() -> list[Any]:
    """Every registered backend; ``ray`` is its own tier (``-m ray``: a local Ray cluster is started)."""
    ray = [pytest.mark.ray, pytest.mark.timeout(1200)]  # its first test starts the cluster (minutes on a busy machine)
    return [pytest.param(n, id=n, marks=[pytest.mark.backend(n), *(ray if n == "ray" else [])]) for n in sorted(BACKENDS)]


@pytest.fixture(params=_backend_params())
def backend(request: pytest.FixtureRequest, harness: Harness) -> Iterator[ComputeBackend]:
    if request.param == "ray":
        cluster = request.getfixturevalue("ray_cluster")
        # runners on the worker node (its custom resource), as on a machine of their own
        harness.compute = {"name": "ray-pool", "type": "ray", "max_instances": 2, "address": cluster.address,
                           "resources": {"num_cpus": 1, "custom": {"worker": 1}}}
    try:
        yield harness.registry.backend(request.param)
    finally:
        harness.compute = None


@pytest.fixture
def started() -> Iterator[list[tuple[ComputeBackend, JobHandle]]]:
    """Handles started by a test: killed at its end, whatever happened."""
    handles: list[tuple[ComputeBackend, JobHandle]] = []
    yield handles
    for b, h in handles:
        b.kill(h)


def _wait_status(backend: ComputeBackend, handle: JobHandle, pred: Any) -> RunnerStatus:
    deadline = time.monotonic() + DEADLINE
    status = backend.status(handle)
    while not pred(status) and time.monotonic() < deadline:
        time.sleep(0.1)
        status = backend.status(handle)
    return status


def _no_process_left(backend: ComputeBackend, state: dict[str, Any]) -> None:
    """Where the backend runs on this machine, nothing of the job's command is left."""
    if backend.name != "local":
        return
    pgid = state.get("user_pgid")
    assert pgid, state
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        left = [p for p in psutil.process_iter() if _pgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE]
        if not left:
            return
        time.sleep(0.1)
    raise AssertionError(f"processes of the job's command left: {left}")


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except OSError:
        return -1


@pytest.mark.parametrize("in_job_folder", [True, False], ids=["job-folder", "own-folder"])
def test_submit_runs_to_completion_with_the_exit_code(harness: Harness, backend: ComputeBackend, started: list,
                                                      in_job_folder: bool) -> None:
    """The runner reads its spec and reports over HTTP only: in a folder of its own (outside the
    workspace, as on another machine) it works the same."""
    row = harness.queue("echo hello from the job; echo to stderr >&2")
    work_dir = str(harness.ctx.layout.job_dir(row["name"])) if in_job_folder else None
    handle = backend.submit(harness.spec(row, work_dir=work_dir))
    started.append((backend, handle))
    assert JobHandle.from_record(handle.to_record()) == handle
    state = harness.wait_state(row["name"], lambda s: s.get("terminal"), "its end")
    assert state["status"] == "Completed" and state["exit_code"] == 0, state
    assert "hello from the job" in state["log_tail"] and "to stderr" in state["log_tail"]
    log = harness.log(row["name"])  # the server's copy, complete when the end is reported
    assert "hello from the job" in log and "to stderr" in log
    assert _wait_status(backend, handle, lambda s: s != RunnerStatus.ALIVE) == RunnerStatus.EXITED
    job_dir = harness.ctx.layout.job_dir(row["name"])
    # on the server's machine the runner sees its disk: the paths of its spec, no file over HTTP
    assert "not visible here" not in (job_dir / "system_logs" / "runner.log").read_text()
    if not in_job_folder:  # nothing of the runner's work is in the workspace: only what the server wrote
        assert not (job_dir / "wd").exists()
        assert harness.ctx.layout.root not in Path(handle.data().get("dir", "/nowhere")).parents


def test_failing_command_fails_with_its_exit_code(harness: Harness, backend: ComputeBackend, started: list) -> None:
    row = harness.queue("echo about to fail; exit 3")
    handle = backend.submit(harness.spec(row, work_dir=str(harness.ctx.layout.job_dir(row["name"]))))
    started.append((backend, handle))
    state = harness.wait_state(row["name"], lambda s: s.get("terminal"), "its end")
    assert state["status"] == "Failed" and state["exit_code"] == 3, state
    assert "exited with code 3" in state["error"]
    assert "about to fail" in harness.log(row["name"])


def test_cancel_ends_canceled_with_no_process_left(harness: Harness, backend: ComputeBackend, started: list) -> None:
    row = harness.queue("(sleep 300 &) ; sleep 300")
    handle = backend.submit(harness.spec(row, work_dir=str(harness.ctx.layout.job_dir(row["name"]))))
    started.append((backend, handle))
    running = harness.wait_state(row["name"], lambda s: s.get("status") == "Running", "Running")
    backend.cancel(handle)
    state = harness.wait_state(row["name"], lambda s: s.get("terminal"), "its end")
    assert state["status"] == "Canceled", state
    assert _wait_status(backend, handle, lambda s: s != RunnerStatus.ALIVE) != RunnerStatus.ALIVE
    _no_process_left(backend, running)


def test_killed_runner_is_lost_with_no_process_left(harness: Harness, backend: ComputeBackend, started: list) -> None:
    row = harness.queue("sleep 300")
    handle = backend.submit(harness.spec(row, work_dir=str(harness.ctx.layout.job_dir(row["name"]))))
    started.append((backend, handle))
    running = harness.wait_state(row["name"], lambda s: s.get("status") == "Running", "Running")
    assert backend.status(handle) == RunnerStatus.ALIVE
    backend.kill(handle)
    assert _wait_status(backend, handle, lambda s: s != RunnerStatus.ALIVE) == RunnerStatus.LOST
    if backend.name == "local":  # Ray's Jobs API has no immediate kill: its stop is TERM, then KILL (compute/_ray.py)
        assert not harness.state(row["name"]).get("terminal")  # a killed runner reports nothing
    _no_process_left(backend, running)


def test_a_runner_refused_by_the_server_says_why_in_its_logs(harness: Harness, backend: ComputeBackend,
                                                             started: list) -> None:
    row = harness.queue("true")
    spec = harness.spec(row, work_dir=None)
    forged = JobSpec(job_name=spec.job_name, compute=spec.compute, server_url=spec.server_url,
                     token=spec.token[:-4] + ("AAAA" if not spec.token.endswith("AAAA") else "BBBB"))
    handle = backend.submit(forged)
    started.append((backend, handle))
    assert _wait_status(backend, handle, lambda s: s != RunnerStatus.ALIVE) != RunnerStatus.ALIVE
    said = backend.logs(handle)
    assert "the server will not run job" in said and "401" in said, said
    assert forged.token not in said and forged.token not in repr(forged)  # the secret is never shown
    assert harness.state(row["name"]) == {}


def test_capacity_is_max_instances(harness: Harness, backend: ComputeBackend) -> None:
    for n in (1, 3, 16):
        compute = {"name": "pool", "type": "amlcompute", "max_instances": n, "properties": {}}
        assert backend.capacity(compute) == n


def test_a_new_backend_instance_reattaches_by_the_handle(harness: Harness, backend: ComputeBackend,
                                                          started: list) -> None:
    """A restarted server re-attaches through the handle stored on the job's row."""
    row = harness.queue("echo waiting; sleep 300")
    handle = backend.submit(harness.spec(row, work_dir=str(harness.ctx.layout.job_dir(row["name"]))))
    started.append((backend, handle))
    harness.wait_state(row["name"], lambda s: s.get("status") == "Running", "Running")
    stored = JobHandle.from_record(dict(handle.to_record()))
    assert stored is not None
    fresh = type(backend)()
    started.append((fresh, stored))
    assert fresh.status(stored) == RunnerStatus.ALIVE
    fresh.cancel(stored)
    state = harness.wait_state(row["name"], lambda s: s.get("terminal"), "its end")
    assert state["status"] == "Canceled"
    assert _wait_status(fresh, stored, lambda s: s != RunnerStatus.ALIVE) != RunnerStatus.ALIVE


def test_unknown_compute_type_names_the_compute_and_the_known_types(harness: Harness) -> None:
    from openaml.errors import ValidationError

    with pytest.raises(ValidationError) as err:
        harness.registry.for_compute({"name": "k8s", "type": "kubernetes"})
    assert "'k8s'" in err.value.message and "'kubernetes'" in err.value.message and "amlcompute" in err.value.message


# ---------------------------------------------------------------------------------------- runner routes
def test_runner_routes_take_only_the_jobs_own_token(harness: Harness) -> None:
    mine, other = harness.queue("true"), harness.queue("true")
    users = harness.ctx.services["users"]
    base = f"{harness.url}/api/v1/jobs/{mine['name']}/runner"
    with httpx.Client(headers={"Authorization": f"Bearer {users.runner_token(mine)}"}) as c:
        assert c.get(f"{base}/spec").json()["command"] == "true"
        assert c.post(f"{base}/heartbeat", json={}).json()["status"] == "Preparing"
        assert c.post(f"{base}/state", json={"status": "Running"}).status_code == 200
        bad = c.post(f"{base}/state", json={"status": "Running", "exit_code": "x", "nonsense": 1})
        assert bad.status_code == 400
    with httpx.Client(headers={"Authorization": f"Bearer {users.runner_token(other)}"}) as c:
        for r in (c.get(f"{base}/spec"), c.post(f"{base}/state", json={"status": "Completed", "terminal": True})):
            assert r.status_code == 403, r.text
    with httpx.Client() as c:  # the owner (a loopback server without a token) is not a runner
        assert c.post(f"{base}/state", json={"status": "Completed", "terminal": True}).status_code == 403
    with httpx.Client(headers={"Authorization": f"Bearer {users.job_token(mine)}"}) as c:
        # the token its command gets (scope 'job') is not its runner's
        for r in (c.get(f"{base}/spec"), c.post(f"{base}/state", json={"status": "Completed", "terminal": True}),
                  c.post(f"{base}/logs", json={"offset": 0, "data": "eA=="})):
            assert r.status_code == 403 and "scope 'job'" in r.text, r.text
    assert harness.state(mine["name"]) == {"status": "Running", "terminal": False}


def test_log_chunks_are_written_once_at_their_offset(harness: Harness) -> None:
    row = harness.queue("true")
    url = f"{harness.url}/api/v1/jobs/{row['name']}/runner/logs"

    def send(offset: int, data: bytes) -> int:
        r = c.post(url, json={"offset": offset, "data": base64.b64encode(data).decode()})
        assert r.status_code == 200, r.text
        return int(r.json()["offset"])

    with httpx.Client(headers={"Authorization": f"Bearer {harness.ctx.services['users'].runner_token(row)}"}) as c:
        assert send(0, b"one\n") == 4
        assert send(0, b"one\n") == 4  # a resend after a lost answer: not doubled
        assert send(2, b"e\ntwo\n") == 8  # overlapping: only the new bytes
        assert send(20, b"gap\n") == 8  # past the end: the runner resends from the server's size
        refused = c.post(url, json={"offset": 0, "data": base64.b64encode(b"ONE\n").decode()})
        assert refused.status_code == 400 and "append-only" in refused.text  # never rewritten
    assert harness.log(row["name"]) == "one\ntwo\n"


def test_a_cancel_reaches_the_runner_through_its_heartbeat(harness: Harness, started: list) -> None:
    """A backend that cannot signal the runner (another machine) relies on this: the heartbeat's
    answer names the cancel, and the runner stops its command and reports Canceled."""
    backend = harness.registry.backend("local")
    row = harness.queue("sleep 300")
    handle = backend.submit(harness.spec(row, work_dir=None))
    started.append((backend, handle))
    running = harness.wait_state(row["name"], lambda s: s.get("status") == "Running", "Running")
    harness.ctx.store.transition_job(row["name"], JobStatus.CANCEL_REQUESTED,
                                     runtime_update={"cancel_requested": time.time(), "cancel_reason": "by heartbeat"})
    state = harness.wait_state(row["name"], lambda s: s.get("terminal"), "its end")
    assert state["status"] == "Canceled" and state["error"] == "by heartbeat", state
    _no_process_left(backend, running)


# ---------------------------------------------------------------------------------------- the scheduler's dispatch
def test_scheduler_fails_a_job_whose_compute_type_has_no_backend(harness: Harness) -> None:
    harness.ctx.store.put_compute("k8s-pool", "kubernetes", 2, {})
    name = harness.ctx.services["jobs"].submit({"type": "command", "command": "true", "compute": "k8s-pool"})["name"]
    harness.ctx.services["jobs"].scheduler.run_pass()
    row = harness.ctx.store.get_job(name)
    assert row["status"] == "Failed"
    assert "'k8s-pool'" in row["error"] and "'kubernetes'" in row["error"] and "amlcompute" in row["error"], row["error"]


def test_scheduler_starts_only_leaf_types(harness: Harness) -> None:
    scheduler = harness.ctx.services["jobs"].scheduler
    # the kinds whose job runs on a slot (parallel: its engine is one runner); parents (sweep,
    # pipeline, automl) hold none
    assert scheduler.leaf_types == {"command", "parallel"}
    saved = set(scheduler.leaf_types)
    harness.ctx.store.put_compute("leaf-pool", "amlcompute", 1, {})
    name = harness.ctx.services["jobs"].submit({"type": "command", "command": "true", "compute": "leaf-pool"})["name"]
    scheduler.leaf_types = set()
    try:
        scheduler.run_pass()
        assert harness.ctx.store.get_job(name)["status"] == "Queued"  # not a type it runs
    finally:
        scheduler.leaf_types = saved
    harness.ctx.services["jobs"].cancel(name)


# ---------------------------------------------------------------------------------------- another machine
_HIDE_WORKSPACE = """#!/bin/sh
# the runner, as on another machine: the workspace folder (code snapshots, datastores, MLflow
# artifacts, job folders) is covered by an empty tmpfs in the runner's own mount namespace
exec unshare -m --propagation private /bin/sh -c \
  'mount -t tmpfs -o size=8m,mode=0755 openaml-not-here "$0" || exit 97; exec "$@"' "{ws}" "{python}" "$@"
"""

_MAIN_PY = """import argparse, pathlib, mlflow
p = argparse.ArgumentParser()
p.add_argument("--data"); p.add_argument("--out")
a = p.parse_args()
text = (pathlib.Path(a.data) / "words.txt").read_text()
pathlib.Path(a.out, "upper.txt").write_text(text.upper())
pathlib.Path("outputs").mkdir(exist_ok=True)
pathlib.Path("outputs", "note.txt").write_text("artifact from elsewhere")
mlflow.log_metric("words", len(text.split()))
print("done:", len(text.split()), "words")
"""


def _can_hide() -> bool:
    from openaml.environments import read_only_mounts_available

    return os.geteuid() == 0 and read_only_mounts_available()


@pytest.mark.skipif(not _can_hide(), reason="needs root and mount namespaces (unshare -m) to hide the workspace")
def test_a_runner_that_cannot_see_the_workspace_runs_a_job_over_http(harness: Harness, started: list,
                                                                     tmp_path: Path) -> None:
    """A runner on another machine: the workspace is not visible to it (an empty tmpfs over it in
    its mount namespace), so its code snapshot, its ``download`` input, its declared output and its
    MLflow artifacts all go over HTTP with the job's token; the result is the same as on the server."""
    import sys

    import mlflow

    from openaml import Input, MLClient, Output, command
    from openaml.compute._local import LocalBackend

    code = tmp_path / "src"
    code.mkdir()
    (code / "main.py").write_text(_MAIN_PY)
    data = tmp_path / "data"
    data.mkdir()
    (data / "words.txt").write_text("one two three\n")
    with MLClient(workspace=harness.url) as ml:
        job = ml.jobs.create_or_update(command(
            code=str(code), command="python main.py --data ${{inputs.data}} --out ${{outputs.result}}",
            inputs={"data": Input(type="uri_folder", path=str(data), mode="download")},
            outputs={"result": Output(type="uri_folder")}, experiment_name="elsewhere"))
    row = harness.ctx.store.transition_job(job.name, JobStatus.PREPARING, from_statuses=[JobStatus.QUEUED])
    assert row is not None
    wrapper = tmp_path / "python-elsewhere"
    wrapper.write_text(_HIDE_WORKSPACE.format(ws=harness.ctx.layout.root, python=sys.executable))
    wrapper.chmod(0o755)
    backend = LocalBackend(python=str(wrapper))
    handle = backend.submit(harness.spec(row, work_dir=None))
    started.append((backend, handle))
    state = harness.wait_state(row["name"], lambda s: s.get("terminal"), "its end")
    assert state["status"] == "Completed" and state["exit_code"] == 0, (state, backend.logs(handle))
    assert "done: 3 words" in harness.log(row["name"])
    # the declared output is in its datastore path on the server
    landed = Path(state["outputs"]["result"])
    assert harness.ctx.layout.root in landed.parents, landed
    assert (landed / "upper.txt").read_text() == "ONE TWO THREE\n"
    # the metric and ./outputs reached the job's MLflow run
    run = mlflow.MlflowClient(f"{harness.url}/mlflow").get_run(row["name"])
    assert run.data.metrics["words"] == 3
    artifacts = harness.ctx.tracking.artifact_dir(run.info.artifact_uri)
    assert (artifacts / "outputs" / "note.txt").read_text() == "artifact from elsewhere"
    assert (artifacts / "user_logs" / "std_log.txt").is_file()
    # nothing of the runner's work is in the workspace: it never saw it, and said so
    assert not (harness.ctx.layout.job_dir(row["name"]) / "wd").exists()
    runner_log = (harness.ctx.layout.job_dir(row["name"]) / "system_logs" / "runner.log").read_text()
    assert "workspace folder is not visible here" in runner_log


@pytest.mark.skipif(not _can_hide(), reason="needs root and mount namespaces (unshare -m) to hide the workspace")
def test_a_runner_that_cannot_see_the_workspace_builds_the_environment_on_its_machine(
        harness: Harness, started: list, tmp_path: Path) -> None:
    """An environment with packages is built by the runner in a folder of its own machine
    (``$OPENAML_RUNNER_ENVS``), not in the server's ``envs/`` (which it cannot see)."""
    import sys

    from openaml.compute._local import LocalBackend

    name = harness.ctx.services["jobs"].submit({
        "type": "command", "command": "python -c 'import six; print(\"six is\", six.__version__)'",
        "environment": {"image": "python:3.11", "conda_file": {"dependencies": [{"pip": ["six"]}]}}})["name"]
    row = harness.ctx.store.transition_job(name, JobStatus.PREPARING, from_statuses=[JobStatus.QUEUED])
    assert row is not None
    envs = tmp_path / "runner-envs"
    wrapper = tmp_path / "python-elsewhere"
    wrapper.write_text(_HIDE_WORKSPACE.format(ws=harness.ctx.layout.root, python=sys.executable)
                       .replace("exec unshare", f"export OPENAML_RUNNER_ENVS={envs}\nexec unshare"))
    wrapper.chmod(0o755)
    backend = LocalBackend(python=str(wrapper))
    handle = backend.submit(harness.spec(row, work_dir=None))
    started.append((backend, handle))
    deadline = time.monotonic() + 600  # a first build may download packages
    while not harness.state(name).get("terminal") and time.monotonic() < deadline:
        time.sleep(0.5)
    state = harness.state(name)
    assert state["status"] == "Completed", (state, harness.log(name))
    assert "six is" in harness.log(name)
    spec_hash = harness.ctx.store.get_job(name)["runtime"]["environment"]["spec_hash"]
    assert (envs / spec_hash).is_dir()
    assert not (harness.ctx.layout.envs / spec_hash).exists()


def _submit_with_files(harness: Harness, tmp_path: Path) -> dict[str, Any]:
    """A queued job with a code folder, a ``download`` input, a literal input and two outputs, in
    Preparing (its slot taken)."""
    from openaml import Input, MLClient, Output, command

    (tmp_path / "src").mkdir(parents=True)
    (tmp_path / "src" / "main.py").write_text("print('hi')\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a\n")
    with MLClient(workspace=harness.url) as ml:
        job = ml.jobs.create_or_update(command(
            code=str(tmp_path / "src"), command="python main.py ${{inputs.data}} ${{inputs.n}} ${{outputs.folder}} "
                                                "${{outputs.single}}",
            inputs={"data": Input(type="uri_folder", path=str(tmp_path / "data"), mode="download"), "n": 3},
            outputs={"folder": Output(type="uri_folder"), "single": Output(type="uri_file")}))
    row = harness.ctx.store.transition_job(job.name, JobStatus.PREPARING, from_statuses=[JobStatus.QUEUED])
    assert row is not None
    return row


def _tar(members: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_runner_file_routes_serve_only_the_jobs_own_code_inputs_and_outputs(harness: Harness, tmp_path: Path) -> None:
    import io
    import tarfile

    mine = _submit_with_files(harness, tmp_path / "mine")
    other = harness.queue("true")
    users = harness.ctx.services["users"]
    base = f"{harness.url}/api/v1/jobs/{mine['name']}/runner"
    with httpx.Client(headers={"Authorization": f"Bearer {users.runner_token(other)}",
                               "Content-Type": "application/x-tar"}) as c:
        for r in (c.get(f"{base}/code"), c.get(f"{base}/inputs/data"), c.put(f"{base}/outputs/folder", content=b"")):
            assert r.status_code == 403, r.text  # another job's token
    with httpx.Client(headers={"Authorization": f"Bearer {users.runner_token(mine)}",
                               "Content-Type": "application/x-tar"}, timeout=30) as c:
        code = c.get(f"{base}/code")
        assert code.status_code == 200 and code.headers["content-type"] == "application/x-tar"
        with tarfile.open(fileobj=io.BytesIO(code.content)) as tar:
            assert tar.getnames() == ["main.py"]
        data = c.get(f"{base}/inputs/data")
        with tarfile.open(fileobj=io.BytesIO(data.content)) as tar:
            assert tar.getnames() == ["data/a.txt"] and tar.extractfile("data/a.txt").read() == b"a\n"  # type: ignore[union-attr]
        # only declared inputs with files: no path of the runner's choosing is ever read
        assert c.get(f"{base}/inputs/nope").status_code == 404
        assert c.get(f"{base}/inputs/..%2F..%2Fworkspace.json").status_code == 404
        assert c.get(f"{base}/inputs/n").status_code == 400  # a literal
        # outputs: only after the runner reported its command succeeded (not while it runs)
        single = _tar({"single": b"one file\n"})
        refused = c.put(f"{base}/outputs/single", content=single)
        assert refused.status_code == 409 and "succeeded" in refused.json()["error"]["message"], refused.text
        assert c.post(f"{base}/state", json={"status": "Finalizing", "exit_code": 1},
                      headers={"Content-Type": "application/json"}).status_code == 200
        assert c.put(f"{base}/outputs/single", content=single).status_code == 409  # a failed command
        assert c.post(f"{base}/state", json={"status": "Finalizing", "exit_code": 0},
                      headers={"Content-Type": "application/json"}).status_code == 200
        assert c.put(f"{base}/outputs/nope", content=single).status_code == 404
        # a member leaving the stage, or not a tar: refused, nothing written
        for bad in (_tar({"../escape.txt": b"x"}), b"not a tar at all" * 100, _tar({"a": b"1", "b": b"2"})):
            r = c.put(f"{base}/outputs/single", content=bad)
            assert r.status_code == 400, r.text
        runtime = harness.ctx.store.get_job(mine["name"])["runtime"]
        port = harness.ctx.services["datastores"].port(runtime["outputs"]["single"]["datastore"]["name"])
        assert not port.exists(runtime["outputs"]["single"]["path"])
        assert not list(harness.ctx.layout.uploads.iterdir())  # no stage left behind
        ok = c.put(f"{base}/outputs/single", content=single)
        assert ok.status_code == 200, ok.text
        assert Path(ok.json()["landed"]).read_text() == "one file\n"
        folder = c.put(f"{base}/outputs/folder", content=_tar({"x/y.txt": b"y\n"}))
        assert folder.status_code == 200 and folder.json()["files"] == 1
        assert (Path(folder.json()["landed"]) / "x" / "y.txt").read_text() == "y\n"


def test_cancel_reaches_a_stopped_runner_and_command(harness: Harness, started: list) -> None:
    """A runner and command stopped with SIGSTOP (a debugger, ``kill -STOP``) still end Canceled by
    the runner itself on a cancel (the local backend sends SIGCONT after SIGTERM), not at the
    scheduler's kill after its 15 s grace (which does not run in this suite: it would hang)."""
    import signal

    backend = harness.registry.backend("local")
    row = harness.queue("sleep 300")
    handle = backend.submit(harness.spec(row, work_dir=str(harness.ctx.layout.job_dir(row["name"]))))
    started.append((backend, handle))
    running = harness.wait_state(row["name"], lambda s: s.get("status") == "Running", "Running")
    os.killpg(running["user_pgid"], signal.SIGSTOP)
    os.kill(running["runner_pid"], signal.SIGSTOP)
    deadline = time.monotonic() + DEADLINE  # a signal is delivered when the process is next scheduled
    while psutil.Process(running["runner_pid"]).status() != psutil.STATUS_STOPPED:
        assert time.monotonic() < deadline, "the runner did not stop on SIGSTOP"
        time.sleep(0.05)
    backend.cancel(handle)
    state = harness.wait_state(row["name"], lambda s: s.get("terminal"), "its end")
    assert state["status"] == "Canceled", state
    _no_process_left(backend, running)
