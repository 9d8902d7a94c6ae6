"""The job core (issue 11 item 1): one submission path for every kind, and kinds as plugins.

A toy kind, registered only through an ``openaml.job_kinds`` entry point of a package the test
writes (no edit anywhere in openaml), runs through the real server: submitted over HTTP, recorded
as a job with its MLflow run, completed by its first controller tick. Concurrent submissions of
one explicit name give exactly one job and one MLflow run.
"""

from __future__ import annotations

import os
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

TOY_KIND = '''
from openaml.constants import JobStatus
from openaml.errors import ValidationError
from openaml.services.kinds import JobKind, JobPlan


class ToyKind(JobKind):
    """Completes on its first tick; ``steps`` (an int) is checked; ``explode: true`` fails its start."""

    type = "toy"

    def validate(self, spec, *, source, name):
        steps = spec.get("steps", 1)
        if not isinstance(steps, int) or steps < 1:
            raise ValidationError(f"field 'steps': {steps!r} is not a positive integer")
        data = {"type": "toy", "steps": steps, "explode": bool(spec.get("explode"))}
        return JobPlan(data=data, experiment=spec.get("experiment_name") or "Default",
                       display_name=spec.get("display_name"), runtime={"ticks": 0})

    def start(self, row):
        if row["spec"].get("explode"):
            raise RuntimeError("the toy exploded")
        self.ctx.store.transition_job(row["name"], JobStatus.RUNNING, from_statuses=[JobStatus.NOT_STARTED])
        self.ctx.tracking.set_run_running(row["name"])

    def on_tick(self, row):
        ticks = row["runtime"]["ticks"] + 1
        self.ctx.store.update_job(row["name"], runtime_update={"ticks": ticks})
        self.log(row["name"], f"tick {ticks}")
        self.core.finish(row["name"], JobStatus.COMPLETED, error=None)

    def extend_view(self, row, spec):
        spec["ticks"] = row["runtime"]["ticks"]
        return spec
'''


def _toy_package(root: Path) -> Path:
    """A tiny installed distribution whose only content is the toy kind and its entry point."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "openaml_toy_kind.py").write_text(TOY_KIND)
    dist = root / "openaml_toy_kind-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: openaml-toy-kind\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [openaml.job_kinds]
        toy = openaml_toy_kind:ToyKind
        """))
    return root


