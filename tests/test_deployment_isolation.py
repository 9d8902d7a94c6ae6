"""Deployment workers never change the server's interpreter nor a shared environment (issue 9 item 2).

A deployment's model code runs in the deployment's own environment layer (as a job does): a
``load_context`` that runs ``sys.executable -m pip install`` installs into that layer only; the server's
virtualenv and the shared (curated) environment are read-only to the worker where ``unshare`` works,
so even their own pip, or a direct write into their ``site-packages``, fails there.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from openaml.entities import Environment, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

PROBE = "openaml_isolation_probe"

MODEL_CODE = '''\
import json, os, subprocess, sys

import mlflow.pyfunc


class Probe(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.info = {}
        if "AZUREML_MODEL_DIR" not in os.environ:  # MLflow loads the model while saving it: not in a worker
            return
        cfg = json.loads(open(context.artifacts["cfg"]).read())
        pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", cfg["wheel"]]
        done = subprocess.run(pip, capture_output=True, text=True)
        self.info = {"pip": done.returncode, "pip_out": done.stdout + done.stderr, "prefix": sys.prefix}
        # the shared environment (the server's packages, or a curated environment) reached through the layer
        shared = [p for p in sys.path if p.endswith("site-packages") and not p.startswith(sys.prefix)]
        self.info["shared"] = shared
        if cfg["ro"] and shared:  # only where the machine mounts it read-only: else this would really write
            try:
                with open(os.path.join(shared[0], "openaml_tamper.txt"), "w") as fh:
                    fh.write("x")
                self.info["write"] = "TAMPERED"
            except OSError:
                self.info["write"] = "REFUSED"
            own_pip = [os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(shared[0]))), "bin",
                                    "python"), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                       cfg["wheel"]]
            self.info["shared_pip"] = subprocess.run(own_pip, capture_output=True, text=True).returncode

    def predict(self, context, model_input):
        import openaml_isolation_probe

        return [json.dumps({**self.info, "probe": openaml_isolation_probe.VALUE})]
'''


def _wheel(folder: Path) -> Path:
    """A pure-Python wheel (no index, no build backend needed) whose module says where it came from."""
    dist = f"{PROBE}-1.0.dist-info"
    files = {f"{PROBE}.py": "VALUE = 'installed-in-the-layer'\n",
             f"{dist}/METADATA": "Metadata-Version: 2.1\nName: openaml-isolation-probe\nVersion: 1.0\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: openaml-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for name, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    path = folder / f"{PROBE}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def _ro_available() -> bool:
    from openaml.environments import read_only_mounts_available

    return read_only_mounts_available()


def _probe_model(tmp_path: Path) -> Path:
    import mlflow.pyfunc

    code = tmp_path / "code"
    code.mkdir()
    (code / "probe_model.py").write_text(MODEL_CODE)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"wheel": str(_wheel(tmp_path)), "ro": _ro_available()}))
    sys.path.insert(0, str(code))
    try:
        import probe_model

        target = tmp_path / "probe-model"
        mlflow.pyfunc.save_model(str(target), python_model=probe_model.Probe(), artifacts={"cfg": str(cfg)},
                                 code_paths=[str(code / "probe_model.py")])
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("probe_model", None)
    return target


def _server_freeze() -> list[str]:
    """``pip freeze`` of the server's virtualenv (this test process runs in it), read by a fresh interpreter."""
    script = ("from importlib.metadata import distributions\n"
              "print('\\n'.join(sorted(f\"{d.metadata['Name']}=={d.version}\" for d in distributions())))")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file of an environment (size, mtime), bytecode caches aside."""
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")
            if "__pycache__" not in p.parts and not p.is_dir()}


def _deploy_and_score(ml_client: Any, endpoint: str, model: Path, environment: Any, timeout: float) -> dict[str, Any]:
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=endpoint, auth_mode="key"))
    dep = ManagedOnlineDeployment(name="blue", endpoint_name=endpoint, model=Model(path=str(model), type="mlflow_model"),
                                  environment=environment, instance_type="Standard_DS3_v2", instance_count=1)
    done = ml_client.online_deployments.begin_create_or_update(dep).result(timeout=timeout)
    assert done.provisioning_state == "Succeeded", ml_client.online_deployments.get_logs("blue", endpoint)[-4000:]
    ep = ml_client.online_endpoints.get(endpoint)
    key = ml_client.online_endpoints.get_keys(endpoint).primary_key
    headers = {"Authorization": f"Bearer {key}", "azureml-model-deployment": "blue"}
    r = httpx.post(ep.scoring_uri, json={"inputs": [1]}, headers=headers, timeout=60, trust_env=False)
    assert r.status_code == 200, r.text
    body = r.json()
    return json.loads((body["predictions"] if isinstance(body, dict) else body)[0])


def test_mlflow_deployment_without_environment_cannot_change_the_server(ml_client: Any, server: Any,
                                                                        tmp_path: Path) -> None:
    # issue 9 item 2, for deployments: no environment = the default environment (the server's packages),
    # served from the deployment's own layer; load_context's `sys.executable -m pip install` lands there
    model = _probe_model(tmp_path)
    before = _server_freeze()
    info = _deploy_and_score(ml_client, "ep-iso-base", model, None, timeout=180)
    assert info["pip"] == 0, info["pip_out"]
    assert info["probe"] == "installed-in-the-layer"  # the deployment still serves, with what it installed
    assert Path(info["prefix"]).resolve() != Path(sys.prefix).resolve()
    assert Path(info["prefix"]).is_relative_to((server.path / "endpoints").resolve()) or "endpoints" in info["prefix"]
    after = _server_freeze()
    assert after == before and not any(line.startswith("openaml-isolation-probe") for line in after)
    assert not list(Path(sys.prefix).rglob("openaml_tamper.txt"))
    if _ro_available():  # the server's virtualenv is read-only to the worker: its own pip and direct writes fail
        assert info["write"] == "REFUSED" and info["shared_pip"] != 0, info
    # an image-only environment is the same default environment, with the same protection
    info2 = _deploy_and_score(ml_client, "ep-iso-image", model,
                              Environment(image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest"),
                              timeout=180)
    assert info2["pip"] == 0 and info2["probe"] == "installed-in-the-layer"
    assert Path(info2["prefix"]).resolve() != Path(info["prefix"]).resolve()  # each deployment its own layer
    assert _server_freeze() == before
    ml_client.online_endpoints.begin_delete("ep-iso-image")


@pytest.mark.slow  # builds (or reuses) the curated AzureML-sklearn-1.5 environment
def test_curated_deployment_cannot_change_the_shared_environment(ml_client: Any, server: Any,
                                                                  tmp_path: Path) -> None:
    from openaml import command

    model = _probe_model(tmp_path)
    before = _server_freeze()
    # the environment is built by a job first, so that its files can be listed before the deployment
    job = ml_client.jobs.create_or_update(command(command="python -c 'import sys; print(\"PREFIX\", sys.prefix)'",
                                                  environment="azureml:AzureML-sklearn-1.5@latest"))
    _wait_job(ml_client, job.name)
    envs = server.path / "envs"
    roots = [p for p in envs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    shared_before = {p: _files(p) for p in roots}
    info = _deploy_and_score(ml_client, "ep-iso-curated", model, "azureml:AzureML-sklearn-1.5@latest", timeout=900)
    assert info["pip"] == 0, info["pip_out"]
    assert info["probe"] == "installed-in-the-layer"
    assert {p: _files(p) for p in roots} == shared_before  # the shared environment is as built
    assert _server_freeze() == before
    if _ro_available():
        assert info["write"] == "REFUSED" and info["shared_pip"] != 0, info
    # the next job on that environment does not see what the deployment installed
    job2 = ml_client.jobs.create_or_update(command(
        command=f"python -c 'import {PROBE}' && echo SEEN || echo UNSEEN",
        environment="azureml:AzureML-sklearn-1.5@latest"))
    _wait_job(ml_client, job2.name)
    log = (server.path / "jobs" / job2.name / "user_logs" / "std_log.txt").read_text(encoding="utf-8")
    assert "UNSEEN" in log and "SEEN\n" not in log.replace("UNSEEN", ""), log


def _wait_job(ml_client: Any, name: str, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while (status := ml_client.jobs.get(name).status) not in ("Completed", "Failed", "Canceled"):
        assert time.monotonic() < deadline, f"job {name} still {status}"
        time.sleep(0.5)
    assert status == "Completed", status
