"""Batch endpoints and deployments (issue 13 items 1-2): entities and the three YAML shapes, the
store, routes, SDK ``batch_endpoints``/``batch_deployments``, the ``batch-endpoint``/``batch-deployment``
CLI, invocation -> a batch scoring job (output ``score``), and bad input refused before anything runs.
All against a real server; jobs run the real parallel engine."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from openaml.entities import (
    BatchDeployment,
    BatchEndpoint,
    BatchRetrySettings,
    Environment,
    Input,
    Model,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
    Output,
    PipelineComponentBatchDeployment,
)
from openaml.entities._batch import flatten_deployment, load_batch_deployment, load_batch_endpoint
from openaml.errors import NotFoundError, ValidationError

# an image only: the documented default environment (the server's packages), nothing to build
ENV = Environment(image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest")

SCORE_PY = '''
import os
import joblib
import pandas as pd

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "model.joblib"))


def run(mini_batch):
    out = []
    for f in mini_batch:
        df = pd.read_csv(f)
        for x, p in zip(df["x"], model.predict(df[["x"]])):
            out.append(f"{os.path.basename(f)} {x} {p:.1f}")
    return out
'''


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A custom (joblib) model folder, an MLflow model, a scoring script and a folder of 3 CSVs (7 rows)."""
    import joblib
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    root = tmp_path_factory.mktemp("batch")
    lr = LinearRegression().fit(pd.DataFrame({"x": np.arange(10.0)}), np.arange(10.0) * 2 + 1)
    (root / "model").mkdir()
    joblib.dump(lr, root / "model" / "model.joblib")
    mlflow.sklearn.save_model(lr, str(root / "mlflow_model"), input_example=pd.DataFrame({"x": [1.0]}))
    (root / "code").mkdir()
    (root / "code" / "score.py").write_text(SCORE_PY)
    (root / "norun").mkdir()
    (root / "norun" / "score.py").write_text("def init():\n    pass\n")
    data = root / "data"
    data.mkdir()
    for i, rows in enumerate([[1, 2, 3], [4, 5], [6, 7]]):
        pd.DataFrame({"x": [float(r) for r in rows]}).to_csv(data / f"part-{i}.csv", index=False)
    (root / "empty").mkdir()
    return {"root": root, "model": root / "model", "mlflow": root / "mlflow_model", "code": root / "code",
            "norun": root / "norun", "data": data, "empty": root / "empty"}


# ---------------------------------------------------------------------------- entities and YAML shapes
def test_three_deployment_shapes_load(tmp_path: Path) -> None:
    (tmp_path / "model.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json\n"
        "name: dep1\nendpoint_name: bep\ntype: model\nmodel: azureml:m:1\ncompute: azureml:local\n"
        "resources: {instance_count: 2}\n"
        "settings:\n  max_concurrency_per_instance: 3\n  mini_batch_size: 5\n  output_action: append_row\n"
        "  output_file_name: out.csv\n  retry_settings: {max_retries: 1, timeout: 60}\n  error_threshold: 4\n"
        "  logging_level: debug\n  environment_variables: {A: 1}\n")
    d = load_batch_deployment(tmp_path / "model.yml")
    assert isinstance(d, ModelBatchDeployment) and d.settings is not None and d.settings.mini_batch_size == 5
    flat = flatten_deployment(d.model_dump(mode="json", exclude_none=True))
    assert flat["mini_batch_size"] == 5 and flat["max_concurrency_per_instance"] == 3
    assert flat["output_file_name"] == "out.csv" and flat["retry_settings"] == {"max_retries": 1, "timeout": 60}
    assert flat["environment_variables"] == {"A": "1"} and "settings" not in flat
    assert BatchDeployment.model_validate(flat).effective_instance_count == 2
    assert d.compute == "local"

    (tmp_path / "flat.yml").write_text(
        "name: dep2\nendpoint_name: bep\nmodel: azureml:m:1\ncompute: local\nmini_batch_size: 10\n"
        "output_action: summary_only\nmax_concurrency_per_instance: 2\nresources: {instance_count: 1}\n")
    d2 = load_batch_deployment(tmp_path / "flat.yml")
    assert type(d2) is BatchDeployment and d2.output_action == "summary_only"

    (tmp_path / "pipe.yml").write_text(
        "name: dep3\nendpoint_name: bep\ntype: pipeline\ncomponent: azureml:hello:1\n"
        "settings: {default_compute: local, continue_on_step_failure: false}\n")
    d3 = load_batch_deployment(tmp_path / "pipe.yml")
    assert isinstance(d3, PipelineComponentBatchDeployment) and d3.settings["default_compute"] == "local"

    # the SDK's constructors (the book's chapter 7 call)
    sdk = BatchDeployment(name="dep4", endpoint_name="bep", model="azureml:m:1", compute="local", instance_count=2,
                          max_concurrency_per_instance=2, mini_batch_size=10, output_action="AppendRow",
                          output_file_name="predictions.csv",
                          retry_settings=BatchRetrySettings(max_retries=3, timeout=30), logging_level="info")
    assert sdk.output_action == "append_row" and sdk.effective_instance_count == 2
    m = ModelBatchDeployment(name="dep5", endpoint_name="bep", model="azureml:m:1", compute="local",
                             settings=ModelBatchDeploymentSettings(mini_batch_size=3, output_action="summary_only"))
    assert flatten_deployment(m.model_dump(mode="json", exclude_none=True))["mini_batch_size"] == 3
    assert BatchEndpoint(name="ep-x", defaults={"deployment_name": "d"}).defaults.deployment_name == "d"  # type: ignore[union-attr]


