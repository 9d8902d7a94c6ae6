"""Batch scoring script of the titanic-score deployment (the book's chapter 7).

init() loads the MLflow model of titanic-model once per worker from AZUREML_MODEL_DIR; run() gets a
mini-batch (a list of CSV file paths) and returns one "PassengerId,Survived,file" line per passenger,
which the append_row output action collects into predictions.csv. Pclass, SibSp and Parch are read as
whole numbers; the model was trained (and its signature written) with them as floats.
"""
import glob
import os

import mlflow.pyfunc
import pandas as pd

model = None


def init():
    global model
    root = os.environ["AZUREML_MODEL_DIR"]
    found = glob.glob(os.path.join(root, "**", "MLmodel"), recursive=True)
    if not found:
        raise RuntimeError(f"no MLflow model (MLmodel file) under AZUREML_MODEL_DIR={root}")
    model = mlflow.pyfunc.load_model(os.path.dirname(found[0]))


def run(mini_batch):
    lines = []
    for path in mini_batch:
        passengers = pd.read_csv(path)
        if passengers.empty:
            continue
        predictions = model.predict(passengers.astype({"Pclass": "float64", "SibSp": "float64", "Parch": "float64"}))
        name = os.path.basename(path)
        lines.extend(f"{pid},{int(p)},{name}" for pid, p in zip(passengers["PassengerId"], predictions, strict=True))
    return lines
