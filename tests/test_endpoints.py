"""Managed online endpoints end to end: real server, real workers, SDK, CLI and httpx.

One endpoint with a score.py deployment and one with an MLflow no-code deployment are shared
by the module (starting workers is the expensive thing). The default suite runs the score.py
tests; MLflow, batching, crash and init-failure tests are marked slow (each starts workers).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from openaml.entities import (
    CodeConfiguration,
    Environment,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
    OnlineRequestSettings,
    ProbeSettings,
)
from openaml.errors import ConflictError, OpenAMLError, ValidationError

ASSETS = Path(__file__).with_name("endpoints_assets")
# the models below are trained in this (the server's) interpreter, so they are served by the default
# environment (an image only: the server's packages); AzureML-sklearn-1.5 is its own virtualenv with
# its own pinned versions (scikit-learn 1.5): serving from the default environment keeps the model and its host on one version
ENV = Environment(image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import joblib
    import numpy as np
    from sklearn.linear_model import LinearRegression

    root = tmp_path_factory.mktemp("ep-model")
    x = np.array([[1, 2], [3, 4], [5, 1], [0, 0]], dtype=float)
    model = LinearRegression().fit(x, 2 * x[:, 0] + 3 * x[:, 1])
    (root / "model").mkdir()
    joblib.dump(model, root / "model" / "model.pkl")
    return root / "model"


@pytest.fixture(scope="module")
def code_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ep-code")
    shutil.copy(ASSETS / "score.py", root / "score.py")
    shutil.copy(ASSETS / "constant.py", root / "constant.py")
    return root


@pytest.fixture(scope="module")
def mlflow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("ep-mlflow") / "mlflow-model"
    x = pd.DataFrame({"age": [22.0, 38.0, 26.0, 35.0, 54.0, 2.0], "pclass": [3, 1, 3, 1, 1, 3]})
    y = [0, 1, 1, 1, 0, 1]
    model = LogisticRegression().fit(x, y)
    mlflow.sklearn.save_model(model, str(root), signature=infer_signature(x, model.predict(x)))
    return root


def _dep(name: str, endpoint: str, model_dir: Path, code_dir: Path, script: str = "score.py",
         **kw: Any) -> ManagedOnlineDeployment:
    return ManagedOnlineDeployment(name=name, endpoint_name=endpoint, model=Model(path=str(model_dir)),
                                   code_configuration=CodeConfiguration(code=str(code_dir), scoring_script=script),
                                   environment=ENV, instance_type="Standard_DS3_v2", instance_count=1, **kw)


@pytest.fixture(scope="module")
def endpoint(ml_client: Any, model_dir: Path, code_dir: Path) -> Any:
    """Endpoint ``ep-score`` with deployments blue (score.py) and green (constant), blue=100."""
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="ep-score", auth_mode="key"))
    rs = OnlineRequestSettings(request_timeout_ms=1500, max_concurrent_requests_per_instance=2,
                               max_queue_wait_ms=300, max_request_size_bytes=20000)
    blue = ml_client.online_deployments.begin_create_or_update(
        _dep("blue", "ep-score", model_dir, code_dir, request_settings=rs))
    green = ml_client.online_deployments.begin_create_or_update(
        _dep("green", "ep-score", model_dir, code_dir, script="constant.py"))
    assert blue.result(timeout=120).provisioning_state == "Succeeded"
    assert green.result(timeout=120).provisioning_state == "Succeeded"
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="ep-score", traffic={"blue": 100}))
    ep = ml_client.online_endpoints.get("ep-score")
    return ep


def _host_pid(worker: str) -> int:
    """The pid, as this process sees it, of the worker started with config file ``worker`` (workers run in
    PID namespaces of their own where unshare works: the pid they report is the namespace's)."""
    import psutil

    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if len(cmd) == 3 and cmd[1].endswith("_worker.py") and cmd[2] == worker:
            return int(p.pid)
    raise AssertionError(f"no worker process runs {worker}")


def _post(ep: Any, key: str | None, body: Any, deployment: str | None = None, raw: bytes | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if deployment:
        headers["azureml-model-deployment"] = deployment
    return httpx.post(ep.scoring_uri, content=raw if raw is not None else json.dumps(body), headers=headers,
                      timeout=30, trust_env=False)


def test_score_py_deployment_invoked_with_sdk_httpx_and_cli(ml_client: Any, endpoint: Any, cli: Any,
                                                            tmp_path: Path) -> None:
    assert endpoint.scoring_uri.endswith("/endpoints/ep-score/score")
    assert endpoint.provisioning_state == "Succeeded" and endpoint.traffic == {"blue": 100}
    request = tmp_path / "sample-request.json"
    request.write_text(json.dumps({"data": [[1, 2], [3, 4]]}))
    assert json.loads(ml_client.online_endpoints.invoke("ep-score", request_file=str(request))) == pytest.approx(
        [8.0, 18.0])
    key = ml_client.online_endpoints.get_keys("ep-score").primary_key
    r = _post(endpoint, key, {"data": [[0, 1]]})
    assert r.status_code == 200 and r.json() == pytest.approx([3.0])
    assert r.headers["azureml-model-deployment"] == "blue"
    # wrong or missing credentials: 401, nothing scored
    assert _post(endpoint, None, {"data": [[0, 1]]}).status_code == 401
    assert _post(endpoint, "wrong", {"data": [[0, 1]]}).status_code == 401
    # CLI: invoke, show --query, credentials, logs
    out = cli("online-endpoint", "invoke", "-n", "ep-score", "--request-file", str(request), check=True)
    assert json.loads(out.stdout) == pytest.approx([8.0, 18.0])
    out = cli("online-endpoint", "show", "-n", "ep-score", "--query", "scoring_uri", "-o", "tsv", check=True)
    assert out.stdout.strip() == endpoint.scoring_uri
    creds = cli("online-endpoint", "get-credentials", "-n", "ep-score", check=True).json()
    assert creds["primaryKey"] == key
    logs = cli("online-deployment", "get-logs", "-n", "blue", "-e", "ep-score", "--lines", "3", check=True).stdout
    assert 0 < len(logs.splitlines()) <= 3
    # regenerate the primary key: the old one stops working
    ml_client.online_endpoints.regenerate_keys("ep-score", key_type="primary")
    assert _post(endpoint, key, {"data": [[0, 1]]}).status_code == 401
    new = ml_client.online_endpoints.get_keys("ep-score")
    assert _post(endpoint, new.secondary_key, {"data": [[0, 1]]}).status_code == 200


def test_traffic_split_header_and_rules(ml_client: Any, endpoint: Any, cli: Any) -> None:
    key = ml_client.online_endpoints.get_keys("ep-score").primary_key
    # green has 0 % traffic: reachable only with the header
    r = _post(endpoint, key, {"data": [[1, 1]]}, deployment="green")
    assert r.json() == [0.5, 0.5] and r.headers["azureml-model-deployment"] == "green"
    cli("online-endpoint", "update", "-n", "ep-score", "--traffic", "blue=50 green=50", check=True)
    seen = {_post(endpoint, key, {"data": [[1, 1]]}).headers["azureml-model-deployment"] for _ in range(40)}
    assert seen == {"blue", "green"}
    bad = cli("online-endpoint", "update", "-n", "ep-score", "--traffic", "blue=50 green=40")
    assert bad.returncode == 1 and "blue=50 + green=40 = 90" in bad.stderr
    with pytest.raises(ConflictError, match="still receives 50 % of the traffic of endpoint '"):
        ml_client.online_deployments.begin_delete("green", "ep-score")
    with pytest.raises(ValidationError, match="at most 50"):
        ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(
            name="ep-score", traffic={"blue": 100, "green": 0}, mirror_traffic={"green": 60}))
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(
        name="ep-score", traffic={"blue": 100, "green": 0}, mirror_traffic={"green": 50}))
    for _ in range(10):
        assert _post(endpoint, key, {"data": [[1, 1]]}).headers["azureml-model-deployment"] == "blue"
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="ep-score", mirror_traffic={}))
    deadline = time.monotonic() + 30  # the mirror copy is sent after the answer: poll for its log line
    while "mirrored request" not in (logs := ml_client.online_deployments.get_logs("green", "ep-score")):
        assert time.monotonic() < deadline, logs[-2000:]
        time.sleep(0.2)


