"""Grid sweep of the Titanic model with the Python SDK (the book's chapter 4), the SDK twin of
``sweep-grid.yml``: every combination of C (4 values) and max_iter (2 values), 8 trials.

Ported from azure-ai-ml by changing the imports and the MLClient line only (see sweep_random.py).
Needs the data asset ``titanic-mltable`` and the environment ``titanic-env`` (see README.md).

    python sweep_grid.py
    python sweep_grid.py --max-total-trials 2
"""

import argparse
import os
from pathlib import Path

from openaml import Input, MLClient, command
from openaml.sweep import Choice

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--max-total-trials", type=int, default=60, help="the grid has 8 points: it ends after 8")
parser.add_argument("--max-concurrent-trials", type=int, default=2)
parser.add_argument("--environment", default="titanic-env@latest")
args = parser.parse_args()

os.chdir(Path(__file__).resolve().parent)  # code="./src" is relative to this folder

ml_client = MLClient()

job = command(
    code="./src",
    command="python train.py --data ${{inputs.titanic}} --C ${{inputs.C}} --max_iter ${{inputs.max_iter}}",
    inputs={
        "titanic": Input(type="mltable", path="azureml:titanic-mltable@latest", mode="ro_mount"),
        "C": 1.0,
        "max_iter": 200,
    },
    environment=args.environment,
    compute="local",
    experiment_name="titanic-sweeps",
    display_name="titanic-sweep-grid",
)

# grid sampling takes only choice: every combination is one trial
job_for_sweep = job(
    C=Choice(values=[0.01, 0.1, 1.0, 10.0]),
    max_iter=Choice(values=[100, 200]),
)
sweep_job = job_for_sweep.sweep(
    compute="local",
    sampling_algorithm="grid",
    primary_metric="AUC",
    goal="Maximize",
    max_total_trials=args.max_total_trials,
    max_concurrent_trials=args.max_concurrent_trials,
    timeout=3600,
)

returned_sweep_job = ml_client.create_or_update(sweep_job)
print(f"sweep {returned_sweep_job.name} submitted")
ml_client.jobs.stream(returned_sweep_job.name)

finished = ml_client.jobs.get(returned_sweep_job.name)
best = finished.properties.get("best_child_run_id")
print(f"sweep {finished.name}: {finished.status}; best trial: {best}")
if best:
    best_trial = ml_client.jobs.get(best)
    print(f"best hyperparameters: C={best_trial.inputs['C'].value} max_iter={best_trial.inputs['max_iter'].value}")
