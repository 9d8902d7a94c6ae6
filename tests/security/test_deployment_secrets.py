"""A deployment's scoring code cannot read the workspace's secrets nor act as the owner (issue 10).

Deployment workers run user code as the server's OS user, as jobs do, so they get the same hiding
(openaml.environments._hide.hide_lines): a mount and PID namespace where, of the workspace folder, only the
deployment's own folder, its model and code folders and envs/ exist. The score.py below tries to
read server.token, secret.key, openaml.db, another job's folder, another workspace and
$OPENAML_HOME/credentials.json, and calls the server without a token (401: a deployment is not the
owner); it still scores with its model. Without unshare, the deployment log says nothing is hidden.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from openaml import MLClient, command
from openaml.entities import CodeConfiguration, Environment, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model
from tests.security.conftest import launch, launch_without_unshare, needs_namespaces, plant_home_secrets

SCORE = '''
import json, os, urllib.error, urllib.request

factor = None


def init():
    global factor
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "factor.txt")) as fh:
        factor = float(fh.read())


def _read(path):
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("latin-1")
    except OSError as exc:
        return "error: " + type(exc).__name__


def run(raw):
    data = json.loads(raw)
    seen = {p: _read(p) for p in data["paths"]}
    for folder in data["folders"]:
        try:
            seen[folder] = sorted(os.listdir(folder))
        except OSError as exc:
            seen[folder] = "error: " + type(exc).__name__
    req = urllib.request.Request(data["server"] + "/api/v1/jobs", method="POST",
                                 data=json.dumps({"type": "command", "command": "echo from-score"}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            seen["tokenless_post"] = r.status
    except urllib.error.HTTPError as e:
        seen["tokenless_post"] = e.code
    except OSError as exc:
        seen["tokenless_post"] = "error: " + type(exc).__name__
    return {"prediction": [x * factor for x in data["x"]], "seen": seen}
'''


def _deploy(client: MLClient, tmp_path: Path, endpoint: str) -> Any:
    model = tmp_path / "model"
    model.mkdir()
    (model / "factor.txt").write_text("3")
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(SCORE)
    client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=endpoint, auth_mode="key"))
    dep = ManagedOnlineDeployment(
        name="blue", endpoint_name=endpoint, model=Model(path=str(model)),
        code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
        environment=Environment(image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest"),
        instance_type="Standard_DS3_v2", instance_count=1)
    state = client.online_deployments.begin_create_or_update(dep).result(timeout=240).provisioning_state
    logs = client.online_deployments.get_logs("blue", endpoint)
    assert state == "Succeeded", logs
    client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=endpoint, traffic={"blue": 100}))
    return client.online_endpoints.get(endpoint)


def _score(client: MLClient, ep: Any, body: dict[str, Any]) -> dict[str, Any]:
    key = client.online_endpoints.get_keys(ep.name).primary_key
    res = httpx.post(ep.scoring_uri, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                     trust_env=False)
    assert res.status_code == 200, res.text
    return res.json()


@needs_namespaces
def test_score_py_cannot_read_secrets_nor_act_as_owner(tmp_path: Path) -> None:
    home, creds, other = plant_home_secrets(tmp_path)
    ws = tmp_path / "ws"
    srv = launch(ws, env={"OPENAML_HOME": str(home)})
    try:
        # the tokenless server has no server.token: this one stands for it (the hiding is an allow list)
        (ws / "server.token").write_text("planted-server-token-0123456789")
        client = MLClient(workspace=srv.url)
        job = client.jobs.create_or_update(command(command="echo other-job", experiment_name="dep-secrets"))
        assert client.jobs.wait(job.name, timeout=240).status == "Completed"
        other_job = ws / "jobs" / job.name
        assert (other_job / "user_logs" / "std_log.txt").is_file()
        ep = _deploy(client, tmp_path, f"sec-{uuid.uuid4().hex[:6]}")
        secrets = [ws / "server.token", ws / "secret.key", ws / "openaml.db", ws / "mlflow.db",
                   other_job / "user_logs" / "std_log.txt", creds, other / "secret.key",
                   Path(f"/proc/{srv.proc.pid}/environ"),  # its own PID namespace: the server's /proc is out of reach
                   Path(f"/proc/{srv.proc.pid}/root") / str(ws / "secret.key").lstrip("/")]
        jobs_before = len(client.jobs.list())
        out = _score(client, ep, {"x": [1, 2], "paths": [str(p) for p in secrets],
                                  "folders": [str(ws), str(ws / "jobs")], "server": srv.url})
        assert out["prediction"] == [3.0, 6.0]  # still scores with its own model
        seen = out["seen"]
        for p in secrets:
            assert not seen[str(p)] or seen[str(p)].startswith("error"), (p, seen[str(p)])
        assert "secret.key" not in seen[str(ws)] and "openaml.db" not in seen[str(ws)], seen[str(ws)]
        assert seen[str(ws / "jobs")] == "error: FileNotFoundError" or job.name not in seen[str(ws / "jobs")]
        assert seen["tokenless_post"] == 401, seen
        assert len(client.jobs.list()) == jobs_before
        log = client.online_deployments.get_logs("blue", ep.name)
        assert "NOT hidden" not in log
        client.close()
    finally:
        srv.stop()


def test_deployment_is_warned_where_secrets_cannot_be_hidden(tmp_path: Path) -> None:
    """Without ``unshare`` on the server's PATH, the deployment log says its secrets are not hidden."""
    ws, srv = launch_without_unshare(tmp_path)
    try:
        client = MLClient(workspace=srv.url)
        ep = _deploy(client, tmp_path, "warned")
        out = _score(client, ep, {"x": [2], "paths": [], "folders": [], "server": srv.url})
        assert out["prediction"] == [6.0]
        log = client.online_deployments.get_logs("blue", ep.name)
        assert "the workspace's secrets are NOT hidden from this deployment's workers" in log, log
        client.close()
    finally:
        srv.stop()
