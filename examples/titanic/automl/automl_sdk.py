"""The book's chapter 5 with the Python SDK: AutoML on Titanic, the best child run's files, and an
online endpoint serving the best model (MLflow no-code, then the scoring file).

Ported from azure-ai-ml by changing the imports and the MLClient line only. Run it from anywhere:
``python examples/titanic/automl/automl_sdk.py [--deploy]`` (the default local workspace; set
OPENAML_WORKSPACE to use another).
"""

import json
import os
import sys
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from openaml import Input, MLClient, automl
from openaml.entities import CodeConfiguration, Environment, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

os.chdir(Path(__file__).resolve().parent)
ml_client = MLClient()

classification_job = automl.classification(
    compute="local",
    experiment_name="titanic-automl",
    training_data=Input(type="mltable", path="../data"),
    target_column_name="Survived",
    primary_metric="AUC_weighted",
    n_cross_validations=3,
    enable_model_explainability=True,
)
classification_job.set_limits(timeout_minutes=10, trial_timeout_minutes=3, max_trials=12, max_concurrent_trials=2,
                              enable_early_termination=True)
classification_job.set_training(blocked_training_algorithms=[automl.ClassificationModels.KNN],
                                enable_onnx_compatible_models=False)
returned_job = ml_client.jobs.create_or_update(classification_job)
print(f"submitted {returned_job.name}")
ml_client.jobs.stream(returned_job.name)

# the best child run, through the parent's tag (as the book reads it)
tracking_uri = ml_client.workspaces.get().mlflow_tracking_uri
mlflow.set_tracking_uri(tracking_uri)
client = MlflowClient()
best_run_id = client.get_run(returned_job.name).data.tags["automl_best_child_run_id"]
best_run = client.get_run(best_run_id)
print(f"best child {best_run_id}: AUC_weighted {best_run.data.metrics['AUC_weighted']:.4f}, "
      f"algorithm {best_run.data.tags.get('automl_algorithm')}")
local_dir = Path("./artifact_downloads")
local_dir.mkdir(exist_ok=True)
local_path = client.download_artifacts(best_run_id, "outputs", str(local_dir))
print("downloaded:", sorted(p.name for p in Path(local_path).iterdir()))

if "--deploy" not in sys.argv:
    sys.exit(0)

# register the MLflow model and serve it with no scoring script (no-code deployment)
model = ml_client.models.create_or_update(Model(
    path=f"azureml://jobs/{best_run_id}/outputs/artifacts/paths/outputs/mlflow-model/",
    name="titanic-automl-model", type="mlflow_model",
    description="The best model of the chapter 5 AutoML job."))
endpoint = ManagedOnlineEndpoint(name="titanic-automl", auth_mode="key")
ml_client.online_endpoints.begin_create_or_update(endpoint).result()
mlflow_deployment = ManagedOnlineDeployment(name="mlflow", endpoint_name="titanic-automl",
                                            model=f"azureml:{model.name}:{model.version}",
                                            instance_type="Standard_DS3_v2", instance_count=1)
ml_client.online_deployments.begin_create_or_update(mlflow_deployment).result()

# the same model behind Azure's scoring file (model.pkl + scoring_file_v_2_0_0.py)
pkl_model = ml_client.models.create_or_update(Model(
    path=f"{local_path}/model.pkl", name="titanic-automl-pkl", type="custom_model"))
scoring_deployment = ManagedOnlineDeployment(
    name="scoring", endpoint_name="titanic-automl", model=f"azureml:{pkl_model.name}:{pkl_model.version}",
    code_configuration=CodeConfiguration(code=local_path, scoring_script="scoring_file_v_2_0_0.py"),
    environment=Environment(image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py311-cpu-inference",
                            conda_file=f"{local_path}/conda_env_v_1_0_0.yml"),
    instance_type="Standard_DS3_v2", instance_count=1)
ml_client.online_deployments.begin_create_or_update(scoring_deployment).result()
endpoint.traffic = {"mlflow": 100, "scoring": 0}
ml_client.online_endpoints.begin_create_or_update(endpoint).result()

request = Path("sample-titanic-data.json")
print("scoring file:", ml_client.online_endpoints.invoke(endpoint_name="titanic-automl", deployment_name="scoring",
                                                         request_file=str(request)))
mlflow_request = Path("sample-request-mlflow.json")
rows = json.loads(request.read_text())["Inputs"]["data"]
mlflow_request.write_text(json.dumps({"input_data": {"columns": list(rows[0]),
                                                     "data": [list(r.values()) for r in rows]}}))
print("mlflow no-code:", ml_client.online_endpoints.invoke(endpoint_name="titanic-automl", deployment_name="mlflow",
                                                           request_file=str(mlflow_request)))
