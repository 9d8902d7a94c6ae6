"""A job gets a token scoped to its own run, never the server's (issue 10, item 2).

The job below probes the server with the token it was given: its own run and job work, another
run, creating a job and creating a user are refused; MLflow logging (metrics, artifacts, a
registered model) works; once the job has ended its token is refused.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

from openaml import command
from tests.security.conftest import api, launch_without_unshare

PROBE = """
import json, os, sys, urllib.request, urllib.error
import mlflow
url = os.environ["AZUREML_SERVICE_ENDPOINT"]
tok = os.environ["MLFLOW_TRACKING_TOKEN"]
run = os.environ["MLFLOW_RUN_ID"]
exp = os.environ["MLFLOW_EXPERIMENT_ID"]
other_run, other_exp = sys.argv[1], sys.argv[2]

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code

mlflow.log_metric("probe", 1.0)
with open("note.txt", "w") as fh:
    fh.write("hello")
mlflow.log_artifact("note.txt")
from sklearn.linear_model import LogisticRegression
model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
mlflow.sklearn.log_model(model, name="model", registered_model_name=sys.argv[3])
# the book's flow: load it back by its run (MLflow 3 resolves runs:/<run>/model by searching the run's
# logged models: POST logged-models/search, a read the job's token was refused)
loaded_back = [int(v) for v in mlflow.pyfunc.load_model(f"runs:/{run}/model").predict([[0.0], [1.0]])]
metric = {"key": "x", "value": 1.0, "timestamp": 0, "step": 0}
res = {
    "token": tok,
    "loaded_back": loaded_back,
    "token_kind": tok.split(".")[0],
    "same_as_openaml_token": os.environ.get("OPENAML_TOKEN") == tok,
    "own_run": call("GET", f"/mlflow/api/2.0/mlflow/runs/get?run_id={run}"),
    "own_metric": call("POST", "/mlflow/api/2.0/mlflow/runs/log-metric", {"run_id": run, **metric}),
    "own_job": call("GET", f"/api/v1/jobs/{run}"),
    "other_run": call("GET", f"/mlflow/api/2.0/mlflow/runs/get?run_id={other_run}"),
    "other_run_ajax": call("GET", f"/mlflow/ajax-api/2.0/mlflow/runs/get?run_uuid={other_run}"),
    "other_history": call("GET", f"/mlflow/api/2.0/mlflow/metrics/get-history?run_id={other_run}&metric_key=secret"),
    "other_metric": call("POST", "/mlflow/api/2.0/mlflow/runs/log-metric", {"run_id": other_run, **metric}),
    "other_artifact": call("GET", f"/mlflow/api/2.0/mlflow-artifacts/artifacts/{other_exp}/{other_run}/artifacts/secret.txt"),
    "search_runs": call("POST", "/mlflow/api/2.0/mlflow/runs/search", {"experiment_ids": [other_exp]}),
    "create_job": call("POST", "/api/v1/jobs", {"type": "command", "command": "echo pwned"}),
    "create_user": call("POST", "/api/v1/users", {"name": "job-made", "role": "Owner"}),
    "list_jobs": call("GET", "/api/v1/jobs"),
    "other_job": call("GET", f"/api/v1/jobs/{other_run}"),
}
os.makedirs("outputs", exist_ok=True)
with open("outputs/probe.json", "w") as fh:
    json.dump(res, fh)