@pytest.mark.slow  # its 408 and 429 depend on 1.5 s and 300 ms limits being met on time
def test_errors_400_413_500_408_429(ml_client: Any, endpoint: Any) -> None:
    key = ml_client.online_endpoints.get_keys("ep-score").primary_key
    # run() raising: 500 with the message; traceback in the logs; the worker keeps serving
    r = _post(endpoint, key, {"action": "raise"}, deployment="blue")
    assert r.status_code == 500 and "run exploded on purpose" in r.json()["message"]
    assert "Traceback" in ml_client.online_deployments.get_logs("blue", "ep-score")
    assert _post(endpoint, key, {"data": [[0, 1]]}, deployment="blue").status_code == 200
    # NaN in run()'s result: valid JSON (null), as azureml-inference-server answers
    r = _post(endpoint, key, {"action": "nan"}, deployment="blue")
    assert r.status_code == 200 and r.text.replace(" ", "") == "[null,1.5,null]" and r.json() == [None, 1.5, None]
    # over max_request_size_bytes
    big = json.dumps({"data": [[1, 2]] * 5000}).encode()
    assert _post(endpoint, key, None, deployment="blue", raw=big).status_code == 413
    # longer than request_timeout_ms (1500): 408, and the worker recovers
    assert _post(endpoint, key, {"action": "sleep", "seconds": 2.5}, deployment="blue").status_code == 408
    time.sleep(1.2)  # the timed-out run() is still running (its slot is free: see the test below)
    # more than max_concurrent_requests_per_instance (2) waiting over max_queue_wait_ms (300): 429
    with ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(lambda _i: _post(endpoint, key, {"action": "sleep", "seconds": 1.0},
                                                 deployment="blue").status_code, range(4)))
    assert codes.count(429) >= 1 and codes.count(200) >= 2
    time.sleep(2.5)
    assert _post(endpoint, key, {"data": [[0, 1]]}, deployment="blue").status_code == 200


