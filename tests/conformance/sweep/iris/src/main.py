"""Train an SVM on iris and log ``training_f1_score`` (what MLflow's sklearn autolog names it)."""

import argparse

import mlflow
import pandas as pd
from sklearn.metrics import f1_score
from sklearn.svm import SVC

parser = argparse.ArgumentParser()
parser.add_argument("--iris-csv", required=True)
parser.add_argument("--C", type=float, default=1.0)
parser.add_argument("--kernel", default="rbf")
parser.add_argument("--coef0", type=float, default=0.0)
args = parser.parse_args()

# the sample's iris.csv has no header: sepal length first, then the other measurements (and noise
# columns); the task here is "long sepal or not"
df = pd.read_csv(args.iris_csv, header=None)
X, y = df.iloc[:, 1:], (df.iloc[:, 0] > df.iloc[:, 0].median()).astype(int)
model = SVC(C=args.C, kernel=args.kernel, coef0=args.coef0).fit(X, y)
score = f1_score(y, model.predict(X), average="weighted")
print(f"C={args.C} kernel={args.kernel} coef0={args.coef0} training_f1_score={score:.4f}")
mlflow.log_metric("training_f1_score", score)
