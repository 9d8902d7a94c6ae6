"""Regression tests of the second batch review (issue 13, /work/review13.md findings F1-F13): each
asserts the right value against a real server, the real SDK/CLI and the real parallel engine.

run() results append_row cannot write (a dict, an int) fail their mini-batch at once, naming the
type; a line break inside an element is escaped (one line per element, counts consistent); the log's
error line keeps a multi-line message's first line; a job that completed with failed mini-batches says
so in ``job show``'s warnings; ``support_multi_line: true`` keeps quoted line breaks inside their
record (and without it the job warns); ``BatchEndpoint.defaults`` is an object; ``openaml.constants``
exports ``BatchDeploymentOutputAction``; ``invoke`` refuses unknown keywords and honours
``output_path``/``output_file_name``; a ``uri_file`` score output is the predictions file;
``logging_level`` is one of Azure's; a pipeline deployment's inputs are checked in one message.
"""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

from openaml.entities import BatchDeployment, BatchEndpoint, Data, Environment, Input, Model, Output
from openaml.errors import ValidationError

ENV = Environment(image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def _submit(cli: Any, yml: Path) -> str:
    name = str(cli("job", "create", "-f", str(yml), "-o", "json", check=True).json()["name"])
    cli("job", "stream", "--name", name, timeout=600)
    return name


# ------------------------------------------------------------------ F3-F6, F2: run()'s results
SHAPES = """
    import os
    from pathlib import Path
    MARKS = Path(os.environ["MARKS"])
    def run(mini_batch):
        name = os.path.basename(mini_batch[0])
        n = len(list(MARKS.glob(name + ".*")))
        (MARKS / f"{name}.{n}").write_text("x")
        if name == "a_dict.txt":
            return {"a": 1}
        if name == "b_int.txt":
            return 42
        if name == "c_multi.txt":
            raise ValueError("Failed to enforce schema of data 'x'\\nwith schema 'y'\\nError: missing inputs")
        if name == "d_newline.txt":
            return [name + "\\nextra\\r\\nmore"]
        return [name]
    """


def test_run_result_shapes_newlines_error_lines_and_completed_with_failures(cli: Any, ml_client: Any,
                                                                          tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    for f in ("a_dict.txt", "b_int.txt", "c_multi.txt", "d_newline.txt", "e_ok.txt"):
        _write(tmp_path / "data" / f, "x\n")
    _write(tmp_path / "src" / "score.py", SHAPES)
    yml = _write(tmp_path / "job.yml", f"""
        type: parallel
        compute: local
        inputs:
          data: {{type: uri_folder, path: ./data}}
        outputs:
          out: {{type: uri_folder}}
        input_data: ${{{{inputs.data}}}}
        mini_batch_size: "1"
        max_concurrency_per_instance: 2
        retry_settings: {{max_retries: 2, timeout: 60}}
        environment_variables: {{MARKS: {marks}}}
        task:
          type: run_function
          code: ./src
          entry_script: score.py
          append_row_to: ${{{{outputs.out}}}}
        """)
    name = _submit(cli, yml)
    job = cli("job", "show", "-n", name, check=True).json()
    assert job["status"] == "Completed", job.get("error")
    # F2: the failures are a job warning, not only a count in the log's last line
    assert any("completed with failures: 3 of 5 mini-batches failed (3 files)" in w
               for w in job.get("warnings") or []), job.get("warnings")
    log = cli("job", "stream", "--name", name).stdout
    # F4/F6: refused at once, naming the type and what is accepted; never retried
    assert "mini-batch 0 failed after 1 attempt (run() returned dict; return a list" in log, log[-3000:]
    assert "mini-batch 1 failed after 1 attempt (run() returned int; return a list" in log
    assert "a pandas DataFrame" in log and "not iterable" not in log
    runs = sorted(p.name for p in marks.iterdir())
    assert [r for r in runs if r.startswith(("a_dict", "b_int"))] == ["a_dict.txt.0", "b_int.txt.0"]
    # F3: the summary keeps the message's first line; an ordinary error is still retried
    assert "mini-batch 2 attempt 1 failed (ValueError: Failed to enforce schema of data 'x'); retrying" in log
    assert len([r for r in runs if r.startswith("c_multi")]) == 3
    # F5: one line per element, the line breaks escaped; the rows map agrees
    out = tmp_path / "out"
    cli("job", "download", "--name", name, "--all", "--download-path", str(out), check=True)
    lines = next(out.rglob("parallel_run_step.txt")).read_text().split("\n")
    assert lines == ["d_newline.txt\\nextra\\nmore", "e_ok.txt", ""], lines
    rowmap = next(out.rglob("mini_batch_rows.csv")).read_text().splitlines()
    assert rowmap[1:] == ['3,1,1,"d_newline.txt"', '4,2,1,"e_ok.txt"'], rowmap
    errors = next(out.rglob("job_error.txt")).read_text()
    assert "run() returned dict" in errors and "ValueError: Failed to enforce schema of data 'x'" in errors


def test_result_rules_of_the_engine() -> None:
    """The same rules on the engine's function: accepted types, escaped line breaks in a DataFrame."""
    import sys

    import pandas as pd

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "openaml" / "parallel"))
    try:
        from _openaml_parallel.driver import FAILED_WARNING
        from _openaml_parallel.plan import MULTI_LINE_WARNING
        from _openaml_parallel.worker import ReturnShapeError, _rows_of
    finally:
        sys.path.pop(0)
    from openaml.services.kinds.parallel import ENGINE_WARNINGS

    assert set(ENGINE_WARNINGS) == {FAILED_WARNING, MULTI_LINE_WARNING}  # the server reads the lines they start
    assert _rows_of(pd.DataFrame({"t": ["a\nb", "c"], "v": [1, 2]})) == ["a\\nb 1", "c 2"]
    assert _rows_of(("x", 1)) == ["x", "1"] and _rows_of(None) == [] and _rows_of("one\ntwo") == ["one\\ntwo"]
    for bad, shown in (({"a": 1}, "dict"), ({1}, "set"), (3.5, "float"), ((x for x in "ab"), "generator")):
        with pytest.raises(ReturnShapeError) as exc:
            _rows_of(bad)
        assert str(exc.value).startswith(f"run() returned {shown}; return a list")


