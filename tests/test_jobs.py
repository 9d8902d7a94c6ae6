"""Command jobs end to end: real server, real CLI and SDK, real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from openaml import Input, MLClient, Output, command
from openaml.errors import NotFoundError, ValidationError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def _job_count(ml: MLClient) -> int:
    return len(ml.jobs.list(list_view_type="all"))


def test_command_job_lifecycle_env_vars_outputs_and_artifacts(ml_client, cli, tmp_path):
    src = tmp_path / "src"
    _write(src / "main.py", """
        import os, sys, json, pathlib
        keys = ["MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "AZUREML_RUN_ID", "MLFLOW_EXPERIMENT_ID",
                "AZUREML_ARM_WORKSPACE_NAME", "AZUREML_ARM_PROJECT_NAME", "AZ_BATCHAI_CLUSTER_NAME", "GREETING"]
        print(json.dumps({k: os.environ.get(k) for k in keys}))
        out = pathlib.Path(sys.argv[2]); (out / "result.txt").write_text("n=" + sys.argv[1])
        pathlib.Path("outputs").mkdir(exist_ok=True); pathlib.Path("outputs/report.txt").write_text("ok")
        pathlib.Path("logs/extra.log").write_text("log line")
        """)
    _write(src / "ignored.tmp", "x")
    _write(src / ".amlignore", "*.tmp\n")
    job_yml = _write(tmp_path / "job.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
        type: command
        display_name: lifecycle test
        experiment_name: jobs-tests
        code: src
        command: python main.py ${{inputs.n}} ${{outputs.result}} && ls
        inputs:
          n: 7
        outputs:
          result:
        environment: azureml:AzureML-sklearn-1.5@latest
        environment_variables:
          GREETING: hello
        compute: azureml:local
        tags: {team: test}
        """)
    r = cli("job", "create", "-f", str(job_yml), "--stream")
    assert r.returncode == 0, r.stderr + r.stdout
    env_line = next(line for line in r.stdout.splitlines() if line.startswith("{"))
    env = json.loads(env_line)
    name = env["MLFLOW_RUN_ID"]
    assert env["AZUREML_RUN_ID"] == name
    assert env["MLFLOW_TRACKING_URI"].endswith("/mlflow")
    assert env["AZUREML_ARM_PROJECT_NAME"] == "jobs-tests"
    assert env["AZ_BATCHAI_CLUSTER_NAME"] == "local"
    assert env["GREETING"] == "hello"
    assert "ignored.tmp" not in r.stdout  # .amlignore honoured in the snapshot
    job = ml_client.jobs.get_raw(name)
    assert job["status"] == "Completed"
    assert [h["status"] for h in job["status_history"]] == [
        "NotStarted", "Queued", "Preparing", "Running", "Finalizing", "Completed"] or \
        job["status_history"][-1]["status"] == "Completed"
    assert job["display_name"] == "lifecycle test"
    assert job["services"]["Studio"]["endpoint"].startswith("http://")
    assert job["output_uris"]["result"] == f"azureml://datastores/workspaceblobstore/paths/azureml/{name}/result/"
    # declared output landed in the default datastore
    ds_root = Path(ml_client.datastores.get("workspaceblobstore").path)
    if not ds_root.is_absolute():
        ds_root = Path(ml_client.workspaces.get().path) / ds_root
    assert (ds_root / "azureml" / name / "result" / "result.txt").read_text() == "n=7"
    # ./outputs and ./logs became run artifacts; download layout as az ml
    dl = tmp_path / "dl"
    r = cli("job", "download", "-n", name, "--download-path", str(dl), "--all")
    assert r.returncode == 0, r.stderr
    assert (dl / "artifacts" / "outputs" / "report.txt").read_text() == "ok"
    assert (dl / "artifacts" / "logs" / "extra.log").read_text() == "log line"
    assert (dl / "artifacts" / "user_logs" / "std_log.txt").exists()
    assert (dl / "named-outputs" / "result" / "result.txt").read_text() == "n=7"
    # the job is an MLflow run in its experiment, finished
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=ml_client.mlflow_tracking_uri)
    run = client.get_run(name)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "jobs-tests"
    # list and show
    r = cli("job", "list", "-o", "json")
    assert name in {j["name"] for j in r.json()}


