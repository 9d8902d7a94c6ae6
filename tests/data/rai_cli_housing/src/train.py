"""Train a housing classifier (scaler + one-hot + random forest), save it as an MLflow model to the
``model_output`` folder, register it and write ``model_info.json`` ({"id": "<name>:<version>"}) for the
RAI constructor's ``model_info_path``: the steps of Azure's RAI CLI housing sample."""

import argparse
import json
import os

import mlflow
import mlflow.sklearn
import mltable
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

parser = argparse.ArgumentParser()
for arg in ("training_data", "target_column_name", "model_name", "model_output", "model_output_json"):
    parser.add_argument(f"--{arg}")
parser.add_argument("--continuous_features", type=json.loads)
parser.add_argument("--categorical_features", type=json.loads)
args = parser.parse_args()

data = mltable.load(args.training_data).to_pandas_dataframe()
X, y = data.drop(columns=[args.target_column_name]), data[args.target_column_name]
columns = ColumnTransformer([("num", StandardScaler(), args.continuous_features),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), args.categorical_features)])
model = Pipeline([("prep", columns), ("clf", RandomForestClassifier(n_estimators=30, random_state=0))]).fit(X, y)

# the call Azure's sample makes: no serialization_format (Azure's image pickles; so does this environment)
mlflow.sklearn.save_model(sk_model=model, path=args.model_output)

with mlflow.start_run():  # the job's own run (MLFLOW_RUN_ID)
    info = mlflow.sklearn.log_model(model, name="model", registered_model_name=args.model_name)
with open(os.path.join(args.model_output_json, "model_info.json"), "w") as f:
    json.dump({"id": f"{args.model_name}:{info.registered_model_version}"}, f)
