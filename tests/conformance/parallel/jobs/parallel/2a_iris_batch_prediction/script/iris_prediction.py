"""Ours (the public script loads an MLflow model): a rule on petal length read from --model."""

import argparse
import bisect
import json
import os

import pandas as pd


def init():
    global MODEL
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=str)
    args, _ = parser.parse_known_args()
    with open(os.path.join(args.model, "model.json")) as fh:
        MODEL = json.load(fh)


def run(mini_batch):
    assert isinstance(mini_batch, pd.DataFrame)
    values = mini_batch[MODEL["feature"]]
    pred = [MODEL["classes"][bisect.bisect(MODEL["cuts"], v)] for v in values]
    return pd.DataFrame({"petal_length": values.round(2), "prediction": pred,
                         "example": os.environ.get("AZUREML_PARALLEL_EXAMPLE", "")})
