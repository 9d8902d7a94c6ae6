"""Bank-marketing AutoML classification with the Python SDK (as azureml-examples' notebook does it),
then the best child run's test metrics and its model on the held-out rows.

Run it from anywhere: ``python examples/bank-marketing-automl/automl_sdk.py [--quick]`` (the default
local workspace; set OPENAML_WORKSPACE to use another). ``--quick``: a 2-minute, 3-trial search.
"""

import os
import pickle
import sys
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.metrics import roc_auc_score

from openaml import Input, MLClient, automl

os.chdir(Path(__file__).resolve().parent)
quick = "--quick" in sys.argv
ml_client = MLClient()

classification_job = automl.classification(
    compute="local",
    experiment_name="bank-marketing-automl",
    training_data=Input(type="mltable", path="./data/train"),
    test_data=Input(type="mltable", path="./data/test"),
    target_column_name="y",
    positive_label="yes",
    primary_metric=automl.ClassificationPrimaryMetrics.AUC_WEIGHTED,
    n_cross_validations=3,
)
classification_job.set_limits(timeout_minutes=2 if quick else 5, trial_timeout_minutes=2,
                              max_trials=3 if quick else 10, max_concurrent_trials=2)
classification_job.set_training(blocked_training_algorithms=["KNN", "LinearSVM"],
                                enable_model_explainability=not quick, enable_stack_ensemble=not quick,
                                enable_vote_ensemble=not quick)
returned_job = ml_client.jobs.create_or_update(classification_job)
print(f"submitted {returned_job.name}")
ml_client.jobs.stream(returned_job.name)

client = MlflowClient(tracking_uri=ml_client.workspaces.get().mlflow_tracking_uri)
best = client.get_run(returned_job.name).data.tags["automl_best_child_run_id"]
run = client.get_run(best)
print(f"best child {best} ({run.data.tags.get('automl_algorithm')}): AUC_weighted "
      f"{run.data.metrics['AUC_weighted']:.4f} (cross-validated), test_AUC_weighted "
      f"{run.data.metrics.get('test_AUC_weighted', float('nan')):.4f}")
local = client.download_artifacts(best, "outputs/model.pkl", "./artifact_downloads")
with open(local, "rb") as f:
    model = pickle.load(f)
test = pd.read_csv("data/test/test.csv")
y = (test.pop("y") == "yes").astype(int)
auc = roc_auc_score(y, model.predict_proba(test)[:, list(model.classes_).index("yes")])
print(f"held-out AUC of model.pkl: {auc:.4f}")
