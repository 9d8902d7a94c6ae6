"""Split the Titanic passengers as the training job does (80/20, stratified, seed 42) into the train
and test MLTables the RAI pipeline reads: the model's seven features and ``Survived``.

    python prepare_data.py        # writes data/train and data/test (already in the repository)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
MLTABLE = ("$schema: https://azuremlschemas.azureedge.net/latest/MLTable.schema.json\ntype: mltable\n"
           "paths:\n  - file: ./{name}.parquet\ntransformations:\n  - read_parquet\n")


def main() -> None:
    df = pd.read_csv(HERE.parent / "data" / "titanic.csv")
    # the types of the model's signature (src/train.py): numbers as float64, text as object
    X = df[FEATURES].astype({"Pclass": "float64", "SibSp": "float64", "Parch": "float64", "Age": "float64",
                             "Fare": "float64", "Sex": object, "Embarked": object})
    # the fairness assessment needs every row in a group: an unknown port is its own group
    X["Embarked"] = X["Embarked"].fillna("unknown")
    y = df["Survived"].astype(int)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=42)
    for name, part in (("train", X_train.assign(Survived=y_train)), ("test", X_test.assign(Survived=y_test))):
        folder = HERE / "data" / name
        folder.mkdir(parents=True, exist_ok=True)
        part.reset_index(drop=True).to_parquet(folder / f"{name}.parquet")
        (folder / "MLTable").write_text(MLTABLE.format(name=name), encoding="utf-8")


if __name__ == "__main__":
    main()
