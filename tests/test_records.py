"""The typed records (openaml.records) and the wire cannot drift apart.

Each record a service returns names the same fields as the route's response schema
(openaml.server._schemas), and a real server's answers carry every key a record declares required.
"""

from __future__ import annotations

import io
import tarfile
import typing
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from openaml import records
from openaml.server import _schemas

# record -> the response schema of the routes that answer it
PAIRS: dict[str, str] = {
    "CreationContextRecord": "CreationContext", "StatusChangeRecord": "StatusChange", "JobRecord": "JobOut",
    "SweepTrialRecord": "SweepTrialOut", "JobLogRecord": "JobLogOut", "DataVersionRecord": "DataOut",
    "ArchivedRecord": "ArchivedOut", "EnvironmentStateRecord": "EnvironmentStateOut", "EnvironmentRecord": "EnvironmentOut",
    "EnvironmentBuildRecord": "EnvironmentBuildOut", "ComponentRecord": "ComponentOut", "ModelRecord": "ModelOut",
    "DatastoreRecord": "DatastoreOut", "ComputeRecord": "ComputeOut", "EndpointRecord": "OnlineEndpointOut",
    "DeploymentRecord": "OnlineDeploymentOut", "EndpointKeysRecord": "EndpointKeysOut", "DeletedRecord": "DeletedOut",
    "ScheduleRecord": "ScheduleOut", "ScheduleTriggerRecord": "ScheduleTriggerOut", "UserRecord": "UserOut",
    "PrincipalRecord": "PrincipalOut", "WorkspaceRecord": "WorkspaceOut", "HealthRecord": "HealthOut",
    "UploadRecord": "UploadOut", "RunnerSpecRecord": "RunnerSpecOut", "RunnerReplyRecord": "RunnerReplyOut",
    "RunnerLogRecord": "RunnerLogOut", "RunnerOutputRecord": "RunnerOutputOut",
    "BatchEndpointRecord": "BatchEndpointOut", "BatchDeploymentRecord": "BatchDeploymentOut",
}


def _record(name: str) -> Any:
    return getattr(records, name)


def test_every_record_has_a_response_schema() -> None:
    assert sorted(records.__all__) == sorted(PAIRS)


@pytest.mark.parametrize("record_name", sorted(PAIRS))
def test_record_names_the_fields_of_its_response_schema(record_name: str) -> None:
    record = _record(record_name)
    schema = getattr(_schemas, PAIRS[record_name])
    keys = set(typing.get_type_hints(record))
    fields = set(schema.model_fields)
    assert keys == fields, (f"{record_name} and {schema.__name__} differ: only in the record "
                            f"{sorted(keys - fields)}, only in the schema {sorted(fields - keys)}")
    required = {k for k, f in schema.model_fields.items() if f.is_required()}
    assert required <= record.__required_keys__, f"{schema.__name__} requires {sorted(required - record.__required_keys__)}"


def test_records_declare_required_keys() -> None:
    """Required[...] is seen at run time (records.py must not postpone its annotations on 3.11)."""
    assert {"name", "status", "created_at", "status_history"} <= records.JobRecord.__required_keys__
    assert "trials" in records.JobRecord.__optional_keys__
    assert records.ModelRecord.__required_keys__ >= {"name", "version", "path", "creation_context"}


# ---------------------------------------------------------------------------- a real server
def _has(record_name: str, answer: dict[str, Any]) -> None:
    missing = _record(record_name).__required_keys__ - set(answer)
    assert not missing, f"an answer typed {record_name} lacks {sorted(missing)}: {answer}"


