"""Parallel entry script: init() loads the model once per worker; run() scores a DataFrame of
passengers (a mini-batch of about mini_batch_size bytes of the MLTable) and returns one row each."""

import argparse
import os
import pickle

import pandas as pd

FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]


def init():
    global MODEL
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    args, _ = parser.parse_known_args()  # program_arguments; the engine's other flags are ignored
    with open(os.path.join(args.model, "model.pkl"), "rb") as fh:
        MODEL = pickle.load(fh)


def run(mini_batch: pd.DataFrame) -> pd.DataFrame:
    survived = MODEL.predict(mini_batch[FEATURES])
    return pd.DataFrame({"PassengerId": mini_batch["PassengerId"], "Survived": survived})