def test_requests_past_the_timeout_free_their_slots(ml_client: Any, endpoint: Any) -> None:
    """Issue 10 item 4: 8 requests past request_timeout_ms get 408 and free their slots (the worker is
    replaced once their run() does not return); the next caller gets 200, not 429."""
    key = ml_client.online_endpoints.get_keys("ep-score").primary_key
    worker = _post(endpoint, key, {"action": "pid"}, deployment="blue").json()["worker"]
    with ThreadPoolExecutor(2) as pool:  # 2 at a time: blue has 2 slots
        codes = list(pool.map(lambda _i: _post(endpoint, key, {"action": "sleep", "seconds": 60},
                                               deployment="blue").status_code, range(8)))
    assert codes == [408] * 8
    r = _post(endpoint, key, {"data": [[0, 1]]}, deployment="blue")
    assert r.status_code == 200 and r.json() == pytest.approx([3.0])
    # the stuck run()s never return: the worker is replaced by a fresh one, announced in the log
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = _post(endpoint, key, {"action": "pid"}, deployment="blue")
        assert r.status_code == 200
        if r.json()["worker"] != worker:
            break
        time.sleep(0.2)
    assert r.json()["worker"] != worker
    log = ml_client.online_deployments.get_logs("blue", "ep-score")
    assert "still running past request_timeout_ms=1500" in log and "replaced" in log


def test_workers_are_reachable_only_through_the_router(ml_client: Any, endpoint: Any) -> None:
    """Issue 10 item 4: no worker listens on TCP; its unix socket is the owner's only; swagger needs the key."""
    import os
    import stat

    import psutil

    key = ml_client.online_endpoints.get_keys("ep-score").primary_key
    pid = _host_pid(_post(endpoint, key, {"action": "pid"}, deployment="blue").json()["worker"])
    proc = psutil.Process(pid)
    assert proc.net_connections(kind="inet") == []
    socks = [c.laddr for c in proc.net_connections(kind="unix") if c.laddr]
    assert socks and all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in socks)
    assert stat.S_IMODE(os.stat(os.path.dirname(socks[0])).st_mode) == 0o700
    swagger = endpoint.scoring_uri.replace("/score", "/swagger.json")
    assert httpx.get(swagger, trust_env=False).status_code == 401
    assert httpx.get(swagger, headers={"Authorization": "Bearer wrong"}, trust_env=False).status_code == 401
    r = httpx.get(swagger, headers={"Authorization": f"Bearer {key}"}, trust_env=False)
    assert r.status_code == 200 and r.json()["swagger"] == "2.0"


def test_rawhttp_request_update_without_file_and_delete(ml_client: Any, endpoint: Any, model_dir: Path,
                                                        code_dir: Path, cli: Any, tmp_path: Path) -> None:
    """Issue 9 item 6: a @rawhttp run() gets a Flask-like AMLRequest (files, form, args, headers, JSON);
    `online-deployment update --set instance_count=2` without --file starts from the stored deployment;
    deleting a deployment removes its folder, so a new one of the same name starts with a clean log."""
    import hashlib

    shutil.copy(ASSETS / "raw.py", code_dir / "raw.py")
    dep = _dep("raw", "ep-score", model_dir, code_dir, script="raw.py")
    assert ml_client.online_deployments.begin_create_or_update(dep).result(timeout=120).provisioning_state == \
        "Succeeded"
    key = ml_client.online_endpoints.get_keys("ep-score").primary_key
    auth = {"Authorization": f"Bearer {key}", "azureml-model-deployment": "raw"}
    image = bytes(range(256)) * 40
    r = httpx.post(endpoint.scoring_uri + "?size=small&size=big&mode=x", trust_env=False, timeout=30,
                   headers={**auth, "X-Custom": "hello"}, files={"image": ("cat.png", image, "image/png")},
                   data={"label": "cat"})
    assert r.status_code == 200, r.text
    assert r.json() == {"filename": "cat.png", "sha256": hashlib.sha256(image).hexdigest(), "form": {"label": "cat"},
                        "args": {"size": "small", "mode": "x"}, "header": "hello", "method": "POST"}
    r = httpx.post(endpoint.scoring_uri, json={"a": [1, 2]}, headers=auth, trust_env=False, timeout=30)
    assert r.status_code == 201 and r.headers["x-echo"] == "yes"
    assert r.json() == {"json": {"a": [1, 2]}, "bytes": len(b'{"a":[1,2]}'), "ctype": "application/json"}
    r = httpx.get(endpoint.scoring_uri + "?q=1", headers=auth, trust_env=False, timeout=30)
    assert r.json() == {"args": {"q": "1"}, "path": "/score"}
    # scale without --file: the stored deployment (code, script, environment) is the base
    out = cli("online-deployment", "update", "--name", "raw", "--endpoint-name", "ep-score", "--set",
              "instance_count=2", check=True).json()
    assert out["instance_count"] == 2 and out["provisioning_state"] == "Succeeded"
    assert out["code_configuration"]["scoring_script"] == "raw.py"
    assert httpx.get(endpoint.scoring_uri, headers=auth, trust_env=False, timeout=30).status_code == 200
    # delete: the folder goes; a new deployment of that name shows only its own log lines
    assert ml_client.online_deployments.get_logs("raw", "ep-score").count("listening on") == 3
    ml_client.online_deployments.begin_delete("raw", "ep-score")
    assert ml_client.online_deployments.begin_create_or_update(dep).result(timeout=120).provisioning_state == \
        "Succeeded"
    assert ml_client.online_deployments.get_logs("raw", "ep-score").count("listening on") == 1
    ml_client.online_deployments.begin_delete("raw", "ep-score")


