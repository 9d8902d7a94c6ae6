"""Bike-share demand forecasting with the Python SDK (as azureml-examples' notebook does it): 14 days
ahead, US holidays, then the best model forecasting the held-out days.

Run it from anywhere: ``python examples/bike-share-forecasting/automl_sdk.py [--quick]`` (the default
local workspace; set OPENAML_WORKSPACE to use another). ``--quick``: a 2-minute search of 3 models.
"""

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from openaml import Input, MLClient, automl

os.chdir(Path(__file__).resolve().parent)
quick = "--quick" in sys.argv
ml_client = MLClient()

forecasting_job = automl.forecasting(
    compute="local",
    experiment_name="bike-share-forecasting",
    training_data=Input(type="mltable", path="./data/train"),
    target_column_name="cnt",
    primary_metric="normalized_root_mean_squared_error",
    n_cross_validations=3,
)
forecasting_job.set_forecast_settings(time_column_name="date", forecast_horizon=14, frequency="D",
                                      target_lags=[1, 7], country_or_region_for_holidays="US")
forecasting_job.set_limits(timeout_minutes=2 if quick else 6, trial_timeout_minutes=2 if quick else 3,
                           max_trials=3 if quick else 10, max_concurrent_trials=2)
forecasting_job.set_training(allowed_training_algorithms=["SeasonalNaive", "ExponentialSmoothing", "LightGBM"]
                             if quick else None, blocked_training_algorithms=None if quick else ["KNN"])
returned_job = ml_client.jobs.create_or_update(forecasting_job)
print(f"submitted {returned_job.name}")
ml_client.jobs.stream(returned_job.name)

client = MlflowClient(tracking_uri=ml_client.workspaces.get().mlflow_tracking_uri)
best = client.get_run(returned_job.name).data.tags["automl_best_child_run_id"]
run = client.get_run(best)
print(f"best child {best} ({run.data.tags.get('automl_algorithm')}): normalized RMSE "
      f"{run.data.metrics['normalized_root_mean_squared_error']:.4f} (rolling origin)")
local = client.download_artifacts(best, "outputs/model.pkl", "./artifact_downloads")
with open(local, "rb") as f:
    model = pickle.load(f)
test = pd.read_csv("data/test/test.csv").head(14)
actual = test.pop("cnt").to_numpy(dtype=float)
forecast = model.forecast(test)["cnt_forecast"].to_numpy()
print(f"14-day forecast MAPE on the held-out days: {np.mean(np.abs(forecast - actual) / actual):.3f}")
