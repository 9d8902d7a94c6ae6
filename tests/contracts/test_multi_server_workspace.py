"""One workspace served by two servers sharing PostgreSQL (issue 12 item 4).

Two workspace folders with their own ``$OPENAML_HOME`` stand for two hosts. The first creates the
workspace on the database (``workspace create --database-url``), the second joins it with the
first's ``secret.key``. Both serve the API; one leads (runs the scheduler), the other stands by and
takes over when the leader stops. Real servers, the real CLI and SDK, a real PostgreSQL.
"""

from __future__ import annotations

import json
import os
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


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAML_HOME": str(home)}
    env.pop("OPENAML_WORKSPACE", None)
    env.pop("OPENAML_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "openaml", *args], env=env, capture_output=True, text=True,
                          timeout=180)


def _health(url: str, ws: Path) -> dict[str, Any]:
    token = (ws / "server.token").read_text().strip() if (ws / "server.token").exists() else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{url}/health", headers=headers, timeout=30).json()


def test_two_servers_on_one_postgres_workspace_one_leads_the_other_takes_over(tmp_path: Path,
                                                                               pg_database: Any) -> None:
    from openaml import MLClient, command

    url = fresh_postgres_schema(pg_database)
    home_a, home_b = tmp_path / "host-a", tmp_path / "host-b"
    ws_a, ws_b = tmp_path / "a" / "ws", tmp_path / "b" / "ws"
    r = _cli(home_a, "workspace", "create", "-n", "team", "--path", str(ws_a), "--database-url", url)
    assert r.returncode == 0, r.stderr
    recorded = json.loads((ws_a / "database.json").read_text())
    assert recorded == {"database_url": url} and oct((ws_a / "database.json").stat().st_mode)[-3:] == "600"

    # joining is checked before anything is written: another name, or no key
    r = _cli(home_b, "workspace", "create", "-n", "other", "--path", str(ws_b), "--database-url", url)
    assert r.returncode != 0 and "holds workspace 'team'" in r.stderr, r.stderr
    r = _cli(home_b, "workspace", "create", "-n", "team", "--path", str(ws_b), "--database-url", url)
    assert r.returncode != 0 and "--secret-key-file" in r.stderr, r.stderr
    assert not ws_b.exists()
    r = _cli(home_b, "workspace", "create", "-n", "team", "--path", str(ws_b), "--database-url", url,
             "--secret-key-file", str(ws_a / "secret.key"))
    assert r.returncode == 0, r.stderr
    assert json.loads((ws_b / "workspace.json").read_text())["id"] == json.loads(
        (ws_a / "workspace.json").read_text())["id"]

    a = start_server(ws_a, create=False, env={"OPENAML_HOME": str(home_a)})
    b = None
    try:
        b = start_server(ws_b, create=False, env={"OPENAML_HOME": str(home_b)})
        health_a, health_b = _health(a.url, ws_a), _health(b.url, ws_b)
        assert (health_a["role"], health_a["leader"]) == ("leader", a.url), health_a
        assert (health_b["role"], health_b["leader"]) == ("standby", a.url), health_b

        # a job sent to the standby server runs (the leader's scheduler starts it); both see it
        with MLClient(workspace=b.url) as ml_b:
            job = ml_b.jobs.create_or_update(command(command="echo from-b", experiment_name="team-ws"))
            assert ml_b.jobs.wait(job.name, timeout=240).status == "Completed"
        with MLClient(workspace=a.url) as ml_a:
            assert ml_a.jobs.get(job.name).status == "Completed"
        # online endpoints are served by the leader: the standby refuses changes, naming it
        r = httpx.put(f"{b.url}/api/v1/online-endpoints/refused", json={"name": "refused", "auth_mode": "key"},
                      timeout=30)
        assert r.status_code == 409 and a.url in r.json()["error"]["message"], r.text
        # and scoring requests sent to the standby are redirected to the leader (307 keeps the body)
        r = httpx.post(f"{b.url}/endpoints/any/score?verbose=1", json={"data": [1]}, timeout=30)
        assert (r.status_code, r.headers["location"]) == (307, f"{a.url}/endpoints/any/score?verbose=1"), r.text

        # the leader stops: the standby takes the lead within a few seconds and runs the next job
        a.stop()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _health(b.url, ws_b)["role"] != "leader":
            time.sleep(0.5)
        assert _health(b.url, ws_b) == {"status": "ok", "workspace": "team", "role": "leader", "leader": b.url}
        with MLClient(workspace=b.url) as ml_b:
            job2 = ml_b.jobs.create_or_update(command(command="echo after-failover", experiment_name="team-ws"))
            assert ml_b.jobs.wait(job2.name, timeout=240).status == "Completed"
    finally:
        a.stop()
        if b is not None:
            b.stop()