def test_yaml_of_another_kind_is_refused(cli: Any, ml_client: Any, tmp_path: Path) -> None:
    """Issue 9 item 6: a batch endpoint/deployment YAML given to online-endpoint/online-deployment create is
    refused naming its $schema; nothing is created."""
    ep = tmp_path / "batch-endpoint.yml"
    ep.write_text("$schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json\n"
                  "name: ep-batchy\nauth_mode: aad_token\n")
    r = cli("online-endpoint", "create", "--file", str(ep))
    assert r.returncode == 1
    assert "batchEndpoint.schema.json" in r.stderr and "batch endpoint, not of an online endpoint" in r.stderr
    assert "openaml batch-endpoint create" in r.stderr
    assert "ep-batchy" not in [e.name for e in ml_client.online_endpoints.list()]
    dep = tmp_path / "batch-deployment.yml"
    dep.write_text("$schema: https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json\n"
                   "name: d\nendpoint_name: ep-score\nmodel: azureml:m:1\n")
    r = cli("online-deployment", "create", "--file", str(dep))
    assert r.returncode == 1 and "batch deployment, not of an online deployment" in r.stderr
    ok = tmp_path / "online.yml"
    ok.write_text("$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json\n"
                  "name: ep-schema-ok\n")
    cli("online-endpoint", "create", "--file", str(ok), check=True)
    cli("online-endpoint", "delete", "-n", "ep-schema-ok", "--yes", check=True)


@pytest.mark.slow
def test_crashed_worker_is_restarted(ml_client: Any, endpoint: Any) -> None:
    key = ml_client.online_endpoints.get_keys("ep-score").primary_key
    worker = _post(endpoint, key, {"action": "pid"}, deployment="blue").json()["worker"]
    r = _post(endpoint, key, {"action": "crash"}, deployment="blue")
    assert r.status_code >= 500
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = _post(endpoint, key, {"action": "pid"}, deployment="blue")
        if r.status_code == 200:
            break
        time.sleep(0.2)
    assert r.status_code == 200 and r.json()["worker"] != worker
    assert "restarted" in ml_client.online_deployments.get_logs("blue", "ep-score")


@pytest.mark.slow
def test_init_failure_marks_deployment_failed(ml_client: Any, endpoint: Any, model_dir: Path,
                                              code_dir: Path) -> None:
    dep = _dep("broken", "ep-score", model_dir, code_dir, environment_variables={"FAIL_INIT": "1"})
    with pytest.raises(OpenAMLError, match="init exploded on purpose"):
        ml_client.online_deployments.begin_create_or_update(dep).result(timeout=60)
    got = ml_client.online_deployments.get("broken", "ep-score")
    assert got.provisioning_state == "Failed"
    assert "init exploded on purpose" in ml_client.online_deployments.get_logs("broken", "ep-score", lines=50)
    ml_client.online_deployments.begin_delete("broken", "ep-score")


@pytest.fixture(scope="module")
def mlflow_endpoint(ml_client: Any, mlflow_model: Path) -> Any:
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="ep-mlflow"))
    dep = ManagedOnlineDeployment(name="green", endpoint_name="ep-mlflow",
                                  model=Model(path=str(mlflow_model), type="mlflow_model"),
                                  instance_type="Standard_DS3_v2", instance_count=1,
                                  request_settings=OnlineRequestSettings(max_concurrent_requests_per_instance=2))
    assert ml_client.online_deployments.begin_create_or_update(dep).result(timeout=180).provisioning_state == \
        "Succeeded"
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="ep-mlflow",
                                                                            traffic={"green": 100}))
    return ml_client.online_endpoints.get("ep-mlflow")


