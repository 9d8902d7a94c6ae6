"""Conformance: azureml-examples pipeline jobs run unchanged with ``openaml job create -f <file> --stream``.

The YAML files under tests/conformance/pipelines/ are copies of the public ones, byte for byte;
the scripts and the small CSV files next to them are ours, with the same arguments (see
tests/conformance/pipelines/README.md). The workspace gets what the public README files ask
for: a compute named ``cpu-cluster`` and, for ``4d_data_input``, the data asset from its
``data.yml``.

All pipelines are submitted at once (each by its own CLI process) in a module fixture; the tests
then check each one's steps, logs and outputs through the SDK.
"""

from __future__ import annotations

import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CONFORMANCE = Path(__file__).resolve().parent / "conformance" / "pipelines"
BASICS = "jobs/basics"
COMPONENTS = "jobs/pipelines-with-components/basics"
PIPELINE_COMPONENT = ("jobs/pipelines-with-components/pipeline_with_pipeline_component/"
                      "pipeline_with_train_eval_pipeline_component/pipeline.yml")
CASES = [
    f"{BASICS}/hello-pipeline.yml",
    f"{BASICS}/hello-pipeline-io.yml",
    f"{BASICS}/hello-pipeline-abc.yml",
    f"{BASICS}/hello-pipeline-settings.yml",
    f"{BASICS}/hello-pipeline-default-artifacts.yml",
    f"{COMPONENTS}/1a_e2e_local_components/pipeline.yml",
    f"{COMPONENTS}/2b_component_with_input_output/pipeline.yml",
    f"{COMPONENTS}/3b_pipeline_with_data/pipeline.yml",
    f"{COMPONENTS}/4a_local_data_input/pipeline.yml",
    f"{COMPONENTS}/4d_data_input/pipeline.yml",
    PIPELINE_COMPONENT,
]


@dataclass
class Run:
    yml: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def name(self) -> str:
        m = re.search(r"^RunId: (\S+)", self.stdout, re.MULTILINE)
        assert m, f"no RunId in the output of {self.yml}:\n{self.stdout}\n{self.stderr}"
        return m.group(1)

    def assert_completed(self) -> None:
        assert self.returncode == 0, f"{self.yml} failed ({self.returncode}):\n{self.stdout}\n{self.stderr}"
        assert "Status: Completed" in self.stdout, self.stdout


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of tests/conformance/pipelines laid out as azureml-examples' cli/ folder."""
    root = tmp_path_factory.mktemp("cli")
    shutil.copytree(CONFORMANCE / "jobs", root / "jobs")
    return root


@pytest.fixture(scope="module")
def runs(cli, ml_client, tree: Path) -> dict[str, Run]:  # type: ignore[no-untyped-def]
    # what the public README files ask the reader to create first
    if "cpu-cluster" not in {c.name for c in ml_client.compute.list()}:
        cli("compute", "create", "--name", "cpu-cluster", "--max-instances", "2", check=True)
    cli("data", "create", "--file", str(tree / COMPONENTS / "4d_data_input" / "data.yml"), check=True)

    def run(yml: str) -> Run:
        r = cli("job", "create", "--file", str(tree / yml), "--stream", cwd=tree, timeout=300)
        return Run(yml, r.returncode, r.stdout, r.stderr)

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {yml: pool.submit(run, yml) for yml in CASES}
        return {yml: f.result() for yml, f in futures.items()}


def _steps(ml_client: Any, run: Run) -> dict[str, dict[str, Any]]:
    """node -> the child job (raw), for a completed pipeline."""
    return {c.name[len(run.name) + 1:]: ml_client.jobs.get_raw(c.name)
            for c in ml_client.jobs.list(parent_job_name=run.name)}


def _log(step: dict[str, Any]) -> str:
    return "\n".join(step.get("log_tail") or [])


def _output(ml_client: Any, tmp_path: Path, job: str, output: str) -> Path:
    """Download a named output of ``job`` (a pipeline or a step) and return its folder."""
    ml_client.jobs.download(job, download_path=tmp_path, output_name=output)
    return tmp_path / "named-outputs" / output


def _completed(runs: dict[str, Run], yml: str, ml_client: Any, nodes: set[str]) -> tuple[dict[str, Any], dict]:
    run = runs[yml]
    run.assert_completed()
    steps = _steps(ml_client, run)
    assert set(steps) == nodes, steps.keys()
    assert all(s["status"] == "Completed" for s in steps.values()), {n: s["status"] for n, s in steps.items()}
    return ml_client.jobs.get_raw(run.name), steps


