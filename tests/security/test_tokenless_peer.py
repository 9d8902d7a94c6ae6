"""A tokenless request on a loopback server is the owner's only from the owner's own processes (issue 10).

On the default server (loopback, no token) a request without a token is the workspace owner's when
it comes from a process of the server's OS user that is not a job's or a deployment's
(openaml.server._peer). A job's code that drops its scoped token, or another OS user, gets 401 and
changes nothing; the user's own tokenless SDK, mlflow client and curl keep working.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from openaml import command
from tests.security.conftest import api

PROBE = """
import json, os, urllib.request, urllib.error
url = os.environ["AZUREML_SERVICE_ENDPOINT"]
tok = os.environ["OPENAML_TOKEN"]

def call(method, path, token=None, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, ""
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")

spec = {"type": "command", "command": "echo made-by-a-job", "display_name": "made-by-a-job"}
res = {}
res["create_tokenless"], res["create_tokenless_msg"] = call("POST", "/api/v1/jobs", None, spec)
res["list_tokenless"], _ = call("GET", "/api/v1/jobs")
res["mlflow_tokenless"], _ = call("POST", "/mlflow/api/2.0/mlflow/experiments/create", None, {"name": "job-made"})
res["create_with_token"], _ = call("POST", "/api/v1/jobs", tok, spec)
res["own_job_with_token"], _ = call("GET", "/api/v1/jobs/" + os.environ["AZUREML_RUN_ID"], tok)
os.makedirs("outputs", exist_ok=True)
with open("outputs/peer.json", "w") as fh:
    json.dump(res, fh)
"""


def test_job_without_its_token_is_not_the_owner(sec_server: Any, owner: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "probe.py").write_text(textwrap.dedent(PROBE))
    before = {j.name for j in owner.jobs.list()}
    job = owner.jobs.create_or_update(command(code=str(src), command="python probe.py", experiment_name="sec-peer"))
    final = owner.jobs.wait(job.name, timeout=240)
    raw = owner.jobs.get_raw(job.name)
    assert final.status == "Completed", (raw["error"], raw["log_tail"])
    res = json.loads((sec_server.path / "jobs" / job.name / "wd" / "outputs" / "peer.json").read_text())
    assert res["create_tokenless"] == 401, res
    assert "job" in res["create_tokenless_msg"] and "MLFLOW_TRACKING_TOKEN" in res["create_tokenless_msg"]
    assert res["list_tokenless"] == 401 and res["mlflow_tokenless"] == 401
    assert res["create_with_token"] == 403 and res["own_job_with_token"] == 200
    # nothing was created by the job; the owner's own tokenless SDK still works
    after = owner.jobs.list()
    assert {j.name for j in after} == before | {job.name}
    assert not [j for j in after if j.display_name == "made-by-a-job"]
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"{sec_server.url}/mlflow")
    assert client.get_experiment_by_name("job-made") is None
    assert client.get_experiment_by_name("sec-peer") is not None


def _as_nobody(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("curl") is None,
                    reason="needs root to run a client as another OS user")
def test_other_os_user_without_token_is_refused(sec_server: Any, owner: Any) -> None:
    before = len(owner.jobs.list())
    body = json.dumps({"type": "command", "command": "echo from-nobody"})
    posted = _as_nobody(["curl", "-s", "-w", "\n%{http_code}", "-H", "Content-Type: application/json",
                         "--data", body, f"{sec_server.url}/api/v1/jobs"])
    text, _, code = posted.stdout.rpartition("\n")
    assert code == "401", posted
    assert "another OS user" in text and "Authorization: Bearer" in text
    listed = _as_nobody(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{sec_server.url}/mlflow/api/2.0/"
                         "mlflow/experiments/search?max_results=5"])
    assert listed.stdout == "401", listed
    # a user's token works from any OS user; public routes stay public
    token = owner.users.create("nobody-user", "Reader").token
    read = _as_nobody(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"Authorization: Bearer {token}",
                       f"{sec_server.url}/api/v1/jobs"])
    assert read.stdout == "200", read
    health = _as_nobody(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{sec_server.url}/health"])
    assert health.stdout == "200", health
    assert len(owner.jobs.list()) == before
    # the owner's own tokenless curl (this process's user, not a job) is still the owner
    with api(sec_server.url, None) as c:
        assert c.get("/api/v1/jobs").status_code == 200
        assert c.get("/openapi.json").status_code == 200


@pytest.mark.parametrize("family,host", [("v4", "127.0.0.1"), ("v6", "::1")])
def test_peer_socket_found_with_its_uid_and_holder(family: str, host: str) -> None:
    """The look-up under the check: a loopback connection's client end, its uid, inode and holding process."""
    import socket

    from openaml.server._peer import find_socket, holder, process_tree

    fam = socket.AF_INET if family == "v4" else socket.AF_INET6
    try:
        listener = socket.create_server((host, 0), family=fam)
    except OSError:
        pytest.skip(f"no {host} here")
    with listener, socket.create_connection(listener.getsockname()[:2]):
        accepted, peer = listener.accept()
        with accepted:
            found = find_socket((peer[0], peer[1]), listener.getsockname()[:2])
            assert found is not None and found.uid == os.getuid() and found.inode > 0
            assert holder(found.inode, [os.getpid()]) == (os.getpid(), False)
            child = subprocess.Popen(["sleep", "30"])
            try:  # the tree of a process that does not hold it: not found
                assert child.pid in process_tree([child.pid])
                assert holder(found.inode, process_tree([child.pid]))[0] is None
            finally:
                child.kill()
                child.wait()
            # a port nobody uses: no such socket
            assert find_socket((peer[0], 1), listener.getsockname()[:2]) is None
