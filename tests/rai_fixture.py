"""A realistic ``dashboard.json`` (schema ``openaml.rai.dashboard/1``, docs/guide/rai.md) for the studio's
RAI pages: a scikit-learn logistic regression trained on the Titanic data, with its insights computed
here the way the RAI libraries compute them (exact linear SHAP values, an error-analysis decision tree
and heat map, a counterfactual search, OLS causal effects with confidence intervals, metrics by
``Sex`` with a threshold mitigation, a score card). One feature name and some of its values carry
HTML, so the pages' escaping is tested on user data.

``python tests/rai_fixture.py OUT_DIR [MODEL_NAME MODEL_VERSION]`` writes ``OUT_DIR/dashboard.json``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TITANIC = Path(__file__).resolve().parents[1] / "examples" / "titanic" / "data" / "titanic.csv"
HOSTILE = "Deck <script>alert('f')</script>"
HOSTILE_VALUE = "<img src=x onerror=alert(2)>"
FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked", HOSTILE]
CATEGORICAL = ["Sex", "Embarked", HOSTILE]


def _frame() -> pd.DataFrame:
    df = pd.read_csv(TITANIC)
    df["Age"] = df["Age"].fillna(df["Age"].median()).round(1)
    df["Embarked"] = df["Embarked"].fillna("S")
    df[HOSTILE] = np.where(df["Cabin"].notna(), HOSTILE_VALUE, "none")
    return df[[*FEATURES, "Survived"]]


def _encode(df: pd.DataFrame) -> np.ndarray:
    return np.column_stack([
        df["Pclass"], (df["Sex"] == "female").astype(float), df["Age"], df["SibSp"], df["Parch"],
        np.log1p(df["Fare"]), df["Embarked"].map({"S": 0.0, "C": 1.0, "Q": 2.0}).fillna(0.0),
        (df[HOSTILE] != "none").astype(float)]).astype(float)


def _cls_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    tp = float(((p == 1) & (y == 1)).sum())
    fp = float(((p == 1) & (y == 0)).sum())
    fn = float(((p == 0) & (y == 1)).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {"accuracy": float((y == p).mean()) if len(y) else 0.0, "precision": prec, "recall": rec,
            "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0}


def _tree(clf: Any, names: list[str], err: np.ndarray, X: np.ndarray) -> dict[str, Any]:
    t = clf.tree_
    leaf_of = clf.apply(X)
    ids = {}

    def rows_under(node: int) -> np.ndarray:
        path = clf.decision_path(X)
        return np.asarray(path[:, node].todense()).ravel().astype(bool)

    def build(node: int, condition: str | None) -> dict[str, Any]:
        mask = rows_under(node)
        n, e = int(mask.sum()), int(err[mask].sum())
        ids[node] = len(ids)
        out: dict[str, Any] = {"id": node, "n": n, "errors": e, "error_rate": e / n if n else 0.0,
                               "condition": condition, "children": []}
        left, right = int(t.children_left[node]), int(t.children_right[node])
        if left != -1:
            f, thr = names[int(t.feature[node])], float(t.threshold[node])
            out["children"] = [build(left, f"{f} <= {thr:.4g}"), build(right, f"{f} > {thr:.4g}")]
        return out

    del leaf_of
    return build(0, None)


def make_dashboard(model_name: str | None = "titanic-rai", model_version: str | None = "1", *,
                   accuracy_threshold: float = 0.7, dp_threshold: float = 0.9) -> dict[str, Any]:
    """The dashboard of a logistic regression on Titanic (train 70 %, test 30 %, seed 0). The score
    card checks ``accuracy >= accuracy_threshold`` and ``demographic_parity_difference <= dp_threshold``
    (defaults pass; ``dp_threshold=0.05`` fails)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier

    df = _frame()
    train, test = train_test_split(df, test_size=0.3, random_state=0)
    test = test.reset_index(drop=True)
    Xtr, Xte = _encode(train), _encode(test)
    model = LogisticRegression(max_iter=2000).fit(Xtr, train["Survived"])
    y = test["Survived"].to_numpy()
    proba = model.predict_proba(Xte)
    pred = (proba[:, 1] >= 0.5).astype(int)
    rows = json.loads(test[FEATURES].to_json(orient="records"))
    names = list(FEATURES)
    overall = _cls_metrics(y, pred)

    def cohort(name: str, filt: list[dict[str, Any]], mask: np.ndarray) -> dict[str, Any]:
        return {"name": name, "filter": filt, "n": int(mask.sum()), "metrics": _cls_metrics(y[mask], pred[mask])}

    cohorts = [cohort("All data", [], np.ones(len(y), bool)),
               cohort("Women", [{"column": "Sex", "op": "==", "value": "female"}], (test["Sex"] == "female").to_numpy()),
               cohort("Third class", [{"column": "Pclass", "op": "==", "value": 3}], (test["Pclass"] == 3).to_numpy()),
               cohort("Age > 50", [{"column": "Age", "op": ">", "value": 50}], (test["Age"] > 50).to_numpy())]

    # exact SHAP values of a linear model in log-odds: coef * (x - mean of the background)
    coef = model.coef_[0]
    mean = Xtr.mean(axis=0)
    local = (Xte - mean) * coef
    expected = float(model.intercept_[0] + coef @ mean)
    global_imp = {f: float(np.abs(local[:, i]).mean()) for i, f in enumerate(names)}

    err = (pred != y).astype(int)
    tree = DecisionTreeClassifier(max_depth=3, min_samples_leaf=10, random_state=0).fit(Xte, err)
    age_bins = pd.cut(test["Age"], [0, 18, 35, 50, 100], labels=["<=18", "18-35", "35-50", ">50"])
    cells = []
    for a in ["<=18", "18-35", "35-50", ">50"]:
        for s in ["female", "male"]:
            m = ((age_bins == a) & (test["Sex"] == s)).to_numpy()
            n, e = int(m.sum()), int(err[m].sum())
            cells.append({"bin": [a, s], "n": n, "errors": e, "error_rate": e / n if n else 0.0})
    ea_imp = {f: float(v) for f, v in zip(names, tree.feature_importances_, strict=True)}

    # counterfactuals: vary Age and Fare only (features_to_vary), up to 3 per row, desired = the other class
    cf_rows = []
    for i in range(8):
        target = 1 - pred[i]
        found: list[dict[str, Any]] = []
        for age in (5, 12, 25, 40, 60, 75):
            for fare in (8.0, 30.0, 80.0, 250.0, 500.0):
                cand = test.iloc[[i]].copy()
                cand["Age"], cand["Fare"] = float(age), fare
                if int(model.predict_proba(_encode(cand))[0, 1] >= 0.5) == target and len(found) < 3:
                    found.append(json.loads(cand[FEATURES].to_json(orient="records"))[0])
        cf_rows.append({"index": i, "original": rows[i], "counterfactuals": found,
                        "error": None if found else "no counterfactual found by varying Age and Fare "
                                                    "within their ranges (DiCE: 'No counterfactuals found')"})

    # OLS effects of each numeric treatment on survival, with 95 % intervals
    Xc = np.column_stack([np.ones(len(Xtr)), Xtr])
    beta, *_ = np.linalg.lstsq(Xc, train["Survived"].to_numpy(float), rcond=None)
    resid = train["Survived"].to_numpy(float) - Xc @ beta
    sigma2 = float(resid @ resid) / (len(Xc) - Xc.shape[1])
    se = np.sqrt(np.diag(sigma2 * np.linalg.pinv(Xc.T @ Xc)))
    effects = []
    for j, f in enumerate(names):
        if f in ("Age", "Fare", "SibSp", "Pclass"):
            b, s = float(beta[j + 1]), float(se[j + 1])
            z = abs(b / s) if s else 0.0
            effects.append({"feature": f, "point": b, "stderr": s, "ci_lower": b - 1.96 * s,
                            "ci_upper": b + 1.96 * s, "p_value": math.erfc(z / math.sqrt(2))})

    def by_group(p: np.ndarray) -> dict[str, dict[str, float]]:
        out = {}
        for g in ("female", "male"):
            m = (test["Sex"] == g).to_numpy()
            yy, pp = y[m], p[m]
            neg = (yy == 0).sum()
            out[g] = {"accuracy": float((yy == pp).mean()), "selection_rate": float(pp.mean()),
                      "recall": float(((pp == 1) & (yy == 1)).sum() / max(1, (yy == 1).sum())),
                      "false_positive_rate": float(((pp == 1) & (yy == 0)).sum() / max(1, neg))}
        return out

    groups = by_group(pred)
    metric_names = ["accuracy", "selection_rate", "recall", "false_positive_rate"]
    diff = {k: max(g[k] for g in groups.values()) - min(g[k] for g in groups.values()) for k in metric_names}
    ratio = {k: (min(g[k] for g in groups.values()) / max(g[k] for g in groups.values())
                 if max(g[k] for g in groups.values()) else 1.0) for k in metric_names}
    # a group threshold that brings selection rates together (ThresholdOptimizer's idea, demographic parity)
    female = (test["Sex"] == "female").to_numpy()
    mitigated = np.where(female, proba[:, 1] >= 0.75, proba[:, 1] >= 0.3).astype(int)
    after = by_group(mitigated)
    dp_before = diff["selection_rate"]
    dp_after = max(g["selection_rate"] for g in after.values()) - min(g["selection_rate"] for g in after.values())
    acc = overall["accuracy"]
    checks = [{"metric": "accuracy", "op": ">=", "threshold": accuracy_threshold, "value": acc,
               "passed": acc >= accuracy_threshold},
              {"metric": "demographic_parity_difference", "op": "<=", "threshold": dp_threshold,
               "value": dp_before, "passed": dp_before <= dp_threshold}]
    import sklearn

    return {
        "schema": "openaml.rai.dashboard/1", "title": "Titanic survival <model>", "task_type": "classification",
        "model": {"name": model_name, "version": model_version,
                  "uri": f"azureml:{model_name}:{model_version}" if model_name else None},
        "target_column": "Survived", "classes": ["0", "1"], "features": names, "categorical_features": CATEGORICAL,
        "test": {"n_rows": len(test), "rows": rows, "y_true": y.tolist(), "y_pred": pred.tolist(),
                 "y_proba": proba.round(6).tolist()},
        "metrics": {"overall": overall},
        "cohorts": cohorts,
        "explanation": {"method": "linear SHAP (exact, log-odds)", "global_importance": global_imp,
                        "local_importance": local.round(6).tolist(), "expected_value": expected},
        "error_analysis": {"metric": "error_rate", "tree": _tree(tree, names, err, Xte),
                           "heatmap": {"features": ["Age", "Sex"], "cells": cells}, "feature_importance": ea_imp},
        "counterfactual": {"desired_class": "opposite", "desired_range": None, "total_cfs": 3,
                           "feature_importance": {"Age": 0.6, "Fare": 0.4}, "rows": cf_rows},
        "causal": {"treatment_features": [e["feature"] for e in effects], "global_effects": effects, "policies": None},
        "fairness": {"sensitive_features": {"Sex": {"by_group": groups, "difference": diff, "ratio": ratio}},
                     # per sensitive feature, as fairlearn's report (the RAI fairness component writes it so)
                     "mitigation": {"method": "threshold_optimizer", "constraint": "demographic_parity",
                                    "before": {"Sex": {"by_group": groups, "difference": diff, "ratio": ratio,
                                                       "overall": {"accuracy": acc}}},
                                    "after": {"Sex": {"by_group": after, "difference": {"selection_rate": dp_after},
                                                      "ratio": {}, "overall": {
                                                          "accuracy": float((mitigated == y).mean())}}},
                                    "model_uri": None}},
        "scorecard": {"verdict": "pass" if all(c["passed"] for c in checks) else "fail", "checks": checks},
        "libraries": {"scikit-learn": sklearn.__version__, "numpy": np.__version__},
    }