@pytest.mark.parametrize("value", [0, "0", -3, "abc", "10 parsecs", True])
def test_bad_mini_batch_size_is_refused_naming_the_field(value: Any) -> None:
    with pytest.raises(Exception) as exc:
        BatchDeployment(name="dep", model="azureml:m:1", compute="local", mini_batch_size=value)
    assert "mini_batch_size" in str(exc.value)


def test_batch_yaml_of_another_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "online.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json\nname: bep\n")
    with pytest.raises(ValidationError) as exc:
        load_batch_endpoint(tmp_path / "online.yml")
    assert "managedOnlineEndpoint.schema.json" in exc.value.message and "openaml online-endpoint create" in \
        exc.value.message and "not of a batch endpoint" in exc.value.message
    (tmp_path / "online-dep.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json\nname: dep\n")
    with pytest.raises(ValidationError) as exc:
        load_batch_deployment(tmp_path / "online-dep.yml")
    assert "not of a batch deployment" in exc.value.message and "openaml online-deployment create" in exc.value.message


# ---------------------------------------------------------------------------- server: CRUD and invocation
def _lines(ml_client: Any, job_name: str, dest: Path, file_name: str = "predictions.csv") -> list[str]:
    ml_client.jobs.download(job_name, output_name="score", download_path=str(dest))
    found = sorted(dest.rglob(file_name))
    assert found, f"no {file_name} in {[str(p) for p in dest.rglob('*')]}"
    return found[0].read_text().splitlines()


@pytest.mark.slow
def test_score_py_deployment_sdk_flow(ml_client: Any, files: dict[str, Path], tmp_path: Path) -> None:
    """The book's chapter 7 SDK calls: endpoint, deployment with a scoring script, invoke on a folder."""
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="bep-sdk", description="d")).result()
    dep = BatchDeployment(name="lrd", endpoint_name="bep-sdk", model=Model(name="bep-lr", path=str(files["model"])),
                          code_path=str(files["code"]), scoring_script="score.py", environment=None,
                          compute="local", instance_count=1, max_concurrency_per_instance=2, mini_batch_size=2,
                          output_file_name="predictions.csv", retry_settings=BatchRetrySettings(max_retries=1, timeout=60))
    with pytest.raises(ValidationError) as exc:  # a scoring script needs an environment
        ml_client.batch_deployments.begin_create_or_update(dep)
    assert "environment" in exc.value.message
    dep.environment = ENV
    got = ml_client.batch_deployments.begin_create_or_update(dep).result()
    assert got.model.startswith("azureml:bep-lr:") and got.provisioning_state == "Succeeded"
    ep = ml_client.batch_endpoints.get("bep-sdk")
    ep.defaults = {"deployment_name": "lrd"}
    ml_client.batch_endpoints.begin_create_or_update(ep).result()
    assert ml_client.batch_endpoints.get("bep-sdk").defaults.deployment_name == "lrd"
    job = ml_client.batch_endpoints.invoke("bep-sdk", input=Input(type="uri_folder", path=str(files["data"])))
    ml_client.jobs.stream(job.name)
    assert ml_client.jobs.get(job.name).status == "Completed"
    lines = _lines(ml_client, job.name, tmp_path / "dl")
    assert sorted(lines) == sorted(f"part-{i}.csv {x:.1f} {2 * x + 1:.1f}" for i, xs in
                                   enumerate([[1, 2, 3], [4, 5], [6, 7]]) for x in xs)
    assert job.name in [j.name for j in ml_client.batch_endpoints.list_jobs("bep-sdk")]
    ml_client.batch_endpoints.begin_delete("bep-sdk")
    with pytest.raises(NotFoundError):
        ml_client.batch_endpoints.get("bep-sdk")


