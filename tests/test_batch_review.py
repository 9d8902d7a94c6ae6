"""Regression tests of the batch review minors (issue 13): each asserts the right value.

Unknown ``--set`` fields on invoke, Azure's endpoint/deployment name rule and name uniqueness, the
"Batch endpoint X not found" error on CLI and SDK, an MLTable's path order, the scoring script's
``sys.argv`` and the row-count warning, the MLflow driver's ``file`` column for an MLTable input, the
log files the docs name, and a ``$schema`` of another kind on a parallel job / batch deployment file.
"""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path
from typing import Any

import pytest

from openaml.entities import BatchDeployment, BatchEndpoint, Environment, Model
from openaml.errors import ConflictError, NotFoundError, ValidationError

ENV = Environment(image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------- names
@pytest.mark.parametrize("name", ["ab", "1abc", "abc-", "a_bc", "a" * 33])
def test_endpoint_and_deployment_names_follow_azures_rule(name: str) -> None:
    with pytest.raises(ValueError) as exc:
        BatchEndpoint(name=name)
    assert f"batch endpoint name {name!r}" in str(exc.value)
    assert "3 to 32 characters" in str(exc.value)
    with pytest.raises(ValueError) as exc:
        BatchDeployment(name=name, model="azureml:m:1", compute="local")
    assert f"batch deployment name {name!r}" in str(exc.value)
    assert BatchEndpoint(name="abc").name == "abc" and BatchEndpoint(name="a" * 32).name == "a" * 32


def test_bad_names_and_a_taken_name_are_refused_by_the_server(cli: Any, ml_client: Any, tmp_path: Path) -> None:
    r = cli("batch-endpoint", "create", "--name", "9lives")
    assert r.returncode == 1 and "start with a letter" in r.stderr and "'9lives'" in r.stderr, r.stderr
    from openaml.entities import ManagedOnlineEndpoint

    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="rev-shared-name")).result()
    with pytest.raises(ConflictError) as exc:
        ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="rev-shared-name"))
    assert "online endpoint" in exc.value.message and "unique" in exc.value.message
    with pytest.raises(NotFoundError):
        ml_client.batch_endpoints.get("rev-shared-name")


# ---------------------------------------------------------------------------------------- not found
def test_unknown_endpoint_error_reads_like_azures(cli: Any, ml_client: Any, tmp_path: Path) -> None:
    for args in (("show",), ("invoke", "--input", str(tmp_path)), ("list-jobs",)):
        r = cli("batch-endpoint", *args, "-n", "rev-nope")
        assert r.returncode != 0 and "Batch endpoint rev-nope not found" in r.stderr, (args, r.stderr)
    r = cli("batch-deployment", "list", "-e", "rev-nope")
    assert r.returncode != 0 and "Batch endpoint rev-nope not found" in r.stderr, r.stderr
    with pytest.raises(NotFoundError) as exc:
        ml_client.batch_endpoints.get("rev-nope")
    assert exc.value.message.startswith("Batch endpoint rev-nope not found")
    with pytest.raises(NotFoundError) as exc:
        ml_client.batch_deployments.get("dep", endpoint_name="rev-nope")
    assert exc.value.message.startswith("Batch endpoint rev-nope not found"), exc.value.message


# ---------------------------------------------------------------------------------------- invoke --set
def test_invoke_refuses_a_field_it_cannot_set(cli: Any, ml_client: Any, tmp_path: Path) -> None:
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="rev-set")).result()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("x\n1\n")
    r = cli("batch-endpoint", "invoke", "-n", "rev-set", "--input", str(tmp_path / "in"), "--set", "foo=1")
    assert r.returncode == 1 and "'foo'" in r.stderr and "mini_batch_size" in r.stderr \
        and "output_file_name" in r.stderr, r.stderr
    with pytest.raises(ValidationError) as exc:
        ml_client.batch_endpoints.invoke("rev-set", input=str(tmp_path / "in"), params_override=[{"bar": 2}])
    assert exc.value.details.get("field") == "bar" and "instance_count" in exc.value.message


