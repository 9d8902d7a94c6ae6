"""``type: parallel`` as a pipeline node: YAML pipelines and ``@dsl.pipeline`` with
``parallel_run_function``, bound to pipeline inputs and to another node's output."""

from __future__ import annotations

import textwrap
from pathlib import Path

from openaml import Input, Output, command, dsl
from openaml.parallel import RunFunction, parallel_run_function


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


PREP = """
    import sys, pathlib
    out = pathlib.Path(sys.argv[1])
    for i in range(5):
        (out / f"part{i}.csv").write_text("x\\n" + "\\n".join(str(i * 10 + j) for j in range(4)) + "\\n")
    """

SCORE = """
    import pandas as pd
    def init():
        pass
    def run(mini_batch):
        return [f"{f.rsplit('/', 1)[-1]} {int(pd.read_csv(f)['x'].sum())}" for f in mini_batch]
    """

EXPECTED = [f"part{i}.csv {sum(i * 10 + j for j in range(4))}" for i in range(5)]


def _lines(ml_client, name: str, output: str, out: Path) -> list[str]:  # type: ignore[no-untyped-def]
    ml_client.jobs.download(name, output_name=output, download_path=out)
    return next(out.rglob("parallel_run_step.txt")).read_text().splitlines()


def test_yaml_pipeline_with_parallel_node_after_a_command_node(cli, ml_client, tmp_path):
    _write(tmp_path / "src" / "prep.py", PREP)
    _write(tmp_path / "src" / "score.py", SCORE)
    yml = _write(tmp_path / "pipeline.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
        type: pipeline
        display_name: parallel in a pipeline
        experiment_name: parallel-tests
        settings:
          default_compute: azureml:local
        outputs:
          scores:
            type: uri_folder
        jobs:
          prep:
            type: command
            code: ./src
            command: python prep.py ${{outputs.parts}}
            outputs:
              parts:
                type: uri_folder
          score:
            type: parallel
            inputs:
              parts: ${{parent.jobs.prep.outputs.parts}}
            outputs:
              scored:
                type: uri_folder
                path: ${{parent.outputs.scores}}
            input_data: ${{inputs.parts}}
            mini_batch_size: "2"
            max_concurrency_per_instance: 2
            resources:
              instance_count: 1
            retry_settings:
              max_retries: 1
              timeout: 60
            logging_level: INFO
            error_threshold: -1
            mini_batch_error_threshold: -1
            task:
              type: run_function
              code: ./src
              entry_script: score.py
              program_arguments: --task_overhead_timeout 1200 --progress_update_timeout 600
              append_row_to: ${{outputs.scored}}
        """)
    r = cli("job", "create", "-f", str(yml), "-o", "json", check=True)
    name = r.json()["name"]
    final = ml_client.jobs.wait(name, timeout=180)
    children = {c["display_name"]: c for c in ml_client.jobs.list_raw(parent_job_name=name)}
    assert final.status == "Completed", {k: (c["status"], c.get("error")) for k, c in children.items()}
    assert children["score"]["type"] == "parallel"
    assert _lines(ml_client, name, "scores", tmp_path / "out") == EXPECTED


def test_yaml_parallel_node_bad_field_refused_naming_the_node(cli, ml_client, tmp_path):
    _write(tmp_path / "src" / "score.py", "def init():\n    pass\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("x\n1\n")
    yml = _write(tmp_path / "pipeline.yml", """
        type: pipeline
        settings: {default_compute: local}
        inputs:
          data: {type: uri_folder, path: ./data}
        jobs:
          score:
            type: parallel
            inputs: {d: "${{parent.inputs.data}}"}
            outputs: {o: {type: uri_folder}}
            input_data: ${{inputs.d}}
            mini_batch_size: 0
            task: {type: run_function, code: ./src, entry_script: score.py, append_row_to: "${{outputs.o}}"}
        """)
    r = cli("job", "create", "-f", str(yml))
    assert r.returncode != 0 and "jobs.score.mini_batch_size" in r.stdout + r.stderr, r.stdout + r.stderr
    yml.write_text(yml.read_text().replace("mini_batch_size: 0", "mini_batch_size: 1"))
    r = cli("job", "create", "-f", str(yml))
    text = r.stdout + r.stderr
    assert r.returncode != 0 and "jobs.score.task.entry_script" in text and "no run() function" in text, text


def test_dsl_pipeline_with_parallel_run_function_node(ml_client, tmp_path):
    _write(tmp_path / "src" / "prep.py", PREP)
    _write(tmp_path / "src" / "score.py", SCORE)
    prep = command(code=str(tmp_path / "src"), command="python prep.py ${{outputs.parts}}",
                   outputs={"parts": Output(type="uri_folder")})
    batch = parallel_run_function(
        name="batch_score", inputs={"parts": Input(type="uri_folder")}, outputs={"scored": Output(type="uri_folder")},
        input_data="${{inputs.parts}}", mini_batch_size=2, instance_count=2, max_concurrency_per_instance=1,
        retry_settings={"max_retries": 1, "timeout": 60},
        task=RunFunction(code=str(tmp_path / "src"), entry_script="score.py", append_row_to="${{outputs.scored}}"))

    @dsl.pipeline(compute="local", experiment_name="parallel-tests")
    def flow():  # type: ignore[no-untyped-def]
        p = prep()
        s = batch(parts=p.outputs.parts)
        return {"scores": s.outputs.scored}

    job = ml_client.jobs.create_or_update(flow())
    final = ml_client.jobs.wait(job.name, timeout=180)
    children = {c["display_name"]: c for c in ml_client.jobs.list_raw(parent_job_name=job.name)}
    assert final.status == "Completed", {k: (c["status"], c.get("error")) for k, c in children.items()}
    assert _lines(ml_client, job.name, "scores", tmp_path / "out") == EXPECTED


def test_parallel_node_from_a_parallel_component_file(cli, ml_client, tmp_path):
    """As azureml-examples' pipeline-with-parallel-component.yml: ``type: parallel`` +
    ``component: ./script/<component>.yml``; the node's fields override the component's."""
    _write(tmp_path / "script" / "src" / "score.py", SCORE)
    parts = tmp_path / "parts"
    parts.mkdir()
    for i in range(5):
        (parts / f"part{i}.csv").write_text("x\n" + "\n".join(str(i * 10 + j) for j in range(4)) + "\n")
    _write(tmp_path / "script" / "score_component.yml", """
        $schema: http://azureml/sdk-2-0/ParallelComponent.json
        name: batch_score
        type: parallel
        version: 1.0.0
        inputs:
          job_data_path: {type: uri_folder, optional: false}
        outputs:
          job_output_file: {type: uri_file}
        input_data: ${{inputs.job_data_path}}
        mini_batch_size: "1"
        resources: {instance_count: 2}
        max_concurrency_per_instance: 1
        mini_batch_error_threshold: 0
        retry_settings: {max_retries: 3, timeout: 60}
        task:
          type: run_function
          code: ./src
          entry_script: score.py
          program_arguments: --progress_update_timeout 600
          append_row_to: ${{outputs.job_output_file}}
        """)
    yml = _write(tmp_path / "pipeline.yml", """
        type: pipeline
        settings: {default_compute: azureml:local}
        jobs:
          predict:
            type: parallel
            component: ./script/score_component.yml
            inputs:
              job_data_path: {type: uri_folder, path: ./parts, mode: ro_mount}
            outputs:
              job_output_file:
                type: uri_file
                path: azureml://datastores/workspaceblobstore/paths/${{name}}/aggregated_returns.csv
                mode: rw_mount
            mini_batch_size: "2"
            retry_settings: {max_retries: 1}
        """)
    name = cli("job", "create", "-f", str(yml), "-o", "json", check=True).json()["name"]
    final = ml_client.jobs.wait(name, timeout=180)
    step = ml_client.jobs.list_raw(parent_job_name=name)[0]
    assert final.status == "Completed", (step["status"], step.get("error"), step.get("log_tail"))
    assert step["mini_batch_size"] == "2" and step["retry_settings"] == {"max_retries": 1, "timeout": 60}
    assert step["resources"]["instance_count"] == 2
    ml_client.jobs.download(step["name"], output_name="job_output_file", download_path=tmp_path / "out")
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["aggregated_returns.csv"]
    assert files[0].read_text().splitlines() == EXPECTED
