"""Review 16's findings F3, F4 and F5, each a regression test asserting the right value.

- F5: ``set_limits`` (and ``set_resources``, ``set_queue_settings``) on pipeline nodes, as Azure's RAI
  notebooks call them; ``from openaml.entities import PipelineJob``.
- F3: the RAI components under every version Azure published (0.1.0 ... 0.22.0), ``latest`` the newest;
  a version Azure never published is refused, listing them.
- F4: ``type: path`` ports; Azure's RAI environments (``responsibleai-tabular`` ...) resolve to the
  environment the built-in RAI components run in, where ``mlflow.sklearn.save_model`` pickles (as on
  Azure's image); Azure's RAI CLI housing sample (own equivalent in tests/data/rai_cli_housing) runs
  with only its paths changed (the ``rai`` tier: it runs the RAI components).
"""

from __future__ import annotations

import json
import shutil
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from openaml.errors import NotFoundError, ValidationError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "rai_cli_housing"
HOUSING = ROOT / "examples" / "housing" / "rai" / "data"
AZURE_VERSIONS = [f"0.{m}.0" for m in range(1, 23)]  # Azure/azureml-assets' history of the RAI spec.yaml files


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------- F5
def test_node_set_limits_resources_and_queue_settings_land_in_the_node() -> None:
    from openaml import Output, command, dsl
    from openaml.entities import PipelineJob

    step = command(command="echo hi > ${{outputs.out}}/a.txt", outputs={"out": Output(type="uri_folder")})

    @dsl.pipeline(compute="local")
    def pipe() -> dict:
        node = step()
        node.set_limits(timeout=120)
        node.set_resources(instance_count=1, instance_type="STANDARD_DS3_v2", shm_size="2g")
        node.set_resources(docker_args="--ipc=host")  # merged with the earlier fields, as azure-ai-ml
        node.set_queue_settings(job_tier="Standard", priority="medium")
        assert node.limits.timeout == 120
        return {"out": node.outputs.out}

    job = pipe()
    assert isinstance(job, PipelineJob)
    (nd,) = job.jobs.values()
    assert nd.limits == {"timeout": 120}
    assert nd.resources == {"instance_count": 1, "instance_type": "STANDARD_DS3_v2", "shm_size": "2g",
                            "docker_args": "--ipc=host"}
    assert nd.queue_settings == {"job_tier": "Standard", "priority": "medium"}


def test_node_set_limits_refuses_bad_values_naming_the_field() -> None:
    from openaml import command, dsl

    step = command(command="echo hi")
    seen: list[str] = []

    @dsl.pipeline()
    def pipe() -> None:
        node = step()
        for call in (lambda: node.set_limits(timeout=0), lambda: node.set_limits(timeout="2h"),  # type: ignore[arg-type]
                     lambda: node.set_limits(timeout=5, max_total_trials=3),
                     lambda: node.set_queue_settings(job_tier="Gold"),
                     lambda: node.set_resources(instance_count=0)):
            with pytest.raises(ValidationError) as exc:
                call()
            seen.append(str(exc.value))

    pipe()
    assert "timeout must be a positive whole number of seconds (got 0)" in seen[0]
    assert "(got '2h')" in seen[1]
    assert "a command node has only the limit 'timeout' (seconds); got max_total_trials" in seen[2]
    assert "job_tier 'Gold' is not one of spot, basic, standard, premium" in seen[3]
    assert "set_resources:" in seen[4] and "instance_count" in seen[4]


