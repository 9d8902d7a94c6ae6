"""Train a Titanic survival classifier (the book's chapters 2-3, run as an Azure ML command job).

Inside a job, the platform sets MLFLOW_TRACKING_URI and MLFLOW_RUN_ID, so the metrics, parameters
and the model logged below land on the job's own run, and ``registered_model_name`` registers a
new version of the workspace model ``titanic-model``. Files written to ./outputs become the job's
artifacts.

Usage (what job.yml runs)::

    python train.py --data <folder holding the MLTable file> --C 1.0 --max_iter 200
"""

from __future__ import annotations

import argparse
import json
import os

import mlflow
import mlflow.sklearn
import mltable
import pandas as pd
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

TARGET = "Survived"
NUMERIC = ["Age", "SibSp", "Parch", "Fare"]
CATEGORICAL = ["Sex", "Embarked", "Pclass"]
DROPPED = ["PassengerId", "Name", "Ticket", "Cabin"]
SEED = 42


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder of the titanic MLTable (the job's input)")
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--max_iter", type=int, default=200, help="solver iterations")
    parser.add_argument("--test_size", type=float, default=0.2)
    return parser.parse_args()


def load_frame(path: str) -> pd.DataFrame:
    """The passengers table; ``Survived`` as 0/1 (mltable infers it as a boolean column)."""
    df = mltable.load(path).to_pandas_dataframe()
    df[TARGET] = df[TARGET].astype(int)
    return df


def build_pipeline(C: float, max_iter: int) -> Pipeline:
    """Imputation and encoding live in the pipeline, so the registered model scores raw rows.

    Age (numeric) is filled with the median; Embarked with the most frequent port; the
    categorical columns Sex, Embarked and Pclass are one-hot encoded.
    """
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline([
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("onehot", OneHotEncoder(handle_unknown="ignore")),
    ])
    prep = ColumnTransformer([("num", numeric, NUMERIC), ("cat", categorical, CATEGORICAL)])
    return Pipeline([("prep", prep), ("model", LogisticRegression(C=C, max_iter=max_iter, random_state=SEED))])


def main() -> None:
    args = parse_args()
    df = load_frame(args.data)
    print(f"loaded {len(df)} rows x {df.shape[1]} columns from {args.data}")
    print(f"missing values: {json.dumps({k: int(v) for k, v in df.isna().sum().items() if v})}")

    X = df.drop(columns=[TARGET, *DROPPED])
    # integer columns become floats so that the model signature accepts missing values when scoring
    X = X.astype({"Pclass": "float64", "SibSp": "float64", "Parch": "float64",
                  "Sex": object, "Embarked": object})
    y = df[TARGET]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, stratify=y, random_state=SEED)

    mlflow.log_params({"C": args.C, "max_iter": args.max_iter, "test_size": args.test_size,
                       "n_train": len(X_train), "n_test": len(X_test)})

    pipeline = build_pipeline(args.C, args.max_iter)
    pipeline.fit(X_train, y_train)

    accuracy = accuracy_score(y_test, pipeline.predict(X_test))
    auc = roc_auc_score(y_test, pipeline.predict_proba(X_test)[:, 1])
    mlflow.log_metric("accuracy", float(accuracy))
    mlflow.log_metric("AUC", float(auc))
    print(f"accuracy={accuracy:.4f} AUC={auc:.4f}")

    signature = infer_signature(X_train, pipeline.predict(X_train))
    example = X_train.head(5)
    # MLflow 3 stores scikit-learn models with skops, which refuses types it does not know unless named
    trusted = ["numpy.dtype"]
    mlflow.sklearn.log_model(pipeline, name="model", registered_model_name="titanic-model",
                             signature=signature, input_example=example, skops_trusted_types=trusted)

    # a copy in ./outputs: the job's artifacts (`openaml job download`), usable without the registry
    out = os.path.join("outputs", "model")
    if os.path.exists(out):
        import shutil

        shutil.rmtree(out)
    mlflow.sklearn.save_model(pipeline, out, signature=signature, input_example=example,
                              skops_trusted_types=trusted)
    print(f"model saved to {out} and registered as titanic-model")


if __name__ == "__main__":
    main()
