"""Data preparation step of the Titanic pipelines (the book's chapter 3 data-prep component).

Reads the passengers MLTable, keeps the columns the model uses, makes ``Survived`` 0/1 and writes a
stratified train/test split as CSV files. Missing values are left in place: imputation is part of
the trained model, so the registered model scores raw rows.

Usage (what components/prep.yml runs)::

    python prep.py --raw_data <MLTable folder> --test_size 0.2 --train_data <out dir> --test_data <out dir>
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mltable
from sklearn.model_selection import train_test_split

TARGET = "Survived"
KEPT = ["Survived", "Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
SEED = 42


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw_data", required=True, help="folder holding the MLTable file")
    parser.add_argument("--test_size", type=float, default=0.2, help="share of rows held out, in (0, 1)")
    parser.add_argument("--train_data", required=True, help="output folder: train.csv")
    parser.add_argument("--test_data", required=True, help="output folder: test.csv")
    args = parser.parse_args()

    df = mltable.load(args.raw_data).to_pandas_dataframe()
    print(f"loaded {len(df)} rows x {df.shape[1]} columns from {args.raw_data}")
    df = df[KEPT].copy()
    df[TARGET] = df[TARGET].astype(int)  # mltable infers a boolean column
    train, test = train_test_split(df, test_size=args.test_size, stratify=df[TARGET], random_state=SEED)
    train.to_csv(Path(args.train_data) / "train.csv", index=False)
    test.to_csv(Path(args.test_data) / "test.csv", index=False)
    print(f"train: {len(train)} rows, test: {len(test)} rows, survival rate {df[TARGET].mean():.3f}")


if __name__ == "__main__":
    main()