def _wait(url: str, name: str, statuses: set[str], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = httpx.get(f"{url}/api/v1/jobs/{name}", timeout=30).json()
        if job.get("status") in statuses or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def test_a_new_kind_needs_no_edit_elsewhere(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from tests.conftest import start_server

    pkg = _toy_package(tmp_path / "plugin")
    path = os.pathsep.join(p for p in (str(pkg), os.environ.get("PYTHONPATH", "")) if p)
    server = start_server(tmp_path / "ws", name="toy-kind", env={"PYTHONPATH": path})
    try:
        api = f"{server.url}/api/v1/jobs"
        made = httpx.post(api, json={"type": "toy", "name": "toy_1", "steps": 3, "experiment_name": "toys"},
                          timeout=60)
        assert made.status_code == 200, made.text
        assert made.json()["name"] == "toy_1"
        job = _wait(server.url, "toy_1", {"Completed", "Failed", "Canceled"})
        assert job["status"] == "Completed", job
        assert job["ticks"] == 1 and job["steps"] == 3 and job["experiment_name"] == "toys"
        run = MlflowClient(f"{server.url}/mlflow").get_run("toy_1")
        assert run.info.status == "FINISHED"
        assert run.data.tags["openaml.job_type"] == "toy"
        log = httpx.get(f"{api}/toy_1/logs", timeout=30).json()
        assert "tick 1" in log["data"]
        # the kind's own validation, through the core, before anything is stored
        bad = httpx.post(api, json={"type": "toy", "name": "toy_bad", "steps": 0}, timeout=60)
        assert bad.status_code == 400 and "field 'steps'" in bad.text, bad.text
        assert httpx.get(f"{api}/toy_bad", timeout=30).status_code == 404
        # a start that fails: the job ends Failed with the reason (not left NotStarted), its run ended
        boom = httpx.post(api, json={"type": "toy", "name": "toy_boom", "explode": True}, timeout=60)
        assert boom.status_code == 200, boom.text
        assert boom.json()["status"] == "Failed"
        assert "the toy exploded" in boom.json()["error"]
        assert MlflowClient(f"{server.url}/mlflow").get_run("toy_boom").info.status == "FAILED"
        # an unknown type names the kinds there are, the plugin's included
        unknown = httpx.post(api, json={"type": "nope"}, timeout=60)
        assert unknown.status_code == 400
        assert "supported: command, sweep, pipeline, parallel" in unknown.text and "toy" in unknown.text, unknown.text
        _client_handles_the_kind(server.url, tmp_path, path)
    finally:
        server.stop()


def _client_handles_the_kind(url: str, tmp_path: Path, pythonpath: str) -> None:
    """The SDK and CLI have no entity for ``toy``: a generic job keeps its fields; list, show, stream,
    cancel work for the whole workspace, and ``job create`` passes the spec to the server."""
    import subprocess
    import sys

    from openaml import MLClient
    from openaml.entities import GenericJob

    with MLClient(workspace=url) as ml:
        listed = {j.name: j for j in ml.jobs.list()}
        toy = listed["toy_1"]
        assert isinstance(toy, GenericJob) and toy.type == "toy" and toy.status == "Completed"
        assert toy.experiment_name == "toys" and toy.raw_fields["steps"] == 3
        got = ml.jobs.get("toy_1")
        assert isinstance(got, GenericJob) and got.type == "toy" and got.raw_fields["ticks"] == 1
        assert got.creation_context is not None and got.to_dict()["steps"] == 3
        assert ml.jobs.cancel("toy_1").status == "Completed"  # a finished job stays as it ended
        out = __import__("io").StringIO()
        assert ml.jobs.stream("toy_1", out=out).status == "Completed"
        assert "tick 1" in out.getvalue()
    env = {**os.environ, "OPENAML_WORKSPACE": url, "COLUMNS": "200", "PYTHONPATH": pythonpath}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "openaml", *args], env=env, capture_output=True, text=True,
                              timeout=300)

    listed_cli = cli("job", "list", "-o", "json")
    assert listed_cli.returncode == 0, listed_cli.stderr
    assert "toy_1" in listed_cli.stdout
    assert cli("job", "stream", "-n", "toy_1").returncode == 0
    yml = tmp_path / "toy.yml"
    yml.write_text("type: toy\nname: toy_cli\nsteps: 2\nexperiment_name: toys\n")
    made = cli("job", "create", "-f", str(yml), "-o", "json")
    assert made.returncode == 0, made.stderr
    assert __import__("json").loads(made.stdout)["steps"] == 2
    assert _wait(url, "toy_cli", {"Completed", "Failed", "Canceled"})["status"] == "Completed"
    # the server, not the client, refuses a spec of its kind (and a type nobody knows)
    bad = tmp_path / "bad.yml"
    bad.write_text("type: toy\nsteps: 0\n")
    refused = cli("job", "create", "-f", str(bad))
    assert refused.returncode != 0 and "field 'steps'" in refused.stderr + refused.stdout
    bad.write_text("type: nope\ncommand: echo\n")
    refused = cli("job", "create", "-f", str(bad))
    assert refused.returncode != 0
    text = refused.stderr + refused.stdout
    assert "supported: command, sweep, pipeline, parallel" in text and "toy" in text, text


def test_concurrent_submissions_of_one_name_give_one_job_and_one_run(server: Any) -> None:
    from mlflow.tracking import MlflowClient

    name = f"same_name_{uuid.uuid4().hex[:8]}"
    experiment = f"race-{name}"
    spec = {"type": "command", "name": name, "command": "echo once", "experiment_name": experiment}
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def submit() -> None:
        barrier.wait()
        r = httpx.post(f"{server.url}/api/v1/jobs", json=spec, timeout=120)
        codes.append(r.status_code)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] + [409] * 7, codes
    jobs = [j for j in httpx.get(f"{server.url}/api/v1/jobs", timeout=30).json() if j["name"] == name]
    assert len(jobs) == 1
    client = MlflowClient(f"{server.url}/mlflow")
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    assert [r.info.run_id for r in client.search_runs([exp.experiment_id])] == [name]
    assert _wait(server.url, name, {"Completed", "Failed", "Canceled"})["status"] == "Completed"
