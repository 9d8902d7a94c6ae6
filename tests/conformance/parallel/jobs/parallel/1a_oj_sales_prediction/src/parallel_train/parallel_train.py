"""Ours: one lagged-demand model per (Store, Brand) partition, saved under --model_folder; returns
the partition's key values and its MAPE on the last weeks (a DataFrame row)."""

import argparse
import os
import pickle

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingRegressor


def init():
    global ARGS
    parser = argparse.ArgumentParser()
    for name in ("--drop_cols", "--target_col", "--date_col", "--lagging_orders", "--model_folder"):
        parser.add_argument(name)
    ARGS, _ = parser.parse_known_args()


def run(input_data, mini_batch_context):
    assert isinstance(input_data, pd.DataFrame)
    key = mini_batch_context.partition_key_value
    target, lags = ARGS.target_col, [int(x) for x in ARGS.lagging_orders.split(",")]
    df = input_data.sort_values(ARGS.date_col).drop(columns=ARGS.drop_cols.split(","), errors="ignore")
    df = df.drop(columns=[ARGS.date_col])
    for lag in lags:
        df[f"lag_{lag}"] = df[target].shift(lag)
    df = df.dropna()
    x, y = df.drop(columns=[target]).values, df[target].values
    cut = max(1, int(len(df) * 0.95))
    model = GradientBoostingRegressor(random_state=12).fit(x[:cut], y[:cut])
    mape = float(np.mean(np.abs((y[cut:] - model.predict(x[cut:])) / y[cut:])) * 100) if cut < len(df) else 0.0
    folder = os.path.join(ARGS.model_folder, *[str(v) for v in key.values()])
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "my_model.pkl"), "wb") as fh:
        pickle.dump(model, fh)
    return pd.DataFrame({**{k: [v] for k, v in key.items()}, "MAPE": [round(mape, 2)]})