@pytest.mark.slow
def test_mlflow_no_code_formats_and_signature(ml_client: Any, mlflow_endpoint: Any, mlflow_model: Path) -> None:
    import mlflow.pyfunc
    import pandas as pd

    key = ml_client.online_endpoints.get_keys("ep-mlflow").primary_key
    rows = [[22.0, 3], [38.0, 1], [54.0, 1]]
    expected = mlflow.pyfunc.load_model(str(mlflow_model)).predict(
        pd.DataFrame(rows, columns=["age", "pclass"])).tolist()
    split = {"input_data": {"columns": ["age", "pclass"], "index": [0, 1, 2], "data": rows}}
    assert _post(mlflow_endpoint, key, split).json() == expected
    records = {"input_data": {"columns": ["age", "pclass"], "data": [{"age": a, "pclass": p} for a, p in rows]}}
    assert _post(mlflow_endpoint, key, records).json() == expected
    assert _post(mlflow_endpoint, key, {"dataframe_split": {"columns": ["age", "pclass"], "data": rows}}).json() == \
        {"predictions": expected}
    recs = [{"age": a, "pclass": p} for a, p in rows]
    assert _post(mlflow_endpoint, key, {"dataframe_records": recs}).json() == {"predictions": expected}
    assert _post(mlflow_endpoint, key, {"instances": recs}).json() == {"predictions": expected}
    # bad input: malformed JSON, missing column, wrong type — 400 naming them
    r = _post(mlflow_endpoint, key, None, raw=b"{not json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    r = _post(mlflow_endpoint, key, {"dataframe_records": [{"age": 3.0}]})
    assert r.status_code == 400 and "pclass" in r.json()["message"]
    r = _post(mlflow_endpoint, key, {"dataframe_records": [{"age": "old", "pclass": 1}]})
    assert r.status_code == 400 and "column age" in r.json()["message"] and "float64" in r.json()["message"]


@pytest.fixture(scope="module")
def typed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pyfunc model with an int32, a datetime and an optional string column (issue 9 item 5)."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    root = tmp_path_factory.mktemp("ep-typed") / "typed"
    shutil.copy(ASSETS / "typed_model.py", root.parent / "typed_model.py")
    sig = ModelSignature(inputs=Schema([ColSpec("integer", "n"), ColSpec("datetime", "when"),
                                        ColSpec("string", "tag", required=False)]))
    mlflow.pyfunc.save_model(str(root), python_model=str(root.parent / "typed_model.py"), signature=sig)
    return root


@pytest.mark.slow
def test_mlflow_scoring_is_mlflows(ml_client: Any, mlflow_endpoint: Any, typed_model: Path) -> None:
    """Issue 9 item 5: int32 from JSON ints and CSV, ISO datetimes, a null in an optional string column,
    as `mlflow models serve` takes them; MLflow's errors (400) name the column and type; batching merges."""
    dep = ManagedOnlineDeployment(name="typed", endpoint_name="ep-mlflow",
                                  model=Model(path=str(typed_model), type="mlflow_model"),
                                  instance_type="Standard_DS3_v2", instance_count=1)
    assert ml_client.online_deployments.begin_create_or_update(dep).result(timeout=180).provisioning_state == \
        "Succeeded"
    key = ml_client.online_endpoints.get_keys("ep-mlflow").primary_key
    want = [{"n2": 6, "day": 2, "tag": "a"}, {"n2": -6, "day": 3, "tag": "NONE"}]
    records = [{"n": 3, "when": "2024-01-02T03:04:05", "tag": "a"}, {"n": -3, "when": "2024-01-03T00:00:00",
                                                                      "tag": None}]
    r = _post(mlflow_endpoint, key, {"dataframe_records": records}, deployment="typed")
    assert r.status_code == 200 and r.json() == {"predictions": want}, r.text
    split = {"columns": ["n", "when", "tag"], "data": [[3, "2024-01-02T03:04:05", "a"], [-3, "2024-01-03T00:00:00", None]]}
    assert _post(mlflow_endpoint, key, {"dataframe_split": split}, deployment="typed").json() == {"predictions": want}
    assert _post(mlflow_endpoint, key, {"input_data": split}, deployment="typed").json() == want
    csv = httpx.post(mlflow_endpoint.scoring_uri, content=b"n,when,tag\n3,2024-01-02T03:04:05,a\n-3,2024-01-03T00:00:00,\n",
                     headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv",
                              "azureml-model-deployment": "typed"}, trust_env=False, timeout=30)
    # MLflow's parse_csv_input refuses datetime columns (pandas wants parse_dates): so does mlflow models serve
    assert csv.status_code == 400 and "parse_dates" in csv.json()["message"], csv.text
    # errors: MLflow's own messages, naming the column and the type
    r = _post(mlflow_endpoint, key, {"dataframe_records": [{"n": "x", "when": "2024-01-02T00:00:00"}]},
              deployment="typed")
    assert r.status_code == 400 and "n" in r.json()["message"] and "int32" in r.json()["message"], r.text
    r = _post(mlflow_endpoint, key, {"dataframe_records": [{"when": "2024-01-02T00:00:00"}]}, deployment="typed")
    assert r.status_code == 400 and "missing inputs ['n']" in r.json()["message"], r.text
    r = _post(mlflow_endpoint, key, {"nope": []}, deployment="typed")
    assert r.status_code == 400 and "dataframe_split" in r.json()["message"]
    r = httpx.post(mlflow_endpoint.scoring_uri, content=b"<x/>", trust_env=False, timeout=30, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/xml", "azureml-model-deployment": "typed"})
    assert r.status_code == 415
    # concurrent requests are micro-batched, each caller gets its own rows
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda i: _post(mlflow_endpoint, key, {"dataframe_records": [
            {"n": i, "when": "2024-01-02T00:00:00", "tag": None}]}, deployment="typed").json(), range(24)))
    assert outs == [{"predictions": [{"n2": 2 * i, "day": 2, "tag": "NONE"}]} for i in range(24)]
    ml_client.online_deployments.begin_delete("typed", "ep-mlflow")