def test_real_server_answers_carry_each_records_required_keys(server: Any, ml_client: Any, tmp_path: Path) -> None:
    from openaml.entities import Data, Model

    token_file = server.path / "server.token"
    headers = {"Authorization": f"Bearer {token_file.read_text().strip()}"} if token_file.is_file() else {}
    api = httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=120, trust_env=False)
    tag = uuid.uuid4().hex[:8]

    def call(method: str, path: str, **kw: Any) -> Any:
        r = api.request(method, path, **kw)
        assert r.status_code < 300, (method, path, r.status_code, r.text)
        return r.json()

    _has("WorkspaceRecord", call("GET", "/workspace"))
    _has("HealthRecord", call("GET", "/health"))
    _has("PrincipalRecord", call("GET", "/users/me"))
    user = call("POST", "/users", json={"name": f"rec-{tag}", "role": "Reader"})
    _has("UserRecord", user)
    assert "token" in user
    for u in call("GET", "/users"):
        _has("UserRecord", u)

    compute = call("PUT", f"/computes/rec-{tag}", json={"name": f"rec-{tag}", "type": "amlcompute", "max_instances": 1})
    _has("ComputeRecord", compute)
    for c in call("GET", "/computes"):
        _has("ComputeRecord", c)
    for d in call("GET", "/datastores"):
        _has("DatastoreRecord", d)

    (tmp_path / "f.txt").write_text("x\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(tmp_path / "f.txt", arcname="f.txt")
    upload = call("POST", "/uploads", params={"name": "f.txt", "is_file": "true"}, content=buf.getvalue(),
                  headers={"Content-Type": "application/x-tar"})
    _has("UploadRecord", upload)
    assert upload["files"] == 1 and upload["uri"].startswith("azureml://datastores/")
    ml_client.data.create_or_update(Data(name=f"rec-{tag}", path=str(tmp_path / "f.txt"), type="uri_file"))
    data = call("GET", f"/data/rec-{tag}/versions/1")
    _has("DataVersionRecord", data)
    assert data["path"].startswith("azureml://")
    _has("ArchivedRecord", call("POST", f"/data/rec-{tag}/archive", params={"version": "1"}))

    ml_client.models.create_or_update(Model(name=f"rec-{tag}", path=str(tmp_path / "f.txt")))
    _has("ModelRecord", call("GET", f"/models/rec-{tag}/versions/1"))
    _has("ArchivedRecord", call("POST", f"/models/rec-{tag}/archive", params={"version": "1"}))

    env = call("POST", "/environments", json={"name": f"rec-{tag}", "image": "python"})
    _has("EnvironmentRecord", env)
    _has("EnvironmentRecord", call("GET", f"/environments/rec-{tag}/versions/{env['version']}"))

    comp = call("POST", "/components", json={"name": f"rec_{tag}", "version": "1", "type": "command",
                                             "command": "echo hi", "environment": f"azureml:rec-{tag}:{env['version']}"})
    _has("ComponentRecord", comp)
    _has("ArchivedRecord", call("POST", f"/components/rec_{tag}/archive", params={"version": "1"}))

    job = call("POST", "/jobs", json={"type": "command", "command": "echo hi", "name": f"rec_{tag}"})
    _has("JobRecord", job)
    _has("JobRecord", call("GET", f"/jobs/rec_{tag}"))
    for j in call("GET", "/jobs", params={"max_results": 5}):
        _has("JobRecord", j)
    for entry in job["status_history"]:
        _has("StatusChangeRecord", entry)
    _has("JobLogRecord", call("GET", f"/jobs/rec_{tag}/logs"))

    schedule = call("PUT", f"/schedules/rec-{tag}", json={
        "name": f"rec-{tag}", "trigger": {"type": "recurrence", "frequency": "day", "interval": 1,
                                          "start_time": "2030-01-01T00:00:00"},
        "create_job": {"type": "command", "command": "echo hi"}})
    _has("ScheduleRecord", schedule)
    _has("ScheduleRecord", call("POST", f"/schedules/rec-{tag}/disable"))

    endpoint = call("PUT", f"/online-endpoints/rec-{tag}", json={"name": f"rec-{tag}", "auth_mode": "key"})
    _has("EndpointRecord", endpoint)
    keys = call("POST", f"/online-endpoints/rec-{tag}/keys")
    assert {"primary_key", "secondary_key"} <= set(keys)
    _has("EndpointKeysRecord", keys)
    _has("DeletedRecord", call("DELETE", f"/online-endpoints/rec-{tag}"))
    api.close()


def test_openapi_describes_the_answers_that_had_no_schema(server: Any) -> None:
    """Archive/restore, environment build, key regeneration, job archive and uploads answered records
    that /openapi.json did not describe; the fields services add (an environment's lock and
    deviations, a sweep's trials, a pipeline's steps) were missing from their schemas."""
    spec = httpx.get(server.url + "/openapi.json", trust_env=False).json()

    def answer(path: str, method: str = "post") -> str:
        schema = spec["paths"]["/api/v1" + path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        return str(schema.get("$ref", "")).rsplit("/", 1)[-1]

    for noun in ("data", "components", "environments"):
        assert answer(f"/{noun}/{{name}}/archive") == "ArchivedOut"
        assert answer(f"/{noun}/{{name}}/restore") == "ArchivedOut"
    assert answer("/environments/{name}/build") == "EnvironmentBuildOut"
    assert answer("/online-endpoints/{name}/regenerate-keys") == "EndpointKeysOut"
    assert answer("/jobs/{name}/archive") == "JobOut"
    assert answer("/uploads") == "UploadOut"
    schemas = spec["components"]["schemas"]
    assert {"trials", "trial_counts", "best_child_run_id", "steps", "warnings"} <= set(schemas["JobOut"]["properties"])
    assert {"lock", "deviations", "python_asked", "interpreter"} <= set(schemas["EnvironmentOut"]["properties"])
    assert "local_path" not in schemas["DataOut"]["properties"]  # the data service never sends it


def test_a_trial_metric_is_written_as_the_service_gave_it() -> None:
    """Typing a sweep's trials must not turn an integer metric into a float on the wire."""
    from openaml.server._schemas import JobOut

    trial = {"name": "t", "index": 0, "status": "Completed", "params": {"lr": 1}, "metric": 3, "duration_s": 2.5,
             "terminated": None, "note": None, "error": None}
    out = JobOut.model_validate({"name": "j", "trials": [trial]}).model_dump(mode="json")
    assert out["trials"] == [trial]