@pytest.mark.slow
def test_mlflow_no_code_cli_flow(cli: Any, ml_client: Any, files: dict[str, Path], tmp_path: Path) -> None:
    """MLflow model, no scoring script: the built-in driver writes row,prediction,file lines; CLI end to end,
    --output-path and output_file_name overrides land where asked."""
    (tmp_path / "ep.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json\nname: bep-mlflow\n")
    (tmp_path / "dep.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json\n"
        f"name: nocode\nendpoint_name: bep-mlflow\ntype: model\n"
        f"model:\n  name: bep-mlflow-model\n  path: {files['mlflow']}\n  type: mlflow_model\n"
        "compute: local\nresources: {instance_count: 1}\n"
        "settings:\n  mini_batch_size: 1\n  max_concurrency_per_instance: 2\n  output_action: append_row\n"
        "  output_file_name: predictions.csv\n")
    cli("batch-endpoint", "create", "--file", str(tmp_path / "ep.yml"), check=True)
    r = cli("batch-endpoint", "invoke", "-n", "bep-mlflow", "--input", str(files["data"]))
    assert r.returncode == 1 and "no default deployment" in r.stderr and "--deployment-name" in r.stderr
    cli("batch-deployment", "create", "--file", str(tmp_path / "dep.yml"), "--set-default", check=True)
    shown = cli("batch-endpoint", "show", "-n", "bep-mlflow", check=True).json()
    assert shown["defaults"]["deployment_name"] == "nocode" and shown["scoring_uri"].endswith(
        "/api/v1/batch-endpoints/bep-mlflow/jobs")
    assert cli("batch-deployment", "show", "-n", "nocode", "-e", "bep-mlflow", check=True).json()["mini_batch_size"] == 1
    out_uri = "azureml://datastores/workspaceblobstore/paths/bep-mlflow-results/run1"
    job = cli("batch-endpoint", "invoke", "-n", "bep-mlflow", "--input", str(files["data"]), "--input-type",
              "uri_folder", "--output-path", out_uri, "--set", "output_file_name=scored.csv", "--mini-batch-size", "2",
              check=True).json()
    assert job["type"] == "parallel" and job["mini_batch_size"] in ("2", 2)
    cli("job", "stream", "-n", job["name"], timeout=600)
    assert cli("job", "show", "-n", job["name"], check=True).json()["status"] == "Completed"
    lines = _lines(ml_client, job["name"], tmp_path / "dl", "scored.csv")
    rows = list(csv.reader(lines))
    assert len(rows) == 7 and {r[2] for r in rows} == {"part-0.csv", "part-1.csv", "part-2.csv"}
    by_file = {(r[2], int(r[0])): float(r[1]) for r in rows}
    assert by_file[("part-1.csv", 1)] == pytest.approx(11.0) and by_file[("part-0.csv", 0)] == pytest.approx(3.0)
    # the output landed at --output-path in the datastore
    shown_job = cli("job", "show", "-n", job["name"], check=True).json()
    assert shown_job["outputs"]["score"]["path"] == out_uri
    from openaml.sdk._fsspec import AzureMLFileSystem

    fs = AzureMLFileSystem(workspace=ml_client.url)
    assert "scored.csv" in [Path(p).name for p in fs.find(out_uri)]
    listed = cli("batch-endpoint", "list-jobs", "-n", "bep-mlflow", "-o", "json", check=True).json()
    assert job["name"] in [j["name"] for j in listed]
    assert "bep-mlflow" in [e["name"] for e in cli("batch-endpoint", "list", "-o", "json", check=True).json()]
    assert ["nocode"] == [d["name"] for d in cli("batch-deployment", "list", "-e", "bep-mlflow", "-o", "json",
                                                    check=True).json()]
    # a data asset (uri_file) and a single file input
    cli("data", "create", "--name", "bep-part0", "--type", "uri_file", "--path", str(files["data"] / "part-0.csv"),
        check=True)
    job2 = ml_client.batch_endpoints.invoke("bep-mlflow", deployment_name="nocode",
                                            inputs={"heart": Input(type="uri_file", path="azureml:bep-part0@latest")},
                                            outputs={"score": Output(path=out_uri + "-2")})
    ml_client.jobs.stream(job2.name)
    lines2 = _lines(ml_client, job2.name, tmp_path / "dl2")  # a uri_file: run() got [its path]
    assert [ln.split(",")[0] for ln in lines2] == ["0", "1", "2"] and {ln.split(",")[2] for ln in lines2} == {
        "part-0.csv"}
    cli("batch-deployment", "delete", "-n", "nocode", "-e", "bep-mlflow", "--yes", check=True)
    assert not (ml_client.batch_endpoints.get("bep-mlflow").defaults or {}) or \
        ml_client.batch_endpoints.get("bep-mlflow").defaults.deployment_name is None
    cli("batch-endpoint", "delete", "-n", "bep-mlflow", "--yes", check=True)


