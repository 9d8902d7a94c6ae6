"""Chapter 7 with the Python SDK: batch endpoint, deployment (titanic-model + score.py), invoke on the
folder of passenger files, wait, download the predictions.

Run from this folder after the training job registered titanic-model (see ../README.md):
    python batch_sdk.py [--download-path ./scored]
"""
import argparse
import glob
import os

import pandas as pd

from openaml import Input, MLClient
from openaml.entities import (
    BatchDeployment,
    BatchEndpoint,
    BatchRetrySettings,
    CodeConfiguration,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
)

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--download-path", default="./scored")
    parser.add_argument("--mlflow", action="store_true", help="the no-code MLflow deployment instead of score.py")
    args = parser.parse_args()

    ml_client = MLClient()  # the default local workspace (or OPENAML_WORKSPACE)
    endpoint = BatchEndpoint(name="titanic-batch", description="Titanic survival predictions")
    ml_client.batch_endpoints.begin_create_or_update(endpoint).result()

    model = ml_client.models.get("titanic-model", label="latest")
    if args.mlflow:  # no scoring script, no environment: the built-in MLflow driver
        deployment = ModelBatchDeployment(
            name="titanic-mlflow", endpoint_name=endpoint.name, model=f"azureml:{model.name}:{model.version}",
            compute="local", settings=ModelBatchDeploymentSettings(mini_batch_size=2, max_concurrency_per_instance=2,
                                                                  output_file_name="predictions.csv"))
    else:  # the book's BatchDeployment(...) call
        deployment = BatchDeployment(
            name="titanic-score", endpoint_name=endpoint.name, model=f"azureml:{model.name}:{model.version}",
            code_configuration=CodeConfiguration(code=os.path.join(HERE, "code"), scoring_script="score.py"),
            environment="azureml:titanic-env@latest", compute="local", instance_count=1,
            max_concurrency_per_instance=2, mini_batch_size=2, output_action="append_row",
            output_file_name="predictions.csv", retry_settings=BatchRetrySettings(max_retries=2, timeout=300),
            logging_level="info")
    ml_client.batch_deployments.begin_create_or_update(deployment).result()
    endpoint = ml_client.batch_endpoints.get(endpoint.name)
    endpoint.defaults = {"deployment_name": deployment.name}
    ml_client.batch_endpoints.begin_create_or_update(endpoint).result()

    job = ml_client.batch_endpoints.invoke(endpoint_name=endpoint.name,
                                           input=Input(type="uri_folder", path=os.path.join(HERE, "data")))
    print(f"batch scoring job {job.name} started")
    ml_client.jobs.stream(job.name)
    ml_client.jobs.download(name=job.name, output_name="score", download_path=args.download_path)
    found = glob.glob(os.path.join(args.download_path, "**", "predictions.csv"), recursive=True)
    names = ["row", "prediction", "file"] if args.mlflow else ["PassengerId", "Survived", "file"]
    scored = pd.read_csv(found[0], names=names)
    print(f"{len(scored)} passengers scored into {found[0]}")
    print(scored.head())


if __name__ == "__main__":
    main()
