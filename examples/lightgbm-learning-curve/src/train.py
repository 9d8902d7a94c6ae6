"""Train a LightGBM classifier on bank marketing, logging validation AUC along the boosting rounds.

The learning curve is what lets a sweep's early-termination policy act: every ``--every`` rounds
the validation AUC is logged as metric ``AUC`` with ``step`` = the round number, so the sweep
controller sees one report (one *interval*) per ``--every`` rounds and can cancel a trial whose
curve is behind. The last value logged (round ``--rounds``) is the trial's result.

Inside a job the platform sets MLFLOW_TRACKING_URI and MLFLOW_RUN_ID, so the metrics land on the
trial's own run.

Usage (what sweep-job.yml runs)::

    python train.py --data <folder with train.csv and valid.csv> --learning_rate 0.05 --num_leaves 31 \\
        --min_child_samples 20 --feature_fraction 0.8 --bagging_fraction 0.8 --lambda_l2 1.0 --rounds 300 --every 10
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import lightgbm as lgb
import mlflow
import pandas as pd

TARGET = "y"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder holding train.csv and valid.csv (target column y: yes/no)")
    p.add_argument("--learning_rate", type=float, default=0.05)
    p.add_argument("--num_leaves", type=int, default=31)
    p.add_argument("--min_child_samples", type=int, default=20)
    p.add_argument("--feature_fraction", type=float, default=1.0)
    p.add_argument("--bagging_fraction", type=float, default=1.0)
    p.add_argument("--lambda_l2", type=float, default=0.0)
    p.add_argument("--rounds", type=int, default=300, help="boosting rounds")
    p.add_argument("--every", type=int, default=10, help="log validation AUC every this many rounds")
    p.add_argument("--threads", type=int, default=1, help="LightGBM threads (1: trials run side by side)")
    return p.parse_args()


def load(folder: Path) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    train = pd.read_csv(folder / "train.csv")
    valid = pd.read_csv(folder / "valid.csv")
    for c in train.columns:
        if c != TARGET and not pd.api.types.is_numeric_dtype(train[c]):
            kinds = pd.CategoricalDtype(sorted(set(train[c]) | set(valid[c])))
            train[c] = train[c].astype(kinds)
            valid[c] = valid[c].astype(kinds)
    return (train.drop(columns=TARGET), (train[TARGET] == "yes").astype(int),
            valid.drop(columns=TARGET), (valid[TARGET] == "yes").astype(int))


def main() -> None:
    args = parse_args()
    xt, yt, xv, yv = load(Path(args.data))
    params = {"objective": "binary", "metric": "auc", "verbose": -1, "seed": 0, "num_threads": args.threads,
              "bagging_freq": 1, "learning_rate": args.learning_rate, "num_leaves": args.num_leaves,
              "min_child_samples": args.min_child_samples, "feature_fraction": args.feature_fraction,
              "bagging_fraction": args.bagging_fraction, "lambda_l2": args.lambda_l2}
    # inside a job the run exists already (MLFLOW_RUN_ID); run alone, this starts a local one
    with mlflow.start_run(run_id=os.environ.get("MLFLOW_RUN_ID")):
        def log_curve(env: lgb.callback.CallbackEnv) -> None:
            rnd = env.iteration + 1
            if rnd % args.every == 0 or rnd == args.rounds:
                mlflow.log_metric("AUC", float(env.evaluation_result_list[0][2]), step=rnd)

        dtrain = lgb.Dataset(xt, yt)
        dvalid = lgb.Dataset(xv, yv, reference=dtrain)
        booster = lgb.train(params, dtrain, num_boost_round=args.rounds, valid_sets=[dvalid],
                            valid_names=["valid"], callbacks=[log_curve])
        os.makedirs("outputs", exist_ok=True)
        booster.save_model("outputs/model.txt")
        print(f"trained {args.rounds} rounds; final validation AUC logged")


if __name__ == "__main__":
    main()