def test_a_folder_of_another_workspace_is_refused_by_the_database(tmp_path: Path, pg_database: Any) -> None:
    """A server whose folder is another workspace than the one the database holds does not start
    (it would mix two workspaces' rows), and says which workspace the database holds."""
    url = fresh_postgres_schema(pg_database)
    home = tmp_path / "home"
    assert _cli(home, "workspace", "create", "-n", "first", "--path", str(tmp_path / "first"),
                "--database-url", url).returncode == 0
    assert _cli(home, "workspace", "create", "-n", "second", "--path", str(tmp_path / "second")).returncode == 0
    env = {**os.environ, "OPENAML_HOME": str(home), "OPENAML_DATABASE_URL": url}
    r = subprocess.run([sys.executable, "-m", "openaml", "server", "-w", str(tmp_path / "second")], env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode != 0
    assert "holds workspace 'first'" in r.stderr and "not this folder's workspace 'second'" in r.stderr, r.stderr


def _log_from(url: str, name: str) -> tuple[str, str]:
    """(the job's log so far, its status) as ``GET /jobs/<name>/logs`` of the server at ``url`` gives them."""
    r = httpx.get(f"{url}/api/v1/jobs/{name}/logs", params={"offset": 0}, timeout=60)
    r.raise_for_status()
    return r.json()["data"], r.json()["status"]


def _log_served_whole(url: str, leader_ws: Path, name: str, within: float = 30) -> str:
    """What differs between job ``name``'s log as the server at ``url`` serves it and the leader's
    file ("" once the same, waiting ``within`` seconds for the last push)."""
    path = leader_ws / "jobs" / name / "user_logs" / "std_log.txt"
    deadline = time.monotonic() + within
    while True:
        served, expected = _log_from(url, name)[0], path.read_text()
        if served == expected:
            return ""
        if time.monotonic() > deadline:
            return f"served:\n{served}\nthe leader's file:\n{expected}"
        time.sleep(0.5)


def test_two_servers_on_two_hosts_share_postgres_and_an_s3_default_datastore(tmp_path: Path, pg_database: Any,
                                                                            moto_s3: Any) -> None:
    """Issue 12 item 4: two servers with their own folders (two hosts) share PostgreSQL and an S3
    default datastore. A job created on the standby with local code runs on the leader, which
    fetches the code snapshot; its log streams from the standby while it runs and is served whole
after its end (a sweep's own log, written by the leading server, too); its named output,
    its MLflow artifacts (openaml's download and MLflow's artifact proxy) and a model registered
    on the standby from its output are readable on both servers."""
    from mlflow.tracking import MlflowClient

    from openaml import MLClient, Output, command
    from openaml.entities import Model, S3CredentialConfiguration, S3Datastore
    from openaml.sweep import Choice

    url = fresh_postgres_schema(pg_database)
    home_a, home_b = tmp_path / "host-a", tmp_path / "host-b"
    ws_a, ws_b = tmp_path / "a" / "ws", tmp_path / "b" / "ws"
    assert _cli(home_a, "workspace", "create", "-n", "team", "--path", str(ws_a), "--database-url", url).returncode == 0
    r = _cli(home_b, "workspace", "create", "-n", "team", "--path", str(ws_b), "--database-url", url,
             "--secret-key-file", str(ws_a / "secret.key"))
    assert r.returncode == 0, r.stderr
    definition = moto_s3.definition("teamstore")
    a = start_server(ws_a, create=False, env={"OPENAML_HOME": str(home_a)})
    b = None
    try:
        b = start_server(ws_b, create=False, env={"OPENAML_HOME": str(home_b)})
        assert _health(a.url, ws_a)["role"] == "leader" and _health(b.url, ws_b)["role"] == "standby"
        with MLClient(workspace=a.url) as ml_a, MLClient(workspace=b.url) as ml_b:
            creds = definition.pop("credentials")
            definition.pop("type")
            ml_a.datastores.create_or_update(S3Datastore(**definition, is_default=True,
                                                         credentials=S3CredentialConfiguration(**creds)))
            assert ml_b.datastores.get_default().name == "teamstore"
            time.sleep(6)  # each server looks its default datastore up again after 5 s

            code = tmp_path / "src"
            code.mkdir()
            (code / "train.py").write_text(
                "import os, sys, time\n"
                "print('first-line', flush=True)\n"
                "deadline = time.time() + 120\n"  # until the standby has seen the first line
                "while not os.path.exists(os.path.join(os.environ['RELEASE_DIR'], 'go')) and time.time() < deadline:\n"
                "    time.sleep(0.2)\n"
                "os.makedirs('outputs', exist_ok=True)\n"
                "open('outputs/metrics.txt', 'w').write('accuracy=0.9\\n')\n"
                "open(os.path.join(sys.argv[1], 'weights.bin'), 'wb').write(b'w' * 1000)\n"
                "print('last-line', flush=True)\n")
            release = tmp_path / "release"
            release.mkdir()
            job = ml_b.jobs.create_or_update(command(
                code=str(code), command="python train.py ${{outputs.model}}", experiment_name="team-s3",
                environment_variables={"RELEASE_DIR": str(release)},
                outputs={"model": Output(type="uri_folder")}))

            # the standby streams the log of a job its peer runs, while it runs
            deadline = time.monotonic() + 180
            seen, status = "", ""
            # (the log's push and the leader's record of Running are apart: either may come first under load)
            while time.monotonic() < deadline and ("first-line" not in seen or status != "Running"):
                seen, status = _log_from(b.url, job.name)
                time.sleep(0.5)
            assert "first-line" in seen and status == "Running", (seen, status)
            assert not (ws_b / "jobs" / job.name / "user_logs").exists()  # read from the datastore
            (release / "go").write_text("")
            assert ml_b.jobs.wait(job.name, timeout=240).status == "Completed"
            seen, status = _log_from(b.url, job.name)
            assert "first-line" in seen and "last-line" in seen and status == "Completed", seen
            assert any(p.name == "train.py" for p in (ws_a / "code").rglob("train.py"))  # the leader fetched it

            # the full log, as the leader wrote it, lines after the end included
            assert _log_served_whole(b.url, ws_a, job.name) == ""
            # the studio's job page of the standby shows it too (read through the jobs service; regression:
            # the page read the local file only, absent on this host)
            page = httpx.get(f"{b.url}/jobs/{job.name}", headers={"Accept": "text/html"}, timeout=60).text
            assert "first-line" in page and "last-line" in page
            chunk = httpx.get(f"{b.url}/jobs/{job.name}/log", timeout=60).json()
            leader_log = ws_a / "jobs" / job.name / "user_logs" / "std_log.txt"
            assert "last-line" in chunk["text"] and chunk["size"] == leader_log.stat().st_size
            # a log the leading server writes itself (a sweep's own, its last line after the trials
            # ended) is pushed too: the standby serves all of it (regression: never pushed)
            sweep = command(code=str(code), command="python -c \"print(${{inputs.x}})\"",
                            inputs={"x": 1}, experiment_name="team-s3")(x=Choice([1])).sweep(
                sampling_algorithm="grid", primary_metric="score", goal="Maximize")
            sweep.set_limits(max_total_trials=1)
            sweep = ml_a.jobs.create_or_update(sweep)
            assert ml_a.jobs.wait(sweep.name, timeout=240).status in ("Completed", "Failed")
            sweep_log = ws_a / "jobs" / sweep.name / "user_logs" / "std_log.txt"
            deadline = time.monotonic() + 30
            while "sweep " not in sweep_log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)  # the kind's last line follows the terminal status
            assert "sweep " in sweep_log.read_text()
            assert not (ws_b / "jobs" / sweep.name / "user_logs").exists()
            assert _log_served_whole(b.url, ws_a, sweep.name) == ""

            # its named output (on the S3 default datastore) and its artifacts, from the standby
            ml_b.jobs.download(job.name, output_name="model", download_path=tmp_path / "out-b")
            assert [p.read_bytes() for p in (tmp_path / "out-b").rglob("weights.bin")] == [b"w" * 1000]
            ml_b.jobs.download(job.name, download_path=tmp_path / "art-b")
            assert [p.read_text() for p in (tmp_path / "art-b").rglob("metrics.txt")] == ["accuracy=0.9\n"]
            # MLflow's artifact proxy of either server serves what the other stored
            mlflow_b = MlflowClient(tracking_uri=f"{b.url}/mlflow")
            got = mlflow_b.download_artifacts(job.name, "outputs/metrics.txt", str(tmp_path / "mlflow-b"))
            assert Path(got).read_text() == "accuracy=0.9\n"
            mlflow_b.log_text(job.name, "from the standby\n", "notes/b.txt")
            mlflow_a = MlflowClient(tracking_uri=f"{a.url}/mlflow")
            got = mlflow_a.download_artifacts(job.name, "notes/b.txt", str(tmp_path / "mlflow-a"))
            assert Path(got).read_text() == "from the standby\n"

            # a model registered on the standby from the job's output downloads from the leader
            model = ml_b.models.create_or_update(Model(name="team-model", type="custom_model",
                                                       path=f"azureml://jobs/{job.name}/outputs/model"))
            ml_a.models.download(model.name, model.version, download_path=tmp_path / "model-a")
            got_files = list((tmp_path / "model-a").rglob("weights.bin"))
            assert [p.read_bytes() for p in got_files] == [b"w" * 1000]
            # the files are in the bucket, under openaml-workspace/
            keys = [o["Key"] for o in moto_s3.client().list_objects_v2(
                Bucket=definition["bucket"], Prefix="openaml-workspace/").get("Contents") or []]
            assert any(k.endswith(f"jobs/{job.name}/user_logs/std_log.txt") for k in keys), keys
            assert any(k.startswith("openaml-workspace/code/") and k.endswith("/train.py") for k in keys), keys
            assert any("/models/team-model/" in k for k in keys), keys

            # a copy replaced while the standby reads it (the leader pushes a growing log every 2 s): read
            # again, never a 500 (regression: s3fs's FileExpired when the object changed between the size
            # and the read)
            import threading

            log_key = next(k for k in keys if k.endswith(f"jobs/{job.name}/user_logs/std_log.txt"))
            first = leader_log.read_bytes()
            stop = threading.Event()

            def rewrite() -> None:
                s3, i = moto_s3.client(), 0
                while not stop.is_set():
                    i += 1
                    s3.put_object(Bucket=definition["bucket"], Key=log_key, Body=first + b"x" * i)

            writer = threading.Thread(target=rewrite, daemon=True)
            writer.start()
            try:
                for _ in range(60):
                    served = httpx.get(f"{b.url}/api/v1/jobs/{job.name}/logs", params={"offset": 0}, timeout=60)
                    assert served.status_code == 200, served.text
                    assert served.json()["data"].startswith(first.decode()), served.json()["data"][:200]
            finally:
                stop.set()
                writer.join(timeout=30)
    finally:
        a.stop()
        if b is not None:
            b.stop()