@pytest.mark.slow
def test_micro_batching_gives_each_caller_its_own_rows(ml_client: Any, mlflow_endpoint: Any,
                                                       mlflow_model: Path) -> None:
    import mlflow.pyfunc
    import pandas as pd

    key = ml_client.online_endpoints.get_keys("ep-mlflow").primary_key
    model = mlflow.pyfunc.load_model(str(mlflow_model))
    client = httpx.Client(trust_env=False, timeout=30,
                          headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    errors: list[str] = []

    def call(i: int) -> None:
        rows = [[float(i % 60), 1 + i % 3]] * (1 + i % 3) if i % 7 else [["bad", 1]]
        r = client.post(mlflow_endpoint.scoring_uri, json={"dataframe_split": {"columns": ["age", "pclass"],
                                                                               "data": rows}})
        if i % 7 == 0:
            if r.status_code != 400:
                errors.append(f"{i}: bad request got {r.status_code}")
            return
        want = model.predict(pd.DataFrame(rows, columns=["age", "pclass"])).tolist()
        if r.status_code != 200 or r.json()["predictions"] != want:
            errors.append(f"{i}: {r.status_code} {r.text} != {want}")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    assert not errors


def test_aml_token_endpoint_issues_expiring_tokens(ml_client: Any, cli: Any) -> None:
    ep = ml_client.online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name="ep-token", auth_mode="aml_token")).result()
    token = ml_client.online_endpoints.get_keys("ep-token")
    assert token.access_token and token.expiry_time_utc > time.time() + 600
    assert _post(ep, "forged." + token.access_token.split(".")[1], {}).status_code == 401
    # authenticated, but no deployment takes traffic yet: 503 naming the fix
    r = _post(ep, token.access_token, {})
    assert r.status_code == 503 and "traffic" in r.json()["message"]
    creds = cli("online-endpoint", "get-credentials", "-n", "ep-token", check=True).json()
    assert creds["accessToken"] and creds["expiryTimeUtc"]
    with pytest.raises(ValidationError, match="only key endpoints"):
        ml_client.online_endpoints.regenerate_keys("ep-token")
    cli("online-endpoint", "delete", "-n", "ep-token", "--yes", check=True)
    assert "ep-token" not in [e.name for e in ml_client.online_endpoints.list()]


# ---------------------------------------------------------------------- rollout, updates and faults under load
class _SteadyLoad:
    """``threads`` clients posting ``{"action": "pid"}`` in a loop; every answer recorded as (status, body)."""

    def __init__(self, ep: Any, key: str, threads: int = 3) -> None:
        self.ep, self.key = ep, key
        self.answers: list[tuple[int, Any]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def _loop(self) -> None:
        with httpx.Client(trust_env=False, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    r = client.post(self.ep.scoring_uri, json={"action": "pid"},
                                    headers={"Authorization": f"Bearer {self.key}"})
                    self.answers.append((r.status_code, r.json() if r.status_code == 200 else r.text))
                except httpx.HTTPError as exc:
                    self.answers.append((0, repr(exc)))

    def __enter__(self) -> _SteadyLoad:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def failed(self) -> list[tuple[int, Any]]:
        return [a for a in self.answers if a[0] != 200]

    def versions(self) -> list[str]:
        return [a[1]["version"] for a in self.answers if a[0] == 200]

    def wait(self, n: int = 10) -> None:
        """Until ``n`` more answers arrived (the load really runs across the step that follows)."""
        target = len(self.answers) + n
        deadline = time.monotonic() + 60
        while len(self.answers) < target and time.monotonic() < deadline:
            time.sleep(0.02)


@pytest.fixture(scope="module")
def rollout(ml_client: Any, model_dir: Path, code_dir: Path) -> Any:
    """Endpoint ``ep-roll`` with deployment blue (answers version 1) taking all traffic."""
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="ep-roll"))
    blue = _dep("blue", "ep-roll", model_dir, code_dir, environment_variables={"MODEL_VERSION": "1"})
    assert ml_client.online_deployments.begin_create_or_update(blue).result(timeout=120).provisioning_state == \
        "Succeeded"
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="ep-roll", traffic={"blue": 100}))
    return ml_client.online_endpoints.get("ep-roll")


def _green(ml_client: Any, model_dir: Path, code_dir: Path, version: str, count: int = 1) -> None:
    dep = _dep("green", "ep-roll", model_dir, code_dir, environment_variables={"MODEL_VERSION": version})
    dep.instance_count = count
    assert ml_client.online_deployments.begin_create_or_update(dep).result(timeout=180).provisioning_state == \
        "Succeeded"


def test_safe_rollout_under_steady_load_fails_no_request(ml_client: Any, rollout: Any, model_dir: Path,
                                                         code_dir: Path) -> None:
    """Spec 10 / issue 3 item 5: green beside blue, header test, 10 % then 100 %, blue deleted: zero failures."""
    key = ml_client.online_endpoints.get_keys("ep-roll").primary_key
    with _SteadyLoad(rollout, key) as load:
        load.wait()
        _green(ml_client, model_dir, code_dir, "2")
        load.wait()
        r = _post(rollout, key, {"action": "pid"}, deployment="green")
        assert r.status_code == 200 and r.json()["version"] == "2"
        ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(
            name="ep-roll", traffic={"blue": 90, "green": 10}))
        load.wait(60)
        ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(
            name="ep-roll", traffic={"blue": 0, "green": 100}))
        load.wait()
        ml_client.online_deployments.begin_delete("blue", "ep-roll")
        n_after_delete = len(load.answers)
        load.wait(20)
    assert load.failed() == [], load.failed()[:5]
    versions = load.versions()
    assert versions[0] == "1" and "2" in versions and set(versions[n_after_delete:]) == {"2"}
    assert [d.name for d in ml_client.online_deployments.list("ep-roll")] == ["green"]


