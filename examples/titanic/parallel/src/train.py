"""Train the Titanic survival model on the MLTable folder's CSV and save it as model.pkl."""

import argparse
import os
import pickle

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, help="the MLTable folder (its titanic.csv)")
parser.add_argument("--model", required=True, help="the output folder")
args = parser.parse_args()

df = pd.read_csv(os.path.join(args.data, "titanic.csv"))
num = ["Pclass", "Age", "SibSp", "Parch", "Fare"]
prep = ColumnTransformer([
    ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
    ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
     ["Sex", "Embarked"]),
])
model = Pipeline([("prep", prep), ("lr", LogisticRegression(max_iter=500))]).fit(df[FEATURES], df["Survived"])
with open(os.path.join(args.model, "model.pkl"), "wb") as fh:
    pickle.dump(model, fh)
print(f"trained on {len(df)} passengers; training accuracy {model.score(df[FEATURES], df['Survived']):.3f}")