def test_params_override_fields_merge_as_azure_spells_them() -> None:
    from openaml.services.batch_endpoints import _merge_overrides

    body = _merge_overrides({"inputs": {}, "params_override": [
        {"mini_batch_size": "1"}, {"compute.instance_count": "2"}, {"retry_settings.max_retries": 4}]})
    assert body == {"inputs": {}, "mini_batch_size": "1", "instance_count": 2, "retry_settings": {"max_retries": 4}}


# ---------------------------------------------------------------------------------------- MLTable order
def test_mltable_files_keep_the_path_order(tmp_path: Path) -> None:
    from openaml.services.kinds.parallel import tabular_plan

    for name in ("b.csv", "a.csv", "c/2.csv", "c/1.csv"):
        _write(tmp_path / name, "x\n1\n")
    table = {"paths": [{"file": "./b.csv"}, {"folder": "./c"}, {"file": "./a.csv"}, {"file": "./b.csv"}],
             "transformations": [{"read_delimited": {"delimiter": ","}}]}
    plan, problem = tabular_plan(tmp_path, table)
    assert problem is None and plan is not None
    assert plan["files"] == ["b.csv", "c/1.csv", "c/2.csv", "a.csv"]


# ---------------------------------------------------------------------------------------- $schema
def test_schema_of_another_kind_on_parallel_and_batch_files(cli: Any, tmp_path: Path) -> None:
    """A parallel job file whose ``$schema`` names the batch deployment schema runs as a parallel job
    (``$schema`` of a job is an editor hint, spec 2: az ml's load_job dispatches on ``type``); a
    parallel job file (``parallelJob`` schema) given to ``batch-deployment create`` is refused
    naming ``$schema`` and the command that takes it."""
    _write(tmp_path / "data" / "a.txt", "hello\n")
    _write(tmp_path / "src" / "score.py", """
        def run(mini_batch):
            return [f"{len(mini_batch)}"]
        """)
    job_yml = _write(tmp_path / "job.yml", f"""
        $schema: https://azuremlschemas.azureedge.net/latest/batchDeployment.schema.json
        type: parallel
        compute: local
        inputs:
          data: {{type: uri_folder, path: {tmp_path / 'data'}}}
        outputs:
          out: {{type: uri_folder}}
        input_data: ${{{{inputs.data}}}}
        mini_batch_size: "1"
        task:
          type: run_function
          code: ./src
          entry_script: score.py
          append_row_to: ${{{{outputs.out}}}}
        """)
    job = cli("job", "create", "--file", str(job_yml), check=True).json()
    assert job["type"] == "parallel"
    cli("job", "stream", "-n", job["name"], timeout=300)
    assert cli("job", "show", "-n", job["name"], check=True).json()["status"] == "Completed"
    pj = _write(tmp_path / "pj.yml", job_yml.read_text().replace("batchDeployment.schema.json",
                                                                    "parallelJob.schema.json"))
    r = cli("batch-deployment", "create", "--file", str(pj), "--endpoint-name", "rev-any")
    assert r.returncode == 1 and "$schema" in r.stderr and "openaml job create" in r.stderr, r.stderr


# ---------------------------------------------------------------------------------------- end to end
ARGV_SCORE = """
    import sys

    def init():
        global ARGV
        ARGV = list(sys.argv)

    def run(mini_batch):
        return [" ".join(ARGV[1:]) or "-" for _ in mini_batch]
    """


