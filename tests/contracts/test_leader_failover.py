"""Jobs survive their leader stopping (issue 12, review finding F4).

Two servers of one workspace (two folders with their own ``$OPENAML_HOME``: two hosts) share
PostgreSQL and an S3 default datastore. A job created on the standby runs under the leader; the
leader is stopped (SIGTERM: a planned restart; SIGKILL: the server process dies, its host lives)
while the job runs. Its runner, in a session of its own, survives; it reports to the other server,
which takes the lead, follows the job past the heartbeat timeout without failing it, and ends it
Completed with its outputs, its artifacts, its whole log and its MLflow run finished. The command
ran once. Real servers, the real SDK and MLflow client, a real PostgreSQL and S3 server (moto).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import start_server
from tests.contracts.conftest import fresh_postgres_schema

pytestmark = [pytest.mark.postgres, pytest.mark.backend("postgres")]

HEARTBEAT_TIMEOUT = "8"  # short, so that the test outlives it while the runner reports to the new leader


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAML_HOME": str(home)}
    env.pop("OPENAML_WORKSPACE", None)
    env.pop("OPENAML_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "openaml", *args], env=env, capture_output=True, text=True,
                          timeout=180)


def _health(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/health", timeout=30).json()


def _log(url: str, name: str) -> tuple[str, str]:
    r = httpx.get(f"{url}/api/v1/jobs/{name}/logs", params={"offset": 0}, timeout=60)
    r.raise_for_status()
    return r.json()["data"], r.json()["status"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_local_job_completes_when_its_leader_stops(tmp_path: Path, pg_database: Any, moto_s3: Any,
                                                     sig: signal.Signals) -> None:
    from mlflow.tracking import MlflowClient

    from openaml import MLClient, Output, command
    from openaml.entities import S3CredentialConfiguration, S3Datastore

    url = fresh_postgres_schema(pg_database)
    home_a, home_b = tmp_path / "host-a", tmp_path / "host-b"
    ws_a, ws_b = tmp_path / "a" / "ws", tmp_path / "b" / "ws"
    assert _cli(home_a, "workspace", "create", "-n", "team", "--path", str(ws_a), "--database-url", url).returncode == 0
    r = _cli(home_b, "workspace", "create", "-n", "team", "--path", str(ws_b), "--database-url", url,
             "--secret-key-file", str(ws_a / "secret.key"))
    assert r.returncode == 0, r.stderr
    definition = moto_s3.definition(f"failover{sig.value}")
    env = {"OPENAML_HEARTBEAT_TIMEOUT": HEARTBEAT_TIMEOUT}
    a = start_server(ws_a, create=False, env={"OPENAML_HOME": str(home_a), **env})
    b = None
    try:
        b = start_server(ws_b, create=False, env={"OPENAML_HOME": str(home_b), **env})
        assert _health(a.url)["role"] == "leader" and _health(b.url)["role"] == "standby"
        with MLClient(workspace=b.url) as ml_b:
            creds = definition.pop("credentials")
            definition.pop("type")
            ml_b.datastores.create_or_update(S3Datastore(**definition, is_default=True,
                                                         credentials=S3CredentialConfiguration(**creds)))
            time.sleep(6)  # each server looks its default datastore up again after 5 s

            code = tmp_path / "src"
            code.mkdir()
            (code / "train.py").write_text(
                "import os, sys, time\n"
                "flag = os.environ['RELEASE_DIR']\n"
                "open(os.path.join(flag, 'runs.txt'), 'a').write('ran\\n')\n"  # how many times the command ran
                "print('first-line', flush=True)\n"
                "deadline = time.time() + 300\n"
                "while not os.path.exists(os.path.join(flag, 'go')) and time.time() < deadline:\n"
                "    time.sleep(0.2)\n"
                "os.makedirs('outputs', exist_ok=True)\n"
                "open('outputs/metrics.txt', 'w').write('accuracy=0.9\\n')\n"
                "open(os.path.join(sys.argv[1], 'weights.bin'), 'wb').write(b'w' * 1000)\n"
                "print('last-line', flush=True)\n")
            release = tmp_path / "release"
            release.mkdir()
            job = ml_b.jobs.create_or_update(command(
                code=str(code), command="python train.py ${{outputs.model}}", experiment_name="failover",
                environment_variables={"RELEASE_DIR": str(release)}, outputs={"model": Output(type="uri_folder")}))

            deadline = time.monotonic() + 180
            seen, status = "", ""
            while time.monotonic() < deadline and "first-line" not in seen:
                seen, status = _log(b.url, job.name)
                time.sleep(0.5)
            assert "first-line" in seen and status == "Running", (seen, status)

            # the leader stops while the job runs: the standby takes the lead
            a.stop(sig)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _health(b.url)["role"] != "leader":
                time.sleep(0.5)
            assert _health(b.url)["role"] == "leader"
            # the new leader follows the job past the heartbeat timeout: the runner reports to it
            time.sleep(float(HEARTBEAT_TIMEOUT) * 2)
            assert ml_b.jobs.get(job.name).status == "Running"

            (release / "go").write_text("")
            done = ml_b.jobs.wait(job.name, timeout=240)
            assert done.status == "Completed", getattr(done, "error", None)
            assert (release / "runs.txt").read_text() == "ran\n"  # the command ran once
            seen, status = _log(b.url, job.name)
            assert "first-line" in seen and "last-line" in seen and status == "Completed", seen
            syslog = (ws_a / "jobs" / job.name / "runner" / "system_logs" / "runner.log").read_text()
            assert f"reporting to {b.url}" in syslog, syslog

            # its named output, its artifacts and its MLflow run, through the new leader
            ml_b.jobs.download(job.name, output_name="model", download_path=tmp_path / "out")
            assert [p.read_bytes() for p in (tmp_path / "out").rglob("weights.bin")] == [b"w" * 1000]
            ml_b.jobs.download(job.name, download_path=tmp_path / "art")
            assert [p.read_text() for p in (tmp_path / "art").rglob("metrics.txt")] == ["accuracy=0.9\n"]
            run = MlflowClient(tracking_uri=f"{b.url}/mlflow").get_run(job.name)
            assert run.info.status == "FINISHED"
    finally:
        (tmp_path / "release" / "go").parent.mkdir(exist_ok=True)
        (tmp_path / "release" / "go").write_text("")  # a failed test leaves no waiting command
        a.stop()
        if b is not None:
            b.stop()
