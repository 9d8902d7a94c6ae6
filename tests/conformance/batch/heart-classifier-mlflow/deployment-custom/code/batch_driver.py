"""Our scoring script for deployment-custom (the public one is not copied): the MLflow model under
AZUREML_MODEL_DIR scores each CSV of the mini-batch; one row per input row: file, row, prediction."""
import glob
import os

import mlflow.pyfunc
import pandas as pd

model = None


def init():
    global model
    found = glob.glob(os.path.join(os.environ["AZUREML_MODEL_DIR"], "**", "MLmodel"), recursive=True)
    model = mlflow.pyfunc.load_model(os.path.dirname(found[0]))


def run(mini_batch):
    frames = []
    for path in mini_batch:
        data = pd.read_csv(path)
        if data.empty:
            continue
        frames.append(pd.DataFrame({"file": os.path.basename(path), "row": range(len(data)),
                                    "prediction": model.predict(data)}))
    return pd.concat(frames) if frames else pd.DataFrame(columns=["file", "row", "prediction"])