# ---------------------------------------------------------------------------- jobs/basics
def test_hello_pipeline_two_independent_inline_steps(runs, ml_client) -> None:  # type: ignore[no-untyped-def]
    job, steps = _completed(runs, f"{BASICS}/hello-pipeline.yml", ml_client, {"hello_job", "world_job"})
    assert job["type"] == "pipeline" and job["display_name"] == "hello_pipeline"
    assert job["experiment_name"] == "basics"  # Azure's default: the folder the YAML is in
    assert "hello" in _log(steps["hello_job"]) and "world" in _log(steps["world_job"])
    assert steps["hello_job"]["compute"] == steps["world_job"]["compute"] == "cpu-cluster"
    assert job["steps"]["hello_job"]["depends_on"] == job["steps"]["world_job"]["depends_on"] == []
    out = runs[f"{BASICS}/hello-pipeline.yml"].stdout  # --stream follows every step, lines prefixed by step
    assert "[hello_job] hello" in out and "[world_job] world" in out and "[world_job] step Completed" in out


def test_hello_pipeline_io_passes_a_folder_between_steps(runs, ml_client) -> None:  # type: ignore[no-untyped-def]
    job, steps = _completed(runs, f"{BASICS}/hello-pipeline-io.yml", ml_client, {"hello_job", "world_job"})
    assert job["steps"]["world_job"]["depends_on"] == ["hello_job"]
    assert "hello" in _log(steps["hello_job"])
    assert _log(steps["world_job"]).strip() == "world"  # cat of the file hello_job wrote


