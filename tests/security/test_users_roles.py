"""Users and Azure ML's built-in roles (issue 10, item 6), on a real default (loopback, no token) server.

Every route, the /mlflow mount included, checks the caller's role; a refused request changes
nothing; unknown and deleted users' tokens get 401.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from openaml import MLClient, command
from openaml.errors import OpenAMLError, ValidationError
from tests.security.conftest import api, user_token


def _jobs(url: str) -> int:
    with api(url, None) as c:
        return len(c.get("/api/v1/jobs").json())


def test_reader_reads_but_every_write_is_refused_and_changes_nothing(sec_server: Any, owner: Any) -> None:
    url = sec_server.url
    tok = user_token(owner, "reader-1", "Reader")
    mlflow = owner.mlflow_tracking_uri if hasattr(owner, "mlflow_tracking_uri") else f"{url}/mlflow"
    import mlflow as mlflow_lib

    client = mlflow_lib.MlflowClient(tracking_uri=mlflow)
    exp = client.create_experiment(f"sec-{uuid.uuid4().hex[:6]}")
    run = client.create_run(exp)
    before = _jobs(url)
    with api(url, tok) as c:
        # reads work: the REST API, MLflow GETs and MLflow's search POSTs
        assert c.get("/api/v1/jobs").status_code == 200
        assert c.get("/api/v1/computes").status_code == 200
        assert c.get(f"/mlflow/api/2.0/mlflow/runs/get?run_id={run.info.run_id}").status_code == 200
        assert c.post("/mlflow/api/2.0/mlflow/runs/search", json={"experiment_ids": [exp]}).status_code == 200
        assert c.post("/mlflow/ajax-api/2.0/mlflow/experiments/search", json={"max_results": 5}).status_code == 200
        # POST, PUT, DELETE: 403 with the reason
        r = c.post("/api/v1/jobs", json={"type": "command", "command": "echo x"})
        assert r.status_code == 403, r.text
        assert "Reader" in r.json()["error"]["message"]
        assert c.delete("/api/v1/computes/local").status_code == 403
        assert c.put("/api/v1/computes/c1", json={"type": "amlcompute", "max_instances": 1}).status_code == 403
        assert c.post("/api/v1/online-endpoints/x/keys").status_code == 403
        assert c.post("/api/v1/jobs/any-job/rerun", json={}).status_code == 403  # rerun needs write access
        # MLflow writes through both APIs
        r = c.post("/mlflow/api/2.0/mlflow/runs/log-metric",
                   json={"run_id": run.info.run_id, "key": "m", "value": 1.0, "timestamp": 0, "step": 0})
        assert r.status_code == 403
        assert c.post("/mlflow/ajax-api/2.0/mlflow/experiments/create", json={"name": "reader-exp"}).status_code == 403
        assert c.post("/mlflow/api/2.0/mlflow/runs/delete", json={"run_id": run.info.run_id}).status_code == 403
        assert c.post("/mlflow//api/2.0/mlflow/experiments/create", json={"name": "reader-exp2"}).status_code == 403
        # nothing changed
    assert _jobs(url) == before
    assert client.get_run(run.info.run_id).data.metrics == {}
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"
    assert client.get_experiment_by_name("reader-exp") is None
    assert "local" in [c.name for c in owner.compute.list()]
    assert "c1" not in [c.name for c in owner.compute.list()]


def test_data_scientist_submits_jobs_but_not_datastores_or_computes(sec_server: Any, owner: Any,
                                                                   tmp_path: Path) -> None:
    tok = user_token(owner, "ds-1", "AzureML Data Scientist")
    ds = MLClient(workspace=sec_server.url, token=tok)
    try:
        assert ds.users.whoami() == {"name": "ds-1", "role": "AzureML Data Scientist", "kind": "user"}
        job = ds.jobs.create_or_update(command(command="python -c \"import mlflow; mlflow.log_metric('m', 2.0)\"",
                                               environment="AzureML-sklearn-1.5@latest", experiment_name="sec-ds"))
        final = ds.jobs.wait(job.name, timeout=180)
        raw = owner.jobs.get_raw(job.name)
        assert final.status == "Completed", (raw["error"], raw["log_tail"])
        assert raw["metrics"]["m"] == 2.0  # it logged with its own (scoped) token, as its submitter
        assert raw["creation_context"]["created_by"] == "ds-1"
        from openaml.entities import Data, Datastore

        (tmp_path / "rows.csv").write_text("a\n1\n")
        data = ds.data.create_or_update(Data(name="ds-rows", type="uri_file", path=str(tmp_path / "rows.csv")))
        assert data.creation_context["created_by"] == "ds-1"  # review m11: was "local"
        assert owner.data.get("ds-rows", version=data.version).creation_context["created_by"] == "ds-1"

        with pytest.raises(OpenAMLError, match="Owner"):
            ds.datastores.create_or_update(Datastore(name="ds-local", type="local", path=str(tmp_path / "d")))
        with pytest.raises(OpenAMLError, match="Contributor or Owner"):
            ds.datastores.create_or_update(Datastore(name="ds-blob", type="azure_blob", account_name="a",
                                                     container_name="c"))
        from openaml.entities import AmlCompute

        with pytest.raises(OpenAMLError, match="Contributor or Owner"):
            ds.compute.begin_create_or_update(AmlCompute(name="ds-pool", max_instances=1)).result()
        with pytest.raises(OpenAMLError, match="Owner"):
            ds.users.create("ds-made", "Reader")
        names = [d.name for d in owner.datastores.list()]
        assert "ds-local" not in names and "ds-blob" not in names
        assert "ds-pool" not in [c.name for c in owner.compute.list()]
        assert "ds-made" not in [u.name for u in owner.users.list()]
    finally:
        ds.close()


def test_contributor_changes_computes_and_cloud_datastores_but_not_local_paths_or_users(
        sec_server: Any, owner: Any, tmp_path: Path) -> None:
    from openaml.entities import AmlCompute, Datastore

    tok = user_token(owner, "contrib-1", "Contributor")
    c = MLClient(workspace=sec_server.url, token=tok)
    try:
        c.compute.begin_create_or_update(AmlCompute(name="contrib-pool", max_instances=1)).result()
        c.datastores.create_or_update(Datastore(name="contrib-blob", type="azure_blob", account_name="a",
                                                container_name="c"), skip_validation=True)  # not reachable here
        with pytest.raises(OpenAMLError, match="Owner"):  # a local path is Owner-only
            c.datastores.create_or_update(Datastore(name="contrib-local", type="local", path=str(tmp_path)))
        with pytest.raises(OpenAMLError, match="Owner"):
            c.users.create("contrib-made", "Owner")
    finally:
        c.close()
    assert "contrib-pool" in [x.name for x in owner.compute.list()]
    assert "contrib-local" not in [d.name for d in owner.datastores.list()]


def test_owner_user_creates_users_and_unknown_or_deleted_tokens_get_401(sec_server: Any, owner: Any) -> None:
    url = sec_server.url
    own = user_token(owner, "owner-1", "Owner")
    o = MLClient(workspace=url, token=own)
    try:
        made = o.users.create("made-by-owner", "reader")
        assert made.role == "Reader" and made.created_by == "owner-1" and made.token
        listed = {u.name: u for u in owner.users.list()}
        assert listed["made-by-owner"].token is None  # never shown again
        with api(url, made.token) as c:
            assert c.get("/api/v1/jobs").status_code == 200
        o.users.delete("made-by-owner")
        with api(url, made.token) as c:
            r = c.get("/api/v1/jobs")
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
            assert c.get("/mlflow/api/2.0/mlflow/experiments/search?max_results=1").status_code == 401
    finally:
        o.close()
    for bad in ("oau_" + "x" * 43, "nonsense", "oaj1.e30.AAAA", "é€ü"):
        with api(url, None) as c:
            r = c.get("/api/v1/jobs", headers={"Authorization": b"Bearer " + bad.encode("utf-8")})
            assert r.status_code == 401, (bad, r.text)
    with api(url, None) as c:  # no token on a loopback server without a token: the local owner, as before
        assert c.get("/api/v1/users/me").json()["kind"] == "owner"


def test_cli_user_create_list_delete(sec_server: Any) -> None:
    env = {**os.environ, "OPENAML_WORKSPACE": sec_server.url, "COLUMNS": "200"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "openaml", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    r = cli("user", "create", "--name", "cli-reader", "--role", "Reader", "-o", "json")
    assert r.returncode == 0, r.stderr
    tok = json.loads(r.stdout)["token"]
    with api(sec_server.url, tok) as c:
        assert c.post("/api/v1/jobs", json={"type": "command", "command": "echo x"}).status_code == 403
    r = cli("user", "list", "-o", "json")
    assert {"name": "cli-reader", "role": "Reader"}.items() <= {
        k: v for u in json.loads(r.stdout) if u["name"] == "cli-reader" for k, v in u.items()}.items()
    assert all("token" not in u and "token_hash" not in u for u in json.loads(r.stdout))
    r = cli("user", "create", "--name", "cli-bad", "--role", "Admin")
    assert r.returncode == 1 and "Reader, AzureML Data Scientist, Contributor, Owner" in r.stderr
    r = cli("user", "create", "--name", "cli-reader", "--role", "Reader")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = cli("user", "delete", "--name", "cli-reader")
    assert r.returncode == 0, r.stderr
    with api(sec_server.url, tok) as c:
        assert c.get("/api/v1/jobs").status_code == 401
    r = cli("user", "delete", "--name", "cli-reader")
    assert r.returncode == 1 and "not found" in r.stderr


def test_role_names_are_validated() -> None:
    from openaml.entities._user import canonical_role

    assert canonical_role("data-scientist") == "AzureML Data Scientist"
    assert canonical_role("AzureML Data Scientist") == "AzureML Data Scientist"
    assert canonical_role("OWNER") == "Owner"
    with pytest.raises(ValidationError, match="roles: Reader"):
        canonical_role("admin")


def test_a_schedule_fires_jobs_as_the_user_who_defined_it(sec_server: Any, owner: Any) -> None:
    import time

    from openaml.entities import JobSchedule, RecurrenceTrigger

    tok = user_token(owner, "ds-sched", "DataScientist")
    ds = MLClient(workspace=sec_server.url, token=tok)
    name = f"sched-{uuid.uuid4().hex[:6]}"
    try:
        ds.schedules.begin_create_or_update(JobSchedule(
            name=name, trigger=RecurrenceTrigger(frequency="hour", interval=1),
            create_job=command(command="echo scheduled", experiment_name="sec-sched"))).result()
        deadline = time.monotonic() + 60
        while not (sched := owner.schedules.get(name)).last_job_name and time.monotonic() < deadline:
            time.sleep(0.5)
        assert sched.creation_context["created_by"] == "ds-sched"
        fired = owner.jobs.wait(sched.last_job_name, timeout=120)
        assert fired.status == "Completed"
        assert owner.jobs.get_raw(fired.name)["creation_context"]["created_by"] == "ds-sched"
    finally:
        owner.schedules.begin_delete(name).result()
        ds.close()


@pytest.mark.parametrize("url", ["FILE:///etc", "simplecache::file:///etc", "filecache::file:///etc",
                                 "dir::file:///etc", "blockcache::/etc", "Local:///etc"])
def test_contributor_cannot_reach_local_paths_through_fsspec_urls(sec_server: Any, owner: Any, url: str) -> None:
    """Regression: the Owner-only rule for local paths compared the URL's start case-sensitively and
    missed chained fsspec URLs; a local member anywhere in the chain is Owner-only."""
    from openaml.entities import Datastore

    tok = user_token(owner, f"contrib-fs-{uuid.uuid4().hex[:6]}", "Contributor")
    c = MLClient(workspace=sec_server.url, token=tok)
    try:
        with pytest.raises(OpenAMLError, match="Owner"):
            c.datastores.create_or_update(Datastore(name="contrib-fs", type="fsspec", url=url))
    finally:
        c.close()
    assert "contrib-fs" not in [d.name for d in owner.datastores.list()]
    # and the Owner, too, only under the allowed roots
    with pytest.raises(OpenAMLError, match="outside the folders local datastores may use"):
        owner.datastores.create_or_update(Datastore(name="owner-fs", type="fsspec", url=url))


def test_job_output_data_and_environments_record_their_creator(sec_server: Any, owner: Any) -> None:
    """creation_context.created_by of a data asset registered from a job's output is the job's
    submitter (the server registers it, no request is served); an environment records who created it."""
    from openaml import Output
    from openaml.entities import Environment

    tok = user_token(owner, "ds-out", "AzureML Data Scientist")
    ds = MLClient(workspace=sec_server.url, token=tok)
    try:
        env = ds.environments.create_or_update(Environment(name="ds-env", image="python:3.11-slim"))
        assert env.creation_context["created_by"] == "ds-out"
        assert owner.environments.get("ds-env", version=env.version).creation_context["created_by"] == "ds-out"
        job = ds.jobs.create_or_update(command(command="echo hi > ${{outputs.o}}/hi.txt",
                                               outputs={"o": Output(type="uri_folder", name="ds-job-out")},
                                               environment="AzureML-sklearn-1.5@latest"))
        final = ds.jobs.wait(job.name, timeout=180)
        assert final.status == "Completed", owner.jobs.get_raw(job.name)["error"]
        asset = owner.data.get("ds-job-out", label="latest")
        assert asset.creation_context["created_by"] == "ds-out"
        assert asset.creation_context["created_by_type"] == "User"
    finally:
        ds.close()


def test_deleting_a_datastore_needs_what_registering_it_needs(sec_server: Any, owner: Any, tmp_path: Path) -> None:
    """Issue h10 item 1: a Data Scientist may not delete a datastore; a Contributor may delete a cloud
    one but not one on a local path (Owner, as registering it); refused deletes change nothing."""
    from openaml.entities import Datastore

    owner.datastores.create_or_update(Datastore(name="del-local", type="local", path=str(tmp_path)))
    for name in ("del-blob", "del-blob2"):
        with pytest.warns(UserWarning):
            owner.datastores.create_or_update(Datastore(name=name, type="azure_blob", account_name="a",
                                                        container_name="c"), skip_validation=True)
    ds = MLClient(workspace=sec_server.url, token=user_token(owner, "ds-del", "AzureML Data Scientist"))
    c = MLClient(workspace=sec_server.url, token=user_token(owner, "contrib-del", "Contributor"))
    try:
        with pytest.raises(OpenAMLError, match="Contributor or Owner"):
            ds.datastores.delete("del-blob")
        with pytest.raises(OpenAMLError, match="needs the Owner role"):
            c.datastores.delete("del-local")
        assert {"del-local", "del-blob"} <= {d.name for d in owner.datastores.list()}
        c.datastores.delete("del-blob")
        owner.datastores.delete("del-local")
        owner.datastores.delete("del-blob2")
    finally:
        ds.close()
        c.close()
    assert not {"del-local", "del-blob", "del-blob2"} & {d.name for d in owner.datastores.list()}
