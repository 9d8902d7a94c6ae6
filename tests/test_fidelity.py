"""Smaller fidelity defects found porting the book and public Azure ML examples (issue 9 item 6):
each a regression test asserting what Azure ML does."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from openaml.datastores import validate_mltable_text
from openaml.errors import ValidationError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def _run(cli, yml: Path, *extra: str):
    r = cli("job", "create", "-f", str(yml), "--stream", *extra)
    return r


def test_empty_optional_string_input_drops_its_block(ml_client, cli, tmp_path):
    yml = _write(tmp_path / "job.yml", """
        type: command
        command: echo "ARGS[start $[[--tag ${{inputs.tag}}]] $[[--n ${{inputs.n}}]] end]"
        inputs:
          tag: ""
          n: 3
        environment: azureml:AzureML-sklearn-1.5@latest
        """)
    r = _run(cli, yml)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "ARGS[start  --n 3 end]" in r.stdout


@pytest.mark.parametrize("delimiter,expected", [
    ("'\\t'", 'write delimiter: "\\t" (double-quoted)'),
    ("/t", 'write delimiter: "\\t" (double-quoted)'),
    ("'||'", "must be one character"),
])
def test_mltable_two_character_delimiter_is_refused(delimiter, expected):
    text = f"paths:\n  - file: x.csv\ntransformations:\n  - read_delimited:\n      delimiter: {delimiter}\n"
    with pytest.raises(ValidationError) as info:
        validate_mltable_text(text, source="d/MLTable")
    assert "line 5" in info.value.message and expected in info.value.message


def test_mltable_tab_delimiter_double_quoted_is_accepted():
    text = 'paths:\n  - file: x.csv\ntransformations:\n  - read_delimited:\n      delimiter: "\\t"\n'
    assert validate_mltable_text(text, source="d/MLTable")["transformations"][0]["read_delimited"]["delimiter"] == "\t"


def test_job_input_with_malformed_mltable_is_refused_at_submission(ml_client, cli, tmp_path):
    _write(tmp_path / "tbl" / "MLTable", """
        paths:
          - file: ./t.csv
        transformations:
          - read_delimited:
              delimiter: '\\t'
        """)
    _write(tmp_path / "tbl" / "t.csv", "a\tb\n1\t2\n")
    yml = _write(tmp_path / "job.yml", """
        type: command
        command: ls ${{inputs.tbl}}
        inputs:
          tbl: {type: mltable, path: ./tbl}
        environment: azureml:AzureML-sklearn-1.5@latest
        """)
    before = len(ml_client.jobs.list(list_view_type="all"))
    r = cli("job", "create", "-f", str(yml))
    assert r.returncode != 0
    assert "inputs.tbl" in r.stderr and "MLTable, line 5" in r.stderr and "double-quoted" in r.stderr
    assert len(ml_client.jobs.list(list_view_type="all")) == before


def test_output_json_prints_non_ascii_as_itself(cli, tmp_path):
    (tmp_path / "x.txt").write_text("x")
    r = cli("data", "create", "--name", "fid_unicode", "--path", str(tmp_path / "x.txt"), "--type", "uri_file",
            "--description", "données é 数据", check=True)
    assert "données é 数据" in r.stdout and "\\u" not in r.stdout
    assert json.loads(r.stdout)["description"] == "données é 数据"


def test_number_input_default_in_exponent_notation(ml_client, cli, tmp_path):
    comp = _write(tmp_path / "comp.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
        name: fid_lr
        type: command
        inputs:
          learning_rate: {type: number, default: 1e-3}
          steps: {type: integer, default: "5"}
        command: echo "LR=${{inputs.learning_rate}} STEPS=${{inputs.steps}}"
        environment: azureml:AzureML-sklearn-1.5@latest
        """)
    r = cli("component", "create", "-f", str(comp), check=True)
    inputs = r.json()["inputs"]
    assert inputs["learning_rate"]["default"] == pytest.approx(0.001) and inputs["steps"]["default"] == 5
    from openaml import load_component

    c = load_component(comp)
    assert c.inputs["learning_rate"].default == pytest.approx(1e-3)
    yml = _write(tmp_path / "job.yml", """
        type: command
        command: echo "RATE=${{inputs.rate}}"
        inputs:
          rate: {type: number, value: 2e-2}
        environment: azureml:AzureML-sklearn-1.5@latest
        """)
    r = _run(cli, yml)
    assert r.returncode == 0 and "RATE=0.02" in r.stdout, r.stderr + r.stdout


