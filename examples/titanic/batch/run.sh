#!/usr/bin/env bash
# Chapter 7 with the CLI: batch endpoint, deployment, invoke on ./data, download the predictions.
# Run from this folder after the training job registered titanic-model (../job.yml).
set -euo pipefail
openaml environment create --file ../environment.yml >/dev/null
openaml batch-endpoint create --file endpoint.yml
openaml batch-deployment create --file deployment.yml --set-default
openaml batch-deployment create --file mlflow-deployment.yml
JOB=$(openaml batch-endpoint invoke --name titanic-batch --input ./data --input-type uri_folder --query name -o tsv)
openaml job stream --name "$JOB"
openaml job download --name "$JOB" --output-name score --download-path ./scored
# the no-code MLflow deployment, results at a datastore path of our choice
JOB2=$(openaml batch-endpoint invoke --name titanic-batch --deployment-name titanic-mlflow --input ./data \
  --output-path azureml://datastores/workspaceblobstore/paths/titanic-batch/mlflow --query name -o tsv)
openaml job stream --name "$JOB2"
openaml job download --name "$JOB2" --output-name score --download-path ./scored-mlflow
find ./scored ./scored-mlflow -name predictions.csv
