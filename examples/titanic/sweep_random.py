"""Random sweep of the Titanic model with the Python SDK (the book's chapter 4), the SDK twin of
``sweep-random.yml`` and, with ``--policy``, of ``sweep-random-{truncation,median,bandit}.yml``.

Ported from azure-ai-ml by changing the imports and the MLClient line only:

    from azure.ai.ml import MLClient, command, Input   ->  from openaml import MLClient, command, Input
    from azure.ai.ml.sweep import Choice, LogUniform   ->  from openaml.sweep import Choice, LogUniform
    MLClient(DefaultAzureCredential(), subscription_id, resource_group, workspace)  ->  MLClient()

Needs the data asset ``titanic-mltable`` and the environment ``titanic-env`` (see README.md).

    python sweep_random.py                          # 20 trials, 2 at a time, no early termination
    python sweep_random.py --policy bandit          # truncation | median | bandit, as the YAML files
    python sweep_random.py --max-total-trials 4
"""

import argparse
import os
from pathlib import Path

from openaml import Input, MLClient, command
from openaml.sweep import (
    BanditPolicy,
    Choice,
    LogUniform,
    MedianStoppingPolicy,
    RandomSamplingAlgorithm,
    TruncationSelectionPolicy,
)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--policy", choices=["none", "truncation", "median", "bandit"], default="none",
                    help="early-termination policy (train.py logs AUC once, so a policy acts only across trials)")
parser.add_argument("--max-total-trials", type=int, default=20)
parser.add_argument("--max-concurrent-trials", type=int, default=2)
parser.add_argument("--environment", default="titanic-env@latest")
args = parser.parse_args()

os.chdir(Path(__file__).resolve().parent)  # code="./src" is relative to this folder

# get a handle to the workspace (OPENAML_WORKSPACE, or the default local one)
ml_client = MLClient()

# the training command, with the hyperparameters as inputs
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
    display_name=f"titanic-sweep-random{'' if args.policy == 'none' else '-' + args.policy}",
)

# replace the literal inputs by search-space expressions: C = exp(uniform(-4.6, 2.3)), i.e. 0.01 to 10
job_for_sweep = job(
    C=LogUniform(min_value=-4.6, max_value=2.3),
    max_iter=Choice(values=[100, 200, 400]),
)

sweep_job = job_for_sweep.sweep(
    compute="local",
    sampling_algorithm=RandomSamplingAlgorithm(seed=42),
    primary_metric="AUC",
    goal="Maximize",
)
sweep_job.set_limits(max_total_trials=args.max_total_trials, max_concurrent_trials=args.max_concurrent_trials,
                     timeout=3600, trial_timeout=600)

if args.policy == "truncation":
    sweep_job.early_termination = TruncationSelectionPolicy(truncation_percentage=75, evaluation_interval=1,
                                                            delay_evaluation=1)
elif args.policy == "median":
    sweep_job.early_termination = MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=2)
elif args.policy == "bandit":
    sweep_job.early_termination = BanditPolicy(slack_factor=0.1, evaluation_interval=1, delay_evaluation=5)

# submit the sweep and follow it until it ends
returned_sweep_job = ml_client.create_or_update(sweep_job)
print(f"sweep {returned_sweep_job.name} submitted")
ml_client.jobs.stream(returned_sweep_job.name)

# the best trial: the sweep's property best_child_run_id (its AUC: `openaml job show -n <best>`)
finished = ml_client.jobs.get(returned_sweep_job.name)
best = finished.properties.get("best_child_run_id")
print(f"sweep {finished.name}: {finished.status}; best trial: {best}")
if best:
    best_trial = ml_client.jobs.get(best)
    print(f"best hyperparameters: C={best_trial.inputs['C'].value} max_iter={best_trial.inputs['max_iter'].value}")