# A trial or step: logs `score` = argv[1] to its MLflow run (REST, no mlflow import) and records that it ran
# (one file per run, appended to: a run started twice shows two lines).
_SCORE = """
import json, os, sys, time, urllib.request
with open(os.path.join(os.environ["RUNS_DIR"], os.environ["MLFLOW_RUN_ID"]), "a") as f:
    f.write(sys.argv[1] + "\\n")
body = json.dumps({"run_id": os.environ["MLFLOW_RUN_ID"], "key": "score", "value": float(sys.argv[1]),
                   "timestamp": int(time.time() * 1000), "step": 0}).encode()
req = urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric", data=body,
                             headers={"Content-Type": "application/json"})
if os.environ.get("MLFLOW_TRACKING_TOKEN"):
    req.add_header("Authorization", "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"])
urllib.request.urlopen(req).read()
print("scored", sys.argv[1], flush=True)
"""


def _sweep_log_done(ws: Path, name: str, within: float = 30) -> str:
    """The sweep's log in folder ``ws`` once its last line ("sweep <status>...") is there."""
    path = ws / "jobs" / name / "user_logs" / "std_log.txt"
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and "sweep " not in (path.read_text() if path.exists() else ""):
        time.sleep(0.2)  # the kind's last line follows the terminal status
    return path.read_text()