"""


def test_job_token_is_scoped_to_its_own_run(sec_server: Any, owner: Any, tmp_path: Path) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"{sec_server.url}/mlflow", registry_uri=f"{sec_server.url}/mlflow")
    other_exp = client.create_experiment(f"other-{uuid.uuid4().hex[:6]}")
    other = client.create_run(other_exp)
    client.log_metric(other.info.run_id, "secret", 42.0)
    (tmp_path / "secret.txt").write_text("secret")
    client.log_artifact(other.info.run_id, str(tmp_path / "secret.txt"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "probe.py").write_text(textwrap.dedent(PROBE))
    jobs_before = len(owner.jobs.list())
    model_name = f"probe-model-{uuid.uuid4().hex[:6]}"
    job = owner.jobs.create_or_update(command(code=str(src), experiment_name="sec-probe",
                                              command=f"python probe.py {other.info.run_id} {other_exp} {model_name}"))
    final = owner.jobs.wait(job.name, timeout=240)
    raw = owner.jobs.get_raw(job.name)
    assert final.status == "Completed", (raw["error"], raw["log_tail"])
    job_dir = sec_server.path / "jobs" / job.name
    res = json.loads((job_dir / "wd" / "outputs" / "probe.json").read_text())
    assert res["token_kind"] == "oaj1" and res["same_as_openaml_token"]
    assert res["own_run"] == 200 and res["own_metric"] == 200 and res["own_job"] == 200
    assert res["loaded_back"] == [0, 1]
    for key in ("other_run", "other_run_ajax", "other_history", "other_metric", "other_artifact", "search_runs",
                "create_job", "create_user", "list_jobs", "other_job"):
        assert res[key] == 403, (key, res)
    # nothing changed by the refused calls; what the job was allowed to log is there
    assert len(owner.jobs.list()) == jobs_before + 1
    assert "job-made" not in [u.name for u in owner.users.list()]
    assert "x" not in client.get_run(other.info.run_id).data.metrics
    assert raw["metrics"]["probe"] == 1.0
    assert "note.txt" in [a.path for a in client.list_artifacts(job.name)]
    version = owner.models.get(model_name, version="1")
    assert version.job_name == job.name
    tags = client.get_model_version(model_name, "1").tags  # who registered it, from which job
    assert tags["openaml.created_by"] == "owner" and tags["openaml.job"] == job.name
    assert version.creation_context["created_by"] == "owner"
    # the runner got the scoped token on its stdin: no file of the job's folder holds it (but the
    # probe's own output); it dies with the job
    token = res["token"]
    assert token.startswith("oaj1.")
    assert not (job_dir / "runner.json").exists()
    holders = [p for p in job_dir.rglob("*") if p.is_file() and not p.is_symlink() and p.name != "probe.json"
               and token.encode() in p.read_bytes()]
    assert holders == []
    with api(sec_server.url, token) as c:
        assert c.get(f"/mlflow/api/2.0/mlflow/runs/get?run_id={job.name}").status_code == 401
        assert c.post(f"/api/v1/jobs/{job.name}/runner/heartbeat", json={}).status_code == 401  # its runner's too
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with api(sec_server.url, forged) as c:
        assert c.get(f"/api/v1/jobs/{job.name}").status_code == 401


FIRST_CALL_LOG_MODEL = """
import mlflow, sys
from sklearn.linear_model import LogisticRegression
model = LogisticRegression().fit([[0.0], [1.0], [0.0], [1.0]], [0, 1, 0, 1])
mlflow.sklearn.log_model(model, name="model", registered_model_name=sys.argv[1])
"""


def test_log_model_as_a_jobs_first_mlflow_call_belongs_to_its_run(sec_server: Any, owner: Any, tmp_path: Path) -> None:
    """review16 S1: MLflow 3's ``log_model`` with no active run creates a LoggedModel without a source
    run (it does not read MLFLOW_RUN_ID); in a job it is the job's run's, so its files and registration
    pass the job token's scope (it was refused 403, failing the job)."""
    import mlflow

    src = tmp_path / "s1"
    src.mkdir()
    (src / "train.py").write_text(textwrap.dedent(FIRST_CALL_LOG_MODEL))
    name = f"s1-model-{uuid.uuid4().hex[:6]}"
    job = owner.jobs.create_or_update(command(code=str(src), command=f"python train.py {name}"))
    final = owner.jobs.wait(job.name, timeout=240)
    raw = owner.jobs.get_raw(job.name)
    assert final.status == "Completed", (raw["error"], raw["log_tail"])
    assert owner.models.get(name, version="1").job_name == job.name
    client = mlflow.MlflowClient(tracking_uri=f"{sec_server.url}/mlflow", registry_uri=f"{sec_server.url}/mlflow")
    source = client.get_model_version(name, "1").source
    logged = client.get_logged_model(source.split("/")[1]) if source.startswith("models:/") else None
    assert logged is None or logged.source_run_id == job.name


FORGER = """
import json, os, urllib.request, urllib.error
url = os.environ["AZUREML_SERVICE_ENDPOINT"]
tok = os.environ["OPENAML_TOKEN"]
job = os.environ["AZUREML_RUN_ID"]
print("real line 1 of the job's own log", flush=True)

def call(method, path, body=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return [r.status, ""]
    except urllib.error.HTTPError as e:
        return [e.code, e.read().decode(errors="replace")]

base = f"/api/v1/jobs/{job}/runner"
res = {
    "spec": call("GET", base + "/spec"),
    "finalizing": call("POST", base + "/state", {"status": "Finalizing", "exit_code": 0}),
    "state": call("POST", base + "/state", {"status": "Completed", "terminal": True, "exit_code": 0}),
    "heartbeat": call("POST", base + "/heartbeat", {}),
    "log": call("POST", base + "/logs", {"stream": "user", "offset": 0, "data": "Rk9SR0VECg=="}),
    "output": call("PUT", base + "/outputs/result", raw=b"not a tar"),
}
visible = []  # the runner's process, were it in this command's PID namespace
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            if b"openaml.runner" in fh.read():
                visible.append(int(pid))
    except OSError:
        pass
with open("outputs/forged.json", "w") as fh:
    json.dump({"calls": res, "runner_visible": visible}, fh)
print("real line 2: exiting 3", flush=True)
raise SystemExit(3)
"""


