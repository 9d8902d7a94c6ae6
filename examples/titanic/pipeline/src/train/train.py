"""Training step of the Titanic pipelines (the book's chapter 3 train component).

Fits the model on train.csv, logs ``accuracy`` and ``AUC`` on test.csv to the step's MLflow run,
saves the MLflow model to the ``model`` output and, when ``--registered_model_name`` is given,
logs it to the run and registers it as a new version of that workspace model.

Usage (what components/train.yml runs)::

    python train.py --train_data <dir> --test_data <dir> --C 1.0 --max_iter 200 --model <out dir>
                    [--registered_model_name titanic-model]
"""

from __future__ import annotations

import argparse

import mlflow
import mlflow.sklearn
from mlflow.models import infer_signature
from model import build, pip_requirements, read_split
from sklearn.metrics import accuracy_score, roc_auc_score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_data", required=True)
    parser.add_argument("--test_data", required=True)
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--max_iter", type=int, default=200, help="solver iterations")
    parser.add_argument("--registered_model_name", default=None)
    parser.add_argument("--model", required=True, help="output folder: the MLflow model")
    args = parser.parse_args()

    X_train, y_train = read_split(args.train_data, "train")
    X_test, y_test = read_split(args.test_data, "test")
    mlflow.log_params({"C": args.C, "max_iter": args.max_iter, "n_train": len(X_train), "n_test": len(X_test)})
    pipeline = build(args.C, args.max_iter).fit(X_train, y_train)
    accuracy = accuracy_score(y_test, pipeline.predict(X_test))
    auc = roc_auc_score(y_test, pipeline.predict_proba(X_test)[:, 1])
    mlflow.log_metrics({"accuracy": float(accuracy), "AUC": float(auc)})
    print(f"accuracy={accuracy:.4f} AUC={auc:.4f}")

    mlflow.sklearn.save_model(pipeline, args.model, signature=infer_signature(X_train, pipeline.predict(X_train)),
                              serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
                              pip_requirements=pip_requirements())
    if args.registered_model_name:
        mlflow.log_artifacts(args.model, artifact_path="model")
        version = mlflow.register_model(f"runs:/{mlflow.active_run().info.run_id}/model", args.registered_model_name)
        print(f"registered {args.registered_model_name} version {version.version}")


if __name__ == "__main__":
    main()