def test_query_takes_jmespath_on_every_command(ml_client, cli, tmp_path):
    yml = _write(tmp_path / "job.yml", """
        type: command
        command: echo hi
        environment: azureml:AzureML-sklearn-1.5@latest
        tags: {team: fidelity}
        """)
    r = cli("job", "create", "-f", str(yml), "--query", "name", "-o", "tsv", check=True)
    name = r.stdout.strip()
    assert name and "\n" not in name and ml_client.jobs.get(name).name == name
    r = cli("job", "show", "-n", name, "--query", "{n: name, team: tags.team}", "-o", "json", check=True)
    assert r.json() == {"n": name, "team": "fidelity"}
    r = cli("datastore", "list", "--query=[?is_default].name", "-o", "tsv", check=True)
    assert r.stdout.strip() == "workspaceblobstore"
    r = cli("datastore", "list", "--query", "[?is_default", "-o", "tsv")
    assert r.returncode != 0 and "not a valid JMESPath expression" in r.stderr


def test_set_of_an_undeclared_input_is_refused(ml_client, cli, tmp_path):
    yml = _write(tmp_path / "job.yml", """
        type: command
        command: cat ${{inputs.data}}
        inputs:
          data: {type: uri_file, path: ./d.csv}
          n: 1
        environment: azureml:AzureML-sklearn-1.5@latest
        """)
    (tmp_path / "d.csv").write_text("a\n")
    before = len(ml_client.jobs.list(list_view_type="all"))
    r = cli("job", "create", "-f", str(yml), "--set", "inputs.nope.path=./d.csv")
    assert r.returncode != 0
    assert "declares no input 'nope'" in r.stderr and "declared inputs: data, n" in r.stderr
    r = cli("job", "create", "-f", str(yml), "--set", "outputs.model.mode=upload")
    assert r.returncode != 0 and "declared outputs: none" in r.stderr
    assert len(ml_client.jobs.list(list_view_type="all")) == before


def test_uri_file_output_is_a_file_path_landing_at_its_datastore_path(ml_client, cli, server, tmp_path):
    yml = _write(tmp_path / "job.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
        type: command
        command: echo world > ${{outputs.output}} && echo "OUT=${{outputs.output}}"
        outputs:
          output:
            type: uri_file
            path: azureml://datastores/workspaceblobstore/paths/fidelity/example/hello_world.txt
            mode: rw_mount
        environment: azureml:AzureML-sklearn-1.5@latest
        """)
    r = _run(cli, yml)
    assert r.returncode == 0, r.stderr + r.stdout
    out_line = next(line for line in r.stdout.splitlines() if line.startswith("OUT="))
    assert out_line.endswith("/hello_world.txt")
    landed = server.path / "datastores" / "workspaceblobstore" / "fidelity" / "example" / "hello_world.txt"
    assert landed.is_file() and landed.read_text() == "world\n"


def test_uri_file_output_from_the_sdk(ml_client, server):
    from openaml import Output, command

    job = command(command="echo sdk > ${{outputs.output}}", environment="AzureML-sklearn-1.5@latest",
                  outputs={"output": Output(type="uri_file", mode="rw_mount",
                                            path="azureml://datastores/workspaceblobstore/paths/fidelity/sdk/a.txt")})
    created = ml_client.jobs.create_or_update(job)
    final = ml_client.jobs.wait(created.name, timeout=120)
    assert final.status == "Completed", ml_client.jobs.get_raw(created.name)["log_tail"]
    assert (server.path / "datastores" / "workspaceblobstore" / "fidelity" / "sdk" / "a.txt").read_text() == "sdk\n"


def test_pipeline_inline_hyphen_name_undeclared_input_and_uri_file_output(ml_client, cli, server, tmp_path):
    yml = _write(tmp_path / "pipeline.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
        type: pipeline
        display_name: fidelity pipeline
        jobs:
          train:
            type: command
            component:
              name: my-train-pipeline
              type: command
              inputs:
                lr: {type: number, default: 1e-3}
              outputs:
                output: {type: uri_file}
              command: echo "lr=${{inputs.lr}}" > ${{outputs.output}}
              environment: azureml:AzureML-sklearn-1.5@latest
            inputs:
              lr: 0.01
              extra_flag: hello
            outputs:
              output:
                type: uri_file
                path: azureml://datastores/workspaceblobstore/paths/fidelity/pipe/hello_world.txt
                mode: rw_mount
        """)
    r = _run(cli, yml)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "WARNING: field 'jobs.train.inputs.extra_flag': component 'my-train-pipeline' has no input " \
           "'extra_flag', so it is ignored; inputs: lr" in r.stderr
    landed = server.path / "datastores" / "workspaceblobstore" / "fidelity" / "pipe" / "hello_world.txt"
    assert landed.read_text() == "lr=0.01\n"
    # the name rule applies to registered components
    comp = _write(tmp_path / "comp.yml", """
        name: my-train-pipeline
        type: command
        command: echo hi
        environment: azureml:AzureML-sklearn-1.5@latest
        """)
    r = cli("component", "create", "-f", str(comp))
    assert r.returncode != 0 and "cannot name a registered component" in r.stderr and "'my_train_pipeline'" in r.stderr


