"""AutoML as a pipeline node (issue 14, spec 6.1): a ``type: automl`` step in a YAML pipeline and
``automl.classification(...)`` inside ``@dsl.pipeline``, its training data bound from an earlier
step's output and its ``outputs.best_model`` (the best trial's MLflow model) scored by a later step."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from openaml.errors import ValidationError
from tests.test_automl import MLTABLE, _frame


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def _project(root: Path) -> None:
    """split (raw csv -> train MLTable + held-out rows) ... automl ... score (best_model on the rows)."""
    _frame(n=200).to_csv(_write(root / "raw" / "data.csv", ""), index=False)
    _write(root / "src" / "split.py", f"""
        import sys, pathlib
        import pandas as pd
        raw, train, rows = (pathlib.Path(a) for a in sys.argv[1:4])
        df = pd.read_csv(raw / "data.csv")
        df.iloc[:160].to_csv(train / "data.csv", index=False)
        (train / "MLTable").write_text({MLTABLE!r})
        df.iloc[160:].drop(columns=["label"]).to_csv(rows / "rows.csv", index=False)
        """)
    _write(root / "src" / "score.py", """
        import sys, pathlib
        import mlflow.pyfunc
        import pandas as pd
        model, rows, out = (pathlib.Path(a) for a in sys.argv[1:4])
        pred = mlflow.pyfunc.load_model(str(model)).predict(pd.read_csv(rows / "rows.csv"))
        (out / "predictions.txt").write_text("\\n".join(map(str, pred)))
        """)
    _write(root / "split.yml", """
        name: split_rows
        type: command
        inputs: {raw: {type: uri_folder}}
        outputs: {train: {type: mltable}, rows: {type: uri_folder}}
        code: ./src
        command: python split.py ${{inputs.raw}} ${{outputs.train}} ${{outputs.rows}}
        """)
    _write(root / "score.yml", """
        name: score_rows
        type: command
        inputs: {model: {type: mlflow_model}, rows: {type: uri_folder}}
        outputs: {predictions: {type: uri_folder}}
        code: ./src
        command: python score.py ${{inputs.model}} ${{inputs.rows}} ${{outputs.predictions}}
        """)


_AUTOML_NODE = """
    type: automl
    task: classification
    primary_metric: AUC_weighted
    target_column_name: label
    training_data: ${{parent.jobs.split.outputs.train}}
    n_cross_validations: 2
    limits: {timeout_minutes: 5, trial_timeout_minutes: 3, max_trials: 2, max_concurrent_trials: 2}
    training: {allowed_training_algorithms: [LightGBM, LogisticRegression], enable_vote_ensemble: false,
               enable_stack_ensemble: false, enable_model_explainability: false}
    outputs: {best_model: {type: mlflow_model}}
