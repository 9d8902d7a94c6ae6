"""Shared test fixtures.

The expensive thing (one real server on an OS-assigned port, in a temporary workspace) is
shared per session; tests that kill or restart a server make their own with
``start_server(tmp_path)``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.object_stores import azurite, moto_s3  # noqa: F401 - session fixtures: S3 and Azure Blob servers

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
EXAMPLES = REPO / "examples"


@dataclass
class ServerHandle:
    url: str
    path: Path
    proc: subprocess.Popen

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(workspace: Path, *, name: str = "test", env: dict[str, str] | None = None,
                 create: bool = True) -> ServerHandle:
    """Create (if needed) a workspace at ``workspace`` and start a real server on port 0."""
    full_env = {**os.environ, **(env or {})}
    if create and not (workspace / "workspace.json").exists():
        made = subprocess.run([sys.executable, "-m", "openaml", "workspace", "create", "-n", name, "--path",
                               str(workspace)], env=full_env, capture_output=True, text=True)
        if made.returncode != 0:  # say why (a flake seen once under load gave only "exit status 1")
            raise RuntimeError(f"workspace create exited {made.returncode}: {made.stderr[-2000:]}{made.stdout[-500:]}")
    log = open(workspace.parent / f"{workspace.name}-server.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "openaml", "server", "--workspace", str(workspace), "--port", "0"],
                            stdout=log, stderr=subprocess.STDOUT, env=full_env)
    deadline = time.monotonic() + 90
    info_file = workspace / "server.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log.name}")
        if info_file.exists():
            info = json.loads(info_file.read_text())
            if info.get("pid") == proc.pid:
                return ServerHandle(url=info["url"], path=workspace, proc=proc)
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start in 90 s")


@pytest.fixture(autouse=True)
def _mlflow_process_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """MLflow keeps its tracking and registry URIs in process globals and in the environment
    (``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI``, ``_MLFLOW_SERVER_*``: a store configured in this
    process sets them); restore both after each test so that no test's MLflow client reaches
    another test's store. The contract suites restore per module (tests/contracts/conftest.py)."""
    if "contracts" in request.node.path.parts:
        yield
        return
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    env = {k: v for k, v in os.environ.items() if "MLFLOW" in k}
    uris = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    yield
    for k in [k for k in os.environ if "MLFLOW" in k and k not in env]:
        del os.environ[k]
    os.environ.update(env)
    tracking_utils._tracking_uri, registry_utils._registry_uri = uris


@pytest.fixture(scope="session", autouse=True)
def _no_runner_outlives_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A runner whose server is gone keeps retrying its end report (up to an hour, so that a job that
    ends while its server restarts is still recorded); the tests' servers are gone for good when the
    session ends, so their runners (work folders under this session's temporary folder) are stopped.
    So are servers that a client started in the background for a workspace of this session (an
    ``azureml://`` path resolved without a live client starts the default workspace's server) and
    that no fixture owns."""
    yield
    import psutil

    base = str(tmp_path_factory.getbasetemp())
    servers = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if not any(a.startswith(base) for a in cmd):
            continue
        try:
            if "openaml.runner" in cmd:
                p.kill()
            elif "openaml" in cmd and "server" in cmd:
                p.terminate()
                servers.append(p)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(servers, timeout=20)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass


@pytest.fixture(scope="session", autouse=True)
def openaml_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A throwaway OPENAML_HOME for the whole session (autouse: no test registers workspaces in the real one)."""
    home = tmp_path_factory.mktemp("openaml-home")
    old = os.environ.get("OPENAML_HOME")
    os.environ["OPENAML_HOME"] = str(home)
    os.environ.pop("OPENAML_WORKSPACE", None)
    # tests register local datastores in their tmp_path (outside the default allow-list: workspace, home)
    os.environ.setdefault("OPENAML_DATASTORE_ROOTS", str(home.parent.parent))
    yield home
    if old is None:
        os.environ.pop("OPENAML_HOME", None)
    else:
        os.environ["OPENAML_HOME"] = old


@pytest.fixture(scope="session")
def server(openaml_home: Path) -> Iterator[ServerHandle]:
    """One real server for the session, on an OS-assigned port."""
    handle = start_server(openaml_home / "ws-session", name="session")
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def ml_client(server: ServerHandle):  # type: ignore[no-untyped-def]
    from openaml import MLClient

    client = MLClient(workspace=server.url)
    yield client
    client.close()


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self):  # type: ignore[no-untyped-def]
        return json.loads(self.stdout)


@pytest.fixture(scope="session")
def cli(server: ServerHandle):  # type: ignore[no-untyped-def]
    """Run the real ``openaml`` CLI against the session server: ``cli("data", "list", cwd=...)``."""

    def run(*args: str, cwd: Path | str | None = None, timeout: float = 300, check: bool = False,
            env: dict[str, str] | None = None) -> CliResult:
        full_env = {**os.environ, "OPENAML_WORKSPACE": server.url, "COLUMNS": "200", **(env or {})}
        p = subprocess.run([sys.executable, "-m", "openaml", *args], cwd=cwd, env=full_env, capture_output=True,
                           text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"openaml {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return CliResult(p.returncode, p.stdout, p.stderr)

    return run


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A local Ray cluster (tests/ray/cluster.py: a head and one worker node on loopback, ``--num-cpus 1``
    each, custom resources ``head``/``worker``) for the ``ray`` tier, stopped at the session's end.
    Skipped when ray is not installed (``pip install 'openaml[ray]'``), unless ``CI=true``: then it fails."""
    from tests.ray.cluster import LocalRayCluster, ray_available

    if not ray_available():
        if os.environ.get("CI") == "true":
            pytest.fail("the ray tier needs ray: pip install 'openaml[ray]' (CI=true: not skipped)")
        pytest.skip("ray is not installed (pip install 'openaml[ray]')")
    cluster = LocalRayCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def titanic_csv() -> Path:
    return EXAMPLES / "titanic" / "data" / "titanic.csv"
