"""Issue 16, the built-in RAI components' warm process (runner._step_pool, rai._warm,
services._warm_steps): a step forked from it gives the same dashboard as a cold step, runs in its own
job's sandbox as a cold step does (variables, folder, namespaces, no server.token), and the process
ends when idle and with its server; a workspace with users has none unless the administrator turns
it on. Each test runs its own server (its warm process is checked by pid). The ``rai`` tier:
``pytest -m rai tests/test_rai_warm.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from openaml import MLClient
from openaml.environments import read_only_mounts_available
from tests.conftest import ServerHandle, start_server

pytestmark = [pytest.mark.rai, pytest.mark.timeout(900)]
HOUSING = Path(__file__).resolve().parents[1] / "examples" / "housing" / "rai"
COLD = {"OPENAML_RAI_WARM": "0"}  # a job's own switch: this step starts cold


def _submit(server: ServerHandle, ml: MLClient, doc: dict[str, Any], where: Path) -> str:
    yml = where / f"pipeline-{time.monotonic_ns()}.yml"
    yml.write_text(yaml.safe_dump(doc))
    p = subprocess.run([sys.executable, "-m", "openaml", "job", "create", "--file", str(yml), "-o", "json"],
                       cwd=where, env={**os.environ, "OPENAML_WORKSPACE": server.url}, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    name = str(json.loads(p.stdout)["name"])
    ml.jobs.stream(name)
    job = ml.jobs.get_raw(name)
    assert job["status"] == "Completed", job.get("error")
    return name


def _syslog(server: ServerHandle, job: str) -> str:
    return "".join(p.read_text(errors="replace") for p in (server.path / "jobs" / job).rglob("runner.log"))


def _warm(server: ServerHandle) -> list[dict[str, Any]]:
    return [json.loads(m.read_text()) for m in (server.path / "pools").glob("rai-*/meta.json")]


def _gone(pids: list[int], seconds: float = 30) -> list[int]:
    deadline = time.monotonic() + seconds
    alive = pids
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            break
        time.sleep(0.2)
    return alive


# ------------------------------------------------------------------ the housing pipeline, warm and cold
def _housing(root: Path, ml: MLClient) -> dict[str, Any]:
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier

    from openaml.entities import Model

    shutil.copytree(HOUSING / "data", root / "data")
    df = pd.read_parquet(root / "data" / "train" / "train.parquet")
    X, y = df.drop(columns=["Sold_HigherThan_Median"]), df["Sold_HigherThan_Median"]
    model = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(X, y)
    mlflow.sklearn.save_model(model, str(root / "model"), signature=infer_signature(X, model.predict(X)),
                              serialization_format="cloudpickle")
    ml.models.create_or_update(Model(name="housing-rf", version="1", path=str(root / "model"), type="mlflow_model"))
    doc = yaml.safe_load((HOUSING / "rai-pipeline.yml").read_text())
    doc["jobs"]["counterfactual_01"]["inputs"]["max_rows"] = 5
    doc["settings"] = {"force_rerun": True}
    return dict(doc)


def _dashboard(server: ServerHandle, ml: MLClient, name: str, where: Path) -> dict[str, Any]:
    ml.jobs.download(name, download_path=str(where), all=True)
    return dict(json.loads((where / "gather_01" / "named-outputs" / "dashboard" / "dashboard.json").read_text()))


def test_warm_steps_give_the_cold_steps_dashboard_and_the_process_ends_with_its_server(tmp_path: Path) -> None:
    server = start_server(tmp_path / "ws", name="rai-warm")
    try:
        with MLClient(workspace=server.url) as ml:
            doc = _housing(tmp_path, ml)
            warm = _submit(server, ml, doc, tmp_path)
            for node in doc["jobs"].values():
                node["environment_variables"] = dict(COLD)
            cold = _submit(server, ml, doc, tmp_path)
            for step in ("create_rai_job", "explain_01", "error_analysis_01", "counterfactual_01", "gather_01"):
                assert "the job's processes fork from it" in _syslog(server, f"{warm}-{step}"), step
                assert "warm pool" not in _syslog(server, f"{cold}-{step}"), step
            (pool,) = _warm(server)
            assert _gone([int(pool["pid"])], seconds=1) == [int(pool["pid"])]  # alive between pipelines
            d_warm = _dashboard(server, ml, warm, tmp_path / "warm")
            d_cold = _dashboard(server, ml, cold, tmp_path / "cold")
            assert d_warm["explanation"] is not None and d_warm["error_analysis"] is not None
            assert d_warm == d_cold
        server.stop()
        assert _gone([int(pool["pid"])]) == []
    finally:
        server.stop()


# ------------------------------------------------------------------ the sandbox, with a probing model
def _probe_model(root: Path, ml: MLClient) -> None:
    """A classifier whose ``predict`` (run by the constructor step, in the job) writes what it sees
    to ``$RAI_PROBE``: defined here, so cloudpickle saves it by value (no module of the tests to import)."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.base import BaseEstimator, ClassifierMixin

    from openaml.entities import Model

    class Probe(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
        def fit(self, X: Any, y: Any) -> Any:
            self.classes_ = np.unique(y)
            return self

        def predict(self, X: Any) -> Any:
            import json as _json
            import os as _os
            import sys as _sys

            def ns(pid: str, kind: str) -> str | None:
                try:
                    return _os.readlink(f"/proc/{pid}/ns/{kind}")
                except OSError:
                    return None

            step = [d for d in _os.listdir("/proc") if d.isdigit() and d != str(_os.getpid()) and
                    _probe_cmdline(d)]
            token = _os.path.join(_os.environ["RAI_TEST_WORKSPACE"], "server.token")
            try:
                open(token).read()
                seen = True
            except OSError:
                seen = False
            spec = getattr(_sys.modules["__main__"], "__spec__", None)
            with open(_os.environ["RAI_PROBE"], "w") as fh:
                _json.dump({"main": getattr(spec, "name", None), "run_id": _os.environ.get("MLFLOW_RUN_ID"),
                            "variable": _os.environ.get("RAI_TEST_VARIABLE"), "cwd": _os.getcwd(),
                            "warm_fd": _os.environ.get("OPENAML_RAI_WARM_FD"), "token_seen": seen,
                            "steps": len(step), "executable": _sys.executable,
                            "same_ns": [ns(step[0], k) == ns("self", k) for k in ("mnt", "pid")] if step else None,
                            "pid_ns": ns("self", "pid")},
                           fh)
            if _os.environ.get("RAI_SLEEP"):
                import time as _time

                _time.sleep(float(_os.environ["RAI_SLEEP"]))
            return np.where(X.iloc[:, 0].to_numpy() > 0.5, self.classes_[1], self.classes_[0])

        def predict_proba(self, X: Any) -> Any:
            p = (X.iloc[:, 0].to_numpy() > 0.5).astype(float)
            return np.column_stack([1 - p, p])

    def _probe_cmdline(pid: str) -> bool:
        try:
            return b"openaml.rai\x00constructor" in open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            return False

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x1": rng.random(60), "x2": rng.random(60)})
    df["y"] = np.where(df["x1"] > 0.5, "high", "low")
    for part, rows in (("train", df[:40]), ("test", df[40:])):
        (root / part).mkdir(parents=True)
        rows.to_parquet(root / part / f"{part}.parquet", index=False)
        (root / part / "MLTable").write_text(f"type: mltable\npaths:\n  - file: ./{part}.parquet\n"
                                             "transformations:\n  - read_parquet\n")
    model = Probe().fit(df[["x1", "x2"]], df["y"])
    mlflow.sklearn.save_model(model, str(root / "model"), serialization_format="cloudpickle")
    ml.models.create_or_update(Model(name="probe", version="1", path=str(root / "model"), type="mlflow_model"))


def _probe_pipeline(root: Path, server: ServerHandle, variables: dict[str, str]) -> dict[str, Any]:
    return {"type": "pipeline", "experiment_name": "rai-warm", "settings": {"force_rerun": True},
            "jobs": {"construct": {
                "type": "command",
                "component": "azureml://registries/azureml/components/rai_tabular_insight_constructor/labels/latest",
                "environment_variables": {"RAI_PROBE": str(root / "probe.json"), "RAI_TEST_VARIABLE": "job's own",
                                          "RAI_TEST_WORKSPACE": str(server.path), **variables},
                "inputs": {"title": "probe", "task_type": "classification", "model_info": "probe:1",
                           "model_input": {"type": "mlflow_model", "path": "azureml:probe:1"},
                           "train_dataset": {"type": "mltable", "path": str(root / "train")},
                           "test_dataset": {"type": "mltable", "path": str(root / "test")},
                           "target_column_name": "y"}}}}


def test_a_warm_step_runs_in_its_jobs_sandbox_as_a_cold_step_and_the_idle_process_ends(tmp_path: Path) -> None:
    server = start_server(tmp_path / "ws", name="rai-probe", env={"OPENAML_RAI_WARM_IDLE_SECONDS": "8"})
    try:
        with MLClient(workspace=server.url) as ml:
            _probe_model(tmp_path, ml)
            seen = {}
            for how, variables in (("warm", {}), ("cold", COLD)):
                name = _submit(server, ml, _probe_pipeline(tmp_path, server, variables), tmp_path)
                seen[how] = json.loads((tmp_path / "probe.json").read_text())
                seen[how]["job"] = f"{name}-construct"
            warm, cold = seen["warm"], seen["cold"]
            assert warm["main"] == "openaml.rai._warm" and cold["main"] == "openaml.rai.__main__"
            for probe in (warm, cold):
                assert probe["run_id"] == probe["job"] and probe["variable"] == "job's own"
                assert probe["cwd"] == str(server.path / "jobs" / probe["job"] / "wd")
                assert probe["warm_fd"] is None  # the connection is the step process's, never the model's
                assert Path(probe["executable"]).parent == server.path / "jobs" / probe["job"] / "venv" / "bin"
            if read_only_mounts_available():
                assert warm["token_seen"] is False and cold["token_seen"] is False
                assert warm["steps"] == 1 and warm["same_ns"] == [True, True]  # the step's own namespaces
            (pool,) = _warm(server)
            assert _gone([int(pool["pid"])], seconds=90) == []
            assert "idle for 8 s" in (server.path / "pools" / f"rai-{pool['key']}" / "pool.log").read_text()
            assert server.proc.poll() is None
    finally:
        server.stop()


def test_a_canceled_warm_step_leaves_no_process(tmp_path: Path) -> None:
    if not read_only_mounts_available():
        pytest.skip("no PID namespaces here: the step's processes cannot be told apart")
    server = start_server(tmp_path / "ws", name="rai-cancel")
    try:
        with MLClient(workspace=server.url) as ml:
            _probe_model(tmp_path, ml)
            doc = _probe_pipeline(tmp_path, server, {"RAI_SLEEP": "600"})
            yml = tmp_path / "sleep.yml"
            yml.write_text(yaml.safe_dump(doc))
            p = subprocess.run([sys.executable, "-m", "openaml", "job", "create", "--file", str(yml), "-o", "json"],
                               cwd=tmp_path, env={**os.environ, "OPENAML_WORKSPACE": server.url}, capture_output=True,
                               text=True, timeout=300)
            assert p.returncode == 0, p.stderr
            name = json.loads(p.stdout)["name"]
            probe = tmp_path / "probe.json"
            deadline = time.monotonic() + 300
            while not probe.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            seen = json.loads(probe.read_text())
            assert seen["main"] == "openaml.rai._warm"  # the step sleeps in a child of the warm process
            ml.jobs.begin_cancel(name)

            def in_step() -> list[int]:
                out = []
                for proc in psutil.process_iter():
                    try:
                        if os.readlink(f"/proc/{proc.pid}/ns/pid") == seen["pid_ns"]:
                            out.append(proc.pid)
                    except OSError:
                        continue
                return out

            deadline = time.monotonic() + 60
            while in_step() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert in_step() == []
            ml.jobs.stream(name)
            assert ml.jobs.get_raw(f"{name}-construct")["status"] == "Canceled"
            (pool,) = _warm(server)
            assert _gone([int(pool["pid"])], seconds=1) == [int(pool["pid"])]  # the warm process serves on
    finally:
        server.stop()


def test_a_workspace_with_users_has_no_warm_process_unless_the_administrator_turns_it_on(tmp_path: Path) -> None:
    # the warm process imports the libraries outside every job's sandbox, with the runner's rights:
    # with several users that is off unless OPENAML_RAI_WARM=1 (the batch pools' policy)
    server = start_server(tmp_path / "ws", name="rai-users")
    try:
        with MLClient(workspace=server.url) as ml:
            ml.users.create("ann", "AzureML Data Scientist")
            _probe_model(tmp_path, ml)
            name = _submit(server, ml, _probe_pipeline(tmp_path, server, {}), tmp_path)
            assert json.loads((tmp_path / "probe.json").read_text())["main"] == "openaml.rai.__main__"
            assert "warm pool" not in _syslog(server, f"{name}-construct")
            assert _warm(server) == []
    finally:
        server.stop()