def test_set_limits_on_a_pipeline_node_is_enforced_on_its_step(ml_client: Any) -> None:
    """Regression (F5): ``node.set_limits(timeout=...)`` raised AttributeError; now the step job carries
    ``limits.timeout`` and is canceled when it runs past it, naming the limit."""
    from openaml import command, dsl

    slow = command(command="echo start && sleep 120")

    @dsl.pipeline(compute="local")
    def pipe() -> None:
        node = slow()
        node.set_limits(timeout=3)

    created = ml_client.jobs.create_or_update(pipe())
    final = ml_client.jobs.wait(created.name, timeout=180)
    assert final.status in ("Failed", "Canceled")
    (child,) = [j for j in ml_client.jobs.list(parent_job_name=created.name)]
    raw = ml_client.jobs.get_raw(child.name)
    assert raw["limits"] == {"timeout": 3}
    assert raw["status"] == "Canceled" and "limits.timeout" in raw["error"]


def test_the_rai_notebooks_pipeline_function_builds_with_set_limits(server: Any) -> None:
    """The flow of Azure's RAI notebooks: registry components by ``label="latest"`` then ``version=``,
    called inside ``@dsl.pipeline``, ``set_limits(timeout=...)`` on the constructor and error analysis."""
    from openaml import Input, MLClient, dsl

    reg = MLClient(workspace=server.url, registry_name="azureml")
    version = reg.components.get(name="microsoft_azureml_rai_tabular_insight_constructor", label="latest").version
    constructor = reg.components.get(name="microsoft_azureml_rai_tabular_insight_constructor", version=version)
    erroranalysis = reg.components.get(name="microsoft_azureml_rai_tabular_erroranalysis", version=version)

    @dsl.pipeline(compute="local", experiment_name="rai_notebook")
    def rai_classification_pipeline(target_column_name: str, train_data: Input, test_data: Input) -> dict:
        create_rai_job = constructor(title="RAI dashboard", task_type="classification",
                                     model_info="housing-rf:1", train_dataset=train_data, test_dataset=test_data,
                                     target_column_name=target_column_name)
        create_rai_job.set_limits(timeout=300)
        error_job = erroranalysis(rai_insights_dashboard=create_rai_job.outputs.rai_insights_dashboard)
        error_job.set_limits(timeout=300)
        return {}

    job = rai_classification_pipeline(target_column_name="Sold_HigherThan_Median",
                                       train_data=Input(type="mltable", path="./train"),
                                       test_data=Input(type="mltable", path="./test"))
    assert version == "0.22.0"
    assert {n: nd.limits for n, nd in job.jobs.items()} == {"create_rai_job": {"timeout": 300},
                                                            "error_job": {"timeout": 300}}


def test_pipeline_job_is_exported_under_azures_name() -> None:
    import openaml.entities as entities
    from openaml.entities import PipelineJob
    from openaml.entities._pipeline import PipelineJob as Own

    assert PipelineJob is Own and "PipelineJob" in entities.__all__
    job = PipelineJob(jobs={}, settings={"default_compute": "azureml:local"})
    assert job.type == "pipeline" and job.settings.default_compute == "local"


