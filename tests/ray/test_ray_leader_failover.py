"""A job on a Ray compute survives its leader stopping (review F4, the Ray variant of
tests/contracts/test_leader_failover.py): two servers of one workspace on PostgreSQL and an S3
default datastore; the leader that launched the job's Ray job is stopped (SIGTERM) while it runs.
The runner, a Ray job of the cluster, reports to the other server, which takes the lead, follows
the Ray job past the heartbeat timeout and ends the job Completed with its output; Ray's job list
says SUCCEEDED (nothing was stopped), and the command ran once."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import start_server
from tests.contracts.conftest import fresh_postgres_schema, pg_database  # noqa: F401 - the fixture
from tests.contracts.test_leader_failover import HEARTBEAT_TIMEOUT, _cli, _health, _log

pytestmark = [pytest.mark.ray, pytest.mark.timeout(1200)]


def test_a_ray_job_completes_when_its_leader_stops(tmp_path: Path, pg_database: Any,  # noqa: F811
                                                   moto_s3: Any, ray_cluster: Any) -> None:
    from openaml import MLClient, Output, command
    from openaml.entities import RayCompute, RayResources, S3CredentialConfiguration, S3Datastore

    url = fresh_postgres_schema(pg_database)
    home_a, home_b = tmp_path / "host-a", tmp_path / "host-b"
    ws_a, ws_b = tmp_path / "a" / "ws", tmp_path / "b" / "ws"
    assert _cli(home_a, "workspace", "create", "-n", "team", "--path", str(ws_a), "--database-url", url).returncode == 0
    r = _cli(home_b, "workspace", "create", "-n", "team", "--path", str(ws_b), "--database-url", url,
             "--secret-key-file", str(ws_a / "secret.key"))
    assert r.returncode == 0, r.stderr
    definition = moto_s3.definition("rayfailover")
    env = {"OPENAML_HEARTBEAT_TIMEOUT": HEARTBEAT_TIMEOUT}
    a = start_server(ws_a, create=False, env={"OPENAML_HOME": str(home_a), **env})
    b = None
    release = tmp_path / "release"
    release.mkdir()
    try:
        b = start_server(ws_b, create=False, env={"OPENAML_HOME": str(home_b), **env})
        assert _health(a.url)["role"] == "leader" and _health(b.url)["role"] == "standby"
        with MLClient(workspace=b.url) as ml_b:
            creds = definition.pop("credentials")
            definition.pop("type")
            ml_b.datastores.create_or_update(S3Datastore(**definition, is_default=True,
                                                         credentials=S3CredentialConfiguration(**creds)))
            ml_b.compute.begin_create_or_update(RayCompute(name="ray-fo", address=ray_cluster.address,
                                                           resources=RayResources(num_cpus=1))).result()
            time.sleep(6)  # each server looks its default datastore up again after 5 s
            script = (
                "import os, sys, time\n"
                "flag = os.environ['RELEASE_DIR']\n"
                "open(os.path.join(flag, 'runs.txt'), 'a').write('ran\\n')\n"
                "print('first-line', flush=True)\n"
                "deadline = time.time() + 300\n"
                "while not os.path.exists(os.path.join(flag, 'go')) and time.time() < deadline:\n"
                "    time.sleep(0.2)\n"
                "open(os.path.join(sys.argv[1], 'weights.bin'), 'wb').write(b'r' * 100)\n"
                "print('last-line', flush=True)\n")
            code = tmp_path / "src"
            code.mkdir()
            (code / "train.py").write_text(script)
            job = ml_b.jobs.create_or_update(command(
                code=str(code), command="python train.py ${{outputs.model}}", compute="ray-fo",
                environment_variables={"RELEASE_DIR": str(release)}, outputs={"model": Output(type="uri_folder")}))
            deadline = time.monotonic() + 300
            seen, status = "", ""
            while time.monotonic() < deadline and "first-line" not in seen:
                seen, status = _log(b.url, job.name)
                time.sleep(0.5)
            assert "first-line" in seen and status == "Running", (seen, status, ml_b.jobs.get(job.name).error,
                                                                  _ray_logs(ray_cluster, job.name))

            a.stop(signal.SIGTERM)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _health(b.url)["role"] != "leader":
                time.sleep(0.5)
            assert _health(b.url)["role"] == "leader"
            time.sleep(float(HEARTBEAT_TIMEOUT) * 2)
            assert ml_b.jobs.get(job.name).status == "Running"

            (release / "go").write_text("")
            done = ml_b.jobs.wait(job.name, timeout=300)
            assert done.status == "Completed", getattr(done, "error", None)
            assert (release / "runs.txt").read_text() == "ran\n"
            seen, _ = _log(b.url, job.name)
            assert "last-line" in seen, seen
            ml_b.jobs.download(job.name, output_name="model", download_path=tmp_path / "out")
            assert [p.read_bytes() for p in (tmp_path / "out").rglob("weights.bin")] == [b"r" * 100]
            jobs = httpx.get(f"{ray_cluster.address}/api/jobs/", timeout=30).json()
            mine = [j for j in jobs if (j.get("metadata") or {}).get("openaml_job") == job.name]
            end = time.monotonic() + 60
            while mine and mine[0]["status"] in ("PENDING", "RUNNING") and time.monotonic() < end:
                time.sleep(0.5)
                jobs = httpx.get(f"{ray_cluster.address}/api/jobs/", timeout=30).json()
                mine = [j for j in jobs if (j.get("metadata") or {}).get("openaml_job") == job.name]
            assert [j["status"] for j in mine] == ["SUCCEEDED"], mine
    finally:
        (release / "go").write_text("")
        a.stop()
        if b is not None:
            b.stop()


def _ray_logs(cluster: Any, job_name: str) -> str:
    """The end of Ray's log of the job's runner (for a failure's message)."""
    jobs = httpx.get(f"{cluster.address}/api/jobs/", timeout=30).json()
    for j in jobs:
        if (j.get("metadata") or {}).get("openaml_job") == job_name:
            logs = httpx.get(f"{cluster.address}/api/jobs/{j['submission_id']}/logs", timeout=30).json()
            return f"{j['status']} {j.get('message')}\n{str(logs.get('logs'))[-3000:]}"
    return "no Ray job"
