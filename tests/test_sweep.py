"""Sweep jobs: validation before anything runs, policies (unit), and sweeps end to end on a real
server (trials are child command jobs logging through MLflow's REST API, so each stays tiny)."""

from __future__ import annotations

import io
import math
import re
import sys
import textwrap
import time
from pathlib import Path

import pytest

from openaml import command, load_job
from openaml.entities._sweep import sweep_problems
from openaml.errors import ValidationError
from openaml.services._sweep_policies import evaluate_policy
from openaml.sweep import (
    BanditPolicy,
    Choice,
    LogUniform,
    MedianStoppingPolicy,
    Normal,
    QUniform,
    Randint,
    SweepJob,
    TruncationSelectionPolicy,
    Uniform,
)

# A trial: logs `metric` = f(x) per step over MLflow REST (no mlflow import: fast start).
TRIAL = """
import json, os, sys, time, urllib.request
args = dict(a.split("=", 1) for a in sys.argv[1:])
x = float(args.get("x", 0)); steps = int(args.get("steps", 1)); sleep = float(args.get("sleep", 0))
mode = args.get("mode", "ok")
if mode == "crash" or (mode == "crash_neg" and x < 0):
    sys.exit(3)
def log(key, value, step):
    if value != value or value in (float("inf"), float("-inf")):  # as MLflow's client sends them (proto JSON)
        value = "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    body = json.dumps({"run_id": os.environ["MLFLOW_RUN_ID"], "key": key, "value": value,
                       "timestamp": int(time.time() * 1000), "step": step}).encode()
    req = urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric", data=body,
                                 headers={"Content-Type": "application/json"})
    tok = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if tok:
        req.add_header("Authorization", "Bearer " + tok)
    urllib.request.urlopen(req).read()
index = int(os.environ["MLFLOW_RUN_ID"].rsplit("_", 1)[1])
if "gate" in args and index >= int(args.get("gate_from", 0)):  # hold until the test opens the gate
    while not os.path.exists(args["gate"]):
        time.sleep(0.05)
key = "other_metric" if mode == "wrong_metric" else "score"
if mode == "sparse":  # only some steps, logged out of step order: the value is the one at the last step
    for step, value in ((9, x * 10), (0, x), (3, x * 4)):
        log(key, value, step)
    steps = 0
for step in range(steps):
    value = x * (step + 1)
    if mode in ("nan", "inf", "-inf") and step == steps - 1:
        value = float(mode)
    if mode == "all_nan":
        value = float("nan")
    log(key, value, step)
    time.sleep(sleep)
if "hang_x" in args and x == float(args["hang_x"]):
    time.sleep(120)
print("done", x, index)
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@pytest.fixture
def trial_dir(tmp_path: Path) -> Path:
    _write(tmp_path / "src" / "trial.py", TRIAL)
    return tmp_path


def _sweep_yaml(folder: Path, body: str, name: str = "sweep.yml") -> Path:
    return _write(folder / name, "$schema: https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json\n"
                  "type: sweep\nexperiment_name: sweep-tests\ncompute: azureml:local\n" + textwrap.dedent(body))


def _wait(ml, name: str, timeout: float = 120):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        raw = ml.jobs.get_raw(name)
        if raw["status"] in ("Completed", "Failed", "Canceled"):
            return raw
        if time.monotonic() > deadline:
            raise AssertionError(f"sweep {name} still {raw['status']}: {raw.get('trials')}")
        time.sleep(0.3)


# ---------------------------------------------------------------------------------- validation
def _job(**kw) -> SweepJob:  # type: ignore[no-untyped-def]
    base = dict(trial={"command": "python t.py x=${{search_space.x}}"}, search_space={"x": Uniform(0, 1)},
                objective={"goal": "Maximize", "primary_metric": "m"}, limits={"max_total_trials": 4})
    base.update(kw)
    return SweepJob.model_validate(base)


@pytest.mark.parametrize("kw, needle", [
    (dict(sampling_algorithm="grid"), "grid sampling takes only choice"),
    (dict(sampling_algorithm="bayesian", search_space={"x": Normal(0, 1)}), "bayesian sampling takes only"),
    (dict(sampling_algorithm="bayesian", search_space={"x": Choice([1, 2])},
          early_termination=BanditPolicy(slack_factor=0.1)), "does not support early termination"),
    (dict(limits={"max_total_trials": 0}), "limits.max_total_trials': must be positive"),
    (dict(limits={"max_total_trials": 2, "timeout": -5}), "limits.timeout': must be positive"),
    (dict(limits={}), "max_total_trials': required"),
    (dict(search_space={}), "'search_space': empty"),
    (dict(search_space={"x": Choice([])}), "values is empty"),
    (dict(search_space={"x": Uniform(2, 1)}), "min_value (2.0) is greater than max_value (1.0)"),
    (dict(search_space={"x": QUniform(0, 1, q=0)}), "q must be > 0"),
    (dict(search_space={"x": Normal(0, -1)}), "sigma must be > 0"),
    (dict(search_space={"x": Randint(0)}), "upper must be >= 1"),
    (dict(search_space={"x": LogUniform(1, 1000)}), "natural-log exponents"),
    (dict(search_space={"y": Uniform(0, 1)}), "names 'x', which is not in search_space"),
    (dict(early_termination=BanditPolicy()), "exactly one of slack_factor and slack_amount"),
])
def test_validation_rules(kw, needle):  # type: ignore[no-untyped-def]
    problems, _ = sweep_problems(_job(**kw))
    assert any(needle in p for p in problems), problems


@pytest.mark.parametrize("algo", ["random", "bayesian"])
@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_out_of_range_rejected_before_anything_runs(tmp_path, algo, seed):
    # a seed of -1 used to be accepted, then the sweep failed after creation ("Seed must be between 0 and 2**32 - 1")
    p = _sweep_yaml(tmp_path, f"""
        trial: {{command: "python t.py x=${{{{search_space.x}}}}", environment: azureml:AzureML-sklearn-1.5@latest}}
        sampling_algorithm: {{type: {algo}, seed: {seed}}}
        search_space: {{x: {{type: uniform, min_value: 0, max_value: 1}}}}
        objective: {{goal: maximize, primary_metric: m}}
        limits: {{max_total_trials: 1}}
        """)
    job = load_job(p)  # still loads: a row stored before the check must stay readable by job list/show
    problems, _ = sweep_problems(job)
    assert problems == [f"field 'sampling_algorithm.seed': must be between 0 and 4294967295 (2**32 - 1) (got {seed})"]
    ok = load_job(p, params_override=[{"sampling_algorithm.seed": 2**32 - 1}])
    assert sweep_problems(ok) == ([], [])


def test_concurrency_clamped_with_warning():
    job = _job(limits={"max_total_trials": 3, "max_concurrent_trials": 8})
    problems, notes = sweep_problems(job)
    assert not problems and "clamped to 3" in notes[0]
    assert job.limits.max_concurrent_trials == 3


def test_sdk_builder_rejects_a_keyword_that_is_not_an_input():
    # azure-ai-ml raises UnexpectedKeywordError; openaml used to sweep 'y' that the command never read
    job = command(command="python t.py --x ${{inputs.x}}", inputs={"x": 0.5},
                  environment="azureml:AzureML-sklearn-1.5@latest", compute="local")
    with pytest.raises(ValidationError) as info:
        job(y=Choice([1, 2]))
    assert info.value.message.startswith("command(...)(y=...): 'y' is not an input of the command (its inputs: x)")
    assert info.value.details["field"] == "inputs.y"
    with pytest.raises(ValidationError, match="'n' is not an input"):
        job(x=Choice([1, 2]), n=3)
    assert list(job(x=Choice([1, 2]))._search_space) == ["x"]
    # .sweep(...) with a wrong value: openaml's error at the sweep's field, not a raw pydantic one
    with pytest.raises(ValidationError) as info:
        job(x=Choice([1, 2])).sweep(sampling_algorithm="random", primary_metric="acc", goal="max")
    assert info.value.message == ("sweep job: field 'objective.goal': Input should be 'maximize' or 'minimize' "
                                  "(got 'max')")
    with pytest.raises(ValidationError, match="^sweep job: field 'sampling_algorithm': .*'bayes'"):
        job(x=Choice([1, 2])).sweep(sampling_algorithm="bayes", primary_metric="acc", goal="maximize")
    with pytest.raises(ValidationError, match="^sweep job: field 'limits.max_total_trials': .*'abc'"):
        job(x=Choice([1, 2])).sweep(sampling_algorithm="random", primary_metric="acc", goal="maximize",
                                    max_total_trials="abc")


def test_sdk_builder_matches_azure(tmp_path):
    job = command(command="python t.py --C ${{inputs.C}} --p ${{inputs.p}} --n ${{inputs.n}}",
                  inputs={"C": 1.0, "p": "l2", "n": 3}, environment="azureml:AzureML-sklearn-1.5@latest",
                  compute="local")
    sweepable = job(C=Uniform(min_value=0.01, max_value=5.0), p=Choice(values=["l1", "l2"]), n=5)
    sj = sweepable.sweep(compute="local", sampling_algorithm="random", primary_metric="AUC", goal="Maximize")
    sj.set_limits(max_total_trials=6, max_concurrent_trials=2, timeout=600)
    sj.early_termination = TruncationSelectionPolicy(evaluation_interval=1, truncation_percentage=75,
                                                     delay_evaluation=1)
    assert isinstance(sj, SweepJob)
    assert sj.trial.command == "python t.py --C ${{search_space.C}} --p ${{search_space.p}} --n ${{inputs.n}}"
    assert set(sj.inputs) == {"n"} and sj.inputs["n"].value == 5
    assert sj.objective.goal == "maximize" and sj.limits.timeout == 600
    assert sweep_problems(sj) == ([], [])
    d = sj.to_dict()
    assert d["search_space"]["C"] == {"type": "uniform", "min_value": 0.01, "max_value": 5.0}
    assert d["early_termination"]["type"] == "truncation_selection"
    # round trip through YAML
    p = tmp_path / "sj.yml"
    p.write_text(str(sj))
    again = load_job(p)
    assert isinstance(again, SweepJob) and again.search_space["p"].values == ["l1", "l2"]


def test_trial_errors_name_the_inline_command_fields(tmp_path):
    # regression: with trial also taking a component reference, errors listed the union's arms
    p = _sweep_yaml(tmp_path, """
        trial:
          code: src
          comand: python x.py
        search_space:
          x: {type: uniform, min_value: 0, max_value: 1}
        objective: {goal: maximize, primary_metric: m}
        limits: {max_total_trials: 2}
        """)
    with pytest.raises(ValidationError) as ei:
        load_job(p)
    msg = str(ei.value)
    assert "field 'trial.command': Field required" in msg and "field 'trial.comand': unknown field" in msg
    assert "TrialCommand" not in msg and "trial.str" not in msg
    with pytest.raises(Exception, match="give an inline command"):
        SweepJob.model_validate({**_job().model_dump(), "trial": " "})


def test_sweep_job_from_a_command_job_as_azure_writes_it():
    # azure-ai-ml: SweepJob(trial=CommandJob(...), search_space=..., ...)
    from openaml.entities import CommandJob

    cj = CommandJob(command="python t.py --kernel ${{inputs.kernel}} --penalty ${{inputs.penalty}}",
                    inputs={"kernel": "linear", "penalty": 1.0}, code="./src", compute="local",
                    environment="azureml:AzureML-sklearn-1.5@latest", experiment_name="iris")
    sj = SweepJob(trial=cj, search_space={"penalty": Uniform(0.1, 2.0)}, sampling_algorithm="bayesian",
                  objective={"goal": "maximize", "primary_metric": "acc"}, limits={"max_total_trials": 4})
    assert sj.trial.command == "python t.py --kernel ${{inputs.kernel}} --penalty ${{search_space.penalty}}"
    assert set(sj.inputs) == {"kernel"} and sj.trial.code == "./src"
    assert (sj.compute, sj.experiment_name) == ("local", "iris") and sweep_problems(sj) == ([], [])


def test_yaml_errors_name_the_field(tmp_path):
    p = _sweep_yaml(tmp_path, """
        trial:
          command: echo ${{search_space.x}}
        search_space:
          x: {type: gaussian, mu: 0, sigma: 1}
        objective: {goal: maximize, primary_metric: m}
        limits: {max_total_trials: 2}
        """)
    with pytest.raises(ValidationError) as ei:
        load_job(p)
    assert "search_space.x" in str(ei.value) and "line" in str(ei.value)


# ---------------------------------------------------------------------------------- policies (unit)
def test_bandit_slack_factor_and_amount():
    pol = BanditPolicy(slack_factor=0.1, evaluation_interval=1, delay_evaluation=2)
    hist = {"best": [0.8, 0.8, 0.8], "ok": [0.75, 0.75, 0.75], "bad": [0.5, 0.6, 0.7]}
    ev: dict[str, int] = {}
    out = evaluate_policy(pol, "maximize", hist, ["ok", "bad"], ev)
    assert set(out) == {"bad"} and "interval 2" in out["bad"]  # not judged at interval 1 (delay)
    assert ev["ok"] == 3
    pol = BanditPolicy(slack_amount=0.05, evaluation_interval=2)
    out = evaluate_policy(pol, "minimize", {"a": [1.0, 1.0], "b": [1.2, 1.04]}, ["b"], {})
    assert out == {}  # at interval 2: 1.04 <= 1.0 + 0.05
    out = evaluate_policy(pol, "minimize", {"a": [1.0, 1.0], "b": [1.2, 1.06]}, ["b"], {})
    assert "b" in out


def test_median_and_truncation():
    med = MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=1)
    hist = {"a": [0.9, 0.9], "b": [0.8, 0.8], "c": [0.1, 0.2]}
    out = evaluate_policy(med, "maximize", hist, ["a", "b", "c"], {})
    assert set(out) == {"c"}
    tr = TruncationSelectionPolicy(truncation_percentage=50, evaluation_interval=1)
    hist = {"a": [4.0], "b": [3.0], "c": [2.0], "d": [1.0]}
    out = evaluate_policy(tr, "maximize", hist, list(hist), {})
    assert set(out) == {"c", "d"}
    out = evaluate_policy(tr, "minimize", hist, list(hist), {})
    assert set(out) == {"a", "b"}


def test_sort_trials_best_first_missing_last():
    from openaml.cli._job import sort_trials

    ts = [{"name": "a", "index": 0, "metric": 0.5, "duration_s": 3.0, "status": "Completed"},
          {"name": "b", "index": 1, "metric": None, "duration_s": 1.0, "status": "Failed"},
          {"name": "c", "index": 2, "metric": 0.9, "duration_s": None, "status": "Running"},
          {"name": "d", "index": 3, "metric": 0.5, "duration_s": 2.0, "status": "Canceled"}]
    assert [t["name"] for t in sort_trials(ts, "metric", "maximize")] == ["c", "a", "d", "b"]
    assert [t["name"] for t in sort_trials(ts, "metric", "minimize")] == ["a", "d", "c", "b"]
    assert [t["name"] for t in sort_trials(ts, "metric", "maximize", reverse=True)] == ["a", "d", "c", "b"]
    assert [t["name"] for t in sort_trials(ts, "duration")] == ["b", "d", "a", "c"]
    assert [t["name"] for t in sort_trials(ts, "status")] == ["d", "a", "b", "c"]


def test_sampler_transforms_and_grid():
    from openaml.services._sweep_sampling import SweepSampler

    job = _job(search_space={"q": QUniform(0, 10, q=2), "lu": LogUniform(math.log(1e-3), math.log(1.0)),
                             "n": Normal(5, 1), "r": Randint(3), "c": Choice([{"k": 1}, {"k": 2}])},
               sampling_algorithm={"type": "random", "seed": 7, "rule": "sobol"})
    s = SweepSampler(job)
    for i in range(8):
        values, raw = s.suggest(i)
        assert values["q"] % 2 == 0 and 0 <= values["q"] <= 10
        assert 1e-3 <= values["lu"] <= 1.0 and values["r"] in (0, 1, 2) and values["c"] in ({"k": 1}, {"k": 2})
        s.tell(i, raw, float(i))
    # re-told after a restart: a fresh sampler accepts finished trials it did not ask
    s2 = SweepSampler(job)
    s2.tell(0, raw, 1.0)
    assert len(s2.study.trials) == 1
    g = SweepSampler(_job(sampling_algorithm="grid", search_space={"x": Choice([1, 2]), "y": Choice(["a", "b"])}))
    assert g.size == 4 and [g.suggest(i)[0] for i in range(4)] == [
        {"x": 1, "y": "a"}, {"x": 1, "y": "b"}, {"x": 2, "y": "a"}, {"x": 2, "y": "b"}]


# ---------------------------------------------------------------------------------- end to end
def test_grid_sweep_best_trial_and_job_show(ml_client, cli, server, trial_dir):
    p = _sweep_yaml(trial_dir, """
        display_name: grid-test
        trial:
          code: src
          command: python trial.py x=${{search_space.x}} mode=${{search_space.mode}} tag=${{inputs.tag}}
        inputs: {tag: hello}
        sampling_algorithm: grid
        search_space:
          x: {type: choice, values: [1, 3, 2]}
          mode: {type: choice, values: [ok]}
        objective: {goal: maximize, primary_metric: score}
        limits: {max_total_trials: 10, max_concurrent_trials: 2}
        """)
    r = cli("job", "create", "-f", str(p))
    assert r.returncode == 0, r.stderr
    name = r.json()["name"]
    raw = _wait(ml_client, name)
    assert raw["status"] == "Completed", raw.get("error")
    trials = raw["trials"]
    assert len(trials) == 3  # the grid (3 points) ends before max_total_trials (10)
    assert [t["metric"] for t in trials] == [3.0, 2.0, 1.0] and trials[0]["params"] == {"x": 3, "mode": "ok"}
    best = trials[0]["name"]
    assert raw["best_child_run_id"] == best and raw["properties"]["best_child_run_id"] == best
    assert all(t["status"] == "Completed" and t["duration_s"] is not None for t in trials)
    child = ml_client.jobs.get_raw(best)
    assert child["parent_job_name"] == name and child["params"]["x"] == "3"
    assert child["command"] == "python trial.py x=3 mode=ok tag=${{inputs.tag}}"  # inputs: the runner's
    # MLflow: trials are child runs of the sweep's run; the best is recorded on the sweep's run
    from mlflow.tracking import MlflowClient

    mc = MlflowClient(tracking_uri=f"{server.url}/mlflow")
    run = mc.get_run(name)
    assert run.data.tags["best_child_run_id"] == best and run.data.params["x"] == "3"
    kids = mc.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{name}'")
    assert len(kids) == 3
    listed = ml_client.jobs.list(parent_job_name=name)
    assert len(listed) == 3
    # job show from the CLI: best first by default, sortable, a table
    shown = cli("job", "show", "-n", name).json()
    assert [t["metric"] for t in shown["trials"]] == [3.0, 2.0, 1.0]
    shown = cli("job", "show", "-n", name, "--order-by", "index").json()
    assert [t["index"] for t in shown["trials"]] == [0, 1, 2] and shown["trials"][0]["params"]["x"] == 1
    shown = cli("job", "show", "-n", name, "--order-by", "metric", "--reverse").json()
    assert [t["metric"] for t in shown["trials"]] == [1.0, 2.0, 3.0]
    r = cli("job", "show", "-n", name, "-o", "table", "--order-by", "duration")
    assert r.returncode == 0 and f"best: {best}" in r.stdout and "x=3 mode=ok" in r.stdout
    r = cli("job", "show", "-n", name, "--order-by", "speed")
    assert r.returncode != 0 and "--order-by 'speed' is invalid" in r.stderr


def test_cli_clamp_warning_is_one_line_and_kept_on_the_job(ml_client, cli, trial_dir):
    # the clamp used to print a Python warning with a source path, and the job kept no record of it
    p = _sweep_yaml(trial_dir, """
        trial:
          code: src
          command: python trial.py x=${{search_space.x}}
        search_space:
          x: {type: uniform, min_value: 0, max_value: 1}
        objective: {goal: maximize, primary_metric: score}
        limits: {max_total_trials: 1, max_concurrent_trials: 4}
        """, name="clamp.yml")
    r = cli("job", "create", "-f", str(p))
    assert r.returncode == 0, r.stderr
    note = "limits.max_concurrent_trials (4) is above max_total_trials (1); clamped to 1"
    assert f"WARNING: {note}" in r.stderr and "UserWarning" not in r.stderr, r.stderr
    name = r.json()["name"]
    raw = _wait(ml_client, name)
    assert raw["limits"]["max_concurrent_trials"] == 1
    assert raw["warnings"] == [note] and raw["properties"]["openaml.warnings"] == note


def test_inputs_expression_reads_a_swept_value(ml_client, cli, trial_dir):
    # docs: a swept x is also given as input x, so ${{inputs.x}} works; submit used to reject it as undeclared
    p = _sweep_yaml(trial_dir, """
        trial:
          code: src
          command: python trial.py x=${{inputs.x}}
        sampling_algorithm: grid
        search_space:
          x: {type: choice, values: [2]}
        objective: {goal: maximize, primary_metric: score}
        limits: {max_total_trials: 1}
        """, name="inputs-x.yml")
    r = cli("job", "create", "-f", str(p))
    assert r.returncode == 0, r.stderr
    raw = _wait(ml_client, r.json()["name"])
    assert raw["status"] == "Completed" and raw["trials"][0]["metric"] == 2.0, raw.get("error")
    # the server's own check (a client that skips the SDK) agrees
    spec = {"type": "sweep", "compute": "local", "trial": {"command": "echo ${{inputs.x}}",
                                                           "environment": "azureml:AzureML-sklearn-1.5@latest"},
            "search_space": {"x": {"type": "choice", "values": [1]}},
            "objective": {"goal": "maximize", "primary_metric": "m"}, "limits": {"max_total_trials": 1}}
    created = ml_client.jobs._t.post("/jobs", json=spec)
    ml_client.jobs.cancel(created["name"])
    # an undeclared name is still an error, named as the sweep's field, with its line
    bad = p.read_text().replace("${{inputs.x}}", "${{inputs.nope}}")
    p.write_text(bad)
    r = cli("job", "create", "-f", str(p))
    assert r.returncode != 0
    assert "field 'trial.command': ${{inputs.nope}} refers to input 'nope', which is not declared" in r.stderr
    with pytest.raises(ValidationError, match="field 'trial.command': .*'nope'"):
        ml_client.jobs._t.post("/jobs", json={**spec, "trial": {**spec["trial"], "command": "echo ${{inputs.nope}}"}})


def test_bandit_cancels_bad_trials(ml_client, trial_dir):
    p = _sweep_yaml(trial_dir, """
        trial:
          code: src
          command: python trial.py x=${{search_space.x}} steps=10 sleep=0.4
        sampling_algorithm: grid
        search_space:
          x: {type: choice, values: [1.0, 0.1]}
        objective: {goal: maximize, primary_metric: score}
        limits: {max_total_trials: 2, max_concurrent_trials: 2}
        """)
    job = load_job(p)
    job.early_termination = BanditPolicy(slack_factor=0.2, evaluation_interval=1, delay_evaluation=2)
    raw = _wait(ml_client, ml_client.jobs.create_or_update(job).name)
    assert raw["status"] == "Completed", raw.get("error")
    good, bad = raw["trials"]
    assert good["params"] == {"x": 1.0} and good["status"] == "Completed" and good["metric"] == 10.0
    assert bad["status"] == "Canceled" and "bandit policy" in bad["terminated"], bad
    assert "early termination" in bad["error"]


def test_crash_and_missing_metric(ml_client, trial_dir):
    # some trials crash, one logs only another metric, one logs NaN last: the sweep goes on
    p = _sweep_yaml(trial_dir, """
        trial:
          code: src
          command: python trial.py x=${{search_space.x}} mode=${{search_space.mode}} steps=2
        sampling_algorithm: grid
        search_space:
          x: {type: choice, values: [2]}
          mode: {type: choice, values: [crash, wrong_metric, nan, ok]}
        objective: {goal: minimize, primary_metric: score}
        limits: {max_total_trials: 4, max_concurrent_trials: 2}
        """)
    created = ml_client.jobs.create_or_update(load_job(p))
    raw = _wait(ml_client, created.name)
    assert raw["status"] == "Completed", raw.get("error")
    by_mode = {t["params"]["mode"]: t for t in raw["trials"]}
    assert by_mode["crash"]["status"] == "Failed" and "excluded" in by_mode["crash"]["note"]
    assert "excluded" in by_mode["wrong_metric"]["note"]
    assert by_mode["nan"]["metric"] == 2.0  # NaN ignored: the last finite value counts
    assert by_mode["ok"]["metric"] == 4.0
    assert raw["best_child_run_id"] == by_mode["nan"]["name"]
    # the sweep's own log says what each trial ran and how it ended (it held only the sampling line)
    buf = io.StringIO()
    ml_client.jobs.stream(created.name, out=buf, raise_on_failure=False)
    text = buf.getvalue()
    crash = by_mode["crash"]["name"]
    assert f"trial {crash} submitted: x=2 mode='crash'" in text, text
    assert f"trial {crash} Failed: no value (the command exited with code 3)" in text, text
    assert f"trial {by_mode['ok']['name']} Completed: score = 4.0" in text, text
    assert f"sweep Completed: best trial {by_mode['nan']['name']} (2.0)" in text, text
    # the metric never logged by any trial: the sweep fails and lists what was logged
    p = _sweep_yaml(trial_dir, """
        trial:
          code: src
          command: python trial.py x=${{search_space.x}} mode=wrong_metric
        search_space:
          x: {type: uniform, min_value: 0, max_value: 1}
        objective: {goal: maximize, primary_metric: score}
        limits: {max_total_trials: 2, max_concurrent_trials: 2}
        """, name="never.yml")
    created = ml_client.jobs.create_or_update(load_job(p))
    raw = _wait(ml_client, created.name)
    assert raw["status"] == "Failed"
    assert "'score' was never logged by any of the 2 trials" in raw["error"] and "other_metric" in raw["error"]
    # crashing trials: the error names one and how to read its log
    p = _sweep_yaml(trial_dir, """
        trial:
          code: src
          command: python trial.py x=${{search_space.x}} mode=crash
        search_space:
          x: {type: uniform, min_value: 0, max_value: 1}
        objective: {goal: maximize, primary_metric: score}
        limits: {max_total_trials: 2, max_concurrent_trials: 2}
        """, name="crash.yml")
    created = ml_client.jobs.create_or_update(load_job(p))
    raw = _wait(ml_client, created.name)
    assert raw["status"] == "Failed"
    assert re.search(r"; 2 trials failed \(e\.g\. (\w+_[01]): the command exited with code 3; its log: "
                     r"openaml job stream -n \1\)$", raw["error"]), raw["error"]


def test_cancel_of_the_sweep_cancels_every_trial(ml_client, trial_dir):
    p = _sweep_yaml(trial_dir, """
        trial:
          code: src
          command: python trial.py x=${{search_space.x}} steps=100 sleep=0.2
        search_space:
          x: {type: uniform, min_value: 0, max_value: 1}
        objective: {goal: maximize, primary_metric: score}
        limits: {max_total_trials: 6, max_concurrent_trials: 2}
        """)
    created = ml_client.jobs.create_or_update(load_job(p))
    name = created.name
    deadline = time.monotonic() + 60
    while len(ml_client.jobs.list(parent_job_name=name)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    ml_client.jobs.cancel(name)
    raw = _wait(ml_client, name)
    assert raw["status"] == "Canceled"
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        kids = [ml_client.jobs.get_raw(j.name) for j in ml_client.jobs.list(parent_job_name=name)]
        if all(k["status"] == "Canceled" for k in kids):
            break
        time.sleep(0.3)
    assert kids and all(k["status"] == "Canceled" for k in kids), [k["status"] for k in kids]
    assert len(kids) == 2  # no trial started after the cancel
    time.sleep(1.5)
    assert len(ml_client.jobs.list(parent_job_name=name)) == 2


def test_trial_timeout_cancels_the_trial_and_the_sweep_goes_on(ml_client, trial_dir):
    # Azure: "once this limit is reached, the system cancels the trial"; it still counts
    p = _sweep_yaml(trial_dir, """
        trial:
          code: src
          command: python trial.py x=${{search_space.x}} hang_x=2
        sampling_algorithm: grid
        search_space:
          x: {type: choice, values: [1, 2, 3]}
        objective: {goal: maximize, primary_metric: score}
        limits: {max_total_trials: 3, max_concurrent_trials: 3, trial_timeout: 2}
        """)
    raw = _wait(ml_client, ml_client.jobs.create_or_update(load_job(p)).name)
    assert raw["status"] == "Completed", raw.get("error")
    by_x = {t["params"]["x"]: t for t in raw["trials"]}
    assert len(by_x) == 3
    assert by_x[2]["status"] == "Canceled" and "limits.timeout" in by_x[2]["error"], by_x[2]
    assert by_x[1]["status"] == by_x[3]["status"] == "Completed"
    assert raw["best_child_run_id"] == by_x[3]["name"]


def test_sweep_timeout_cancels_trials_and_keeps_the_best(ml_client, trial_dir):
    # Azure: "once this limit is reached, the system cancels the sweep job, including all of its trials"
    p = _sweep_yaml(trial_dir, """
        trial:
          code: src
          command: python trial.py x=${{search_space.x}} steps=200 sleep=0.1
        sampling_algorithm: grid
        search_space:
          x: {type: choice, values: [1, 2, 3, 4]}
        objective: {goal: maximize, primary_metric: score}
        limits: {max_total_trials: 4, max_concurrent_trials: 2, timeout: 4}
        """)
    started = time.monotonic()
    raw = _wait(ml_client, ml_client.jobs.create_or_update(load_job(p)).name, timeout=60)
    assert time.monotonic() - started < 40
    assert raw["status"] == "Canceled", raw
    assert "limits.timeout (4 s) was reached" in raw["error"] and "best so far" in raw["error"]
    trials = raw["trials"]
    assert len(trials) == 2 and all(t["status"] == "Canceled" for t in trials), trials  # none launched after
    best = trials[0]
    assert best["params"] == {"x": 2} and best["metric"] > 0
    assert raw["best_child_run_id"] == best["name"] and best["name"] in raw["error"]


def test_metric_sparse_steps_inf_and_only_nan(ml_client, server, trial_dir):
    p = _sweep_yaml(trial_dir, """
        trial:
          code: src
          command: python trial.py x=${{search_space.x}} mode=${{search_space.mode}} steps=3
        sampling_algorithm: grid
        search_space:
          x: {type: choice, values: [1]}
          mode: {type: choice, values: [sparse, inf, -inf, all_nan, ok]}
        objective: {goal: maximize, primary_metric: score}
        limits: {max_total_trials: 5, max_concurrent_trials: 3}
        """)
    raw = _wait(ml_client, ml_client.jobs.create_or_update(load_job(p)).name)
    assert raw["status"] == "Completed", raw.get("error")
    by_mode = {t["params"]["mode"]: t for t in raw["trials"]}
    # logged at steps 9, 0, 3 (that order): the value at the last step counts
    assert by_mode["sparse"]["metric"] == 10.0 and by_mode["sparse"]["note"] is None
    # inf is excluded like NaN (it would otherwise win a maximize sweep): the last finite value counts
    assert by_mode["inf"]["metric"] == 2.0 and "non-finite" in (by_mode["inf"]["note"] or ""), by_mode["inf"]
    assert "inf at step 2" in by_mode["inf"]["note"]
    assert by_mode["-inf"]["metric"] == 2.0
    assert by_mode["all_nan"]["metric"] is None and "not logged as a finite number" in by_mode["all_nan"]["note"]
    assert by_mode["ok"]["metric"] == 3.0
    assert raw["best_child_run_id"] == by_mode["sparse"]["name"]
    assert [t["params"]["mode"] for t in raw["trials"]][-1] == "all_nan"  # excluded trials sort last
    # the values stay recorded in the trial's MLflow history
    from mlflow.tracking import MlflowClient

    hist = MlflowClient(tracking_uri=f"{server.url}/mlflow").get_metric_history(by_mode["inf"]["name"], "score")
    # (MLflow's SQL store keeps inf as the largest float; the sweep reads that back as inf)
    assert [m.value for m in sorted(hist, key=lambda m: m.step)] == [1.0, 2.0, sys.float_info.max]


def test_server_restart_resumes_the_sweep(openaml_home, tmp_path, trial_dir):
    """Trials 0-1 finish, 2-3 hold at a gate; the server is killed and restarted; the sweep goes on:
    5 trials in all, none run twice, finished results kept, no point drawn twice, the right best."""
    import signal

    from openaml import MLClient
    from tests.conftest import start_server

    ws = tmp_path / "ws"
    gate = tmp_path / "gate"
    handle = start_server(ws, name="sweep-restart")
    try:
        p = _sweep_yaml(trial_dir, f"""
            trial:
              code: src
              command: python trial.py x=${{{{search_space.x}}}} steps=2 gate={gate} gate_from=2
            sampling_algorithm: {{type: random, seed: 3}}
            search_space:
              x: {{type: uniform, min_value: 0, max_value: 1}}
            objective: {{goal: maximize, primary_metric: score}}
            limits: {{max_total_trials: 5, max_concurrent_trials: 2}}
            """)
        with MLClient(workspace=handle.url) as ml:
            name = ml.jobs.create_or_update(load_job(p)).name
            deadline = time.monotonic() + 90
            while True:
                st = {t["index"]: t["status"] for t in ml.jobs.get_raw(name)["trials"]}
                if st.get(0) == st.get(1) == "Completed" and st.get(2) == st.get(3) == "Running":
                    break
                assert time.monotonic() < deadline, st
                time.sleep(0.2)
            before = {t["index"]: t for t in ml.jobs.get_raw(name)["trials"]}
        handle.stop(signal.SIGKILL)
        handle = start_server(ws, create=False)
        gate.write_text("open")
        with MLClient(workspace=handle.url) as ml:
            raw = _wait(ml, name, timeout=90)
        assert raw["status"] == "Completed", raw.get("error")
        trials = raw["trials"]
        assert sorted(t["index"] for t in trials) == [0, 1, 2, 3, 4]
        assert all(t["status"] == "Completed" and t["metric"] is not None for t in trials), trials
        after = {t["index"]: t for t in trials}
        for i in (0, 1):  # finished before the restart: same result, same run
            assert after[i]["metric"] == before[i]["metric"] and after[i]["params"] == before[i]["params"]
        for t in trials:  # every trial's command ran exactly once
            log = (ws / "jobs" / t["name"] / "user_logs" / "std_log.txt").read_text()
            assert log.count("done ") == 1, (t["name"], log)
        xs = [t["params"]["x"] for t in trials]
        assert len(set(xs)) == 5, xs  # the restarted sampler did not draw the first points again
        best = max(trials, key=lambda t: t["metric"])
        assert best["metric"] == 2 * max(xs)  # score = x * 2 at the last of 2 steps
        assert raw["best_child_run_id"] == best["name"] == trials[0]["name"]
    finally:
        handle.stop()


COMPONENT = """
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
name: sweep_trial_comp
version: "1"
type: command
display_name: sweep trial
inputs:
  x: {type: number, default: 0.5}
  steps: {type: integer}
  mode: {type: string, default: ok}