def test_data_create_of_a_missing_datastore_path_warns_and_the_job_fails_clearly(ml_client, cli, server, tmp_path):
    import uuid

    rel = f"fidelity/later/{uuid.uuid4().hex}.csv"
    uri = f"azureml://datastores/workspaceblobstore/paths/{rel}"
    r = cli("data", "create", "--name", "fid_later", "--path", uri, "--type", "uri_file")
    assert r.returncode == 0, r.stderr
    assert "WARNING:" in r.stderr and "does not exist yet" in r.stderr
    version = r.json()["version"]
    assert r.json()["path"] == uri
    yml = _write(tmp_path / "job.yml", f"""
        type: command
        command: cat ${{{{inputs.d}}}}
        inputs:
          d: {{type: uri_file, path: azureml:fid_later:{version}}}
        environment: azureml:AzureML-sklearn-1.5@latest
        """)
    r = cli("job", "create", "-f", str(yml))
    assert r.returncode != 0
    assert f"field 'inputs.d': {uri} (the path of azureml:fid_later:{version}) does not exist" in r.stderr
    target = server.path / "datastores" / "workspaceblobstore" / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("a\n42\n")
    r = _run(cli, yml)
    assert r.returncode == 0 and "42" in r.stdout, r.stderr + r.stdout


def test_non_utf8_yaml_is_a_clear_error_not_a_traceback(cli, tmp_path):
    # review of issue 9: `job create` / `environment create` of a non-UTF-8 file printed a UnicodeDecodeError
    bad = tmp_path / "job.yml"
    bad.write_bytes(b"\xff\xfe type: command\n")
    r = cli("job", "create", "-f", str(bad))
    assert r.returncode != 0 and "Traceback" not in r.stderr + r.stdout
    assert f"{bad}: not a UTF-8 text file" in r.stderr + r.stdout
    conda = tmp_path / "conda.yml"
    conda.write_bytes(b"dependencies:\n  - \xe9\xff\n")
    env = _write(tmp_path / "env.yml", f"""
        name: not-utf8
        image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest
        conda_file: {conda}
        """)
    r = cli("environment", "create", "-f", str(env))
    assert r.returncode != 0 and "Traceback" not in r.stderr + r.stdout
    assert "not a UTF-8 text file" in r.stderr + r.stdout


def test_a_python_version_that_is_not_one_is_refused():
    # review of issue 9: `python=banana` in a conda file was ignored (the job ran in the default environment)
    from openaml.environments import parse_conda

    with pytest.raises(ValidationError, match="'banana' is not a Python version"):
        parse_conda({"dependencies": ["python=banana", "pip"]})
    assert parse_conda({"dependencies": ["python=3.10.*", "pip"]})[1] == "3.10"