# ------------------------------------------------------------------------------------------- F3
def test_registry_components_are_published_under_every_version_azure_published(server: Any, cli: Any) -> None:
    """Regression (F3): only 0.18.0 resolved; Azure's samples pin 0.3.0, 0.21.0, 0.22.0 ..."""
    from openaml import MLClient
    from openaml.rai.registry import AZURE_VERSIONS as published

    assert list(published) == AZURE_VERSIONS
    reg = MLClient(workspace=server.url, registry_name="azureml")
    for name in ("microsoft_azureml_rai_tabular_insight_constructor", "rai_tabular_insight_constructor",
                 "rai_tabular_score_card", "microsoft_azureml_rai_tabular_causal"):
        for version in ("0.1.0", "0.3.0", "0.18.0", "0.21.0", "0.22.0"):
            comp = reg.components.get(name, version=version)
            assert comp.name == name and comp.version == version
        assert reg.components.get(name, label="latest").version == "0.22.0"
    old = reg.components.get("microsoft_azureml_rai_tabular_insight_constructor", version="0.3.0")
    assert {"model_info_path", "model_info", "train_dataset", "test_dataset", "classes"} <= set(old.inputs)

    r = cli("component", "list", "--registry-name", "azureml", "-o", "json")
    assert r.returncode == 0, r.stderr
    listed = r.json()
    assert len(listed) == 16 and {c["version"] for c in listed} == {"0.22.0"}  # the latest of each name
    r = cli("component", "list", "--registry-name", "azureml", "-n", "rai_tabular_causal", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert [c["version"] for c in r.json()] == AZURE_VERSIONS[::-1]  # every version, newest first
    r = cli("component", "show", "-n", "microsoft_azureml_rai_tabular_explanation", "--registry-name", "azureml",
            "-v", "0.3.0", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert r.json()["id"] == "azureml://registries/azureml/components/microsoft_azureml_rai_tabular_explanation/" \
                             "versions/0.3.0"

    listing = "versions: " + ", ".join(AZURE_VERSIONS) + " (or /labels/latest)"
    for never in ("0.23.0", "0.0.1-preview", "1"):  # 0.0.1-preview was only in Azure's azureml-dev registry
        with pytest.raises(NotFoundError) as exc:
            reg.components.get("rai_tabular_explanation", version=never)
        assert f"version {never!r} not found in registry 'azureml'; {listing}" in str(exc.value)


def test_a_pipeline_pinning_an_azure_version_resolves_it(ml_client: Any, cli: Any, tmp_path: Path) -> None:
    """A pipeline naming .../versions/0.3.0 is accepted (its step is never started here: the step it
    depends on fails first); 0.23.0 is refused at submission, listing the versions."""
    yml = _write(tmp_path / "p.yml", """
        type: pipeline
        jobs:
          first:
            type: command
            command: exit 3
            outputs: {out: {type: uri_folder}}
          explain:
            type: command
            component: azureml://registries/azureml/components/microsoft_azureml_rai_tabular_explanation/versions/0.3.0
            inputs:
              rai_insights_dashboard: ${{parent.jobs.first.outputs.out}}
        """)
    r = cli("job", "create", "--file", str(yml), "-o", "json")
    assert r.returncode == 0, r.stderr
    name = r.json()["name"]
    assert ml_client.jobs.wait(name, timeout=120).status == "Failed"
    yml.write_text(yml.read_text().replace("0.3.0", "0.23.0"))
    r = cli("job", "create", "--file", str(yml))
    assert r.returncode != 0
    assert "version '0.23.0' not found in registry 'azureml'; versions: 0.1.0, 0.2.0, 0.3.0" in r.stderr


# ------------------------------------------------------------------------------------------- F4
def test_type_path_ports_are_read_as_uri_folder(tmp_path: Path) -> None:
    """Regression (F4a): ``type: path`` (Azure's RAI specs and samples) was refused."""
    from openaml import Input, Output, load_component

    comp = load_component(source=str(_write(tmp_path / "c.yml", """
        $schema: http://azureml/sdk-2-0/CommandComponent.json
        name: uses_path
        version: 1
        type: command
        inputs:
          training_data: {type: path}
        outputs:
          model_output_json: {type: path}
        command: cp -r ${{inputs.training_data}}/. ${{outputs.model_output_json}}
        """)))
    assert comp.inputs["training_data"].type == "uri_folder"
    assert comp.outputs["model_output_json"].type == "uri_folder"
    assert Input(type="path", path="./data").type == "uri_folder" and Output(type="path").type == "uri_folder"
    with pytest.raises(ValueError, match="'uri_file', 'uri_folder'"):
        Output(type="paths")


_SAVE = """
    import sys, mlflow.sklearn, yaml
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    X, y = [[0, 1], [1, 0], [0, 0], [1, 1]], [0, 1, 0, 1]
    model = RandomForestClassifier(n_estimators=3, random_state=0) if sys.argv[1] == "forest" else LogisticRegression()
    mlflow.sklearn.save_model(model.fit(X, y), sys.argv[2] + "/m")
    print("format:", yaml.safe_load(open(sys.argv[2] + "/m/MLmodel"))["flavors"]["sklearn"]["serialization_format"])
    """


def _save_job(tmp_path: Path, env: str | None, kind: str) -> Path:
    _write(tmp_path / "src" / "save.py", _SAVE)
    return _write(tmp_path / f"job-{kind}-{abs(hash(env))}.yml", f"""
        type: command
        code: ./src
        command: python save.py {kind} ${{{{outputs.out}}}}
        outputs: {{out: {{type: path}}}}
        """ + (f"environment: {env}\n" if env else ""))


def test_azures_rai_environments_run_in_the_rai_components_environment_and_pickle_sklearn(
        ml_client: Any, cli: Any, tmp_path: Path) -> None:
    """Regression (F4b, F4c): ``responsibleai-tabular`` was "not known here"; and MLflow 3's skops default
    refused the sample's RandomForest ("untrusted types ... sklearn.tree._tree.Tree"). The RAI environment
    saves scikit-learn models with cloudpickle, as Azure's image; a job without environment keeps
    MLflow's default (skops)."""
    jobs = {
        "registry": _save_job(tmp_path, "azureml://registries/azureml/environments/responsibleai-tabular/versions/24",
                              "forest"),
        "workspace-form": _save_job(tmp_path, "azureml:responsibleai-tabular@latest", "logistic"),
        "default": _save_job(tmp_path, None, "logistic"),
    }
    names = {}
    for key, yml in jobs.items():
        r = cli("job", "create", "--file", str(yml), "-o", "json", cwd=tmp_path)
        assert r.returncode == 0, (key, r.stderr)
        names[key] = r.json()["name"]
    logs = {}
    for key, name in names.items():
        final = ml_client.jobs.wait(name, timeout=300)
        r = cli("job", "download", "-n", name, "--download-path", str(tmp_path / key))
        assert r.returncode == 0, r.stderr
        logs[key] = "\n".join(p.read_text() for p in (tmp_path / key).rglob("std_log*.txt"))
        assert final.status == "Completed", (key, logs[key][-3000:])
    assert "format: cloudpickle" in logs["registry"] and "format: cloudpickle" in logs["workspace-form"]
    assert "format: skops" in logs["default"]  # what the user did not ask to change stays as MLflow makes it
    raw = ml_client.jobs.get_raw(names["registry"])
    assert raw["environment"] == "azureml://registries/azureml/environments/responsibleai-tabular/versions/24"


def test_an_rai_environment_version_azure_never_published_is_refused(cli: Any, tmp_path: Path) -> None:
    yml = _save_job(tmp_path, "azureml://registries/azureml/environments/responsibleai-tabular/versions/29",
                    "forest")
    r = cli("job", "create", "--file", str(yml), cwd=tmp_path)
    assert r.returncode != 0
    assert "environment 'responsibleai-tabular' version '29' not found in registry 'azureml'; versions: 1 to 28" \
        in r.stderr


@pytest.mark.rai
@pytest.mark.timeout(900)
def test_azures_rai_cli_housing_sample_runs_with_only_its_paths_changed(cli: Any, ml_client: Any,
                                                                        tmp_path: Path) -> None:
    """F4 end to end: the sample's training component (``type: path``, environment
    ``responsibleai-tabular/versions/24``, ``mlflow.sklearn.save_model`` of a RandomForest pipeline,
    ``model_info.json``) and the RAI components pinned at 0.3.0 with ``limits.timeout``: Completed,
    the dashboard names the registered model, the score card is written."""
    work = tmp_path / "sample"
    shutil.copytree(SAMPLE, work)
    shutil.copytree(HOUSING, work / "data")
    # the sample's compute, as an Azure user creates it (az ml compute create)
    _write(tmp_path / "cpu-cluster.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json
        name: cpu-cluster
        type: amlcompute
        size: STANDARD_DS3_v2
        min_instances: 0
        max_instances: 4
        """)
    r = cli("compute", "create", "--file", str(tmp_path / "cpu-cluster.yml"))
    assert r.returncode == 0 or "already exists" in r.stderr, r.stderr
    model = f"housing_cli_{uuid.uuid4().hex[:6]}"
    yml = work / "pipeline.yml"
    yml.write_text(yml.read_text().replace("housing_cli_model", model))
    r = cli("job", "create", "--file", str(yml), "-o", "json", cwd=work)
    assert r.returncode == 0, r.stderr
    name = r.json()["name"]
    cli("job", "stream", "--name", name, timeout=900)
    job = ml_client.jobs.get_raw(name)
    steps = {j.name: j.status for j in ml_client.jobs.list(parent_job_name=name)}
    tails = {n: "\n".join(ml_client.jobs.get_raw(n).get("log_tail") or []) for n, st in steps.items() if st != "Completed"}
    assert job["status"] == "Completed", (job.get("error"), steps, tails)
    assert ml_client.jobs.get_raw(f"{name}-create_rai_job")["limits"] == {"timeout": 300}
    r = cli("job", "download", "--name", name, "--all", "--download-path", str(tmp_path / "dl"))
    assert r.returncode == 0, r.stderr
    dl = tmp_path / "dl"
    info = json.loads((dl / "train_model" / "named-outputs" / "model_output_json" / "model_info.json").read_text())
    assert info == {"id": f"{model}:1"}
    saved = (dl / "train_model" / "named-outputs" / "model_output" / "MLmodel").read_text()
    assert "serialization_format: cloudpickle" in saved
    d = json.loads((dl / "gather_01" / "named-outputs" / "dashboard" / "dashboard.json").read_text())
    assert d["model"]["name"] == model and d["model"]["version"] == "1"
    assert d["classes"] == ["Less than median", "More than median"]
    assert d["explanation"] and d["error_analysis"] and d["counterfactual"] and d["causal"]
    card = json.loads((dl / "scorecard_01" / "named-outputs" / "scorecard" / "scorecard.json").read_text())
    assert card["verdict"] in ("pass", "fail") and card["checks"][0]["metric"] == "accuracy"


def test_error_analysis_with_a_string_categorical_feature_builds_its_tree() -> None:
    """Regression (found running the sample): with a categorical string feature, erroranalysis 0.4.2
    wrote its codes into a pandas 3 read-only array ("assignment destination is read-only"), failing
    the error-analysis step of the housing data (``Ce0tralAir``)."""
    import numpy as np
    import pandas as pd

    from openaml.rai._insights import _patch_erroranalysis, _WritableFrame

    _patch_erroranalysis()
    from erroranalysis.analyzer import PredictionsAnalyzer

    test = pd.read_parquet(HOUSING / "test" / "test.parquet")
    X = test.drop(columns=["Sold_HigherThan_Median"]).reset_index(drop=True)
    X = X.assign(Ce0tralAir=X["Ce0tralAir"].astype(object))
    y = test["Sold_HigherThan_Median"].astype(str).to_numpy()
    pred = np.where(X["OverallQual"] > 6, "More than median", "Less than median")
    analyzer = PredictionsAnalyzer(pred, _WritableFrame(X), y, list(X.columns), ["Ce0tralAir"],
                                   model_task="classification")
    nodes = analyzer.compute_error_tree(list(X.columns), None, None, max_depth=3, num_leaves=31, min_child_samples=20)
    assert nodes[0]["size"] == len(X) and nodes[0]["error"] == int((pred != y).sum())
    matrix = analyzer.compute_matrix(["Ce0tralAir", "OverallQual"], None, None)
    assert sum(c["count"] for row in matrix["matrix"] for c in row) == len(X)
    importances = analyzer.compute_importances()
    assert len(importances) == X.shape[1] and max(importances) > 0