outputs:
  model: {type: uri_folder}
code: ./src
command: python trial.py x=${{inputs.x}} steps=${{inputs.steps}} mode=${{inputs.mode}} && echo m > ${{outputs.model}}/m.txt
"""


def test_trial_as_a_component_file_and_a_registered_component(ml_client, cli, trial_dir):
    """trial: ./component.yml (relative to the sweep's YAML; the component's code relative to its own
    file) and trial: azureml:<name>:<version> / <name>@latest: search-space keys bind to the
    component's inputs of the same name, the sweep's inputs to the others, defaults fill the rest."""
    _write(trial_dir / "component.yml", COMPONENT)
    body = """
        trial: {trial}
        inputs: {{steps: 3}}
        sampling_algorithm: grid
        search_space:
          x: {{type: choice, values: [1, 3]}}
        objective: {{goal: maximize, primary_metric: score}}
        limits: {{max_total_trials: 2, max_concurrent_trials: 2}}
        """
    p = _sweep_yaml(trial_dir / "sweeps", body.format(trial="../component.yml"))
    r = cli("job", "create", "-f", str(p))
    assert r.returncode == 0, r.stderr
    raw = _wait(ml_client, r.json()["name"])
    assert raw["status"] == "Completed", raw.get("error")
    assert [(t["params"], t["metric"]) for t in raw["trials"]] == [({"x": 3}, 9.0), ({"x": 1}, 3.0)]
    child = ml_client.jobs.get_raw(raw["best_child_run_id"])
    assert child["command"].startswith("python trial.py x=3 steps=${{inputs.steps}} mode=${{inputs.mode}}")
    assert child["inputs"]["mode"]["value"] == "ok" and "model" in child["outputs"]
    # registered, by version and by label
    assert cli("component", "create", "--file", str(trial_dir / "component.yml")).returncode == 0
    for ref in ("azureml:sweep_trial_comp:1", "sweep_trial_comp@latest"):
        p = _sweep_yaml(trial_dir, body.format(trial=ref), name="registered.yml")
        r = cli("job", "create", "-f", str(p))
        assert r.returncode == 0, r.stderr
        raw = _wait(ml_client, r.json()["name"])
        assert raw["status"] == "Completed", raw.get("error")
        assert [t["metric"] for t in raw["trials"]] == [9.0, 3.0]
        assert raw["properties"]["openaml.trial_component"] == "azureml:sweep_trial_comp:1"
    # misfits are named before anything runs
    bad = body.format(trial="azureml:sweep_trial_comp:1").replace("inputs: {steps: 3}", "inputs: {epochs: 3}")
    r = cli("job", "create", "-f", str(_sweep_yaml(trial_dir, bad, name="bad.yml")))
    assert r.returncode != 0
    err = r.stderr + r.stdout
    assert "has no input 'epochs'" in err and "input 'steps' (integer) is not bound" in err
    r = cli("job", "create", "-f", str(_sweep_yaml(trial_dir, body.format(trial="azureml:no_such_comp:1"),
                                                   name="missing.yml")))
    assert r.returncode != 0 and "no_such_comp" in r.stderr + r.stdout
    r = cli("job", "create", "-f", str(_sweep_yaml(trial_dir, body.format(trial="./nope.yml"), name="nofile.yml")))
    assert r.returncode != 0 and "component file './nope.yml' not found" in r.stderr + r.stdout


def test_sdk_sweep_job_with_a_component_trial(trial_dir):
    from openaml import load_component

    _write(trial_dir / "component.yml", COMPONENT)
    comp = load_component(trial_dir / "component.yml")
    sj = SweepJob(trial=comp, inputs={"steps": 2}, search_space={"x": Uniform(0, 1)}, sampling_algorithm="random",
                  objective={"goal": "maximize", "primary_metric": "score"}, limits={"max_total_trials": 2})
    assert sj.trial.command.startswith("python trial.py x=${{search_space.x}} steps=${{inputs.steps}}")
    assert sj.inputs["mode"].value == "ok" and sweep_problems(sj) == ([], [])
    with pytest.raises(Exception, match="has no input 'y'"):
        SweepJob(trial=comp, inputs={"steps": 2}, search_space={"y": Uniform(0, 1)},
                 objective={"goal": "maximize", "primary_metric": "score"}, limits={"max_total_trials": 2})


def test_bad_sweep_rejected_before_anything_runs(ml_client, cli, trial_dir):
    before = len(ml_client.jobs.list(list_view_type="all"))
    p = _sweep_yaml(trial_dir, """
        trial:
          code: src
          command: python trial.py x=${{search_space.z}}
        sampling_algorithm: grid
        search_space:
          x: {type: uniform, min_value: 3, max_value: 1}
        objective: {goal: maximize, primary_metric: score}
        limits: {max_total_trials: 2}
        """)
    r = cli("job", "create", "-f", str(p))
    assert r.returncode != 0
    err = r.stderr + r.stdout
    assert "greater than max_value" in err and "grid sampling takes only choice" in err and "'z'" in err
    assert len(ml_client.jobs.list(list_view_type="all")) == before


# ---------------------------------------------------------------------------------- conformance
CONFORMANCE = Path(__file__).resolve().parent / "conformance" / "sweep"
IRIS = Path(__file__).resolve().parent / "data" / "iris.csv"


def _ensure_conformance_assets(ml_client, cli) -> None:  # type: ignore[no-untyped-def]
    """What the public samples expect to exist in the workspace: compute cpu-cluster and the
    registered environment sklearn-1.0 (here: the base interpreter with scikit-learn)."""
    cli("compute", "create", "--name", "cpu-cluster", "--type", "amlcompute", "--max-instances", "2")
    env_yml = CONFORMANCE / "sklearn-1.0-env.yml"
    cli("environment", "create", "--file", str(env_yml))


@pytest.mark.slow  # real mlflow imports per trial and a curated environment build: minutes on 2 cores
def test_conformance_hello_sweep(ml_client, cli):
    _ensure_conformance_assets(ml_client, cli)
    r = cli("job", "create", "-f", str(CONFORMANCE / "hello-sweep.yml"))
    assert r.returncode == 0, r.stderr + r.stdout
    raw = _wait(ml_client, r.json()["name"], timeout=240)
    assert raw["status"] == "Completed", raw.get("error")
    trials = raw["trials"]
    assert len(trials) == 4 and all(t["status"] == "Completed" for t in trials)
    assert all(t["params"]["B"] in ("hello", "world", "hello_world") and 0.1 <= t["params"]["C"] <= 1.0
               for t in trials)
    metrics = [t["metric"] for t in trials]
    assert metrics == sorted(metrics)  # minimize: best first
    assert raw["best_child_run_id"] == trials[0]["name"]


@pytest.mark.slow
@pytest.mark.parametrize("full", [False, True])
def test_conformance_iris_job_sweep(ml_client, cli, full):  # type: ignore[no-untyped-def]
    _ensure_conformance_assets(ml_client, cli)
    args = ["job", "create", "-f", str(CONFORMANCE / "iris" / "job-sweep.yml"),
            "--set", f"inputs.iris_csv.path={IRIS}"]
    if not full:  # the default suite runs 3 of the 20 trials
        args += ["--set", "limits.max_total_trials=3"]
    r = cli(*args)
    assert r.returncode == 0, r.stderr + r.stdout
    raw = _wait(ml_client, r.json()["name"], timeout=900 if full else 240)
    assert raw["status"] == "Completed", raw.get("error")
    assert raw["compute"] == "cpu-cluster" and len(raw["trials"]) == (20 if full else 3)
    assert all(t["metric"] is not None for t in raw["trials"])
    assert raw["trials"][0]["params"]["kernel"] in ("rbf", "linear", "poly")


# ---------------------------------------------------------------------------------- the book's Titanic sweeps
TITANIC = Path(__file__).resolve().parents[1] / "examples" / "titanic"
CURATED = "azureml:AzureML-sklearn-1.5@latest"


@pytest.mark.parametrize("yml", sorted(p.name for p in TITANIC.glob("sweep-*.yml")))
def test_titanic_sweep_yaml_files_are_valid(yml):  # type: ignore[no-untyped-def]
    job = load_job(TITANIC / yml)
    assert isinstance(job, SweepJob) and sweep_problems(job) == ([], [])
    assert job.objective.primary_metric == "AUC" and job.trial.code == "./src"


@pytest.mark.slow  # real trials (mlflow, scikit-learn, model registration): ~1-3 min on 2 busy cores
def test_titanic_sweeps_sdk_script_and_yaml_run(ml_client, cli, server):
    """sweep_random.py --policy truncation (2 trials) and sweep-grid.yml (1 trial) end to end, in the
    curated scikit-learn environment (no virtualenv build)."""
    import os
    import subprocess

    cli("data", "create", "--file", str(TITANIC / "data.yml"), check=True)
    r = cli("job", "create", "-f", str(TITANIC / "sweep-grid.yml"), "--set", "limits.max_total_trials=1",
            "--set", f"trial.environment={CURATED}")
    assert r.returncode == 0, r.stderr
    grid = r.json()["name"]
    p = subprocess.run([sys.executable, str(TITANIC / "sweep_random.py"), "--policy", "truncation",
                        "--max-total-trials", "2", "--environment", CURATED],
                       env={**os.environ, "OPENAML_WORKSPACE": server.url}, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    name = re.search(r"sweep (\S+) submitted", p.stdout).group(1)
    assert f"sweep {name}: Completed; best trial: {name}_" in p.stdout and "best hyperparameters: C=" in p.stdout
    raw = ml_client.jobs.get_raw(name)
    assert raw["display_name"] == "titanic-sweep-random-truncation"
    assert raw["early_termination"]["type"] == "truncation_selection"
    assert len(raw["trials"]) == 2 and all(t["metric"] > 0.8 for t in raw["trials"]), raw["trials"]
    assert raw["search_space"]["C"] == {"type": "loguniform", "min_value": -4.6, "max_value": 2.3}
    raw = _wait(ml_client, grid, timeout=300)
    assert raw["status"] == "Completed", raw.get("error")
    assert len(raw["trials"]) == 1 and raw["trials"][0]["params"] == {"C": 0.01, "max_iter": 100}
    assert raw["trials"][0]["metric"] > 0.8