def test_sdk_command_builder_and_mlflow_attach(ml_client, tmp_path):
    src = tmp_path / "code"
    _write(src / "train.py", """
        import mlflow, os
        with mlflow.start_run() as run:
            assert run.info.run_id == os.environ["AZUREML_RUN_ID"], run.info.run_id
            mlflow.log_param("alpha", 0.5)
            for step in range(3):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        print("done")
        """)
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    job = command(code=str(src), command="python train.py && cat ${{inputs.data}}",
                  inputs={"data": Input(type="uri_file", path=str(tmp_path / "data.csv"))},
                  environment="AzureML-sklearn-1.5@latest", display_name="sdk job", experiment_name="jobs-tests")
    created = ml_client.jobs.create_or_update(job)
    assert created.status in ("Queued", "Preparing", "Running", "NotStarted")
    final = ml_client.jobs.wait(created.name, timeout=120)
    raw = ml_client.jobs.get_raw(created.name)
    assert final.status == "Completed", (raw["error"], raw["log_tail"])
    assert raw["metrics"]["loss"] == pytest.approx(1 / 3)
    assert raw["params"]["alpha"] == "0.5"
    assert created.services["Studio"].endpoint.startswith("http")


def test_script_crash_fails_with_exit_code_and_log_tail(ml_client, cli, tmp_path):
    yml = _write(tmp_path / "crash.yml", """
        command: echo before-crash && python -c "raise SystemExit(3)"
        environment: azureml:AzureML-sklearn-1.5@latest
        """)
    r = cli("job", "create", "-f", str(yml), "--stream")
    assert r.returncode != 0
    assert "before-crash" in r.stdout
    name = next(line.split(": ")[1] for line in r.stdout.splitlines() if line.startswith("RunId"))
    job = cli("job", "show", "-n", name).json()
    assert job["status"] == "Failed"
    assert job["exit_code"] == 3
    assert "exited with code 3" in job["error"]
    assert "before-crash" in job["log_tail"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("command: echo hi\nenvironment: azureml:AzureML-sklearn-1.5@latest\nbogus_field: 1\n",
         ["line 3", "bogus_field", "unknown field"]),
        ("command: [echo, hi\n", ["invalid YAML", "line"]),
        ("command: echo ${{inputs.nope}}\ninputs:\n  x: 1\n", ["inputs.nope", "declared inputs: x"]),
        ("command: echo ${{inputs.data}}\ninputs:\n  data:\n    type: uri_file\n", ["data", "path"]),
        ("command: echo hi\ncode: ./does-not-exist\n", ["code", "does-not-exist"]),
        ("command: echo hi\ncompute: azureml:gpu-cluster\n", ["compute", "gpu-cluster", "local"]),
        ("command: echo hi\nlimits:\n  timeout: -5\n", ["limits.timeout"]),
        ("command: echo ${{inputs.d}}\ninputs:\n  d:\n    type: uri_folder\n    path: azureml:no-such-data:3\n",
         ["inputs.d", "no-such-data"]),
        ("command: echo hi\nenvironment_variables: [1, 2]\n", ["environment_variables"]),
        # review: an empty command was accepted and the job ended Completed; Azure ML requires one
        ('command: ""\nenvironment: azureml:AzureML-sklearn-1.5@latest\n', ["field 'command'", "is empty",
                                                                           "command: python train.py"]),
        ("command: '   '\nenvironment: azureml:AzureML-sklearn-1.5@latest\n", ["field 'command'", "is empty"]),
    ],
    ids=["unknown-field", "yaml-syntax", "undeclared-input", "input-without-path", "missing-code",
         "unknown-compute", "negative-timeout", "unknown-asset", "wrong-type", "empty-command", "blank-command"],
)
def test_bad_job_yaml_is_rejected_before_anything_runs(ml_client, cli, tmp_path, body, expected):
    before = _job_count(ml_client)
    yml = tmp_path / "bad.yml"
    yml.write_text(body)
    r = cli("job", "create", "-f", str(yml))
    assert r.returncode != 0
    for text in expected:
        assert text in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert _job_count(ml_client) == before


def test_sdk_validation_errors_are_typed(ml_client):
    with pytest.raises(ValidationError, match="nope"):
        ml_client.jobs.create_or_update(command(command="echo ${{inputs.nope}}"))
    with pytest.raises(NotFoundError):
        ml_client.jobs.get("no_such_job_here")


