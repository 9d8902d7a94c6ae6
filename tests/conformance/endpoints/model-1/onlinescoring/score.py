"""Scoring script of model-1 (stands for the public sample's): a joblib regressor, rows in "data"."""
import json
import logging
import os

import joblib
import numpy as np

model = None


def init():
    global model
    # a registered folder lands as AZUREML_MODEL_DIR/<folder name>/...
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "sklearn_regression_model.pkl"))
    logging.info("model-1 loaded")


def run(raw_data):
    rows = np.array(json.loads(raw_data)["data"])
    return model.predict(rows).tolist()
