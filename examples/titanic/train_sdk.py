"""The Titanic flow with the Python SDK, as the book's chapter 2-3 notebook writes it.

Ported from azure-ai-ml by changing the imports and the MLClient line only:

    from azure.ai.ml import MLClient, command, Input            ->  from openaml import ...
    from azure.ai.ml.entities import Data, Environment          ->  from openaml.entities import ...
    from azure.ai.ml.constants import AssetTypes                ->  from openaml.constants import ...
    MLClient(DefaultAzureCredential(), subscription_id, resource_group, workspace)  ->  MLClient()

Run it from anywhere: ``python examples/titanic/train_sdk.py`` (the default local workspace;
set OPENAML_WORKSPACE to use another).
"""

import os
from pathlib import Path

from openaml import Input, MLClient, command
from openaml.constants import AssetTypes
from openaml.entities import Data, Environment

os.chdir(Path(__file__).resolve().parent)  # the notebook runs in its own folder; so do the paths below

# get a handle to the workspace
ml_client = MLClient()

# register the data: a folder holding an MLTable file and titanic.csv
my_data = Data(
    path="./data/",
    type=AssetTypes.MLTABLE,
    description="Titanic passengers (891 rows), as an MLTable over titanic.csv.",
    name="titanic-mltable",
)
registered_data = ml_client.data.create_or_update(my_data)
print(f"data {registered_data.name}:{registered_data.version} -> {registered_data.path}")

# an environment from a base image and a conda file
env_docker_conda = Environment(
    image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
    conda_file="./environment/conda.yml",
    name="titanic-env",
    description="scikit-learn, pandas, mlflow and mltable, to train the Titanic model.",
)
registered_env = ml_client.environments.create_or_update(env_docker_conda)
print(f"environment {registered_env.name}:{registered_env.version}")

# the training job
inputs = {
    "titanic": Input(type=AssetTypes.MLTABLE, path=f"azureml:{registered_data.name}:{registered_data.version}"),
    "C": 1.0,
    "max_iter": 200,
}
job = command(
    code="./src",  # local path where the code is stored
    command="python train.py --data ${{inputs.titanic}} --C ${{inputs.C}} --max_iter ${{inputs.max_iter}}",
    inputs=inputs,
    environment=f"{registered_env.name}@latest",
    compute="local",
    display_name="titanic-logistic-regression",
    experiment_name="titanic",
)

# submit the command
returned_job = ml_client.jobs.create_or_update(job)
# get a URL for the status of the job
print(returned_job.services["Studio"].endpoint)

ml_client.jobs.stream(returned_job.name)
finished = ml_client.jobs.get(returned_job.name)
print(f"job {finished.name}: {finished.status}")

model = ml_client.models.get("titanic-model", label="latest")
print(f"model {model.name}:{model.version}")