def test_update_replaces_workers_one_at_a_time_under_load(ml_client: Any, rollout: Any, model_dir: Path,
                                                          code_dir: Path) -> None:
    """Updating (new code/settings, 2 instances) starts each new worker before an old one leaves: no failures."""
    if "green" not in [d.name for d in ml_client.online_deployments.list("ep-roll")]:
        _green(ml_client, model_dir, code_dir, "2")
        ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(
            name="ep-roll", traffic={"green": 100}))
    key = ml_client.online_endpoints.get_keys("ep-roll").primary_key
    with _SteadyLoad(rollout, key) as load:
        load.wait()
        _green(ml_client, model_dir, code_dir, "3", count=2)
        load.wait(20)
    assert load.failed() == [], load.failed()[:5]
    versions = load.versions()
    assert versions[0] == "2" and versions[-1] == "3"
    # once version 3 answered, version 2 may still finish its in-flight requests but never comes back after
    first3 = versions.index("3")
    assert versions[first3:].count("2") <= 3
    workers = {a[1]["worker"] for a in load.answers[-20:]}
    assert len(workers) == 2  # both new instances serve
    log = ml_client.online_deployments.get_logs("green", "ep-roll")
    assert log.count("listening on") >= 3


def _two_green_instances(ml_client: Any, model_dir: Path, code_dir: Path) -> str:
    """Deployment ``green`` of ``ep-roll`` with two instances taking all traffic (made once, reused by
    the next tests); returns the endpoint's primary key."""
    if "green" not in [d.name for d in ml_client.online_deployments.list("ep-roll")]:
        _green(ml_client, model_dir, code_dir, "3", count=2)
        ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(
            name="ep-roll", traffic={"green": 100}))
    return str(ml_client.online_endpoints.get_keys("ep-roll").primary_key)


def test_request_that_kills_its_worker_runs_once_and_gets_502(ml_client: Any, rollout: Any, model_dir: Path,
                                                               code_dir: Path, tmp_path: Path) -> None:
    """Issue 10 item 4: a run() that kills its worker is not retried on the other instance: it runs
    exactly once and its caller gets 502 naming the signal; other callers are served."""
    key = _two_green_instances(ml_client, model_dir, code_dir)
    ran = tmp_path / "ran.txt"
    r = _post(rollout, key, {"action": "count_and_die", "file": str(ran)}, deployment="green")
    assert r.status_code == 502
    assert "the worker serving this request exited with signal 9" in r.json()["message"]
    assert len(ran.read_text().splitlines()) == 1
    assert _post(rollout, key, {"action": "pid"}, deployment="green").status_code == 200
    time.sleep(1.0)
    assert len(ran.read_text().splitlines()) == 1  # never retried later either
    deadline = time.monotonic() + 60  # the killed instance comes back (the next test needs both)
    workers: set[str] = set()
    while len(workers) < 2 and time.monotonic() < deadline:
        workers = {_post(rollout, key, {"action": "pid"}, deployment="green").json()["worker"] for _ in range(8)}
    assert len(workers) == 2


def test_requests_go_to_the_free_instance_while_the_other_is_busy(ml_client: Any, rollout: Any, model_dir: Path,
                                                                  code_dir: Path, tmp_path: Path) -> None:
    """Issue 10 (score.py p99): with one of two instances busy (its one slot held by a long run()), every
    other request goes to the free instance; none is queued behind the busy one (round robin sent half
    of them there, where they waited or got 429 past max_queue_wait_ms)."""
    key = _two_green_instances(ml_client, model_dir, code_dir)
    held = tmp_path / "held.txt"
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(_post, rollout, key, {"action": "hold", "file": str(held), "seconds": 4.0}, "green")
        deadline = time.monotonic() + 30
        while not held.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        busy = held.read_text()
        answers = [_post(rollout, key, {"action": "pid"}, deployment="green") for _ in range(6)]
        assert not slow.done()  # the busy instance stayed busy through all of them (request_timeout_ms 5 s)
        assert slow.result().status_code == 200 and slow.result().json() == {"worker": busy}
    assert [r.status_code for r in answers] == [200] * 6
    workers = {r.json()["worker"] for r in answers}
    assert len(workers) == 1 and busy not in workers


