"""The hyperband early-termination policy (an openaml extension): its decisions on hand-computed
examples, its validation errors, YAML and SDK round trips, and one sweep through a real server."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from openaml import command, load_job
from openaml.entities._sweep import sweep_problems
from openaml.errors import ValidationError
from openaml.services._sweep_policies import _bracket_budgets, bracket_of, evaluate_policy, hyperband_rungs
from openaml.sweep import Choice, HyperbandPolicy, SweepJob, Uniform

# A trial: logs `score` = x * (step + 1) per step over MLflow REST (no mlflow import: fast start).
TRIAL = """
import json, os, sys, time, urllib.request
args = dict(a.split("=", 1) for a in sys.argv[1:])
x = float(args["x"]); steps = int(args["steps"]); sleep = float(args["sleep"])
for step in range(steps):
    body = json.dumps({"run_id": os.environ["MLFLOW_RUN_ID"], "key": "score", "value": x * (step + 1),
                       "timestamp": int(time.time() * 1000), "step": step}).encode()
    req = urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric", data=body,
                                 headers={"Content-Type": "application/json"})
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        req.add_header("Authorization", "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"])
    urllib.request.urlopen(req).read()
    time.sleep(sleep)
"""


# ---------------------------------------------------------------------------------- decisions (unit)
def test_rungs_brackets_and_budgets_follow_hyperband():
    pol = HyperbandPolicy(min_resource=1, max_resource=30, reduction_factor=3)
    # floor(log_3(30)) + 1 = 4 brackets; bracket b's rungs start at 3**b, none at or above 30
    assert pol.n_brackets == 4
    assert [hyperband_rungs(pol, b) for b in range(4)] == [[1, 3, 9, 27], [3, 9, 27], [9, 27], [27]]
    # ceil(S * eta**s / (s + 1)), s = halvings of the bracket: 4*27/4, 4*9/3, 4*3/2, 4*1/1
    assert _bracket_budgets(pol) == [27, 12, 6, 4]
    order = [bracket_of(pol, i) for i in range(49)]
    assert order[:6] == [0, 1, 0, 2, 0, 3]  # every bracket gets a trial early
    assert [order.count(b) for b in range(4)] == [27, 12, 6, 4]  # one cycle = the budgets exactly
    asha = HyperbandPolicy(min_resource=2, max_resource=20, reduction_factor=2, brackets=1)
    assert hyperband_rungs(asha, 0) == [2, 4, 8, 16] and {bracket_of(asha, i) for i in range(9)} == {0}


def test_asha_decisions_hand_computed():
    # one bracket (ASHA), eta 3, rungs at intervals 1 and 3. At a rung of n values the best
    # max(1, n // 3) go on. Trials in creation order:
    pol = HyperbandPolicy(min_resource=1, max_resource=9, reduction_factor=3, brackets=1)
    hist = {"t0": [0.50, 0.60, 0.70, 0.72], "t1": [0.40], "t2": [0.55, 0.58, 0.65], "t3": [0.52],
            "t4": [0.60, 0.62, 0.66]}
    ev: dict[str, int] = {}
    out = evaluate_policy(pol, "maximize", hist, ["t1", "t2", "t3", "t4"], ev)
    # interval 1 (all 5 reached it): keep max(1, 5 // 3) = 1, the best is t4 (0.60):
    #   t1 0.40, t2 0.55 and t3 0.52 each have >= 1 better value -> stopped; t4 goes on
    # (t0 is not running: finished trials count as competitors but are not judged)
    assert set(out) == {"t1", "t2", "t3", "t4"} and "interval 1" in out["t2"] and "best 1 of 5" in out["t2"]
    # t4 goes on at interval 1, then at interval 3 meets t0 0.70, t2 0.65 and itself 0.66: keep
    # max(1, 3 // 3) = 1 and 0.70 is better -> stopped there
    assert "interval 3" in out["t4"] and "of 3 trials" in out["t4"]
    assert ev == {"t1": 1, "t2": 1, "t3": 1, "t4": 3}
    # minimize: the same numbers, the other way round
    out = evaluate_policy(pol, "minimize", hist, ["t1", "t2", "t3", "t4"], {})
    assert set(out) == {"t2", "t3", "t4"}  # t1 (0.40) is the best at interval 1; t4 stopped at 1
    # intervals that are not rungs are never judged (delay_evaluation/evaluation_interval do not apply)
    hist2 = {"a": [0.9, 0.9], "b": [0.95, 0.1]}
    assert evaluate_policy(pol, "maximize", hist2, ["b"], {}) == {}


def test_brackets_compete_only_within_themselves_and_bootstrap():
    pol = HyperbandPolicy(min_resource=1, max_resource=9, reduction_factor=3)  # brackets 0 and 1
    assert _bracket_budgets(pol) == [3, 2] and [bracket_of(pol, i) for i in range(5)] == [0, 1, 0, 1, 0]
    hist = {"a": [0.9, 0.9, 0.9], "b": [0.1, 0.1, 0.1], "c": [0.5]}
    # b (bracket 1, first rung at 3) has no competitor in its bracket: goes on; c (bracket 0) loses to a
    out = evaluate_policy(pol, "maximize", hist, ["b", "c"], {})
    assert set(out) == {"c"} and "bracket 0" in out["c"]
    boot = HyperbandPolicy(min_resource=1, max_resource=9, reduction_factor=3, brackets=1, bootstrap_count=2)
    assert evaluate_policy(boot, "maximize", {"a": [0.9], "c": [0.5]}, ["c"], {}) == {}  # 2 values <= 2
    assert "c" in evaluate_policy(boot, "maximize", {"a": [0.9], "b": [0.8], "c": [0.5]}, ["c"], {})


# ---------------------------------------------------------------------------------- validation
def _job(**kw) -> SweepJob:  # type: ignore[no-untyped-def]
    base = dict(trial={"command": "python t.py x=${{search_space.x}}"}, search_space={"x": Uniform(0, 1)},
                objective={"goal": "Maximize", "primary_metric": "m"}, limits={"max_total_trials": 4})
    base.update(kw)
    return SweepJob.model_validate(base)


@pytest.mark.parametrize("fields, needle", [
    ({"max_resource": 3, "min_resource": 3}, "max_resource > min_resource"),
    ({"max_resource": 9, "reduction_factor": 1}, "reduction_factor"),
    ({"max_resource": 9, "brackets": 5}, "brackets 5 is more than the 2"),
    ({"max_resource": 9, "min_resource": 0}, "min_resource"),
    ({"max_resource": 9, "bootstrap_count": -1}, "bootstrap_count"),
    ({}, "max_resource"),
    ({"max_resource": 9, "evaluation_interval": 2}, "hyperband takes no evaluation_interval"),
])
def test_yaml_validation_errors_name_the_field(tmp_path, fields, needle):  # type: ignore[no-untyped-def]
    policy = ", ".join(f"{k}: {v}" for k, v in {"type": "hyperband", **fields}.items())
    p = tmp_path / "sweep.yml"
    p.write_text(textwrap.dedent(f"""\
        type: sweep
        trial: {{command: "python t.py x=${{{{search_space.x}}}}"}}
        search_space: {{x: {{type: uniform, min_value: 0, max_value: 1}}}}
        objective: {{goal: maximize, primary_metric: m}}
        early_termination: {{{policy}}}
        limits: {{max_total_trials: 4}}
        """))
    with pytest.raises(ValidationError) as ei:
        load_job(p)
    msg = str(ei.value)
    assert str(p) in msg and "early_termination" in msg and needle in msg, msg


def test_sdk_errors_and_bayesian_rule():
    with pytest.raises(ValueError, match="max_resource > min_resource"):
        HyperbandPolicy(min_resource=4, max_resource=2)
    problems, _ = sweep_problems(_job(sampling_algorithm="bayesian",
                                      early_termination=HyperbandPolicy(max_resource=9)))
    assert any("does not support early termination" in p for p in problems), problems
    assert sweep_problems(_job(early_termination=HyperbandPolicy(max_resource=9))) == ([], [])


def test_yaml_and_sdk_round_trip(tmp_path):
    job = command(command="python t.py --lr ${{inputs.lr}}", inputs={"lr": 0.1},
                  environment="azureml:AzureML-lightgbm-3.3@latest", compute="local")
    sj = job(lr=Choice([0.01, 0.1])).sweep(compute="local", sampling_algorithm="random", primary_metric="AUC",
                                           goal="Maximize")
    sj.set_limits(max_total_trials=4)
    sj.early_termination = HyperbandPolicy(min_resource=2, max_resource=30, reduction_factor=3, brackets=2)
    d = sj.to_dict()
    assert d["early_termination"] == {"type": "hyperband", "min_resource": 2, "max_resource": 30,
                                      "reduction_factor": 3, "brackets": 2, "bootstrap_count": 0}
    p = tmp_path / "sj.yml"
    p.write_text(str(sj))
    again = load_job(p)
    assert isinstance(again.early_termination, HyperbandPolicy) and again.early_termination == sj.early_termination
    # the type is case-insensitive in YAML, as Azure's policy names are
    text = p.read_text().replace("type: hyperband", "type: Hyperband")
    p.write_text(text)
    assert load_job(p).early_termination == sj.early_termination


def test_example_yaml_loads():
    example = Path(__file__).resolve().parents[1] / "examples" / "lightgbm-learning-curve" / "sweep-job.yml"
    job = load_job(example)
    assert job.early_termination == HyperbandPolicy(min_resource=4, max_resource=30, reduction_factor=4)
    assert sweep_problems(job)[0] == []


# ---------------------------------------------------------------------------------- end to end
def test_hyperband_sweep_cancels_through_the_server(ml_client, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "trial.py").write_text(TRIAL.lstrip())
    p = tmp_path / "sweep.yml"
    p.write_text(textwrap.dedent("""\
        $schema: https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json
        type: sweep
        experiment_name: sweep-policy-tests
        compute: azureml:local
        trial:
          code: src
          command: python trial.py x=${{search_space.x}} steps=6 sleep=0.4
        sampling_algorithm: grid
        search_space:
          x: {type: choice, values: [0.1, 1.0, 0.5, 2.0]}
        objective: {goal: maximize, primary_metric: score}
        early_termination: {type: hyperband, min_resource: 1, max_resource: 4, reduction_factor: 2, brackets: 1}
        limits: {max_total_trials: 4, max_concurrent_trials: 1}
        """))
    # rungs at intervals 1 and 2, one bracket, keep max(1, n // 2), one trial at a time (so the order
    # in which trials reach a rung is fixed):
    #   x=0.1 is alone at each rung; x=1.0 is the best at each rung: both complete;
    #   x=0.5 at interval 1 sees {0.1, 1.0, 0.5}: keep 1, 1.0 is better -> canceled;
    #   x=2.0 is the best at every rung -> completes (the best trial, 2.0 * 6)
    name = ml_client.jobs.create_or_update(load_job(p)).name
    deadline = time.monotonic() + 150
    while (raw := ml_client.jobs.get_raw(name))["status"] not in ("Completed", "Failed", "Canceled"):
        assert time.monotonic() < deadline, raw.get("trials")
        time.sleep(0.3)
    assert raw["status"] == "Completed", raw.get("error")
    by_x = {t["params"]["x"]: t for t in raw["trials"]}
    assert by_x[0.5]["status"] == "Canceled", by_x[0.5]
    assert "hyperband policy at interval 1" in by_x[0.5]["terminated"]
    assert [by_x[x]["status"] for x in (0.1, 1.0, 2.0)] == ["Completed"] * 3, raw["trials"]
    assert raw["trials"][0]["params"] == {"x": 2.0} and raw["trials"][0]["metric"] == 12.0
    assert raw["best_child_run_id"] == raw["trials"][0]["name"]