def test_bad_input_is_refused_before_anything_runs(cli: Any, ml_client: Any, files: dict[str, Path],
                                                   tmp_path: Path) -> None:
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="bep-bad")).result()
    n_jobs = len(ml_client.jobs.list())

    def refused(dep: Any, field: str) -> str:
        with pytest.raises((ValidationError, NotFoundError)) as exc:
            ml_client.batch_deployments.begin_create_or_update(dep)
        assert field in exc.value.message, exc.value.message
        return exc.value.message

    base: dict[str, Any] = {"name": "dep", "endpoint_name": "bep-bad",
                            "model": Model(name="bep-bad-mlflow", path=str(files["mlflow"]), type="mlflow_model"),
                            "compute": "local"}
    msg = refused(BatchDeployment(**{**base, "compute": "no-such-cluster"}), "compute")
    assert "no-such-cluster" in msg
    refused(BatchDeployment(**{**base, "output_file_name": ""}), "output_file_name")
    refused(BatchDeployment(**{**base, "code_path": str(files["norun"]), "scoring_script": "score.py",
                               "environment": ENV}),
            "code_configuration.scoring_script")
    refused(BatchDeployment(**{**base, "code_path": str(files["code"]), "scoring_script": "missing.py"}),
            "code_configuration.scoring_script")
    refused(BatchDeployment(**{**base, "model": "azureml:no-such-model:1"}), "model")
    refused(BatchDeployment(**{**base, "model": Model(name="bep-bad-custom", path=str(files["model"]))}),
            "code_configuration")
    (tmp_path / "zero.yml").write_text("name: dep\nendpoint_name: bep-bad\ntype: model\nmodel: azureml:x:1\n"
                                       "compute: local\nsettings:\n  mini_batch_size: 0\n")
    r = cli("batch-deployment", "create", "--file", str(tmp_path / "zero.yml"))
    assert r.returncode == 1 and "mini_batch_size" in r.stderr and "zero.yml" in r.stderr
    assert ml_client.batch_deployments.list("bep-bad") == []
    # a good deployment, then bad invocations
    ml_client.batch_deployments.begin_create_or_update(BatchDeployment(**base)).result()
    with pytest.raises(ValidationError) as exc:
        ml_client.batch_endpoints.invoke("bep-bad", deployment_name="dep", input=Input(path=str(files["empty"])))
    assert "empty folder" in exc.value.message and "inputs.input_data.path" in exc.value.message
    with pytest.raises(ValidationError) as exc:
        ml_client.batch_endpoints.invoke("bep-bad", deployment_name="dep",
                                         input=Input(path="azureml://datastores/workspaceblobstore/paths/none/x"))
    assert "inputs.input_data" in exc.value.message and "does not exist" in exc.value.message
    with pytest.raises((ValidationError, NotFoundError)) as exc:
        ml_client.batch_endpoints.invoke("bep-bad", deployment_name="dep", input=Input(path="azureml:no-such-data:1"))
    assert "no-such-data" in exc.value.message
    with pytest.raises(ValidationError) as exc:
        ml_client.batch_endpoints.invoke("bep-bad", input=Input(path=str(files["data"])))
    assert "no default deployment" in exc.value.message
    # the scoring_uri answers a REST client the same (the workspace's token, Azure's aad_token)
    import httpx

    scoring_uri = ml_client.batch_endpoints.get("bep-bad").scoring_uri
    r = httpx.post(scoring_uri, json={"inputs": {"x": {"type": "uri_folder", "path": "azureml://datastores/"
                                                                                       "workspaceblobstore/paths/x"}}},
                   headers={"Authorization": f"Bearer {ml_client._transport.token}"} if ml_client._transport.token
                   else {},
                   trust_env=False, timeout=60)
    assert r.status_code == 400 and "no default deployment" in r.text
    with pytest.raises(ValidationError) as exc:
        ml_client.batch_endpoints.invoke("bep-bad", deployment_name="dep", input=Input(path=str(files["data"])),
                                         params_override=[{"mini_batch_size": 0}])
    assert "mini_batch_size" in exc.value.message
    with pytest.raises(NotFoundError):
        ml_client.batch_endpoints.invoke("bep-bad", deployment_name="nope", input=Input(path=str(files["data"])))
    with pytest.raises(ValidationError) as exc:
        ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="bep-bad", defaults={"deployment_name": "x"}))
    assert "defaults.deployment_name" in exc.value.message
    with pytest.raises(ValidationError) as exc:
        ml_client.batch_deployments.begin_create_or_update(PipelineComponentBatchDeployment(
            name="pipe", endpoint_name="bep-bad", job_definition="azureml:some-pipeline-job"))
    assert "job_definition" in exc.value.message and "not supported" in exc.value.message
    with pytest.raises(NotFoundError):
        ml_client.batch_deployments.begin_create_or_update(PipelineComponentBatchDeployment(
            name="pipe", endpoint_name="bep-bad", component="azureml:no-such-component:1"))
    assert [d.name for d in ml_client.batch_deployments.list("bep-bad")] == ["dep"]
    assert len(ml_client.jobs.list()) == n_jobs  # nothing ran
    ml_client.batch_endpoints.begin_delete("bep-bad")