def test_job_command_cannot_report_its_own_end_logs_or_outputs(sec_server: Any, owner: Any, tmp_path: Path) -> None:
    """Reviewer M3: the command's token is refused on its runner's routes (403 naming why); the job
    ends Failed with its real exit code, its log intact, and no data asset registered."""
    from openaml import Output
    from openaml.environments import read_only_mounts_available
    from openaml.errors import NotFoundError

    src = tmp_path / "forge"
    src.mkdir()
    (src / "forge.py").write_text(textwrap.dedent(FORGER))
    asset = f"forged-{uuid.uuid4().hex[:6]}"
    job = owner.jobs.create_or_update(command(
        code=str(src), command="python forge.py", experiment_name="sec-forge",
        outputs={"result": Output(type="uri_folder", name=asset, version="1")}))
    final = owner.jobs.wait(job.name, timeout=240)
    raw = owner.jobs.get_raw(job.name)
    job_dir = sec_server.path / "jobs" / job.name
    found = json.loads((job_dir / "wd" / "outputs" / "forged.json").read_text())
    for key, (status, body) in found["calls"].items():
        assert status == 403, (key, status, body)
        assert "only the job's runner reports" in body, (key, body)
    assert final.status == "Failed", raw
    if read_only_mounts_available():  # the command's PID namespace holds no runner to read the token from
        assert found["runner_visible"] == [], found
        assert not any("runner's token is NOT protected" in w for w in raw.get("warnings") or []), raw
    assert raw["exit_code"] == 3 and "exited with code 3" in (raw["error"] or ""), raw
    log = (job_dir / "user_logs" / "std_log.txt").read_text()
    assert log.startswith("real line 1 of the job's own log"), log[:200]
    assert "real line 2: exiting 3" in log and "FORGED" not in log
    try:
        owner.data.get(asset, version="1")
        raise AssertionError(f"data asset {asset} was registered for an output never written")
    except NotFoundError:
        pass


WAITER = """
import os, time
import mlflow
deadline = time.time() + 180
while not os.path.exists("go") and time.time() < deadline:
    time.sleep(0.2)
mlflow.log_metric("after_delete", 7.0)
print("submitter deleted, job went on")
"""


def test_deleting_a_user_leaves_its_running_job_running(sec_server: Any, owner: Any, tmp_path: Path) -> None:
    """Reviewer m9 (Azure ML's behaviour): a deleted user's running job keeps its tokens until it ends;
    it completes and logs to its run, instead of being killed with a misleading reason."""
    import time

    from openaml import MLClient
    from tests.security.conftest import user_token

    name = f"leaver-{uuid.uuid4().hex[:6]}"
    tok = user_token(owner, name, "AzureML Data Scientist")
    src = tmp_path / "wait"
    src.mkdir()
    (src / "wait.py").write_text(textwrap.dedent(WAITER))
    with MLClient(workspace=sec_server.url, token=tok) as user:
        job = user.jobs.create_or_update(command(code=str(src), command="python wait.py",
                                                 experiment_name="sec-leaver"))
    wd = sec_server.path / "jobs" / job.name / "wd"
    deadline = time.monotonic() + 180
    while owner.jobs.get(job.name).status != "Running" or not (wd / "wait.py").exists():
        assert time.monotonic() < deadline, owner.jobs.get_raw(job.name)
        time.sleep(0.5)
    owner.users.delete(name)
    with api(sec_server.url, tok) as c:  # the user's own token is gone at once
        assert c.get("/api/v1/jobs").status_code == 401
    (wd / "go").write_text("")
    final = owner.jobs.wait(job.name, timeout=240)
    raw = owner.jobs.get_raw(job.name)
    assert final.status == "Completed", (raw["error"], raw["log_tail"])
    assert raw["metrics"]["after_delete"] == 7.0
    assert raw["creation_context"]["created_by"] == name