def write_dashboard(folder: Path, model_name: str | None = "titanic-rai", model_version: str | None = "1",
                    **kw: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "dashboard.json"
    path.write_text(json.dumps(make_dashboard(model_name, model_version, **kw), allow_nan=False), encoding="utf-8")
    return path


MINIMAL = {"schema": "openaml.rai.dashboard/1", "title": "regression, no insights", "task_type": "regression",
           "model": {"name": None, "version": None, "uri": None}, "target_column": "y", "classes": None,
           "features": ["x"], "categorical_features": [],
           "test": {"n_rows": 4, "rows": [{"x": 1}, {"x": 2}, {"x": 3}, {"x": 4}], "y_true": [1.0, 2.0, 3.0, 4.0],
                    "y_pred": [1.5, 2.0, 2.5, 4.0], "y_proba": None},
           "metrics": {"overall": {"mae": 0.25, "rmse": 0.3536, "r2": 0.9}}, "cohorts": [], "explanation": None,
           "error_analysis": None, "counterfactual": None, "causal": None, "fairness": None, "scorecard": None,
           "libraries": {}}


def submit_dashboard_pipeline(cli: Any, d: Path, model: str) -> dict[str, Any]:
    """Register ``model`` versions 1 and 2 and run a pipeline whose ``gather`` step writes the dashboard
    of ``model:1`` to its ``dashboard`` output (and a file of another schema to ``other``), as the RAI
    gather component does. Returns ``{"name": pipeline job, "data": the dashboard}``."""
    import shutil
    import textwrap

    src = d / "src"
    write_dashboard(src / "dash", model, "1")
    (src / "minimal.json").write_text(json.dumps(MINIMAL))
    (src / "gather.py").write_text(textwrap.dedent("""\
        import shutil, sys, json, pathlib
        shutil.copy("dash/dashboard.json", pathlib.Path(sys.argv[1]) / "dashboard.json")
        (pathlib.Path(sys.argv[2]) / "dashboard.json").write_text(json.dumps({"schema": "something/9"}))
        shutil.copy("minimal.json", pathlib.Path(sys.argv[4]) / "dashboard.json")
        odd = {**json.load(open("minimal.json")), "features": "x", "explanation": {"global_importance": [1]}}
        (pathlib.Path(sys.argv[5]) / "dashboard.json").write_text(json.dumps(odd))
        print("gathered for", sys.argv[3])
        """))
    (d / "pipe.yml").write_text(textwrap.dedent(f"""\
        type: pipeline
        experiment_name: studio-rai
        jobs:
          gather:
            type: command
            code: src
            command: >-
              python gather.py ${{{{outputs.dashboard}}}} ${{{{outputs.other}}}} ${{{{inputs.model_info}}}}
              ${{{{outputs.minimal}}}} ${{{{outputs.shapeless}}}}
            inputs:
              model_info: "{model}:1"
            outputs:
              dashboard: {{type: uri_folder}}
              other: {{type: uri_folder}}
              minimal: {{type: uri_folder}}
              shapeless: {{type: uri_folder}}
        """))
    (d / "model").mkdir()
    (d / "model" / "weights.txt").write_text("w")
    for version in ("1", "2"):
        cli("model", "create", "--name", model, "--version", version, "--path", str(d / "model"), "--type",
            "custom_model", check=True)
    name = cli("job", "create", "--file", str(d / "pipe.yml"), "-o", "json", check=True).json()["name"]
    cli("job", "stream", "--name", name, timeout=600)
    job = cli("job", "show", "--name", name, "-o", "json", check=True).json()
    assert job["status"] == "Completed", job
    shutil.rmtree(d / "model")
    return {"name": name, "data": json.loads((src / "dash" / "dashboard.json").read_text())}


if __name__ == "__main__":
    args = sys.argv[1:]
    print(write_dashboard(Path(args[0]), *(args[1:3] or [])))