def test_output_file_names_with_folders_and_taken_output_paths_are_refused(
        cli: Any, ml_client: Any, server: Any, files: dict[str, Path], tmp_path: Path) -> None:
    """Review (majors 1 and 2): ``output_file_name: ../../x.csv`` was accepted and the job reported
    its rows written while the output stayed empty; a second invoke to the same ``--output-path``
    replaced the first job's predictions."""
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="bep-out")).result()
    n_jobs = len(ml_client.jobs.list())
    base: dict[str, Any] = {"name": "dep", "endpoint_name": "bep-out",
                            "model": Model(name="bep-out-mlflow", path=str(files["mlflow"]), type="mlflow_model"),
                            "compute": "local"}
    for bad in ("../../x.csv", "sub/x.csv", ".."):
        with pytest.raises(ValidationError) as exc:
            ml_client.batch_deployments.begin_create_or_update(BatchDeployment(**{**base, "output_file_name": bad}))
        assert "field 'output_file_name'" in exc.value.message and "not a plain file name" in exc.value.message
    assert ml_client.batch_deployments.list("bep-out") == []
    ml_client.batch_deployments.begin_create_or_update(BatchDeployment(**base)).result()
    with pytest.raises(ValidationError) as exc:
        ml_client.batch_endpoints.invoke("bep-out", deployment_name="dep", input=Input(path=str(files["data"])),
                                         params_override=[{"output_file_name": "../x.csv"}])
    assert "field 'output_file_name'" in exc.value.message
    # an output path that holds the output file already (an earlier job's) is refused, naming it
    taken = server.path / "datastores" / "workspaceblobstore" / "bep-out" / "same"
    taken.mkdir(parents=True)
    (taken / "predictions.csv").write_text("0,1.0,a.csv\n")
    r = cli("batch-endpoint", "invoke", "-n", "bep-out", "--deployment-name", "dep", "--input", str(files["data"]),
            "--output-path", "azureml://datastores/workspaceblobstore/paths/bep-out/same")
    assert r.returncode != 0 and "predictions.csv exists already" in r.stderr and "output_path" in r.stderr, r.stderr
    assert (taken / "predictions.csv").read_text() == "0,1.0,a.csv\n"
    # a parallel job's --append_row_file_name is checked the same
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text("def run(mini_batch):\n    return list(mini_batch)\n")
    (tmp_path / "p.yml").write_text(
        "type: parallel\ncompute: local\ninputs:\n  data: {type: uri_folder, path: " + str(files["data"]) + "}\n"
        "outputs:\n  out: {type: uri_folder}\ninput_data: ${{inputs.data}}\nmini_batch_size: '1'\n"
        "task:\n  type: run_function\n  code: ./src\n  entry_script: score.py\n"
        "  append_row_to: ${{outputs.out}}\n  program_arguments: --append_row_file_name ../../evil.txt\n")
    r = cli("job", "create", "--file", str(tmp_path / "p.yml"))
    assert r.returncode != 0 and "--append_row_file_name" in r.stderr and "not a plain file name" in r.stderr, r.stderr
    assert len(ml_client.jobs.list()) == n_jobs  # nothing ran
    ml_client.batch_endpoints.begin_delete("bep-out")