# ------------------------------------------------------------------ F13: quoted line breaks
def _multi_line_table(folder: Path, multi_line: bool | None) -> None:
    rows = ["id,text,v"]
    for i in range(300):
        text = f'"line one of {i}\nline two, with comma\nthree"' if i % 3 == 0 else f"plain {i}"
        rows.append(f"{i},{text},{i}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    opts = "      delimiter: ','\n" + (f"      support_multi_line: {str(multi_line).lower()}\n" if multi_line else "")
    (folder / "MLTable").write_text("paths:\n  - file: ./data.csv\ntransformations:\n  - read_delimited:\n" + opts)


def _tab_job(tmp_path: Path, multi_line: bool | None) -> Path:
    _multi_line_table(tmp_path / "table", multi_line)
    _write(tmp_path / "src" / "score.py", """
        def run(mini_batch):
            assert list(mini_batch.columns) == ["id", "text", "v"], list(mini_batch.columns)
            return [f"{i} {len(t.splitlines())}" for i, t in zip(mini_batch["id"], mini_batch["text"])]
        """)
    return _write(tmp_path / "job.yml", """
        type: parallel
        compute: local
        inputs:
          table: {type: mltable, path: ./table}
        outputs:
          out: {type: uri_folder}
        input_data: ${{inputs.table}}
        mini_batch_size: "1kb"
        retry_settings: {max_retries: 0, timeout: 60}
        task:
          type: run_function
          code: ./src
          entry_script: score.py
          append_row_to: ${{outputs.out}}
        """)


def test_support_multi_line_keeps_quoted_line_breaks_in_their_record(cli: Any, ml_client: Any,
                                                                     tmp_path: Path) -> None:
    name = _submit(cli, _tab_job(tmp_path, True))
    job = cli("job", "show", "-n", name, check=True).json()
    assert job["status"] == "Completed" and not job.get("warnings"), (job.get("error"), job.get("warnings"))
    out = tmp_path / "out"
    cli("job", "download", "--name", name, "--all", "--download-path", str(out), check=True)
    lines = next(out.rglob("parallel_run_step.txt")).read_text().splitlines()
    assert lines == [f"{i} {3 if i % 3 == 0 else 1}" for i in range(300)]
    rowmap = next(out.rglob("mini_batch_rows.csv")).read_text().splitlines()[1:]
    assert len(rowmap) > 3 and sum(int(r.split(",")[2]) for r in rowmap) == 300
    result = next(out.rglob("job_result.txt")).read_text()
    assert "0 failed, 0 items failed" in result, result


def test_without_support_multi_line_the_job_warns_naming_the_fix(cli: Any, ml_client: Any, tmp_path: Path) -> None:
    name = _submit(cli, _tab_job(tmp_path, None))
    job = cli("job", "show", "-n", name, check=True).json()
    said = " ".join(job.get("warnings") or [])
    assert "quoted line break: data.csv" in said and "set support_multi_line: true in the MLTable" in said, said


# ------------------------------------------------------------------ F7, F8, F12: SDK entities
def test_defaults_is_an_object_and_batch_output_action_is_a_constant(ml_client: Any) -> None:
    from openaml.constants import BatchDeploymentOutputAction

    assert BatchDeploymentOutputAction.APPEND_ROW == "append_row"
    assert BatchDeploymentOutputAction.SUMMARY_ONLY == "summary_only"
    ep = BatchEndpoint(name="rev13-defaults")
    assert ep.defaults is not None and ep.defaults.deployment_name is None
    ml_client.batch_endpoints.begin_create_or_update(ep).result()
    got = ml_client.batch_endpoints.get("rev13-defaults")
    assert got.defaults is not None and got.defaults.deployment_name is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # F12: no pydantic serializer warning
        got.defaults = {"deployment_name": "x"}
        assert got.defaults.deployment_name == "x" and got.to_dict()["defaults"] == {"deployment_name": "x"}
        got.defaults = None
        assert got.defaults.deployment_name is None
    ml_client.batch_endpoints.begin_delete("rev13-defaults")


# ------------------------------------------------------------------ F1: logging_level
def test_logging_level_must_be_one_of_azures(cli: Any, tmp_path: Path) -> None:
    from openaml.entities._batch import load_batch_deployment

    yml = _write(tmp_path / "dep.yml", """
        name: dep
        endpoint_name: rev13-any
        type: model
        model: azureml:m:1
        compute: local
        settings:
          logging_level: verbose
        """)
    with pytest.raises(ValidationError) as exc:
        load_batch_deployment(str(yml))
    assert "settings.logging_level" in exc.value.message and "'verbose'" in exc.value.message \
        and "debug, info, warning, error, critical" in exc.value.message, exc.value.message
    r = cli("batch-deployment", "create", "-f", str(yml))
    assert r.returncode == 1 and "settings.logging_level" in r.stderr, r.stderr
    ok = BatchDeployment(name="dep", model="azureml:m:1", compute="local", logging_level="WARNING")
    assert ok.logging_level == "WARNING"


# ------------------------------------------------------------------ F7, F9, F10: invoke end to end
SCORE = """
    import os
    def run(mini_batch):
        return [os.path.basename(f) for f in mini_batch]
    """


@pytest.mark.slow
def test_invoke_keywords_defaults_object_and_uri_file_output(ml_client: Any, tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.txt").write_text("1")
    _write(tmp_path / "code" / "score.py", SCORE)
    for i in range(3):
        _write(tmp_path / "data" / f"f{i}.csv", "x\n1\n")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="rev13-inv")).result()
    ml_client.batch_deployments.begin_create_or_update(BatchDeployment(
        name="dep", endpoint_name="rev13-inv", model=Model(name="rev13-m", path=str(tmp_path / "model")),
        code_path=str(tmp_path / "code"), scoring_script="score.py", environment=ENV, compute="local",
        mini_batch_size=2, output_file_name="preds.csv")).result()
    # F7: Azure's verbatim way to set the default deployment
    ep = ml_client.batch_endpoints.get("rev13-inv")
    ep.defaults.deployment_name = "dep"
    ml_client.batch_endpoints.begin_create_or_update(ep).result()
    assert ml_client.batch_endpoints.get("rev13-inv").defaults.deployment_name == "dep"
    n_jobs = len(ml_client.jobs.list())
    # F9: an unknown keyword is refused, naming it; nothing runs
    with pytest.raises(TypeError) as exc:
        ml_client.batch_endpoints.invoke(endpoint_name="rev13-inv", input=Input(type="uri_folder",
                                         path=str(tmp_path / "data")), totally_bogus_kwarg=5)
    assert "'totally_bogus_kwarg'" in str(exc.value) and "output_path" in str(exc.value)
    assert len(ml_client.jobs.list()) == n_jobs
    # F9: output_path / output_file_name (Azure's "use batch endpoints" docs) are honoured
    job = ml_client.batch_endpoints.invoke(
        endpoint_name="rev13-inv", inputs={"input": Input(path=str(tmp_path / "data"), type="uri_folder")},
        output_path={"score": Input(path="azureml://datastores/workspaceblobstore/paths/rev13-out")},
        output_file_name="predictions.csv")
    ml_client.jobs.stream(job.name)
    done = ml_client.jobs.get(job.name)
    assert done.status == "Completed"
    # F26: Azure's docs reach the scoring job as the batch job's first child: here it is the job itself
    assert [j.name for j in ml_client.jobs.list(parent_job_name=job.name)] == [job.name]
    assert done.outputs["score"].path.rstrip("/").endswith("rev13-out"), done.outputs["score"].path
    dest = tmp_path / "dl1"
    ml_client.jobs.download(job.name, output_name="score", download_path=str(dest))
    found = [p.name for p in dest.rglob("*") if p.is_file()]
    assert "predictions.csv" in found and "preds.csv" not in found, found
    assert sorted(next(dest.rglob("predictions.csv")).read_text().split()) == ["f0.csv", "f1.csv", "f2.csv"]
    # F10: a uri_file score output is the predictions file itself, and stays a uri_file
    job = ml_client.batch_endpoints.invoke(
        endpoint_name="rev13-inv", inputs={"input": Input(path=str(tmp_path / "data"), type="uri_folder")},
        outputs={"score": Output(type="uri_file", path="azureml://datastores/workspaceblobstore/paths/rev13-o4/my.csv")})
    ml_client.jobs.stream(job.name)
    done = ml_client.jobs.get(job.name)
    assert done.status == "Completed" and done.outputs["score"].type == "uri_file", done.outputs["score"]
    dest = tmp_path / "dl2"
    ml_client.jobs.download(job.name, output_name="score", download_path=str(dest))
    files = [p for p in dest.rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["my.csv"], files
    assert sorted(files[0].read_text().split()) == ["f0.csv", "f1.csv", "f2.csv"]
    with pytest.raises(ValidationError) as vexc:  # uri_file with summary_only: no predictions file to be
        ml_client.batch_endpoints.invoke(
            endpoint_name="rev13-inv", input=Input(type="uri_folder", path=str(tmp_path / "data")),
            outputs={"score": Output(type="uri_file", path="azureml://datastores/workspaceblobstore/paths/x/y.csv")},
            output_action="summary_only")
    assert "outputs.score.type" in vexc.value.message
    ml_client.batch_endpoints.begin_delete("rev13-inv")


# ------------------------------------------------------------------ F11: pipeline deployment inputs
def test_pipeline_deployment_inputs_are_checked_in_one_message(cli: Any, ml_client: Any, tmp_path: Path) -> None:
    comp = _write(tmp_path / "pipe.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json
        name: rev13_pipe
        version: "1"
        type: pipeline
        inputs:
          data: {type: uri_folder}
          extra: {type: uri_folder}
        jobs:
          count:
            type: command
            command: ls ${{inputs.data}} ${{inputs.extra}}
            environment:
              image: mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest
            inputs:
              data: ${{parent.inputs.data}}
              extra: ${{parent.inputs.extra}}
        """)
    cli("component", "create", "-f", str(comp), check=True)
    cli("batch-endpoint", "create", "--name", "rev13-pipe", check=True)
    dep = _write(tmp_path / "dep.yml", """
        name: pdep
        endpoint_name: rev13-pipe
        type: pipeline
        component: azureml:rev13_pipe:1
        settings:
          default_compute: local
        """)
    cli("batch-deployment", "create", "-f", str(dep), "--set-default", check=True)
    _write(tmp_path / "in" / "a.txt", "x\n")
    n_jobs = len(ml_client.jobs.list())
    r = cli("batch-endpoint", "invoke", "-n", "rev13-pipe", "--input", str(tmp_path / "in"))
    assert r.returncode == 1, r.stdout
    err = r.stderr.strip()
    assert "pipeline deployment with inputs: data (uri_folder), extra (uri_folder)" in err, err
    assert "no input '--input'" in err and "required input 'data', 'extra' not given" in err
    assert "jobs." not in err and "input_data" not in err
    assert len(ml_client.jobs.list()) == n_jobs
    cli("batch-endpoint", "delete", "-n", "rev13-pipe", "--yes", check=True)


# ------------------------------------------------------------------ F14: partition_keys columns
def test_partition_keys_naming_a_missing_column_are_refused_at_submission(cli: Any, ml_client: Any,
                                                                         tmp_path: Path) -> None:
    yml = _tab_job(tmp_path, True)
    yml.write_text(yml.read_text() + "partition_keys: [nope, v]\n")
    n_jobs = len(ml_client.jobs.list())
    r = cli("job", "create", "-f", str(yml))
    assert r.returncode == 1, r.stdout
    assert "partition_keys" in r.stderr and "column 'nope' is not in the MLTable (columns: id, text, v)" in r.stderr, \
        r.stderr
    assert len(ml_client.jobs.list()) == n_jobs


# ------------------------------------------------------------------ F15: read-only fields not offered
def test_unknown_field_help_does_not_offer_read_only_fields(cli: Any, tmp_path: Path) -> None:
    yml = _tab_job(tmp_path, True)
    yml.write_text(yml.read_text().replace("mini_batch_size:", "mini_batch_sizes:"))
    r = cli("job", "create", "-f", str(yml))
    assert r.returncode == 1 and "did you mean 'mini_batch_size'" in r.stderr, r.stderr
    allowed = r.stderr.split("allowed here:", 1)[1]
    for field in ("status", "log_tail", "exit_code", "end_time", "studio_url"):
        assert f" {field}," not in allowed and f" {field})" not in allowed, (field, allowed)
    assert "retry_settings" in allowed


# ------------------------------------------------------------------ F25: a hung init()
def test_init_that_hangs_fails_the_job_after_first_task_creation_timeout(cli: Any, ml_client: Any,
                                                                         tmp_path: Path) -> None:
    _write(tmp_path / "data" / "a.txt", "x\n")
    _write(tmp_path / "src" / "score.py", """
        import time
        def init():
            time.sleep(100000)
        def run(mini_batch):
            return mini_batch
        """)
    yml = _write(tmp_path / "job.yml", """
        type: parallel
        compute: local
        inputs:
          data: {type: uri_folder, path: ./data}
        input_data: ${{inputs.data}}
        mini_batch_size: "1"
        retry_settings: {max_retries: 1, timeout: 8}
        task:
          type: run_function
          code: ./src
          entry_script: score.py
          program_arguments: --first_task_creation_timeout 5
        """)
    name = _submit(cli, yml)
    job = cli("job", "show", "-n", name, check=True).json()
    assert job["status"] == "Failed", job
    assert "init() of the entry script did not finish in 5 s" in (job.get("error") or ""), job.get("error")
    assert "--first_task_creation_timeout" not in cli("job", "stream", "--name", name).stdout.split(
        "are passed to the entry script")[0].rsplit("\n", 1)[-1]


# ------------------------------------------------------------------ F27: MLTable transformations
def test_mltable_transformations_that_cannot_be_applied_refuse_the_job(cli: Any, ml_client: Any,
                                                                         tmp_path: Path) -> None:
    # scoring the rows a `take` or the columns a `drop_columns` removes would change what was asked
    yml = _tab_job(tmp_path, True)
    mlt = tmp_path / "table" / "MLTable"
    mlt.write_text(mlt.read_text() + "  - take: 5\n  - drop_columns: [v]\n")
    before = {j.name for j in ml_client.jobs.list()}
    r = cli("job", "create", "-f", str(yml), "-o", "json")
    assert r.returncode != 0, r.stdout
    out = r.stdout + r.stderr
    assert "input_data" in out and "transformations take, drop_columns cannot be applied" in out, out
    assert {j.name for j in ml_client.jobs.list()} == before


# ------------------------------------------------------------------ F28, F29, F22: invocation overrides
def test_invocation_overrides_are_checked(cli: Any, ml_client: Any, tmp_path: Path) -> None:
    from openaml.services.batch_endpoints import _merge_overrides

    assert _merge_overrides({"compute": {"instance_count": "2"}}) == {"instance_count": 2}
    assert _merge_overrides({"params_override": [{"settings.max_concurrency_per_instance": 3}]}) == \
        {"max_concurrency_per_instance": 3}
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.txt").write_text("1")
    _write(tmp_path / "code" / "score.py", SCORE)
    _write(tmp_path / "data" / "f.csv", "x\n1\n")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="rev13-ovr")).result()
    ml_client.batch_deployments.begin_create_or_update(BatchDeployment(
        name="dep", endpoint_name="rev13-ovr", model=Model(name="rev13-m2", path=str(tmp_path / "model")),
        code_path=str(tmp_path / "code"), scoring_script="score.py", environment=ENV, compute="local")).result()
    n_jobs = len(ml_client.jobs.list())
    base = ("batch-endpoint", "invoke", "-n", "rev13-ovr", "-d", "dep", "--input", str(tmp_path / "data"))
    r = cli(*base, "--set", "output_action=bogus")
    assert r.returncode == 1 and "field 'output_action': 'bogus' is not an output action" in r.stderr, r.stderr
    r = cli(*base, "--set", "output_file_name=")
    assert r.returncode == 1 and "field 'output_file_name'" in r.stderr, r.stderr
    r = cli(*base, "--set", "logging_level=verbose")
    assert r.returncode == 1 and "field 'logging_level'" in r.stderr, r.stderr
    r = cli(*base, "--instance-count", "100")  # F17: not more instances than the compute has
    assert r.returncode == 1 and "resources.instance_count" in r.stderr and "100 instances; compute 'local' has " \
        "at most" in r.stderr, r.stderr
    yml = _tab_job(tmp_path / "pj", True)
    yml.write_text(yml.read_text() + "resources: {instance_count: 100}\n")
    r = cli("job", "create", "-f", str(yml))
    assert r.returncode == 1 and "resources.instance_count" in r.stderr and "max_instances" in r.stderr, r.stderr
    assert len(ml_client.jobs.list()) == n_jobs
    # F16: a type: model file's settings.<field> on update
    r = cli("batch-deployment", "update", "--name", "dep", "--endpoint-name", "rev13-ovr", "--set",
            "settings.mini_batch_size=7", "-o", "json", check=True)
    assert ml_client.batch_deployments.get("dep", endpoint_name="rev13-ovr").mini_batch_size == 7, r.stdout
    ml_client.batch_endpoints.begin_delete("rev13-ovr")


# ------------------------------------------------------------------ F24: the MLflow driver's CSV
def test_mlflow_driver_lines_are_real_csv(tmp_path: Path) -> None:
    """File names and predictions holding commas or quotes, and multi-column predictions, read back
    with ``pd.read_csv(names=[row, prediction, file])`` as written."""
    import io
    import sys

    import pandas as pd

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "openaml" / "serving"))
    try:
        import batch_driver
    finally:
        sys.path.pop(0)

    class _Model:
        def __init__(self, kind: str) -> None:
            self.kind = kind

        def predict(self, df: Any) -> Any:
            if self.kind == "multi":
                return pd.DataFrame({"p0": [0.25] * len(df), "label": ["a, b"] * len(df)})
            return pd.Series(['yes, "high" risk'] * len(df))

    for name in ("a, b.csv", 'q"uote.csv'):
        pd.DataFrame({"x": [1.0, 2.0]}).to_csv(tmp_path / name, index=False)
    files = [str(tmp_path / "a, b.csv"), str(tmp_path / 'q"uote.csv')]
    batch_driver._model = _Model("label")
    back = pd.read_csv(io.StringIO("\n".join(batch_driver._score_files(files)) + "\n"),
                       names=["row", "prediction", "file"])
    assert back["file"].tolist() == ["a, b.csv", "a, b.csv", 'q"uote.csv', 'q"uote.csv']
    assert back["prediction"].tolist() == ['yes, "high" risk'] * 4 and back["row"].tolist() == [0, 1, 0, 1]
    batch_driver._model = _Model("multi")
    back = pd.read_csv(io.StringIO("\n".join(batch_driver._score_files(files[:1])) + "\n"),
                       names=["row", "prediction", "file"])
    assert [json.loads(p) for p in back["prediction"]] == [[0.25, "a, b"], [0.25, "a, b"]]


# ------------------------------------------------------------------ F30: two invocations, one output file
@pytest.mark.slow
def test_an_output_file_an_active_job_will_write_is_refused(ml_client: Any, tmp_path: Path) -> None:
    from openaml.errors import ConflictError

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.txt").write_text("1")
    _write(tmp_path / "code" / "score.py", """
        import os, time
        def run(mini_batch):
            time.sleep(3)
            return [os.path.basename(f) for f in mini_batch]
        """)
    _write(tmp_path / "data" / "f.csv", "x\n1\n")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="rev13-race")).result()
    ml_client.batch_deployments.begin_create_or_update(BatchDeployment(
        name="dep", endpoint_name="rev13-race", model=Model(name="rev13-m3", path=str(tmp_path / "model")),
        code_path=str(tmp_path / "code"), scoring_script="score.py", environment=ENV, compute="local")).result()
    out = "azureml://datastores/workspaceblobstore/paths/rev13-race"
    first = ml_client.batch_endpoints.invoke("rev13-race", deployment_name="dep",
                                         input=Input(type="uri_folder", path=str(tmp_path / "data")),
                                             output_path=out, output_file_name="out.csv")
    with pytest.raises(ConflictError) as exc:
        ml_client.batch_endpoints.invoke("rev13-race", deployment_name="dep",
                                         input=Input(type="uri_folder", path=str(tmp_path / "data")),
                                         output_path=out, output_file_name="out.csv")
    assert f"is the output of batch job {first.name!r}" in exc.value.message, exc.value.message
    other = ml_client.batch_endpoints.invoke("rev13-race", deployment_name="dep",
                                         input=Input(type="uri_folder", path=str(tmp_path / "data")),
                                             output_path=out, output_file_name="other.csv")  # another file: fine
    for name in (first.name, other.name):
        ml_client.jobs.stream(name)
        assert ml_client.jobs.get(name).status == "Completed"
    ml_client.batch_endpoints.begin_delete("rev13-race")


@pytest.mark.slow
def test_simultaneous_invocations_of_one_output_file_start_one_job(server: Any, ml_client: Any, tmp_path: Path) -> None:
    # the output check and the job's creation are one step: of four invocations at the same instant,
    # one job is created and three are refused naming it (review F30)
    import threading

    from openaml import MLClient
    from openaml.errors import ConflictError

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.txt").write_text("1")
    _write(tmp_path / "code" / "score.py", """
        import os
        def run(mini_batch):
            return [os.path.basename(f) for f in mini_batch]
        """)
    _write(tmp_path / "data" / "f.csv", "x\n1\n")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="rev13-race4")).result()
    ml_client.batch_deployments.begin_create_or_update(BatchDeployment(
        name="dep", endpoint_name="rev13-race4", model=Model(name="rev13-m4", path=str(tmp_path / "model")),
        code_path=str(tmp_path / "code"), scoring_script="score.py", environment=ENV, compute="local")).result()
    data = ml_client.data.create_or_update(Data(name="rev13-race4-in", type="uri_folder", path=str(tmp_path / "data")))
    out = "azureml://datastores/workspaceblobstore/paths/rev13-race4"
    started, refused, go = [], [], threading.Barrier(4)

    def one() -> None:
        with MLClient(workspace=server.url) as ml:
            go.wait()
            try:
                started.append(ml.batch_endpoints.invoke(
                    "rev13-race4", deployment_name="dep", input=Input(type="uri_folder", path=f"azureml:{data.name}:{data.version}"),
                    output_path=out, output_file_name="out.csv").name)
            except ConflictError as exc:
                refused.append(exc.message)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(started) == 1 and len(refused) == 3, (started, refused)
    assert all(f"is the output of batch job {started[0]!r}" in m for m in refused), refused
    ml_client.jobs.stream(started[0])
    assert ml_client.jobs.get(started[0]).status == "Completed"
    ml_client.batch_endpoints.begin_delete("rev13-race4")


# ------------------------------------------------------------------ F33: a registered Model object
def test_deployment_of_a_registered_model_object_refers_to_it(ml_client: Any, tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.txt").write_text("1")
    _write(tmp_path / "code" / "score.py", SCORE)
    model = ml_client.models.create_or_update(Model(name="rev13-reg", path=str(tmp_path / "model")))
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="rev13-reg")).result()
    n_models = len(list(ml_client.models.list()))
    for m in (model, ml_client.models.get(name="rev13-reg", label="latest")):
        got = ml_client.batch_deployments.begin_create_or_update(BatchDeployment(
            name="dep", endpoint_name="rev13-reg", model=m, code_path=str(tmp_path / "code"),
            scoring_script="score.py", environment=ENV, compute="local")).result()
        assert got.model == f"azureml:rev13-reg:{model.version}", got.model
    assert len(list(ml_client.models.list())) == n_models  # no model registered again
    ml_client.batch_endpoints.begin_delete("rev13-reg")


# ------------------------------------------------------------------ F19, F21, F23, F31: minors
def test_review13_minors(cli: Any, ml_client: Any, tmp_path: Path) -> None:
    from openaml.errors import ConflictError
    from openaml.parallel import RunFunction, parallel_run_function
    from openaml.services.batch_endpoints import _scoring_script_problem
    from openaml.services.kinds.parallel import entry_script_problem

    # F31: run bound by an import is a run
    helper = _write(tmp_path / "c3" / "score.py", "from helper import run\n")
    star = _write(tmp_path / "c3" / "star.py", "from helper import *\n")
    assert _scoring_script_problem(helper) is None and _scoring_script_problem(star) is None
    assert entry_script_problem(star) is None
    # F23: openaml's ValidationError naming the field, not pydantic's
    with pytest.raises(ValidationError) as exc:
        parallel_run_function(input_data="${{inputs.x}}", mini_batch_size="-1kb", task=RunFunction(entry_script="s.py"))
    assert "mini_batch_size" in exc.value.message and "pydantic" not in exc.value.message
    # F21: endpoint names are unique whatever their case
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="UPPERcase13")).result()
    with pytest.raises(ConflictError) as cexc:
        ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="uppercase13"))
    assert "'UPPERcase13' exists" in cexc.value.message
    # F19: the input's kind is checked before any upload, naming the path as given
    _write(tmp_path / "one" / "single.csv", "x\n1\n")
    for path, typ, words in (("./one/single.csv", "uri_folder", "is a file but the input type is uri_folder"),
                             ("./one", "uri_file", "is a folder but the input type is uri_file"),
                             ("./one", "mltable", "is a folder without an MLTable file")):
        r = cli("batch-endpoint", "invoke", "-n", "UPPERcase13", "--input", path, "--input-type", typ, cwd=tmp_path)
        assert r.returncode == 1 and f"'{path}' {words}" in r.stderr and "LocalUpload" not in r.stderr, r.stderr
    ml_client.batch_endpoints.begin_delete("UPPERcase13")


# ------------------------------------------------------------------ F20: a known-deterministic error
def test_the_mlflow_drivers_unreadable_file_error_is_not_retried() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "openaml" / "serving"))
    try:
        import batch_driver
    finally:
        sys.path.pop(0)
    with pytest.raises(ValueError) as exc:
        batch_driver._read("image.png")
    assert getattr(exc.value, "openaml_no_retry", False) is True  # the engine's worker fails it at once


# ------------------------------------------------------------------ F18: Azure PRS failure flags
def test_allowed_failed_count_and_percent_are_applied_and_checked(cli: Any, tmp_path: Path) -> None:
    for i in range(4):
        _write(tmp_path / "data" / f"f{i}.txt", "x\n")
    _write(tmp_path / "src" / "score.py", """
        import os
        def run(mini_batch):
            if any(os.path.basename(f) in ("f1.txt", "f2.txt") for f in mini_batch):
                raise RuntimeError("bad file")
            return [os.path.basename(f) for f in mini_batch]
        """)

    def job(args: str) -> Path:
        return _write(tmp_path / "job.yml", f"""
            type: parallel
            compute: local
            inputs:
              data: {{type: uri_folder, path: ./data}}
            input_data: ${{{{inputs.data}}}}
            mini_batch_size: "1"
            max_concurrency_per_instance: 1
            retry_settings: {{max_retries: 0, timeout: 30}}
            task:
              type: run_function
              code: ./src
              entry_script: score.py
              program_arguments: {args}
            """)

    # two of four mini-batches fail: 25 % allowed fails the job, naming the flag; 50 % lets it complete
    failed = cli("job", "show", "-n", _submit(cli, job("--allowed_failed_percent 25")), check=True).json()
    assert failed["status"] == "Failed" and "--allowed_failed_percent 25" in (failed.get("error") or ""), failed
    ok = cli("job", "show", "-n", _submit(cli, job("--allowed_failed_percent 50")), check=True).json()
    assert ok["status"] == "Completed", ok
    count = cli("job", "show", "-n", _submit(cli, job("--allowed_failed_count 1")), check=True).json()
    assert count["status"] == "Failed" and "--allowed_failed_count 1" in (count.get("error") or ""), count
    for bad in ("--allowed_failed_percent 150", "--allowed_failed_count many", "--first_task_creation_timeout 0"):
        r = cli("job", "create", "-f", str(job(bad)))
        assert r.returncode != 0 and "task.program_arguments" in r.stdout + r.stderr, (bad, r.stdout, r.stderr)
        assert bad.split()[0] in r.stdout + r.stderr