def _host_pid(pid: int) -> int:
    """The pid, seen from here, of a job's process that saw itself as ``pid``: where secrets are hidden
    the job runs in a PID namespace of its own (``NSpid`` in /proc/<pid>/status lists both)."""
    for proc in psutil.process_iter(["cmdline"]):
        try:
            with open(f"/proc/{proc.pid}/status", encoding="utf-8") as fh:
                ns = next((line.split()[1:] for line in fh if line.startswith("NSpid:")), [])
        except OSError:
            continue
        if len(ns) > 1 and int(ns[-1]) == pid and proc.info["cmdline"][:1] == ["sleep"]:
            return proc.pid
    return pid


def test_cancel_kills_the_whole_process_group(ml_client, tmp_path):
    marker = tmp_path / "child.pid"
    job = command(command=f"(sleep 300 & echo $! > {marker}; wait) ; sleep 300",
                  environment="AzureML-sklearn-1.5@latest")
    created = ml_client.jobs.create_or_update(job)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    child = _host_pid(int(marker.read_text().strip()))
    assert psutil.pid_exists(child)
    ml_client.jobs.cancel(created.name)
    final = ml_client.jobs.wait(created.name, timeout=60)
    assert final.status == "Canceled"
    deadline = time.monotonic() + 10
    while psutil.pid_exists(child) and time.monotonic() < deadline:
        try:
            if psutil.Process(child).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


def test_timeout_cancels_the_job_with_the_reason(ml_client):
    job = command(command="echo start && sleep 60", environment="AzureML-sklearn-1.5@latest", timeout=2)
    created = ml_client.jobs.create_or_update(job)
    final = ml_client.jobs.wait(created.name, timeout=60)
    raw = ml_client.jobs.get_raw(created.name)
    assert final.status == "Canceled"
    assert "limits.timeout" in raw["error"]


def test_process_killed_from_outside_fails_the_job(ml_client, tmp_path):
    marker = tmp_path / "pid"
    job = command(command=f"echo $$ > {marker}; exec sleep 300", environment="AzureML-sklearn-1.5@latest")
    created = ml_client.jobs.create_or_update(job)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)
    os.kill(_host_pid(int(marker.read_text().strip())), signal.SIGKILL)
    final = ml_client.jobs.wait(created.name, timeout=60)
    raw = ml_client.jobs.get_raw(created.name)
    assert final.status == "Failed"
    assert "signal 9" in raw["error"]


