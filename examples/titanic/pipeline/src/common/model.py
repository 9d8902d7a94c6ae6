"""What the train and evaluate steps share: the feature columns, reading a split, the scikit-learn pipeline."""

from __future__ import annotations

from pathlib import Path

import cloudpickle
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

TARGET = "Survived"
NUMERIC = ["Age", "SibSp", "Parch", "Fare"]
CATEGORICAL = ["Sex", "Embarked", "Pclass"]
SEED = 42


def read_split(folder: str, name: str) -> tuple[pd.DataFrame, pd.Series]:
    """``<folder>/<name>.csv`` as (features, target); integer columns as floats (missing values score)."""
    df = pd.read_csv(Path(folder) / f"{name}.csv")
    X = df.drop(columns=[TARGET]).astype({"Pclass": "float64", "SibSp": "float64", "Parch": "float64",
                                          "Sex": object, "Embarked": object})
    return X, df[TARGET]


def build(C: float, max_iter: int) -> Pipeline:
    """Median/most-frequent imputation, scaling, one-hot encoding and a logistic regression."""
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                            ("onehot", OneHotEncoder(handle_unknown="ignore"))])
    prep = ColumnTransformer([("num", numeric, NUMERIC), ("cat", categorical, CATEGORICAL)])
    return Pipeline([("prep", prep), ("model", LogisticRegression(C=C, max_iter=max_iter, random_state=SEED))])


def pip_requirements() -> list[str]:
    """The model's requirements, given rather than inferred: MLflow infers them by loading the model in a
    subprocess, which costs seconds per save on a busy machine."""
    return [f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}",
            f"cloudpickle=={cloudpickle.__version__}"]
