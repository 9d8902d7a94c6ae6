"""The book's chapter 3 Titanic pipeline with the Python DSL: the same graph as pipeline.yml.

Ported from azure-ai-ml by changing the imports and the MLClient line only:

    from azure.ai.ml import MLClient, Input, dsl, load_component    ->  from openaml import ...
    MLClient(DefaultAzureCredential(), subscription_id, resource_group, workspace)  ->  MLClient()

Run it from anywhere (the default local workspace; set OPENAML_WORKSPACE to use another)::

    python examples/titanic/pipeline/pipeline_dsl.py [--C 0.5] [--registered_model_name titanic-model]

It uses the component files of pipeline.yml, so after a run of either one the other reuses every
step whose inputs and parameters match.
"""

import argparse
import os
from pathlib import Path

from openaml import Input, MLClient, dsl, load_component

os.chdir(Path(__file__).resolve().parent)  # the notebook runs in its own folder; so do the paths below

# the components: data preparation and training, from their YAML files
prep_component = load_component(source="./components/prep.yml")
train_component = load_component(source="./components/train.yml")


@dsl.pipeline(compute="local", description="Titanic survival: data prep component, train component, "
              "model registered by the train step", display_name="titanic-prep-train")
def titanic_pipeline(titanic: Input, C: float = 1.0, max_iter: int = 200,
                     registered_model_name: str = "titanic-model") -> dict:
    # each call is a step, named after the variable it is assigned to
    prep_data = prep_component(raw_data=titanic, test_size=0.2)
    train_model = train_component(
        train_data=prep_data.outputs.train_data,
        test_data=prep_data.outputs.test_data,
        C=C,
        max_iter=max_iter,
        registered_model_name=registered_model_name,
    )
    return {"model": train_model.outputs.model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--max_iter", type=int, default=200)
    parser.add_argument("--registered_model_name", default="titanic-model")
    parser.add_argument("--experiment_name", default="titanic-pipeline")
    args = parser.parse_args()

    # get a handle to the workspace
    ml_client = MLClient()

    pipeline_job = titanic_pipeline(
        titanic=Input(type="mltable", path="../data"),  # the MLTable folder, uploaded on submit
        C=args.C,
        max_iter=args.max_iter,
        registered_model_name=args.registered_model_name,
    )
    returned_job = ml_client.jobs.create_or_update(pipeline_job, experiment_name=args.experiment_name)
    print(f"pipeline {returned_job.name}: {returned_job.services['Studio'].endpoint}")
    ml_client.jobs.stream(returned_job.name)

    finished = ml_client.jobs.get(returned_job.name)
    print(f"pipeline {finished.name}: {finished.status}")
    for step in ml_client.jobs.list(parent_job_name=finished.name):
        print(f"  {step.display_name}: {step.status}; {step.properties.get('openaml.reason')}")
    model = ml_client.models.get(args.registered_model_name, label="latest")
    print(f"model {model.name}:{model.version}")


if __name__ == "__main__":
    main()