@pytest.mark.slow
def test_scoring_script_argv_mltable_file_column_and_documented_logs(cli: Any, ml_client: Any,
                                                                      tmp_path: Path) -> None:
    """The scoring script's ``sys.argv`` holds no ``--openaml_*`` (nor ``--append_row_file_name``)
    flags and the log no row-count warning nor flag note for a folder input; the MLflow driver's
    ``file`` column names each row's file for an MLTable input, rows counted within their file, files
    in the MLTable's path order; the log files the guide names are in the job's logs."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    lr = LinearRegression().fit(pd.DataFrame({"x": np.arange(10.0)}), np.arange(10.0) * 2 + 1)
    mlflow.sklearn.save_model(lr, str(tmp_path / "mlflow_model"), input_example=pd.DataFrame({"x": [1.0]}))
    _write(tmp_path / "code" / "score.py", ARGV_SCORE)
    data = tmp_path / "files"
    for i in range(3):
        _write(data / f"f{i}.csv", "x\n" + "".join(f"{i * 10 + j}\n" for j in range(4)))
    table = tmp_path / "table"
    table.mkdir()
    pd.DataFrame({"x": [float(i) for i in range(200)]}).to_csv(table / "z.csv", index=False)
    pd.DataFrame({"x": [float(i) for i in range(5)]}).to_csv(table / "a.csv", index=False)
    _write(table / "MLTable", """
        paths:
          - file: ./z.csv
          - file: ./a.csv
        transformations:
          - read_delimited: {delimiter: ",", header: all_files_same_headers}
        """)
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="rev-e2e")).result()
    ml_client.batch_deployments.begin_create_or_update(BatchDeployment(
        name="argv", endpoint_name="rev-e2e", model=Model(name="rev-lr", path=str(tmp_path / "mlflow_model"),
                                                          type="mlflow_model"),
        code_path=str(tmp_path / "code"), scoring_script="score.py", environment=ENV, compute="local",
        mini_batch_size=2)).result()
    ml_client.batch_deployments.begin_create_or_update(BatchDeployment(
        name="nocode", endpoint_name="rev-e2e", model="azureml:rev-lr@latest", compute="local",
        max_concurrency_per_instance=2, output_file_name="scored.csv")).result()

    # a score.py over a folder: sys.argv is the script alone; no spurious warning or note in the log
    job = cli("batch-endpoint", "invoke", "-n", "rev-e2e", "-d", "argv", "--input", str(data), check=True).json()
    log = cli("job", "stream", "-n", job["name"], timeout=600).stdout
    assert cli("job", "show", "-n", job["name"], check=True).json()["status"] == "Completed", log
    ml_client.jobs.download(job["name"], output_name="score", download_path=str(tmp_path / "dl1"))
    lines = next((tmp_path / "dl1").rglob("predictions.csv")).read_text().splitlines()  # Azure's default name
    assert lines == ["-"] * 3, lines
    assert "warning" not in log and "openaml_" not in log, log

    # the documented log files
    ml_client.jobs.download(job["name"], all=True, download_path=str(tmp_path / "all1"))
    names = {p.relative_to(next((tmp_path / "all1").rglob("job_result.txt")).parent).as_posix()
             for p in (tmp_path / "all1").rglob("*") if p.is_file() and "logs" in p.parts}
    for documented in ("job_progress_overview.txt", "job_result.txt", "job_error.txt", "mini_batch_rows.csv",
                       "user/stdout/worker_0.txt"):
        assert documented in names, (documented, sorted(names))

    # MLflow no-code over an MLTable: rows in path order, each with its file and its row in that file
    cli("data", "create", "--name", "rev-table", "--type", "mltable", "--path", str(table), check=True)
    job = ml_client.batch_endpoints.invoke("rev-e2e", deployment_name="nocode",
                                           inputs={"t": {"type": "mltable", "path": "azureml:rev-table@latest"}},
                                           params_override=[{"mini_batch_size": "1kb"}])
    log = cli("job", "stream", "-n", job.name, timeout=600).stdout
    assert ml_client.jobs.get(job.name).status == "Completed", log
    ml_client.jobs.download(job.name, output_name="score", download_path=str(tmp_path / "dl2"))
    rows = list(csv.reader(next((tmp_path / "dl2").rglob("scored.csv")).read_text().splitlines()))
    assert [(r[2], int(r[0])) for r in rows] == [("z.csv", i) for i in range(200)] + [("a.csv", i) for i in range(5)]
    assert [round(float(r[1]), 6) for r in rows[:3]] == [1.0, 3.0, 5.0]
    assert "warning" not in log, log
