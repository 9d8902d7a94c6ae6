"""Scoring script of the blue deployment: the MLflow model of titanic-model, loaded once.

Accepts the book's request shapes: {"input_data": {"columns": [...], "data": [[...], ...]}} (split)
or {"input_data": {"columns": [...], "data": [{col: value}, ...]}} (records). Returns one 0/1
prediction per row.
"""
import glob
import json
import logging
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
    logging.info("titanic model loaded from %s", found[0])


def _frame(payload):
    data = payload["input_data"]
    rows = data["data"]
    if rows and isinstance(rows[0], dict):
        return pd.DataFrame(rows, columns=data.get("columns"))
    return pd.DataFrame(rows, columns=data["columns"])


def run(raw_data):
    return model.predict(_frame(json.loads(raw_data))).tolist()


def batch_run(raw_items):
    """openaml extension: concurrent requests scored in one predict call (each gets its own rows)."""
    frames = [_frame(json.loads(raw)) for raw in raw_items]
    preds = model.predict(pd.concat(frames, ignore_index=True)).tolist()
    out, start = [], 0
    for f in frames:
        out.append(preds[start:start + len(f)])
        start += len(f)
    return out
