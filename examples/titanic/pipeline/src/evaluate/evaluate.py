"""Evaluation step of the train-and-evaluate pipeline (the book's chapter 9).

Scores the newly trained model and the latest registered version of ``--registered_model_name`` on
the same test split and writes the decision as JSON to the ``result`` output (a uri_file)::

    {"better": true, "metric": "accuracy", "new": 0.81, "registered": 0.79, "registered_version": "3"}

The new model is "better" when no version is registered yet, or when its accuracy is strictly
higher. The step reads the model registry, which is not one of its inputs, so its component says
``is_deterministic: false``: a rerun evaluates again instead of reusing an old decision.

Usage (what components/evaluate.yml runs)::

    python evaluate.py --model <MLflow model dir> --test_data <dir> --registered_model_name titanic-model
                       --result <out file>
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient
from model import read_split
from sklearn.metrics import accuracy_score


def latest_version(name: str) -> str | None:
    versions = MlflowClient().search_model_versions(f"name = '{name}'")
    return max((v.version for v in versions), key=int, default=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--test_data", required=True)
    parser.add_argument("--registered_model_name", required=True)
    parser.add_argument("--result", required=True, help="output file: the decision as JSON")
    args = parser.parse_args()

    X, y = read_split(args.test_data, "test")
    new = float(accuracy_score(y, mlflow.sklearn.load_model(args.model).predict(X)))
    version = latest_version(args.registered_model_name)
    result = {"metric": "accuracy", "new": new, "registered": None, "registered_version": version}
    if version is None:
        result["better"] = True
        print(f"no version of {args.registered_model_name} is registered: the new model (accuracy {new:.4f}) wins")
    else:
        registered = mlflow.sklearn.load_model(f"models:/{args.registered_model_name}/{version}")
        old = float(accuracy_score(y, registered.predict(X)))
        result.update(registered=old, better=new > old)
        print(f"new accuracy {new:.4f} vs {args.registered_model_name} version {version}: {old:.4f} -> "
              f"{'better' if new > old else 'not better'}")
    mlflow.log_metrics({"new_accuracy": new, **({"registered_accuracy": result["registered"]}
                                                 if result["registered"] is not None else {})})
    Path(args.result).write_text(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