def _runner_token_of(workspace: Path, job_name: str) -> str:
    """The runner token of job ``job_name``, minted as the scheduler does (the workspace's signing
    secret, read in this process), to speak for its runner in a test."""
    from openaml._settings import Settings
    from openaml.services import WorkspaceContext
    from openaml.services.users import UserService
    from openaml.store import MetadataStore, SecretBox
    from openaml.workspace import WorkspaceLayout

    layout = WorkspaceLayout(workspace)
    store = MetadataStore(Settings(workspace=workspace).metadata_url).start()
    store.secret_box = SecretBox(layout.root / "secret.key")
    try:
        ctx = WorkspaceContext(settings=Settings(workspace=workspace), layout=layout, store=store,
                               tracking=None, workspace_name=layout.info()["name"])  # type: ignore[arg-type]
        return UserService(ctx).runner_token(store.get_job(job_name))
    finally:
        store.close()


def test_runner_logs_are_append_only_and_tokens_scoped(sec_server: Any, owner: Any, tmp_path: Path) -> None:
    """A resent chunk never doubles; a different chunk at an offset already written is refused (400)
    and the log keeps its bytes. The runner token reads the spec; the command's token is not it."""
    import base64
    import time

    src = tmp_path / "hold"
    src.mkdir()
    (src / "hold.py").write_text(textwrap.dedent("""
        import os, time
        print("first line of the real log", flush=True)
        deadline = time.time() + 180
        while not os.path.exists("go") and time.time() < deadline:
            time.sleep(0.2)
    """))
    job = owner.jobs.create_or_update(command(code=str(src), command="python hold.py", experiment_name="sec-logs"))
    job_dir = sec_server.path / "jobs" / job.name
    log = job_dir / "user_logs" / "std_log.txt"
    deadline = time.monotonic() + 180
    while not (log.exists() and b"first line" in log.read_bytes()):
        assert time.monotonic() < deadline, owner.jobs.get_raw(job.name)
        time.sleep(0.3)
    held = log.read_bytes()
    token = _runner_token_of(sec_server.path, job.name)
    base = f"/api/v1/jobs/{job.name}/runner"
    try:
        with api(sec_server.url, token) as c:
            spec = c.get(f"{base}/spec")
            assert spec.status_code == 200, spec.text
            command_token = spec.json()["command_token"]
            assert command_token.startswith("oaj1.") and command_token != token
            again = c.post(f"{base}/logs", json={"stream": "user", "offset": 0,
                                                 "data": base64.b64encode(held).decode()})
            assert again.status_code == 200 and again.json()["offset"] == len(held)
            other = b"X" * len(held) + b"tail\n"
            refused = c.post(f"{base}/logs", json={"stream": "user", "offset": 0,
                                                   "data": base64.b64encode(other).decode()})
            assert refused.status_code == 400 and "append-only" in refused.text, refused.text
        assert log.read_bytes().startswith(held) and b"XXXX" not in log.read_bytes()
        with api(sec_server.url, command_token) as c:
            denied = c.post(f"{base}/heartbeat", json={})
            assert denied.status_code == 403 and "scope 'job'" in denied.text, denied.text
            assert c.get(f"/api/v1/jobs/{job.name}").status_code == 200  # its own record
    finally:
        (job_dir / "wd" / "go").write_text("")
    final = owner.jobs.wait(job.name, timeout=240)
    assert final.status == "Completed"
    assert log.read_bytes().count(b"first line of the real log") == 1
    for ended in (token, command_token):  # both tokens end with the job
        with api(sec_server.url, ended) as c:
            assert c.post(f"{base}/heartbeat", json={}).status_code == 401
            assert c.get(f"/api/v1/jobs/{job.name}").status_code == 401


def test_job_is_warned_where_the_runner_token_cannot_be_protected(tmp_path: Path) -> None:
    """Without ``unshare`` on the PATH of the server (and so of its runners), the command shares the
    runner's PID namespace: the job's warnings and log say its runner token is not protected."""

    from openaml import MLClient

    ws, srv = launch_without_unshare(tmp_path)
    try:
        with MLClient(workspace=srv.url) as client:
            job = client.jobs.create_or_update(command(command="echo ran", experiment_name="unprotected"))
            final = client.jobs.wait(job.name, timeout=300)
            raw = client.jobs.get_raw(job.name)
        assert final.status == "Completed", (raw["error"], raw["log_tail"])
        assert any("runner's token is NOT protected" in w for w in raw["warnings"]), raw["warnings"]
        log = (ws / "jobs" / job.name / "user_logs" / "std_log.txt").read_text()
        assert "[openaml] warning: the runner's token is NOT protected from this job's code" in log
    finally:
        srv.stop()