"""


def _pipeline_yaml(root: Path, automl_node: str = _AUTOML_NODE) -> Path:
    node = textwrap.indent(textwrap.dedent(automl_node).strip(), " " * 4)
    return _write(root / "pipeline.yml", "type: pipeline\nexperiment_name: automl-pipeline\n"
                  "settings: {default_compute: local}\ninputs:\n  raw: {type: uri_folder, path: ./raw}\n"
                  "outputs:\n  predictions: {type: uri_folder}\njobs:\n"
                  "  split:\n    component: ./split.yml\n    inputs: {raw: '${{parent.inputs.raw}}'}\n"
                  f"  classify:\n{node}\n"
                  "  score:\n    component: ./score.yml\n    inputs:\n"
                  "      model: ${{parent.jobs.classify.outputs.best_model}}\n"
                  "      rows: ${{parent.jobs.split.outputs.rows}}\n"
                  "    outputs: {predictions: '${{parent.outputs.predictions}}'}\n")


def _check_ran(ml_client: Any, name: str, tmp_path: Path) -> None:
    done = ml_client.jobs.wait(name, timeout=900)
    raw = ml_client.jobs.get_raw(name)
    assert done.status == "Completed", raw.get("error")
    node = ml_client.jobs.get_raw(f"{name}-classify")
    assert node["type"] == "automl" and node["parent_job_name"] == name  # the node is an AutoML job
    trials = [t for t in ml_client.jobs.list_raw(parent_job_name=f"{name}-classify")
              if (t.get("properties") or {}).get("openaml.automl_role") != "worker"]  # its trial workers aside
    assert len(trials) == 2 and {t["status"] for t in trials} == {"Completed"}  # one child job per trial
    assert node["best_child_run_id"] in {t["name"] for t in trials}
    dl = tmp_path / "dl"
    ml_client.jobs.download(f"{name}-classify", download_path=dl, output_name="best_model")
    assert (dl / "named-outputs" / "best_model" / "MLmodel").is_file()
    ml_client.jobs.download(name, download_path=dl, output_name="predictions")
    preds = (dl / "named-outputs" / "predictions" / "predictions.txt").read_text().split()
    assert len(preds) == 40 and set(preds) <= {"yes", "no"}


@pytest.mark.slow
def test_yaml_pipeline_with_an_automl_node(ml_client: Any, tmp_path: Path) -> None:
    from openaml import load_job

    _project(tmp_path)
    job = ml_client.jobs.create_or_update(load_job(_pipeline_yaml(tmp_path)))
    _check_ran(ml_client, job.name, tmp_path)


@pytest.mark.slow
def test_dsl_pipeline_with_an_automl_node(ml_client: Any, tmp_path: Path) -> None:
    from openaml import Input, automl, dsl, load_component

    _project(tmp_path)
    split = load_component(tmp_path / "split.yml")
    score = load_component(tmp_path / "score.yml")

    @dsl.pipeline(compute="local", experiment_name="automl-pipeline")
    def classify_rows(raw: Input) -> dict:
        parts = split(raw=raw)
        classify = automl.classification(training_data=parts.outputs.train, target_column_name="label",
                                         primary_metric="AUC_weighted", n_cross_validations=2)
        classify.set_limits(timeout_minutes=5, trial_timeout_minutes=3, max_trials=2, max_concurrent_trials=2)
        classify.set_training(allowed_training_algorithms=["LightGBM", "LogisticRegression"],
                              enable_vote_ensemble=False, enable_stack_ensemble=False,
                              enable_model_explainability=False)
        scored = score(model=classify.outputs.best_model, rows=parts.outputs.rows)
        return {"predictions": scored.outputs.predictions}

    job = classify_rows(raw=Input(type="uri_folder", path=str(tmp_path / "raw")))
    assert job.jobs["classify"].type == "automl"
    assert job.jobs["classify"].automl["training_data"]["path"] == "${{parent.jobs.parts.outputs.train}}"
    assert job.jobs["scored"].inputs["model"] == "${{parent.jobs.classify.outputs.best_model}}"
    created = ml_client.jobs.create_or_update(job)
    _check_ran(ml_client, created.name, tmp_path)


@pytest.mark.parametrize(("node", "expected"), [
    (_AUTOML_NODE.replace("primary_metric: AUC_weighted", "primary_metric: r2_score"),
     "jobs.classify.primary_metric"),
    (_AUTOML_NODE.replace("    target_column_name: label\n", ""), "jobs.classify.target_column_name"),
    (_AUTOML_NODE.replace("outputs.train}}", "outputs.nope}}"), "jobs.classify.inputs.training_data"),
    (_AUTOML_NODE.replace("outputs: {best_model:", "outputs: {model:"), "jobs.classify.outputs.model"),
])
def test_a_bad_automl_node_is_refused_by_name(ml_client: Any, tmp_path: Path, node: str, expected: str) -> None:
    from openaml import load_job

    _project(tmp_path)
    before = len(ml_client.jobs.list_raw())
    with pytest.raises(ValidationError) as info:
        ml_client.jobs.create_or_update(load_job(_pipeline_yaml(tmp_path, node)))
    assert expected in info.value.message, info.value.message
    assert len(ml_client.jobs.list_raw()) == before
