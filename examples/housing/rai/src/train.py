"""Train the housing classifier the RAI pipeline explains (Azure's responsible-ai housing sample).

Run as a command job (train-job.yml): the model is logged to the job's MLflow run and registered as
``--model_name`` (an MLflow model, scikit-learn flavor, with its signature).
"""

from __future__ import annotations

import argparse

import mlflow
import mlflow.sklearn
import mltable
from mlflow.models import infer_signature
from sklearn.ensemble import RandomForestClassifier

TARGET = "Sold_HigherThan_Median"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--training_data", required=True)
    parser.add_argument("--model_name", default="housing-rf")
    args = parser.parse_args()
    df = mltable.load(args.training_data).to_pandas_dataframe()
    X, y = df.drop(columns=[TARGET]), df[TARGET]
    model = RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0).fit(X, y)
    mlflow.log_metric("train_accuracy", float(model.score(X, y)))
    mlflow.sklearn.log_model(model, name="model", registered_model_name=args.model_name,
                             signature=infer_signature(X, model.predict(X)), serialization_format="cloudpickle")


if __name__ == "__main__":
    main()