def test_hello_pipeline_abc_parent_inputs_and_default_compute(runs, ml_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    job, steps = _completed(runs, f"{BASICS}/hello-pipeline-abc.yml", ml_client, {"a", "b", "c"})
    assert "hello hello world" in _log(steps["a"])  # ${{parent.inputs.hello_string_top_level_input}}
    assert {s["compute"] for s in steps.values()} == {"cpu-cluster"}  # settings.default_compute
    assert job["steps"]["c"]["depends_on"] == ["b"]
    assert _log(steps["c"]).strip().endswith("/world.txt")  # c echoes the path of b's output
    world = _output(ml_client, tmp_path, steps["b"]["name"], "world_output") / "world.txt"
    assert world.read_text() == "world\n"


def test_hello_pipeline_settings(runs, ml_client) -> None:  # type: ignore[no-untyped-def]
    job, steps = _completed(runs, f"{BASICS}/hello-pipeline-settings.yml", ml_client, {"hello_job", "world_job"})
    assert job["settings"]["default_datastore"] == "workspaceblobstore"
    assert job["settings"]["default_compute"] == "cpu-cluster"
    for step in steps.values():
        # `echo 202204190 & echo "hello"` backgrounds the first echo: only "hello" is sure to be logged
        assert "hello" in _log(step)
        assert step["compute"] == "cpu-cluster"


def test_hello_pipeline_default_artifacts_output_feeds_the_next_step(runs, ml_client) -> None:  # type: ignore[no-untyped-def]
    job, steps = _completed(runs, f"{BASICS}/hello-pipeline-default-artifacts.yml", ml_client,
                            {"hello_job", "world_job"})
    assert job["steps"]["world_job"]["depends_on"] == ["hello_job"]
    assert _log(steps["world_job"]).strip() == "world"  # ${{...outputs.artifacts}}/outputs/world.txt


# ---------------------------------------------------------------------------- pipelines-with-components
def test_1a_e2e_local_components_train_score_eval(runs, ml_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    yml = f"{COMPONENTS}/1a_e2e_local_components/pipeline.yml"
    job, steps = _completed(runs, yml, ml_client, {"train_job", "score_job", "evaluate_job"})
    assert job["experiment_name"] == "1a_e2e_local_components"
    assert job["description"] == "Dummy train-score-eval pipeline with local components"
    assert [job["steps"][n]["depends_on"] for n in ("train_job", "score_job", "evaluate_job")] == \
        [[], ["train_job"], ["score_job"]]
    model = _output(ml_client, tmp_path / "m", runs[yml].name, "pipeline_job_trained_model") / "model.txt"
    # pipeline inputs override the component defaults (learning_rate 0.01 -> 1.8)
    assert model.read_text() == "model epochs=20 lr=1.8 schedule=time-based rows=4\n"
    report = _output(ml_client, tmp_path / "e", runs[yml].name, "pipeline_job_evaluation_report")
    assert (report / "eval_result.txt").read_text().startswith("evaluated: scored sample1.csv with model epochs=20")


def test_2b_component_input_default_is_used_when_not_bound(runs, ml_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    yml = f"{COMPONENTS}/2b_component_with_input_output/pipeline.yml"
    _completed(runs, yml, ml_client, {"hello_python_world_job"})
    out = _output(ml_client, tmp_path, runs[yml].name, "pipeline_sample_output_data")
    assert (out / "hello.txt").read_text() == "hello_python_world_default: sample.csv\n"


def test_3b_three_components_chained_by_data(runs, ml_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    yml = f"{COMPONENTS}/3b_pipeline_with_data/pipeline.yml"
    job, steps = _completed(runs, yml, ml_client, {"component_a", "component_b", "component_c"})
    assert {s["compute"] for s in steps.values()} == {"cpu-cluster"}
    out = _output(ml_client, tmp_path, runs[yml].name, "final_pipeline_output")
    assert sorted(p.name for p in out.iterdir()) == ["componentA.txt", "componentB.txt", "componentC.txt",
                                                     "sample.csv"]


def test_3b_rerun_unchanged_reuses_every_step(runs, cli, ml_client, tree) -> None:  # type: ignore[no-untyped-def]
    yml = f"{COMPONENTS}/3b_pipeline_with_data/pipeline.yml"
    runs[yml].assert_completed()
    r = cli("job", "create", "--file", str(tree / yml), "--stream", cwd=tree, timeout=120)
    again = Run(yml, r.returncode, r.stdout, r.stderr)
    again.assert_completed()
    steps = _steps(ml_client, again)
    assert {n: s["properties"]["azureml.isreused"] for n, s in steps.items()} == \
        {"component_a": "true", "component_b": "true", "component_c": "true"}
    assert steps["component_c"]["properties"]["azureml.reusedrunid"].startswith(runs[yml].name + "-")


def test_4a_local_folder_and_pipeline_string_input(runs, ml_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    yml = f"{COMPONENTS}/4a_local_data_input/pipeline.yml"
    _completed(runs, yml, ml_client, {"hello_python_world_job"})
    out = _output(ml_client, tmp_path, runs[yml].name, "pipeline_sample_output_data")
    assert (out / "hello.txt").read_text() == "Hello_Pipeline_World: sample.csv\n"


def test_4d_registered_data_asset_as_input(runs, ml_client) -> None:  # type: ignore[no-untyped-def]
    yml = f"{COMPONENTS}/4d_data_input/pipeline.yml"
    job, steps = _completed(runs, yml, ml_client, {"python_hello_step", "python_world_step"})
    assert "input_string: Pipeline_Hello" in _log(steps["python_hello_step"])
    # component-world declares an mltable port and receives a uri_folder: the path is passed through
    assert "input_string: Pipeline_World" in _log(steps["python_world_step"])
    for step in steps.values():
        assert "files in input_data: ['sample.csv']" in _log(step)
        assert step["inputs"]["sample_input_data"]["mode"] == "ro_mount"


def test_pipeline_with_train_eval_pipeline_component(runs, ml_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = runs[PIPELINE_COMPONENT]
    run.assert_completed()
    job = ml_client.jobs.get_raw(run.name)
    assert job["experiment_name"] == "pipeline_with_pipeline_component"
    inner = ("train_job", "score_job", "evaluate_job")
    expected = {f"train_and_evaluate_model{i}-{n}" for i in (1, 2) for n in inner} | {"compare"}
    assert set(job["steps"]) == expected  # the pipeline component, used twice, expanded into the graph
    steps = _steps(ml_client, run)
    assert all(s["status"] == "Completed" for s in steps.values()), {n: s["status"] for n, s in steps.items()}
    # compute promoted to a string input and bound per node
    assert steps["train_and_evaluate_model1-train_job"]["compute"] == steps["compare"]["compute"] == "cpu-cluster"
    assert "training_max_epochs" not in steps["train_and_evaluate_model2-train_job"]["inputs"]
    assert steps["train_and_evaluate_model2-train_job"]["inputs"]["learning_rate"]["value"] == 0.01
    assert set(job["steps"]["compare"]["depends_on"]) == {f"train_and_evaluate_model{i}-{n}" for i in (1, 2)
                                                         for n in ("train_job", "evaluate_job")}
    best = _output(ml_client, tmp_path / "m", run.name, "pipeline_job_best_model") / "model.txt"
    assert best.read_text() == "lr=0.01 epochs=20\n"  # closer to 0.05 than 0.1: model 2 wins
    result = _output(ml_client, tmp_path / "r", run.name, "pipeline_job_best_result") / "eval_result.txt"
    assert result.read_text() == "accuracy=0.96\n"