def test_parent_jobs_sent_to_the_standby_are_driven_by_the_leader_only(tmp_path: Path, pg_database: Any,
                                                                        moto_s3: Any) -> None:
    """A sweep, a pipeline and a schedule's manual firing sent to the standby server are started and
    driven by the leading server alone: every trial and step is submitted and run once, the parent
    completes, and the standby serves the parent's whole log as the leader wrote it (regression: both
    servers submitted a sweep's trials and the sweep failed on ``duplicate key ... "run_pk"``; the
    standby served its own partial copy of the sweep's log)."""
    from openaml import Input, MLClient, Output, command, dsl
    from openaml.entities import CronTrigger, JobSchedule, S3CredentialConfiguration, S3Datastore
    from openaml.sweep import Choice

    url = fresh_postgres_schema(pg_database)
    home_a, home_b = tmp_path / "host-a", tmp_path / "host-b"
    ws_a, ws_b = tmp_path / "a" / "ws", tmp_path / "b" / "ws"
    assert _cli(home_a, "workspace", "create", "-n", "team", "--path", str(ws_a), "--database-url", url).returncode == 0
    r = _cli(home_b, "workspace", "create", "-n", "team", "--path", str(ws_b), "--database-url", url,
             "--secret-key-file", str(ws_a / "secret.key"))
    assert r.returncode == 0, r.stderr
    definition = moto_s3.definition("teamstore")
    a = start_server(ws_a, create=False, env={"OPENAML_HOME": str(home_a)})
    b = None
    try:
        b = start_server(ws_b, create=False, env={"OPENAML_HOME": str(home_b)})
        assert _health(a.url, ws_a)["role"] == "leader" and _health(b.url, ws_b)["role"] == "standby"
        with MLClient(workspace=a.url) as ml_a, MLClient(workspace=b.url) as ml_b:
            creds = definition.pop("credentials")
            definition.pop("type")
            ml_a.datastores.create_or_update(S3Datastore(**definition, is_default=True,
                                                         credentials=S3CredentialConfiguration(**creds)))
            time.sleep(6)  # each server looks its default datastore up again after 5 s
            code, runs = tmp_path / "src", tmp_path / "runs"
            code.mkdir()
            runs.mkdir()
            (code / "score.py").write_text(_SCORE)
            env = {"RUNS_DIR": str(runs)}

            # a sweep of 3 trials, all at once
            sweep = command(code=str(code), command="python score.py ${{inputs.x}}", inputs={"x": 1},
                            environment_variables=env, experiment_name="team-parents")(
                x=Choice([1, 2, 3])).sweep(sampling_algorithm="grid", primary_metric="score", goal="Maximize")
            sweep.set_limits(max_total_trials=3, max_concurrent_trials=3)
            sweep = ml_b.jobs.create_or_update(sweep)
            assert ml_b.jobs.wait(sweep.name, timeout=240).status == "Completed", ml_b.jobs.get_raw(sweep.name)
            trials = ml_b.jobs.list(parent_job_name=sweep.name)
            assert sorted(t.status for t in trials) == ["Completed"] * 3, [(t.name, t.status) for t in trials]
            ran = {p.name: p.read_text() for p in runs.iterdir()}
            assert set(ran) == {t.name for t in trials}, ran
            assert sorted(ran.values()) == ["1\n", "2\n", "3\n"], ran  # each trial ran exactly once
            text = _sweep_log_done(ws_a, sweep.name)
            assert text.count(" submitted: ") == 3 and "best trial" in text and "(3.0)" in text, text
            assert not (ws_b / "jobs" / sweep.name).exists()  # the standby wrote nothing of it
            assert _log_served_whole(b.url, ws_a, sweep.name) == ""

            # a pipeline of two steps, the second reading the first's output
            first = command(code=str(code), command="python score.py 5 && echo 5 > ${{outputs.out}}/n.txt",
                            outputs={"out": Output(type="uri_folder")}, environment_variables=env)
            second = command(code=str(code), command="python score.py $(cat ${{inputs.n}}/n.txt)",
                             inputs={"n": Input(type="uri_folder")}, environment_variables=env)

            @dsl.pipeline(experiment_name="team-parents")
            def two_steps() -> dict[str, Any]:
                made = first()
                used = second(n=made.outputs.out)
                made.environment_variables = used.environment_variables = env
                return {}

            pipe = ml_b.jobs.create_or_update(two_steps())
            assert ml_b.jobs.wait(pipe.name, timeout=240).status == "Completed", (
                ml_b.jobs.get_raw(pipe.name)["error"], [(s.name, s.status, ml_b.jobs.get_raw(s.name)["error"])
                                                        for s in ml_b.jobs.list(parent_job_name=pipe.name)])
            steps = ml_b.jobs.list(parent_job_name=pipe.name)
            assert sorted(s.status for s in steps) == ["Completed"] * 2, [(s.name, s.status) for s in steps]
            assert [(runs / s.name).read_text() for s in steps] == ["5\n", "5\n"]  # each step ran once
            assert not (ws_b / "jobs" / pipe.name).exists()

            # a schedule's manual firing sent to the standby: a sweep, driven by the leader
            fired_sweep = command(code=str(code), command="python score.py ${{inputs.x}}", inputs={"x": 1},
                                  environment_variables=env, experiment_name="team-parents")(
                x=Choice([7, 8])).sweep(sampling_algorithm="grid", primary_metric="score", goal="Maximize")
            fired_sweep.set_limits(max_total_trials=2, max_concurrent_trials=2)
            ml_b.schedules.begin_create_or_update(JobSchedule(
                name="yearly", trigger=CronTrigger(expression="0 0 1 1 *"), create_job=fired_sweep)).result()
            fired = ml_b.schedules.trigger("yearly").job_name
            assert ml_b.jobs.wait(fired, timeout=240).status == "Completed", ml_b.jobs.get_raw(fired)
            trials = ml_b.jobs.list(parent_job_name=fired)
            assert sorted((runs / t.name).read_text() for t in trials) == ["7\n", "8\n"]
            assert "(8.0)" in _sweep_log_done(ws_a, fired)
            assert _log_served_whole(b.url, ws_a, fired) == ""
    finally:
        a.stop()
        if b is not None:
            b.stop()