def test_worker_killed_under_load_is_replaced(ml_client: Any, rollout: Any, model_dir: Path,
                                              code_dir: Path) -> None:
    """SIGKILL one of two workers under load: only its requests fail (502); the worker comes back."""
    import os
    import signal

    key = _two_green_instances(ml_client, model_dir, code_dir)
    threads = 4
    with _SteadyLoad(rollout, key, threads=threads) as load:
        load.wait(20)
        before = {a[1]["worker"] for a in load.answers[-20:] if a[0] == 200}
        assert len(before) == 2
        victim = sorted(before)[0]
        os.kill(_host_pid(victim), signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = {a[1]["worker"] for a in load.answers[-10:] if a[0] == 200}
            if len(workers - before) == 1 and victim not in workers:
                break
            time.sleep(0.1)
        load.wait(20)
    # at most the requests in flight on the killed worker fail, with 502 naming the signal (never retried)
    assert len(load.failed()) <= threads, load.failed()[:5]
    assert all(code == 502 and "signal 9" in body for code, body in load.failed())
    after = {a[1]["worker"] for a in load.answers[-20:] if a[0] == 200}
    assert victim not in after and len(after) == 2
    assert "restarted" in ml_client.online_deployments.get_logs("green", "ep-roll")


@pytest.mark.slow
def test_slow_init_is_awaited_up_to_the_readiness_probe(ml_client: Any, endpoint: Any, model_dir: Path,
                                                        code_dir: Path) -> None:
    """init() longer than a fixed timeout would allow but within the probe's limit succeeds; beyond it, Failed."""
    patient = _dep("patient", "ep-score", model_dir, code_dir, environment_variables={"SLOW_INIT": "6"},
                   readiness_probe=ProbeSettings(initial_delay=2, period=2, failure_threshold=10))  # 22 s
    assert ml_client.online_deployments.begin_create_or_update(patient).result(timeout=120).provisioning_state == \
        "Succeeded"
    ml_client.online_deployments.begin_delete("patient", "ep-score")
    hasty = _dep("hasty", "ep-score", model_dir, code_dir, environment_variables={"SLOW_INIT": "30"},
                 readiness_probe=ProbeSettings(initial_delay=1, period=1, failure_threshold=2))  # 3 s
    with pytest.raises(OpenAMLError, match="not ready after 3 s"):
        ml_client.online_deployments.begin_create_or_update(hasty).result(timeout=120)
    assert ml_client.online_deployments.get("hasty", "ep-score").provisioning_state == "Failed"
    ml_client.online_deployments.begin_delete("hasty", "ep-score")


def test_worker_whose_server_died_during_init_exits(tmp_path: Path) -> None:
    """Regression: the orphan check compared with getppid() read after init(), already pid 1 by then."""
    import subprocess
    import sys

    from openaml.serving import WORKER_SCRIPT

    cfg = {"mode": "script", "deployment": "ep/dep", "app_root": str(ASSETS), "entry_script": str(
        ASSETS / "constant.py"), "ready_file": str(tmp_path / "ready"), "socket": str(tmp_path / "w.sock"),
           "parent_pid": 2 ** 22 + 12345}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    p = subprocess.run([sys.executable, str(WORKER_SCRIPT), str(tmp_path / "cfg.json")], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and "the server exited; worker stopping" in p.stderr


def test_worker_in_a_pid_namespace_exits_when_the_server_is_gone(tmp_path: Path) -> None:
    """A worker in a PID namespace of its own cannot see the server's pid: it watches a pipe whose write
    end only the server holds (``parent_fd``); closed, the worker stops."""
    import os
    import subprocess
    import sys

    from openaml.serving import WORKER_SCRIPT

    read, write = os.pipe()
    os.close(write)  # the server is gone
    cfg = {"mode": "script", "deployment": "ep/dep", "app_root": str(ASSETS), "entry_script": str(
        ASSETS / "constant.py"), "ready_file": str(tmp_path / "ready"), "socket": str(tmp_path / "w.sock"),
           "parent_pid": os.getpid(), "parent_fd": read}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    p = subprocess.run([sys.executable, str(WORKER_SCRIPT), str(tmp_path / "cfg.json")], capture_output=True,
                       text=True, timeout=60, pass_fds=(read,))
    os.close(read)
    assert p.returncode == 0 and "the server exited; worker stopping" in p.stderr


def test_worker_sockets_of_a_deep_workspace_go_to_a_short_private_folder(tmp_path: Path) -> None:
    """A unix socket path is limited to ~104 bytes: a deep workspace's sockets live in a 0700 folder of
    the temporary directory, one per deployment."""
    import os
    import stat

    from openaml.serving._supervisor import _socket_dir

    deep = tmp_path / ("d" * 60) / ("e" * 60) / "endpoints" / "ep" / "blue" / "run"
    other = tmp_path / ("d" * 60) / ("e" * 60) / "endpoints" / "ep" / "green" / "run"
    path = _socket_dir(deep)
    assert len(os.path.join(path, "i12345.sock")) < 104 and path != _socket_dir(other) and path == _socket_dir(deep)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    short = tmp_path / "run"
    assert _socket_dir(short) == str(short)


def test_a_latest_model_reference_is_pinned_at_deployment_time(ml_client: Any, mlflow_model: Path,
                                                               server: Any) -> None:
    """Regression (studio review): a deployment of ``azureml:name@latest`` served another version after
    a server restart, because the stored reference was resolved again. Azure records the versioned
    model id at deployment time; openaml now stores ``azureml:name:<version>`` the same way."""
    ml_client.models.create_or_update(Model(name="pin-model", path=str(mlflow_model), type="mlflow_model"))
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="ep-pin"))
    dep = ManagedOnlineDeployment(name="blue", endpoint_name="ep-pin", model="azureml:pin-model@latest",
                                  instance_type="Standard_DS3_v2", instance_count=1)
    try:
        assert ml_client.online_deployments.begin_create_or_update(dep).result(timeout=180).provisioning_state \
            == "Succeeded"
        first = str(ml_client.models.get("pin-model", label="latest").version)
        assert ml_client.online_deployments.get("blue", endpoint_name="ep-pin").model == f"azureml:pin-model:{first}"
        ml_client.models.create_or_update(Model(name="pin-model", path=str(mlflow_model), type="mlflow_model"))
        # a newer version registered: what is stored (and served after any restart) is still the first
        assert ml_client.online_deployments.get("blue", endpoint_name="ep-pin").model == f"azureml:pin-model:{first}"
        # the studio's model page names the deployment on the version it serves only
        second = str(ml_client.models.get("pin-model", label="latest").version)
        page = lambda v: httpx.get(f"{server.url}/models/pin-model?version={v}",  # noqa: E731
                                   headers={"Accept": "text/html"}).text
        assert "/online-endpoints/ep-pin" in page(first) and "/online-endpoints/ep-pin" not in page(second)
    finally:
        ml_client.online_endpoints.begin_delete(name="ep-pin").result(timeout=120)
