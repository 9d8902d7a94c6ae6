"""Components and pipeline jobs end to end: real server, real SDK/CLI, tiny steps."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import pytest

from openaml import Input, MLClient, dsl, load_component, load_job
from openaml.errors import ValidationError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def _project(root: Path) -> Path:
    """prep (copies + scales) -> train (reads prep's output, writes a model file)."""
    _write(root / "src" / "prep.py", """
        import sys, pathlib
        src, factor, out = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
        text = pathlib.Path(src).read_text()
        (out / "data.txt").write_text(text * factor)
        """)
    _write(root / "src" / "train.py", """
        import sys, pathlib
        data, lr, out = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
        n = len((data / "data.txt").read_text())
        (out / "model.txt").write_text(f"chars={n} lr={lr}")
        """)
    _write(root / "prep.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
        name: prep_data
        version: 1
        type: command
        inputs:
          raw: {type: uri_file}
          factor: {type: integer, default: 2, min: 1, max: 10}
        outputs:
          prepared: {type: uri_folder}
        code: ./src
        command: python prep.py ${{inputs.raw}} ${{inputs.factor}} ${{outputs.prepared}}
        """)
    _write(root / "train.yml", """
        name: train_model
        type: command
        inputs:
          data: {type: uri_folder}
          lr: {type: number, default: 0.1}
        outputs:
          model: {type: uri_folder}
        code: ./src
        command: python train.py ${{inputs.data}} ${{inputs.lr}} ${{outputs.model}}
        """)
    _write(root / "data" / "raw.txt", "abc")
    return _write(root / "pipeline.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
        type: pipeline
        display_name: prep-train
        experiment_name: EXP
        inputs:
          raw: {type: uri_file, path: ./data/raw.txt}
          lr: 0.5
        outputs:
          final_model: {mode: rw_mount}
        settings:
          default_compute: azureml:local
          continue_on_step_failure: false
          default_datastore: azureml:workspaceblobstore
          some_future_setting: kept
        jobs:
          prep:
            component: ./prep.yml
            inputs:
              raw: ${{parent.inputs.raw}}
              factor: 3
          train:
            component: file:./train.yml
            inputs:
              data: ${{parent.jobs.prep.outputs.prepared}}
              lr: ${{parent.inputs.lr}}
            outputs:
              model: ${{parent.outputs.final_model}}
            environment_variables: {X: "1"}
        """)


def _steps(ml: MLClient, name: str) -> dict[str, dict]:
    return {c.name.rsplit("-", 1)[1]: {**c.properties, "status": c.status}
            for c in ml.jobs.list(parent_job_name=name)}


def test_components_versions_latest_archive_and_name_rule(ml_client, cli, tmp_path):
    _project(tmp_path)
    r = cli("component", "create", "-f", str(tmp_path / "train.yml"))
    assert r.returncode == 0, r.stderr
    first = r.json()["version"]
    r = cli("component", "create", "-f", str(tmp_path / "train.yml"), "--set", "description=second")
    assert r.returncode == 0, r.stderr
    second = r.json()["version"]
    assert int(second) == int(first) + 1
    assert ml_client.components.get("train_model", label="latest").version == second
    assert ml_client.components.get("train_model", version=first).description is None
    assert "train_model" in {c.name for c in ml_client.components.list()}
    cli("component", "archive", "-n", "train_model", "-v", second, check=True)
    assert ml_client.components.get("train_model", label="latest").version == first
    assert ml_client.components.get("train_model", version=second).archived
    shown = cli("component", "show", "-n", "train_model", "-v", first, check=True).json()
    assert shown["code"].startswith("openaml-code:") and shown["inputs"]["lr"]["default"] == 0.1
    bad = _write(tmp_path / "bad.yml", "name: Bad-Name\ncommand: echo\n")
    with pytest.raises(ValidationError, match="name"):
        load_component(bad)
    r = cli("component", "create", "-f", str(bad))
    assert r.returncode == 1 and "name" in r.stderr


def test_component_create_rejects_undeclared_bindings_bad_defaults_and_unknown_environment(ml_client, cli, tmp_path):
    """Regression: these were registered and only failed when a pipeline step started ("a: None")."""
    bad = _write(tmp_path / "bad.yml", """
        name: bad_comp
        type: command
        inputs:
          n: {type: integer, default: 20, min: 1, max: 10}
          e: {type: string, enum: [a, b], default: c}
        command: echo ${{inputs.m}} ${{outputs.o}}
        environment: azureml:no_such_env@latest
        """)
    r = cli("component", "create", "-f", str(bad))
    assert r.returncode == 1
    err = " ".join(r.stderr.split())
    for part in ("field 'command': ${{inputs.m}} refers to input 'm', which is not declared",
                 "${{outputs.o}} refers to output 'o'", "field 'inputs.n.default': value 20 is outside [1, 10]",
                 "field 'inputs.e.default': value 'c' is not one of ['a', 'b']",
                 "field 'environment': environment 'no_such_env' not found"):
        assert part in err, err
    assert "bad_comp" not in {c.name for c in ml_client.components.list()}
    name_rule = _write(tmp_path / "name.yml", "name: Bad-Name\ncommand: echo\n")
    r = cli("component", "create", "-f", str(name_rule))
    # the CLI prints brackets as text, not rich markup (the pattern was shown as '^{0,254}$')
    assert "'^[a-z][a-z0-9_]{0,254}$'" in " ".join(r.stderr.split()), r.stderr


def test_yaml_pipeline_runs_reuses_with_reasons_and_explains_reruns(ml_client, cli, tmp_path):
    exp = f"pipe-{tmp_path.name[-12:]}".replace("_", "-")
    yml = _project(tmp_path)
    yml.write_text(yml.read_text().replace("EXP", exp))
    job = load_job(yml)
    assert job.settings.model_extra == {"some_future_setting": "kept"}
    created = ml_client.jobs.create_or_update(job)
    final = ml_client.jobs.wait(created.name, timeout=180)
    raw = ml_client.jobs.get_raw(created.name)
    assert final.status == "Completed", raw
    steps = _steps(ml_client, created.name)
    assert steps["prep"]["status"] == steps["train"]["status"] == "Completed"
    assert steps["prep"]["openaml.reason"].startswith("ran:")
    dl = tmp_path / "dl"
    ml_client.jobs.download(created.name, download_path=dl, output_name="final_model")
    assert (dl / "named-outputs" / "final_model" / "model.txt").read_text() == "chars=9 lr=0.5"
    # nothing changed: every step reused, and says from where
    again = ml_client.jobs.wait(ml_client.jobs.create_or_update(load_job(yml)).name, timeout=60)
    assert again.status == "Completed"
    steps = _steps(ml_client, again.name)
    assert all(s["azureml.isreused"] == "true" for s in steps.values()), steps
    assert f"{created.name}-train" in steps["train"]["openaml.reason"]
    # the stream of the reused run lists the steps upstream first (it was newest first: train before prep)
    r = cli("job", "stream", "-n", again.name, timeout=60)
    ends = re.findall(r"^\[(\w+)\] step Completed \(reused", r.stdout, re.M)
    assert ends == ["prep", "train"], r.stdout
    # a parameter changed: prep reused, train runs and says why
    third = load_job(yml, params_override=[{"inputs.lr": 0.7}])
    third = ml_client.jobs.wait(ml_client.jobs.create_or_update(third).name, timeout=120)
    assert third.status == "Completed"
    steps = _steps(ml_client, third.name)
    assert steps["prep"]["azureml.isreused"] == "true"
    assert steps["train"]["azureml.isreused"] == "false"
    assert "parameter 'lr' changed: 0.5 -> 0.7" in steps["train"]["openaml.reason"]
    # force_rerun: everything runs
    forced = load_job(yml, params_override=[{"settings.force_rerun": True}])
    forced = ml_client.jobs.wait(ml_client.jobs.create_or_update(forced).name, timeout=120)
    steps = _steps(ml_client, forced.name)
    assert all("force_rerun" in s["openaml.reason"] for s in steps.values())
    # job show draws the graph
    r = cli("job", "show", "-n", third.name, "-o", "graph")
    assert r.returncode == 0, r.stderr
    assert "prep" in r.stdout and "reused" in r.stdout and "train" in r.stdout


def _pipe(tmp_path: Path, jobs: str, extra: str = "") -> Path:
    _project(tmp_path)
    return _write(tmp_path / "p.yml", "type: pipeline\n" + textwrap.dedent(extra) + "jobs:\n" +
                  textwrap.indent(textwrap.dedent(jobs), "  "))


@pytest.mark.parametrize("jobs,extra,where,what", [
    ("""
     a:
       component: ./train.yml
       inputs: {data: "${{parent.jobs.b.outputs.model}}"}
     b:
       component: ./train.yml
       inputs: {data: "${{parent.jobs.a.outputs.model}}"}
     """, "", "jobs.", "cycle"),
    ("""
     a:
       component: ./train.yml
       inputs: {data: "${{parent.jobs.nope.outputs.model}}"}
     """, "", "jobs.a.inputs.data", "node 'nope'"),
    ("""
     p:
       component: ./prep.yml
       inputs: {raw: "${{parent.inputs.raw}}"}
     a:
       component: ./train.yml
       inputs: {data: "${{parent.jobs.p.outputs.missing}}"}
     """, "inputs:\n  raw: {type: uri_file, path: ./data/raw.txt}\n", "jobs.a.inputs.data", "output 'missing'"),
    ("""
     p:
       component: ./train.yml
       inputs: {data: "${{parent.inputs.d}}"}
     a:
       component: ./prep.yml
       inputs: {raw: "${{parent.jobs.p.outputs.model}}"}
     """, "inputs:\n  d: {type: uri_folder, path: ./data}\n", "jobs.a.inputs.raw", "type mismatch"),
    ("""
     a:
       component: ./prep.yml
     """, "", "jobs.a.inputs.raw", "not bound"),
    ("""
     a:
       component: azureml:train_model:999
       inputs: {data: {type: uri_folder, path: ./data}}
     """, "", "jobs.a.component", "999"),
    ("""
     a:
       component: ./prep.yml
       inputs: {raw: {type: uri_file, path: ./data/raw.txt}, factor: 50}
     """, "", "jobs.a.inputs.factor", "outside [1, 10]"),
    ("""
     a:
       command: echo ${{inputs.typo}}
     """, "", "jobs.a.command", "input 'typo', which is not declared"),
    ("""
     a:
       command: echo hi
       environment: azureml:no_such_env@latest
     """, "", "jobs.a.environment", "'no_such_env' not found"),
    # regression: pipelines did not refuse paths leaving their datastore, as command jobs do
    ("""
     a:
       command: ls ${{inputs.d}}
       inputs: {d: {type: uri_folder, path: "azureml://datastores/workspaceblobstore/paths/../x"}}
     """, "", "jobs.a.inputs.d", "contains '..'"),
    ("""
     a:
       command: echo hi > ${{outputs.o}}/f.txt
       outputs: {o: {type: uri_folder, path: "azureml://datastores/workspaceblobstore/paths/a/../../y"}}
     """, "", "jobs.a.outputs.o", "contains '..'"),
    ("""
     a:
       command: ls ${{inputs.d}}
       inputs: {d: {type: uri_folder, path: "azureml://datastores/workspaceblobstore/paths/no/such/folder"}}
     """, "", "jobs.a.inputs.d", "does not exist"),
])
def test_bad_pipelines_rejected_before_anything_runs(ml_client, tmp_path, jobs, extra, where, what):
    before = len(ml_client.jobs.list(list_view_type="all"))
    with pytest.raises(ValidationError) as info:
        ml_client.jobs.create_or_update(load_job(_pipe(tmp_path, jobs, extra)))
    assert where in info.value.message and what in info.value.message, info.value.message
    assert len(ml_client.jobs.list(list_view_type="all")) == before


def test_failure_stops_downstream_or_not_with_continue_on_step_failure(ml_client, tmp_path):
    jobs = """
        bad:
          command: python -c "import sys; sys.exit(3)"
          outputs: {o: {type: uri_folder}}
        after_bad:
          command: echo ${{inputs.x}}
          inputs: {x: "${{parent.jobs.bad.outputs.o}}"}
        slow_ok:
          command: python -c "import time; time.sleep(1.5)"
        """
    job = ml_client.jobs.wait(ml_client.jobs.create_or_update(load_job(_pipe(tmp_path, jobs))).name, timeout=120)
    assert job.status == "Failed"
    raw = ml_client.jobs.get_raw(job.name)
    assert "bad" in raw["error"]
    assert raw["steps"]["after_bad"]["status"] == "Skipped"
    if raw["steps"]["slow_ok"]["status"] == "Canceled":  # (it may have completed first on a slow machine)
        assert raw["steps"]["slow_ok"]["error"] == f"canceled because its pipeline {job.name} failed"
    cont = load_job(_pipe(tmp_path, jobs), params_override=[{"settings.continue_on_step_failure": True}])
    job = ml_client.jobs.wait(ml_client.jobs.create_or_update(cont).name, timeout=120)
    assert job.status == "Failed"
    steps = _steps(ml_client, job.name)
    assert steps["slow_ok"]["status"] == "Completed" and steps["bad"]["status"] == "Failed"
    assert "after_bad" not in steps


def test_dsl_pipeline_builds_the_same_graph_and_runs(ml_client, tmp_path):
    _project(tmp_path)
    prep = load_component(tmp_path / "prep.yml")
    train = load_component(tmp_path / "train.yml")

    @dsl.pipeline(compute="local", description="prep then train", experiment_name="dsl-tests")
    def prep_train(raw: Input, lr: float = 0.25) -> dict:
        prepared = prep(raw=raw, factor=2)
        trained = train(data=prepared.outputs.prepared, lr=lr)
        trained.environment_variables = {"X": "1"}
        return {"final_model": trained.outputs.model}

    job = prep_train(raw=Input(type="uri_file", path=str(tmp_path / "data" / "raw.txt")))
    assert set(job.jobs) == {"prepared", "trained"}
    assert job.jobs["trained"].inputs["data"] == "${{parent.jobs.prepared.outputs.prepared}}"
    assert job.jobs["trained"].outputs["model"] == "${{parent.outputs.final_model}}"
    created = ml_client.jobs.create_or_update(job, experiment_name="dsl-tests")
    final = ml_client.jobs.wait(created.name, timeout=180)
    assert final.status == "Completed", ml_client.jobs.get_raw(created.name)
    dl = tmp_path / "dl"
    ml_client.jobs.download(created.name, download_path=dl, output_name="final_model")
    assert (dl / "named-outputs" / "final_model" / "model.txt").read_text() == "chars=6 lr=0.25"


def test_command_builder_called_inside_dsl_makes_a_node():
    """Regression: ``command(...)`` called inside ``@dsl.pipeline`` is a node, not a sweep space."""
    from openaml import Output, command

    step = command(command="echo ${{inputs.n}} > ${{outputs.out}}/n.txt", inputs={"n": 1},
                   outputs={"out": Output(type="uri_folder")}, environment="azureml:AzureML-sklearn-1.5@latest")

    @dsl.pipeline(compute="local")
    def one_step(n: int = 3) -> dict:
        node = step(n=n)
        return {"result": node.outputs.out}

    job = one_step()
    assert set(job.jobs) == {"node"}
    assert job.jobs["node"].inputs["n"] == "${{parent.inputs.n}}"


def test_command_builder_node_keeps_its_environment_variables_compute_and_timeout():
    """Regression: a ``command(...)`` job used as a node lost its environment_variables (the step then
    failed reading them), compute and timeout; azure-ai-ml's Command node keeps them."""
    from openaml import Output, command

    step = command(command="echo $RUNS_DIR > ${{outputs.out}}/n.txt", outputs={"out": Output(type="uri_folder")},
                   environment="azureml:AzureML-sklearn-1.5@latest", environment_variables={"RUNS_DIR": "/x"},
                   compute="local", display_name="keeps", timeout=90)

    @dsl.pipeline()
    def one_step() -> dict:
        return {"result": step().outputs.out}

    (node,) = one_step().jobs.values()
    assert node.environment_variables == {"RUNS_DIR": "/x"}
    assert node.compute == "local" and node.display_name == "keeps"
    limits = node.limits if isinstance(node.limits, dict) else node.limits.model_dump()
    assert limits["timeout"] == 90


def _nested_project(root: Path) -> Path:
    """pipeline -> m (middle.yml) -> first, second (inner.yml each) -> a, b (double.yml); then after."""
    _write(root / "src" / "double.py", """
        import sys, pathlib
        data, k, out = pathlib.Path(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3])
        (out / "n.txt").write_text(str(int((data / "n.txt").read_text()) * k))
        """)
    _write(root / "double.yml", """
        name: double_it
        type: command
        inputs:
          data: {type: uri_folder}
          k: {type: integer}
        outputs:
          out: {type: uri_folder}
        code: ./src
        command: python double.py ${{inputs.data}} ${{inputs.k}} ${{outputs.out}}
        """)
    _write(root / "comps" / "inner.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json
        type: pipeline
        name: inner_pipe
        inputs:
          data: {type: uri_folder}
          k: {type: integer, default: 2}
        outputs:
          result: {type: uri_folder}
        jobs:
          a:
            type: command
            component: ../double.yml
            inputs: {data: "${{parent.inputs.data}}", k: "${{parent.inputs.k}}"}
          b:
            type: command
            component: ../double.yml
            inputs: {data: "${{parent.jobs.a.outputs.out}}", k: 3}
            outputs: {out: "${{parent.outputs.result}}"}
        """)
    _write(root / "comps" / "middle.yml", """
        type: pipeline
        name: middle_pipe
        inputs:
          data: {type: uri_folder}
          k: {type: integer}
        outputs:
          result: {type: uri_folder}
        jobs:
          first:
            type: pipeline
            component: ./inner.yml
            inputs: {data: "${{parent.inputs.data}}", k: "${{parent.inputs.k}}"}
          second:
            type: pipeline
            component: ./inner.yml
            inputs: {data: "${{parent.jobs.first.outputs.result}}"}
            outputs: {result: "${{parent.outputs.result}}"}
        """)
    _write(root / "data" / "n.txt", "1")
    return _write(root / "nested.yml", """
        type: pipeline
        experiment_name: nested
        inputs:
          data: {type: uri_folder, path: ./data}
        outputs:
          final: {mode: rw_mount}
        settings: {default_compute: azureml:local, force_rerun: true}
        jobs:
          m:
            type: pipeline
            component: ./comps/middle.yml
            inputs: {data: "${{parent.inputs.data}}", k: 5}
            outputs: {result: "${{parent.outputs.final}}"}
          after:
            component: ./double.yml
            inputs: {data: "${{parent.jobs.m.outputs.result}}", k: 1}
        """)


def _read_output(ml: MLClient, job: str, output: str, dest: Path) -> str:
    ml.jobs.download(job, download_path=dest, output_name=output)
    return (dest / "named-outputs" / output / "n.txt").read_text()


def test_pipeline_components_nest_two_levels_in_yaml_registered_and_shown(ml_client, cli, tmp_path):
    yml = _nested_project(tmp_path)
    job = ml_client.jobs.wait(ml_client.jobs.create_or_update(load_job(yml)).name, timeout=240)
    raw = ml_client.jobs.get_raw(job.name)
    assert job.status == "Completed", raw
    assert list(raw["steps"]) == ["m-first-a", "m-first-b", "m-second-a", "m-second-b", "after"] or \
        set(raw["steps"]) == {"m-first-a", "m-first-b", "m-second-a", "m-second-b", "after"}
    # 1 * 5 (first.a) * 3 (first.b) * 2 (second.a, k defaulted) * 3 (second.b) = 90; after * 1
    assert _read_output(ml_client, job.name, "final", tmp_path / "dl") == "90"
    assert _read_output(ml_client, f"{job.name}-after", "out", tmp_path / "dl2") == "90"
    shown = cli("job", "show", "-n", job.name, "-o", "graph", check=True).stdout
    lines = shown.splitlines()
    assert "  m  (pipeline component)" in lines and "    first  (pipeline component)" in lines, shown
    assert any(line.startswith("      a ") and "Completed" in line for line in lines), shown
    assert any(line.startswith("  after ") and "<- m-second-b" in line for line in lines), shown
    # registered: the middle component (its nested component files sent inline) used by reference
    r = cli("component", "create", "-f", str(tmp_path / "comps" / "middle.yml"))
    assert r.returncode == 0, r.stderr
    assert r.json()["type"] == "pipeline"
    reg = _write(tmp_path / "reg.yml", yml.read_text().replace("./comps/middle.yml", "azureml:middle_pipe@latest"))
    job = ml_client.jobs.wait(ml_client.jobs.create_or_update(load_job(reg)).name, timeout=240)
    assert job.status == "Completed", ml_client.jobs.get_raw(job.name)
    assert _read_output(ml_client, job.name, "final", tmp_path / "dl3") == "90"


@pytest.mark.parametrize("edit,where,what", [
    (("k: 5", "k: 5, nope: 1"), "jobs.m.inputs.nope", "no input 'nope'"),
    (("inputs: {data: \"${{parent.inputs.data}}\", k: 5}", "inputs: {data: \"${{parent.inputs.data}}\"}"),
     "jobs.m.inputs.k", "not bound"),
    (("m.outputs.result", "m.outputs.missing"), "jobs.after.inputs.data", "output 'missing'"),
    (("./comps/middle.yml", "azureml:middle_pipe:404"), "jobs.m.component", "404"),
    (("k: 5", "k: 5.5"), "inputs.k", "type mismatch"),
])
def test_bad_pipeline_component_nodes_rejected(ml_client, tmp_path, edit, where, what):
    yml = _nested_project(tmp_path)
    yml.write_text(yml.read_text().replace(*edit))
    before = len(ml_client.jobs.list(list_view_type="all"))
    with pytest.raises(ValidationError) as info:
        ml_client.jobs.create_or_update(load_job(yml))
    assert where in info.value.message and what in info.value.message, info.value.message
    assert len(ml_client.jobs.list(list_view_type="all")) == before


def test_dsl_pipeline_called_inside_a_dsl_pipeline_nests(ml_client, tmp_path):
    _nested_project(tmp_path)
    double = load_component(tmp_path / "double.yml")

    @dsl.pipeline()
    def inner(data: Input, k: int = 2) -> dict:
        a = double(data=data, k=k)
        b = double(data=a.outputs.out, k=3)
        return {"result": b.outputs.out}

    @dsl.pipeline()
    def middle(data: Input, k: int) -> dict:
        first = inner(data=data, k=k)
        second = inner(data=first.outputs.result)
        return {"result": second.outputs.result}

    middle_yaml = load_component(tmp_path / "comps" / "middle.yml")  # a pipeline component file, called

    @dsl.pipeline(compute="local", experiment_name="nested-dsl", force_rerun=True)
    def outer(data: Input) -> dict:
        m = middle(data=data, k=5)
        after = double(data=m.outputs.result, k=1)
        y = middle_yaml(data=data, k=1)
        return {"final": after.outputs.out, "from_yaml": y.outputs.result}

    job = outer(data=Input(type="uri_folder", path=str(tmp_path / "data")))
    assert job.jobs["m"].type == "pipeline"
    created = ml_client.jobs.create_or_update(job)
    final = ml_client.jobs.wait(created.name, timeout=240)
    assert final.status == "Completed", ml_client.jobs.get_raw(created.name)
    assert _read_output(ml_client, created.name, "final", tmp_path / "dl") == "90"
    assert _read_output(ml_client, created.name, "from_yaml", tmp_path / "dl2") == "18"  # 1 * 1*3 * 2*3
    assert set(ml_client.jobs.get_raw(created.name)["steps"]) == {
        "m-first-a", "m-first-b", "m-second-a", "m-second-b", "after",
        "y-first-a", "y-first-b", "y-second-a", "y-second-b"}


def _sweep_project(root: Path) -> Path:
    _write(root / "src" / "trial.py", """
        import sys, pathlib, mlflow
        lr, out = float(sys.argv[1]), pathlib.Path(sys.argv[2])
        mlflow.log_metric("score", -abs(lr - 0.3))
        (out / "lr.txt").write_text(str(lr))
        """)
    _write(root / "trial.yml", """
        name: trial_comp
        type: command
        inputs:
          lr: {type: number, default: 0.01}
        outputs:
          model: {type: uri_folder}
        code: ./src
        command: python trial.py ${{inputs.lr}} ${{outputs.model}}
        """)
    return _write(root / "sweep_pipe.yml", """
        type: pipeline
        experiment_name: sweep-node
        outputs:
          best: {mode: rw_mount}
        settings: {default_compute: azureml:local}
        jobs:
          tune:
            type: sweep
            trial: ./trial.yml
            search_space:
              lr: {type: choice, values: [0.1, 0.3]}
            sampling_algorithm: grid
            objective: {goal: maximize, primary_metric: score}
            limits: {max_total_trials: 2, max_concurrent_trials: 2}
          use:
            command: >-
              python -c "import shutil,sys; shutil.copy(sys.argv[1]+'/lr.txt',sys.argv[2]+'/n.txt')"
              ${{inputs.m}} ${{outputs.o}}
            inputs: {m: "${{parent.jobs.tune.outputs.model}}"}
            outputs: {o: "${{parent.outputs.best}}"}
        """)


def test_sweep_node_best_trial_outputs_feed_downstream(ml_client, cli, tmp_path):
    yml = _sweep_project(tmp_path)
    job = ml_client.jobs.wait(ml_client.jobs.create_or_update(load_job(yml)).name, timeout=240)
    raw = ml_client.jobs.get_raw(job.name)
    assert job.status == "Completed", raw
    sweep = ml_client.jobs.get_raw(f"{job.name}-tune")
    assert sweep["type"] == "sweep" and sweep["parent_job_name"] == job.name
    assert len(sweep["trials"]) == 2
    assert _read_output(ml_client, job.name, "best", tmp_path / "dl") == "0.3"
    assert raw["steps"]["tune"]["status"] == "Completed"
    best = sweep["properties"]["best_child_run_id"]
    shown = cli("job", "show", "-n", job.name, "-o", "graph", check=True).stdout
    assert f"best trial {best}" in shown, shown
    assert ml_client.jobs.get_raw(best)["output_uris"]["model"] == sweep["output_uris"]["model"]


@pytest.mark.slow
def test_dsl_sweep_node(ml_client, tmp_path):
    from openaml.sweep import Choice

    _sweep_project(tmp_path)
    trial = load_component(tmp_path / "trial.yml")

    @dsl.pipeline(compute="local", experiment_name="sweep-node-dsl")
    def tuned() -> dict:
        t = trial(lr=Choice([0.1, 0.3, 0.5]))
        tune = t.sweep(primary_metric="score", goal="Maximize", sampling_algorithm="grid")
        tune.set_limits(max_total_trials=3, max_concurrent_trials=3)
        return {"best": tune.outputs.model}

    job = tuned()
    assert set(job.jobs) == {"tune"} and job.jobs["tune"].type == "sweep"
    assert job.jobs["tune"].search_space == {"lr": {"type": "choice", "values": [0.1, 0.3, 0.5]}}
    created = ml_client.jobs.create_or_update(job)
    final = ml_client.jobs.wait(created.name, timeout=240)
    assert final.status == "Completed", ml_client.jobs.get_raw(created.name)
    ml_client.jobs.download(created.name, download_path=tmp_path / "dl", output_name="best")
    assert (tmp_path / "dl" / "named-outputs" / "best" / "lr.txt").read_text() == "0.3"


def _times(raw: dict, status: str) -> float:
    from datetime import datetime

    return next(datetime.fromisoformat(h["time"]).timestamp() for h in raw["status_history"] if h["status"] == status)


def _ensure_compute(cli, name: str, slots: int) -> None:
    r = cli("compute", "show", "--name", name)
    if r.returncode != 0:
        cli("compute", "create", "--name", name, "--type", "amlcompute", "--max-instances", str(slots), check=True)


def test_independent_steps_run_in_parallel_on_a_two_slot_compute_and_stream_follows_them(ml_client, cli, tmp_path):
    _ensure_compute(cli, "two-slots", 2)
    _write(tmp_path / "src" / "nap.py", """
        import sys, time
        print(f"start-{sys.argv[1]}", flush=True)
        time.sleep(2)
        print(f"end-{sys.argv[1]}")
        """)
    yml = _write(tmp_path / "par.yml", """
        type: pipeline
        experiment_name: parallel
        settings: {default_compute: azureml:two-slots, force_rerun: true}
        jobs:
          a: {code: ./src, command: python nap.py a}
          b: {code: ./src, command: python nap.py b}
        """)
    created = ml_client.jobs.create_or_update(load_job(yml))
    r = cli("job", "stream", "-n", created.name, timeout=120)
    assert r.returncode == 0, r.stderr
    for line in ("[a] start-a", "[a] end-a", "[b] start-b", "[b] end-b", "[a] step Completed", "Status: Completed"):
        assert line in r.stdout, r.stdout
    # one end line per step, with its final status (regression: '[prep_data] step Finalizing' was printed
    # when the log ended before the job did, and no 'Completed' line followed)
    assert sorted(re.findall(r"^\[(\w+)\] step (\w+)", r.stdout, re.M)) == [("a", "Completed"), ("b", "Completed")]
    a, b = (ml_client.jobs.get_raw(f"{created.name}-{n}") for n in "ab")
    runs = [(_times(x, "Running"), _times(x, "Completed")) for x in (a, b)]
    overlap = min(e for _, e in runs) - max(s for s, _ in runs)
    span = max(e for _, e in runs) - min(s for s, _ in runs)
    # two 2 s steps side by side: they overlap for most of their run; one after the other: not at all
    assert overlap > 1.0 and span < 2 * 2.0 + 1.0, (overlap, span, runs)


def test_cancel_cascades_to_running_and_queued_steps(ml_client, cli, tmp_path):
    _ensure_compute(cli, "one-slot", 1)
    sleep = 'python -c "import time; time.sleep(60)"'
    yml = _write(tmp_path / "cancel.yml", f"""
        type: pipeline
        experiment_name: cancel
        settings: {{default_compute: azureml:one-slot, force_rerun: true}}
        jobs:
          a: {{command: '{sleep}', outputs: {{o: {{type: uri_folder}}}}}}
          b: {{command: '{sleep}'}}
          c:
            command: echo ${{{{inputs.x}}}}
            inputs: {{x: "${{{{parent.jobs.a.outputs.o}}}}"}}
        """)
    created = ml_client.jobs.create_or_update(load_job(yml))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        statuses = {c.name: c.status for c in ml_client.jobs.list(parent_job_name=created.name)}
        if "Running" in statuses.values() and "Queued" in statuses.values():
            break
        time.sleep(0.2)
    assert sorted(statuses.values()) == ["Queued", "Running"], statuses
    ml_client.jobs.cancel(created.name)
    final = ml_client.jobs.wait(created.name, timeout=60)
    assert final.status == "Canceled"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = {c.name.rsplit("-", 1)[1]: c.status for c in ml_client.jobs.list(parent_job_name=created.name)}
        if all(s in ("Canceled", "Completed", "Failed") for s in children.values()):
            break
        time.sleep(0.2)
    assert children == {"a": "Canceled", "b": "Canceled"}, children
    # each says why (review m14), and the pipeline shows its default compute, not ""
    for step in ml_client.jobs.list(parent_job_name=created.name):
        error = ml_client.jobs.get_raw(step.name)["error"]
        assert created.name in error and error.endswith("was canceled"), error
    assert ml_client.jobs.get_raw(created.name)["compute"] == "one-slot"
    # c never started: it ends Canceled with its pipeline (not left NotStarted), saying why
    step_c = ml_client.jobs.get_raw(created.name)["steps"]["c"]
    assert (step_c["status"], step_c.get("reason")) == ("Canceled", "not run: the pipeline was canceled"), step_c


def test_failed_step_leaves_no_partial_output_and_a_rerun_reuses_what_succeeded(ml_client, tmp_path):
    _write(tmp_path / "src" / "half.py", """
        import sys, pathlib
        data, fail, out = pathlib.Path(sys.argv[1]), sys.argv[2] == "True", pathlib.Path(sys.argv[3])
        (out / "part1.txt").write_text((data / "n.txt").read_text())
        if fail:
            sys.exit("failed halfway")
        (out / "part2.txt").write_text("done")
        """)
    _write(tmp_path / "src" / "make.py", """
        import sys, pathlib
        (pathlib.Path(sys.argv[1]) / "n.txt").write_text("7")
        """)
    exp = f"halfway-{tmp_path.name[-10:]}".replace("_", "-")
    yml = _write(tmp_path / "half.yml", f"""
        type: pipeline
        experiment_name: {exp}
        inputs: {{fail: true}}
        settings: {{default_compute: azureml:local}}
        jobs:
          make:
            code: ./src
            command: python make.py ${{{{outputs.o}}}}
            outputs: {{o: {{type: uri_folder}}}}
          write:
            code: ./src
            command: python half.py ${{{{inputs.d}}}} ${{{{inputs.fail}}}} ${{{{outputs.o}}}}
            inputs: {{d: "${{{{parent.jobs.make.outputs.o}}}}", fail: "${{{{parent.inputs.fail}}}}"}}
            outputs: {{o: {{type: uri_folder}}}}
        """)
    first = ml_client.jobs.wait(ml_client.jobs.create_or_update(load_job(yml)).name, timeout=120)
    assert first.status == "Failed"
    with pytest.raises(Exception, match="no files|not written|has no output"):
        ml_client.jobs.download(f"{first.name}-write", download_path=tmp_path / "x", output_name="o")
    # the same failing pipeline again: make is reused, the failed step is not (it runs and fails again)
    again = ml_client.jobs.wait(ml_client.jobs.create_or_update(load_job(yml)).name, timeout=120)
    steps = _steps(ml_client, again.name)
    assert steps["make"]["azureml.isreused"] == "true" and first.name in steps["make"]["openaml.reason"]
    assert steps["write"]["azureml.isreused"] == "false" and steps["write"]["status"] == "Failed"
    # fixed: make still reused, write runs and its output is whole
    fixed = load_job(yml, params_override=[{"inputs.fail": False}])
    fixed = ml_client.jobs.wait(ml_client.jobs.create_or_update(fixed).name, timeout=120)
    assert fixed.status == "Completed"
    steps = _steps(ml_client, fixed.name)
    assert steps["make"]["azureml.isreused"] == "true"
    assert steps["write"]["azureml.isreused"] == "false" and steps["write"]["openaml.reason"].startswith("ran:")
    ml_client.jobs.download(f"{fixed.name}-write", download_path=tmp_path / "ok", output_name="o")
    got = sorted(p.name for p in (tmp_path / "ok" / "named-outputs" / "o").iterdir())
    assert got == ["part1.txt", "part2.txt"]


@pytest.mark.slow
def test_server_restarted_mid_pipeline_resumes_without_rerunning_finished_steps(openaml_home, tmp_path):
    from tests.conftest import start_server

    counts = tmp_path / "counts"
    counts.mkdir()
    _write(tmp_path / "src" / "count.py", """
        import pathlib, sys, time
        with open(pathlib.Path(sys.argv[1]) / sys.argv[2], "a") as fh:
            fh.write("x")
        time.sleep(float(sys.argv[3]))
        (pathlib.Path(sys.argv[4]) / "done.txt").write_text(sys.argv[2])
        """)
    yml = _write(tmp_path / "restart.yml", f"""
        type: pipeline
        experiment_name: restart
        settings: {{default_compute: azureml:local, force_rerun: true}}
        jobs:
          a:
            code: ./src
            command: python count.py {counts} a 0 ${{{{outputs.o}}}}
            outputs: {{o: {{type: uri_folder}}}}
          b:
            code: ./src
            command: python count.py {counts} b 6 ${{{{outputs.o}}}} ${{{{inputs.x}}}}
            inputs: {{x: "${{{{parent.jobs.a.outputs.o}}}}"}}
            outputs: {{o: {{type: uri_folder}}}}
          c:
            code: ./src
            command: python count.py {counts} c 0 ${{{{outputs.o}}}} ${{{{inputs.x}}}}
            inputs: {{x: "${{{{parent.jobs.b.outputs.o}}}}"}}
            outputs: {{o: {{type: uri_folder}}}}
        """)
    ws = tmp_path / "ws"
    server = start_server(ws, name=f"pipe-restart-{tmp_path.name[-8:]}")
    try:
        ml = MLClient(workspace=server.url)
        name = ml.jobs.create_or_update(load_job(yml)).name
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (counts / "b").exists():
            time.sleep(0.1)
        assert (counts / "b").exists() and not (counts / "c").exists()
        ml.close()
    finally:
        server.stop()
    server = start_server(ws, create=False)
    try:
        ml = MLClient(workspace=server.url)
        final = ml.jobs.wait(name, timeout=120)
        assert final.status == "Completed", ml.jobs.get_raw(name)
        assert {p.name: p.read_text() for p in counts.iterdir()} == {"a": "x", "b": "x", "c": "x"}
        ml.close()
    finally:
        server.stop()


@pytest.mark.parametrize("edit,where,what", [
    (("lr: {type: choice", "nope: {type: choice"), "jobs.tune.search_space.nope", "no input 'nope'"),
    (("objective: {goal: maximize, primary_metric: score}", ""), "jobs.tune.objective", "objective"),
    (("trial: ./trial.yml", "trial: azureml:trial_comp:404"), "jobs.tune.trial", "trial_comp"),
    (("limits: {max_total_trials: 2, max_concurrent_trials: 2}", "limits: {max_total_trials: 0}"),
     "jobs.tune.limits.max_total_trials", ""),
    (("sampling_algorithm: grid", "sampling_algorithm: grid\n    early_termination: {type: bandit}"),
     "jobs.tune", "bandit"),
])
def test_bad_sweep_nodes_rejected_before_anything_runs(ml_client, tmp_path, edit, where, what):
    yml = _sweep_project(tmp_path)
    yml.write_text(yml.read_text().replace(*edit))
    before = len(ml_client.jobs.list(list_view_type="all"))
    with pytest.raises(ValidationError) as info:
        ml_client.jobs.create_or_update(load_job(yml))
    assert where in info.value.message and what in info.value.message, info.value.message
    assert len(ml_client.jobs.list(list_view_type="all")) == before


def test_pipeline_job_running_a_pipeline_component(ml_client, tmp_path):
    _nested_project(tmp_path)
    yml = _write(tmp_path / "run_comp.yml", """
        type: pipeline
        experiment_name: run-component
        component: ./comps/inner.yml
        inputs:
          data: {type: uri_folder, path: ./data}
          k: 4
        outputs:
          result: {mode: rw_mount}
        settings: {default_compute: azureml:local, force_rerun: true}
        """)
    job = ml_client.jobs.wait(ml_client.jobs.create_or_update(load_job(yml)).name, timeout=120)
    assert job.status == "Completed", ml_client.jobs.get_raw(job.name)
    assert _read_output(ml_client, job.name, "result", tmp_path / "dl") == "12"  # 1 * 4 * 3
    bad = _write(tmp_path / "bad.yml", yml.read_text().replace("k: 4", "k: 4\n  nope: 1"))
    with pytest.raises(ValidationError, match="inputs.nope"):
        ml_client.jobs.create_or_update(load_job(bad))


def test_download_of_a_pipeline_without_output_name_gets_its_named_outputs(ml_client, cli, tmp_path):
    """Regression: ``job download -n <pipeline>`` asked for the parent's default artifacts, which a
    pipeline has none of (``output 'artifacts' of job has no files``)."""
    exp = f"dl-parent-{tmp_path.name[-10:]}".replace("_", "-")
    yml = _write(tmp_path / "dl.yml", f"""
        type: pipeline
        experiment_name: {exp}
        settings: {{default_compute: azureml:local}}
        outputs: {{result: {{type: uri_folder}}}}
        jobs:
          make:
            command: echo made > ${{{{outputs.o}}}}/f.txt
            outputs: {{o: "${{{{parent.outputs.result}}}}"}}
        """)
    name = ml_client.jobs.create_or_update(load_job(yml)).name
    assert ml_client.jobs.wait(name, timeout=120).status == "Completed"
    r = cli("job", "download", "-n", name, "--download-path", str(tmp_path / "d"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "d" / "named-outputs" / "result" / "f.txt").read_text().strip() == "made"
    assert not (tmp_path / "d" / "artifacts").exists()
    # a pipeline none of whose outputs was written (its step failed) says what to pass
    yml.write_text(yml.read_text().replace("echo made >", "exit 1; echo >"))
    empty = ml_client.jobs.create_or_update(load_job(yml)).name
    assert ml_client.jobs.wait(empty, timeout=120).status == "Failed"
    r = cli("job", "download", "-n", empty, "--download-path", str(tmp_path / "e"))
    assert r.returncode != 0 and "has no default artifacts" in r.stderr and "--parent-job-name" in r.stderr, r.stderr