def test_jobs_beyond_the_slots_queue(ml_client, cli, tmp_path):
    _write(tmp_path / "pool.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json
        name: one-slot
        type: amlcompute
        size: STANDARD_DS3_v2
        min_instances: 0
        max_instances: 1
        idle_time_before_scale_down: 120
        tier: dedicated
        """)
    r = cli("compute", "create", "--file", str(tmp_path / "pool.yml"))
    assert r.returncode == 0, r.stderr
    assert r.json()["max_instances"] == 1
    jobs = [ml_client.jobs.create_or_update(command(command="sleep 1.5", compute="one-slot",
                                                    environment="AzureML-sklearn-1.5@latest")) for _ in range(3)]
    seen_queued = False
    names = {j.name for j in jobs}
    for _ in range(100):
        # one list call is one consistent snapshot (separate gets can straddle a job's end)
        statuses = [j.status for j in ml_client.jobs.list() if j.name in names]
        running = sum(s in ("Preparing", "Running", "Finalizing") for s in statuses)
        assert running <= 1, statuses
        seen_queued = seen_queued or ("Queued" in statuses and running == 1)
        if all(s == "Completed" for s in statuses):
            break
        time.sleep(0.1)
    for j in jobs:
        assert ml_client.jobs.wait(j.name, timeout=60).status == "Completed"
    assert seen_queued


def test_compute_create_with_an_unknown_type_lists_the_types(cli, tmp_path):
    """Regression (new-user check): an unknown ``type`` said "Input should be 'amlcompute'" (the class
    its type fell back to), not which types there are."""
    allowed = "allowed: amlcompute, computeinstance, local, kubernetes, virtualmachine, ray"
    f = _write(tmp_path / "typo.yml", "name: typo-pool\ntype: amlcomptue\nmax_instances: 1\n")
    r = cli("compute", "create", "--file", str(f))
    assert r.returncode == 1
    assert " ".join(r.stderr.split()) == f"ERROR: {f}, line 2: field 'type': unknown compute type 'amlcomptue'; {allowed}"
    r = cli("compute", "create", "--file", str(f), "--set", "type=pool")  # named on the --set that gave it
    assert " ".join(r.stderr.split()) == f"ERROR: --set type=pool: field 'type': unknown compute type 'pool'; {allowed}"
    assert cli("compute", "show", "--name", "typo-pool").returncode != 0  # nothing stored


def test_compute_create_set_error_names_the_set_option_not_a_line(cli, tmp_path):
    """Regression (new-user check): a bad value given by ``--set`` was reported on the line of the file
    that held the field before the override."""
    f = _write(tmp_path / "pool.yml", "name: set-pool\ntype: amlcompute\nmax_instances: 2\n")
    r = cli("compute", "create", "--file", str(f), "--set", "max_instances=abc")
    assert r.returncode == 1
    assert " ".join(r.stderr.split()) == ("ERROR: --set max_instances=abc: field 'max_instances': Input should be a "
                                          "valid integer, unable to parse string as an integer (got 'abc')")
    r = cli("compute", "create", "--file", str(f), "--set", "min_instance=1")  # a new, unknown field
    assert " ".join(r.stderr.split()).startswith(
        "ERROR: --set min_instance=1: field 'min_instance': unknown field; did you mean 'min_instances'?"), r.stderr
    r = cli("compute", "create", "--file", str(f), "--max-instances", "0")  # a flag is named as the flag
    assert " ".join(r.stderr.split()) == ("ERROR: --max-instances 0: field 'max_instances': Input should be greater "
                                          "than or equal to 1 (got 0)")


def test_fifty_jobs_from_two_clients_none_lost_or_duplicated(server, tmp_path):
    names: list[list[str]] = [[], []]

    def submit(i: int) -> None:
        with MLClient(workspace=server.url) as ml:
            for k in range(25):
                job = command(command=f"echo client{i}-job{k}", environment="AzureML-sklearn-1.5@latest",
                              experiment_name="fifty")
                names[i].append(ml.jobs.create_or_update(job).name)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_names = names[0] + names[1]
    assert len(all_names) == 50 and len(set(all_names)) == 50
    with MLClient(workspace=server.url) as ml:
        for n in all_names:
            assert ml.jobs.wait(n, timeout=300).status == "Completed"
        listed = {j.name for j in ml.jobs.list() if j.experiment_name == "fifty"}
        assert set(all_names) <= listed


def test_output_registered_as_data_asset(ml_client, tmp_path):
    job = command(command="echo hello > ${{outputs.greeting}}/hello.txt",
                  outputs={"greeting": Output(type="uri_folder", name="greeting-data")},
                  environment="AzureML-sklearn-1.5@latest")
    created = ml_client.jobs.create_or_update(job)
    assert ml_client.jobs.wait(created.name, timeout=60).status == "Completed"
    asset = ml_client.data.get("greeting-data", label="latest")
    assert asset.path.rstrip("/").endswith(f"azureml/{created.name}/greeting")


def test_server_restart_reattaches_running_job(tmp_path):
    from tests.conftest import start_server

    ws = tmp_path / "ws"
    handle = start_server(ws, name="restart")
    marker = tmp_path / "go"
    try:
        with MLClient(workspace=handle.url) as ml:
            job = ml.jobs.create_or_update(command(
                command=f"echo started; while [ ! -f {marker} ]; do sleep 0.1; done; echo finished; "
                        "python -c \"import mlflow; mlflow.log_metric('late', 7)\"",
                environment="AzureML-sklearn-1.5@latest"))
            deadline = time.monotonic() + 60
            while ml.jobs.get_raw(job.name)["status"] != "Running" and time.monotonic() < deadline:
                time.sleep(0.1)
        handle.stop(signal.SIGKILL)
        marker.write_text("go")
        time.sleep(0.5)
        handle = start_server(ws, create=False)
        with MLClient(workspace=handle.url) as ml:
            final = ml.jobs.wait(job.name, timeout=60)
            raw = ml.jobs.get_raw(job.name)
            assert final.status == "Completed", (raw["error"], raw["log_tail"])
            log = "".join(ml.jobs.get_raw(job.name)["log_tail"])
            assert "started" in log and "finished" in log
            # regression: the restarted server comes back on its previous port, so the job's
            # MLFLOW_TRACKING_URI still works after the restart
            assert raw["metrics"]["late"] == 7
    finally:
        handle.stop()


def _runner_process(job_name: str) -> psutil.Process:
    """The runner of a job (``python -m openaml.runner ... --job NAME``)."""
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "openaml.runner" in cmd and job_name in cmd:
            return p
    raise AssertionError(f"no runner process for {job_name}")


def _sid(pid: int) -> int:
    try:
        return os.getsid(pid)
    except OSError:
        return -1


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except OSError:
        return -1


def test_runner_killed_while_server_down_is_failed_not_left_running(tmp_path):
    from tests.conftest import start_server

    ws = tmp_path / "ws"
    handle = start_server(ws, name="reconcile")
    try:
        with MLClient(workspace=handle.url) as ml:
            job = ml.jobs.create_or_update(command(command="echo up; sleep 300",
                                                   environment="AzureML-sklearn-1.5@latest"))
            log = ws / "jobs" / job.name / "user_logs" / "std_log.txt"
            deadline = time.monotonic() + 60
            # the runner sends its log to the server every quarter second: wait until "up" arrived
            while (ml.jobs.get_raw(job.name)["status"] != "Running" or "up" not in (log.read_text() if log.exists()
                                                                                     else "")) \
                    and time.monotonic() < deadline:
                time.sleep(0.1)
        runner = _runner_process(job.name)
        user_groups = {_pgid(p.pid) for p in psutil.process_iter() if p.pid != runner.pid and _sid(p.pid) == runner.pid}
        user_groups.discard(-1)
        handle.stop(signal.SIGKILL)
        os.kill(runner.pid, signal.SIGKILL)
        for pgid in user_groups:
            os.killpg(pgid, signal.SIGKILL)
        handle = start_server(ws, create=False)
        with MLClient(workspace=handle.url) as ml:
            final = ml.jobs.wait(job.name, timeout=60)
            raw = ml.jobs.get_raw(job.name)
            assert final.status == "Failed"
            assert "runner process ended unexpectedly" in raw["error"]
            assert "up" in (ws / "jobs" / job.name / "user_logs" / "std_log.txt").read_text()
    finally:
        handle.stop()


def test_runner_killed_under_a_live_server_fails_the_job_saying_how_it_ended(ml_client):
    """Regression (a CI run's job failed with "ended unexpectedly" and nothing more): the runner the
    local backend started notes how it ended (here SIGKILL), and the job's error quotes it."""
    job = ml_client.jobs.create_or_update(command(command="echo up; sleep 300",
                                                  environment="AzureML-sklearn-1.5@latest"))
    deadline = time.monotonic() + 60
    while ml_client.jobs.get_raw(job.name)["status"] != "Running" and time.monotonic() < deadline:
        time.sleep(0.1)
    runner = _runner_process(job.name)
    os.kill(runner.pid, signal.SIGKILL)
    final = ml_client.jobs.wait(job.name, timeout=60)
    raw = ml_client.jobs.get_raw(job.name)
    assert final.status == "Failed"
    assert "runner process ended unexpectedly while the job was Running" in raw["error"]
    assert f"the runner (pid {runner.pid}) was killed by signal SIGKILL" in raw["error"]
    deadline = time.monotonic() + 30  # its session (the user's command) is killed with it
    while any(_sid(q.pid) == runner.pid for q in psutil.process_iter()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [q.pid for q in psutil.process_iter() if _sid(q.pid) == runner.pid]


def test_ro_mount_inputs_are_read_only_and_registered_data_unchanged(ml_client, tmp_path):
    """Regression: a job could change registered (immutable) data through an ro_mount input."""
    folder = tmp_path / "ro-data"
    folder.mkdir()
    (folder / "a.txt").write_text("original")
    from openaml.entities import Data

    asset = ml_client.data.create_or_update(Data(name="ro-check", type="uri_folder", path=str(folder)))
    job = command(command="cat ${{inputs.d}}/a.txt; echo tamper >> ${{inputs.d}}/a.txt && echo WROTE || echo REFUSED",
                  inputs={"d": Input(type="uri_folder", path=f"azureml:ro-check:{asset.version}", mode="ro_mount")},
                  environment="AzureML-sklearn-1.5@latest")
    name = ml_client.jobs.create_or_update(job).name
    assert ml_client.jobs.wait(name, timeout=60).status == "Completed"
    log = "\n".join(ml_client.jobs.get_raw(name)["log_tail"])
    assert "original" in log and "REFUSED" in log and "WROTE" not in log
    # a download-mode input is a private, writable copy
    job = command(command="echo more >> ${{inputs.d}}/a.txt && cat ${{inputs.d}}/a.txt",
                  inputs={"d": Input(type="uri_folder", path=f"azureml:ro-check:{asset.version}", mode="download")},
                  environment="AzureML-sklearn-1.5@latest")
    name = ml_client.jobs.create_or_update(job).name
    assert ml_client.jobs.wait(name, timeout=60).status == "Completed"
    job = command(command="cat ${{inputs.d}}/a.txt",
                  inputs={"d": Input(type="uri_folder", path=f"azureml:ro-check:{asset.version}")},
                  environment="AzureML-sklearn-1.5@latest")
    name = ml_client.jobs.create_or_update(job).name
    assert ml_client.jobs.wait(name, timeout=60).status == "Completed"
    assert ml_client.jobs.get_raw(name)["log_tail"] == ["original"]


def test_submission_errors_name_the_yaml_line(cli, tmp_path):
    """Regression: errors found by the server carry the line of the user's YAML."""
    yml = _write(tmp_path / "b.yml", """
        command: echo hi
        environment: azureml:AzureML-sklearn-1.5@latest
        compute: azureml:no-such-compute
        """)
    r = cli("job", "create", "-f", str(yml))
    assert r.returncode != 0
    assert "line 3: field 'compute'" in r.stderr, r.stderr
    yml = _write(tmp_path / "c.yml", "command: echo ${{inputs.data}\ninputs:\n  data: 1\n")
    r = cli("job", "create", "-f", str(yml))
    assert r.returncode != 0 and "is not closed" in r.stderr


def test_output_version_that_exists_is_refused_at_submission(ml_client, tmp_path):
    """Regression: an output registered as an existing name:version failed only after the job ran."""
    from openaml.entities import Data

    (tmp_path / "x.txt").write_text("x")
    ml_client.data.create_or_update(Data(name="taken-out", version="1", type="uri_file", path=str(tmp_path / "x.txt")))
    job = command(command="echo hi > ${{outputs.o}}/f.txt",
                  outputs={"o": Output(type="uri_folder", name="taken-out", version="1")},
                  environment="AzureML-sklearn-1.5@latest")
    with pytest.raises(ValidationError, match="taken-out:1 already exists"):
        ml_client.jobs.create_or_update(job)


def test_download_of_unknown_or_unwritten_output_gives_the_reason(ml_client, cli, tmp_path):
    """Regression: the error was raised mid-stream and the client saw a dropped connection."""
    job = command(command="exit 3", outputs={"o": Output(type="uri_folder")}, environment="AzureML-sklearn-1.5@latest")
    name = ml_client.jobs.create_or_update(job).name
    assert ml_client.jobs.wait(name, timeout=60).status == "Failed"
    r = cli("job", "download", "-n", name, "--output-name", "nope", "--download-path", str(tmp_path / "d"))
    assert r.returncode != 0 and "has no output 'nope'" in r.stderr, r.stderr
    r = cli("job", "download", "-n", name, "--output-name", "o", "--download-path", str(tmp_path / "d"))
    assert r.returncode != 0 and "has no files" in r.stderr, r.stderr


def test_output_that_cannot_be_registered_is_not_put(ml_client, tmp_path):
    """Regression: an mlflow_model output without MLmodel failed at registration after the outputs
    (this one and its siblings) were already put into the datastore."""
    from openaml.errors import OpenAMLError

    job = command(command="echo plain > ${{outputs.m}}/model.txt && echo side > ${{outputs.other}}/f.txt",
                  outputs={"m": Output(type="mlflow_model", name="rvm-nomlmodel", version="1"),
                           "other": Output(type="uri_folder")},
                  environment="AzureML-sklearn-1.5@latest")
    name = ml_client.jobs.create_or_update(job).name
    final = ml_client.jobs.wait(name, timeout=120)
    assert final.status == "Failed"
    assert "output 'm'" in final.error and "no MLmodel file" in final.error, final.error
    for out in ("m", "other"):
        with pytest.raises(OpenAMLError, match="has no files"):
            ml_client.jobs.download(name, output_name=out, download_path=tmp_path / out)
    with pytest.raises(OpenAMLError):
        ml_client.models.get("rvm-nomlmodel", version="1")
    # an mltable output registered without its MLTable file: the same, nothing put
    job = command(command="echo a > ${{outputs.t}}/data.csv",
                  outputs={"t": Output(type="mltable", name="rvt-nomltable", version="1")},
                  environment="AzureML-sklearn-1.5@latest")
    name = ml_client.jobs.create_or_update(job).name
    final = ml_client.jobs.wait(name, timeout=120)
    assert final.status == "Failed" and "output 't' (type mltable" in final.error, final.error
    with pytest.raises(OpenAMLError, match="has no files"):
        ml_client.jobs.download(name, output_name="t", download_path=tmp_path / "t")


def test_output_path_that_is_an_existing_file_is_refused_at_submission(ml_client, server, tmp_path):
    """Regression: a folder output whose datastore path is an existing file failed only after the job
    ran (``finalizing failed: [Errno 17] File exists``)."""
    import uuid

    import httpx

    root = Path(httpx.get(f"{server.url}/api/v1/datastores/workspaceblobstore", timeout=30).json()["local_path"])
    rel = f"taken-{uuid.uuid4().hex[:8]}.txt"
    (root / rel).write_text("already here")
    before = len(ml_client.jobs.list(list_view_type="all"))
    job = command(command="echo hi > ${{outputs.o}}/f.txt",
                  outputs={"o": Output(type="uri_folder", path=f"azureml://datastores/workspaceblobstore/paths/{rel}")},
                  environment="AzureML-sklearn-1.5@latest")
    with pytest.raises(ValidationError, match=r"outputs\.o.*is an existing file"):
        ml_client.jobs.create_or_update(job)
    assert len(ml_client.jobs.list(list_view_type="all")) == before
    assert (root / rel).read_text() == "already here"


def test_output_into_the_upload_area_is_refused_at_submission(ml_client, tmp_path):
    """Review M4: a job output written to an uploaded data asset's LocalUpload/<hash>/ folder changed
    that version's files, and the next upload of the same content was served the changed files."""
    from openaml.entities import Data

    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "x.txt").write_text("x")
    data = ml_client.data.create_or_update(Data(name="upload-area-guard", type="uri_folder", path=str(folder)))
    assert "/paths/LocalUpload/" in data.path
    before = len(ml_client.jobs.list(list_view_type="all"))
    job = command(command="echo OVERWRITTEN > ${{outputs.o}}/x.txt",
                  outputs={"o": Output(type="uri_folder", path=data.path)}, environment="AzureML-sklearn-1.5@latest")
    with pytest.raises(ValidationError, match=r"outputs\.o.*LocalUpload/.*another folder"):
        ml_client.jobs.create_or_update(job)
    assert len(ml_client.jobs.list(list_view_type="all")) == before
    again = ml_client.data.create_or_update(Data(name="upload-area-guard", type="uri_folder", path=str(folder)))
    assert again.path == data.path


def test_input_and_output_errors_name_the_port(tmp_path):
    """Regression: errors said field 'inputs.path' / 'outputs.mode', losing the input's name."""
    from openaml import load_job

    yml = tmp_path / "j.yml"
    yml.write_text("command: echo hi\ninputs:\n  data:\n    type: uri_folder\n    path: 5\n"
                   "  other:\n    type: uri_folder\n    path: ./x\n    mode: rw_mount\n"
                   "outputs:\n  o:\n    mode: bogus\n")
    with pytest.raises(ValidationError) as info:
        load_job(yml)
    msg = info.value.message
    assert "line 5: field 'inputs.data.path'" in msg, msg
    assert "line 9: field 'inputs.other.mode': Value error, mode 'rw_mount' is not allowed for a uri_folder input" in msg, msg
    assert "line 12: field 'outputs.o.mode'" in msg, msg
    with pytest.raises(ValidationError, match=r"field 'inputs\.d\.mode'.*mode 'eval_mount' is not allowed"):
        command(command="echo", inputs={"d": {"type": "uri_folder", "path": "x", "mode": "eval_mount"}})


def test_job_create_with_a_directory_says_so(ml_client, cli, tmp_path):
    """Review: `job create --file <a directory>` said "file not found"."""
    before = _job_count(ml_client)
    r = cli("job", "create", "--file", str(tmp_path))
    assert r.returncode != 0
    assert f"{tmp_path} is a directory" in r.stderr and "YAML file" in r.stderr, r.stderr
    assert "file not found" not in r.stderr
    assert _job_count(ml_client) == before


def test_job_list_table_never_cuts_the_job_name(ml_client, cli):
    """Review: `openaml job list` (stdout not a terminal) showed names as ``lucid_…``."""
    job = ml_client.jobs.create_or_update(command(command="echo hi", environment="AzureML-sklearn-1.5@latest",
                                                  display_name="a display name long enough to need wrapping",
                                                  experiment_name="narrow-table-experiment"))
    for width in ("80", "60"):
        r = cli("job", "list", env={"COLUMNS": width})
        assert r.returncode == 0, r.stderr
        assert job.name in r.stdout, r.stdout
    ml_client.jobs.wait(job.name, timeout=120)


def test_component_with_an_empty_command_is_refused(cli, tmp_path):
    """A command component needs a command too (Azure ML refuses one without)."""
    yml = tmp_path / "comp.yml"
    yml.write_text("$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json\n"
                   "name: empty_cmd_comp\ntype: command\ncommand: '  '\n"
                   "environment: azureml:AzureML-sklearn-1.5@latest\n")
    r = cli("component", "create", "--file", str(yml))
    assert r.returncode != 0
    assert "field 'command'" in r.stderr and "is empty" in r.stderr, r.stderr
    assert cli("component", "show", "-n", "empty_cmd_comp").returncode != 0


def test_environment_variable_name_with_a_space_is_refused(ml_client, cli, tmp_path):
    """Review minor: `environment_variables: {"MY VAR": x}` was accepted (no shell can read it)."""
    yml = tmp_path / "env.yml"
    yml.write_text("type: command\ncommand: echo hi\nenvironment: azureml:AzureML-sklearn-1.5@latest\n"
                   "environment_variables:\n  MY VAR: one\n")
    before = _job_count(ml_client)
    r = cli("job", "create", "--file", str(yml))
    assert r.returncode != 0
    assert "environment_variables" in r.stderr and "'MY VAR' is invalid" in r.stderr, r.stderr
    assert _job_count(ml_client) == before
    # and from the SDK
    with pytest.raises(Exception, match="'MY VAR' is invalid"):
        ml_client.jobs.create_or_update(command(command="echo hi", environment="AzureML-sklearn-1.5@latest",
                                                environment_variables={"MY VAR": "one"}))


def test_server_stays_quiet_while_a_job_runs_and_a_client_waits(tmp_path):
    """Regression (scale-out bench, 2-process DDP at 0.85x torchrun on 2 cores): the scheduler passed
    every 50 ms for as long as a job ran and each ``jobs.wait`` poll read the run from MLflow, ~15 % of
    a core taken from the job. Now passes back off to 1 s and the waiting client asks for the status
    alone: the server's CPU over a steady stretch of a running job stays a few percent of one core."""
    from tests.conftest import start_server

    srv = start_server(tmp_path / "ws", name="quiet")
    try:
        ml = MLClient(workspace=srv.url)
        job = ml.jobs.create_or_update(command(command="sleep 60", compute="local", experiment_name="quiet"))
        deadline = time.monotonic() + 120
        while ml.jobs.get_raw(job.name)["status"] != "Running":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.2)
        status = ml._transport.get(f"/jobs/{job.name}", params={"metrics": "false"})
        assert status["status"] == "Running" and status.get("metrics") is None  # no MLflow read
        assert ml.jobs.get_raw(job.name)["metrics"] == {}  # the full record still has them
        time.sleep(3)  # past the start-up's short passes
        server = psutil.Process(srv.proc.pid)
        before, start = sum(server.cpu_times()[:2]), time.monotonic()
        with pytest.raises(TimeoutError):
            ml.jobs.wait(job.name, timeout=8)
        share = (sum(server.cpu_times()[:2]) - before) / (time.monotonic() - start)
        assert share < 0.05, f"the server took {share:.0%} of a core while a job slept and a client waited"
        ml.jobs.cancel(job.name)
        ml.jobs.wait(job.name, timeout=60)
    finally:
        srv.stop()