@pytest.mark.slow
def test_summary_only_script_writes_its_own_files_into_azureml_bi_output_path(
        ml_client: Any, files: dict[str, Path], tmp_path: Path) -> None:
    """Review (major 3): Azure's custom-output pattern (``output_action: summary_only``, the script
    writing into ``AZUREML_BI_OUTPUT_PATH``) failed with KeyError: the variable was not set."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(
        "import os, pathlib\n\ndef init():\n    pass\n\n"
        "def run(mini_batch):\n    out = pathlib.Path(os.environ['AZUREML_BI_OUTPUT_PATH'])\n"
        "    for f in mini_batch:\n        (out / ('scored-' + os.path.basename(f))).write_text('ok')\n"
        "    return list(mini_batch)\n")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="bep-custom")).result()
    ml_client.batch_deployments.begin_create_or_update(BatchDeployment(
        name="writer", endpoint_name="bep-custom", model=Model(name="bep-custom-lr", path=str(files["model"])),
        code_path=str(code), scoring_script="score.py", environment=ENV, compute="local",
        output_action="summary_only", mini_batch_size=1)).result()
    job = ml_client.batch_endpoints.invoke("bep-custom", deployment_name="writer", input=Input(path=str(files["data"])))
    assert ml_client.jobs.wait(job.name, timeout=300).status == "Completed"
    ml_client.jobs.download(job.name, output_name="score", download_path=str(tmp_path / "dl"))
    assert sorted(p.name for p in (tmp_path / "dl").rglob("scored-*")) == [f"scored-part-{i}.csv" for i in range(3)]
    ml_client.batch_endpoints.begin_delete("bep-custom")


def test_mlflow_driver_reads_whole_numbers_as_the_signature_floats(files: dict[str, Path], tmp_path: Path) -> None:
    """Regression (chapter 7 example): a CSV column of whole numbers reads as int64, which MLflow's schema check
    refused for a double column, so every mini-batch failed; the driver casts them as the signature says."""
    import importlib.util

    import mlflow.pyfunc

    spec = importlib.util.spec_from_file_location(
        "batch_driver", Path(__file__).resolve().parents[1] / "src" / "openaml" / "serving" / "batch_driver.py")
    assert spec is not None and spec.loader is not None
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    driver._model = mlflow.pyfunc.load_model(str(files["mlflow"]))
    (tmp_path / "ints.csv").write_text("x\n1\n2\n")
    (tmp_path / "empty.csv").write_text("x\n")
    lines = driver._score_files([str(tmp_path / "ints.csv"), str(tmp_path / "empty.csv")])
    assert [ln.split(",")[0] for ln in lines] == ["0", "1"] and [ln.split(",")[2] for ln in lines] == ["ints.csv"] * 2
    assert [round(float(ln.split(",")[1]), 6) for ln in lines] == [3.0, 5.0]


def test_bad_flag_values_give_one_line_errors_not_tracebacks(cli: Any, files: dict[str, Path]) -> None:
    """Review minors 5-6: ``--input-type foo`` and ``batch-deployment update --set`` of a field the
    entity refuses printed pydantic tracebacks."""
    r = cli("batch-endpoint", "invoke", "-n", "bep-none", "--input", str(files["data"]), "--input-type", "foo")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "'foo'" in r.stderr and "type" in r.stderr, r.stderr
