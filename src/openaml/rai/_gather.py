"""rai_tabular_insight_gather and rai_tabular_score_card.

Gather reads the constructor's folder and each connected insight folder (``<kind>.json``), computes
the overall metrics and the cohorts (all data, then each level of each categorical feature, at most
10 per feature), and writes ``dashboard.json`` (schema ``openaml.rai.dashboard/1``, in the
``dashboard`` output, and again in ``ux_json``), plus each insight's files under a folder named after
it (``explanation/``, ``error_analysis/``, ``counterfactual/``, ``causal/``, ``fairness/``).

The score card reads a gathered dashboard and a config JSON in Azure's ``pdf_generation_config``
shape (``Model``, ``Metrics`` with thresholds such as ``">=0.7"``, ``Fairness`` with ``metric``,
``sensitive_features``, ``fairness_evaluation_kind`` and ``threshold``), checks every threshold, and
writes ``scorecard.pdf`` (matplotlib's PDF backend), ``scorecard.json`` and ``dashboard.json`` with
the ``scorecard`` part (verdict ``pass`` when every check passes). A metric or a Fairness section
without a threshold is reported (``reported``: metric and value) with no pass/fail, as Azure's score
card shows it. Fairness metrics are computed by group with fairlearn's ``MetricFrame``: selection
rate, accuracy, recall, false positive rate for classification; mean absolute error, mean squared
error, root mean squared error, r2 for regression.
"""

from __future__ import annotations

import json
import re
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from openaml.rai._io import Dashboard, RAIInputError, dump_json, load_dashboard

__all__ = ["INSIGHT_KINDS", "gather", "metrics_of", "scorecard"]

INSIGHT_KINDS = ("explanation", "error_analysis", "counterfactual", "causal", "fairness")
MAX_ROWS = 5000
_LIBS = ("scikit-learn", "numpy", "pandas", "scipy", "fairlearn", "mlflow", "matplotlib", "openaml")


def metrics_of(task_type: str, y_true: Any, y_pred: Any, classes: list[str] | None) -> dict[str, float]:
    """classification: accuracy, precision, recall, f1 (binary: positive = the last class; else
    macro averages over the labels in y_true and y_pred); regression: mae, rmse, r2.

    The definitions of ``sklearn.metrics`` (``zero_division=0``; r2 of a constant target: 1.0 when
    predicted exactly, else 0.0), computed with numpy: the gather step then does not import
    scikit-learn, most of its start-up (tests/test_rai.py checks them against scikit-learn)."""
    if len(y_true) == 0:
        return {}
    if task_type == "classification":
        yt = np.array([str(v) for v in y_true])
        yp = np.array([str(v) for v in y_pred])

        def prf(label: str) -> tuple[float, float, float]:
            tp = float(np.sum((yt == label) & (yp == label)))
            fp = float(np.sum((yt != label) & (yp == label)))
            fn = float(np.sum((yt == label) & (yp != label)))
            return (tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0,
                    2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)

        if classes is not None and len(classes) == 2:
            precision, recall, f1 = prf(str(classes[-1]))
        else:
            per = np.array([prf(label) for label in np.union1d(yt, yp)])
            precision, recall, f1 = (float(v) for v in per.mean(axis=0))
        return {"accuracy": float(np.mean(yt == yp)), "precision": precision, "recall": recall, "f1": f1}
    yt_f, yp_f = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    res = float(np.sum((yt_f - yp_f) ** 2))
    tot = float(np.sum((yt_f - yt_f.mean()) ** 2))
    r2 = (1 - res / tot if tot else (1.0 if res == 0 else 0.0)) if len(yt_f) > 1 else 0.0
    return {"mae": float(np.mean(np.abs(yt_f - yp_f))), "rmse": float(np.sqrt(res / len(yt_f))), "r2": r2}


def _cohorts(dash: Dashboard, y_pred: np.ndarray) -> list[dict[str, Any]]:
    test = dash.test.reset_index(drop=True)
    y = test[dash.target].to_numpy()
    task, classes = dash.config["task_type"], dash.config.get("classes")
    out = [{"name": "All data", "filter": [], "n": len(test), "metrics": metrics_of(task, y, y_pred, classes)}]
    for col in dash.categorical:
        for level in test[col].astype(str).value_counts().index[:10]:
            sel = (test[col].astype(str) == level).to_numpy()
            out.append({"name": f"{col} = {level}", "filter": [{"column": col, "op": "==", "value": level}],
                        "n": int(sel.sum()), "metrics": metrics_of(task, y[sel], y_pred[sel], classes)})
    return out


def _libraries(parts: dict[str, Any] | None = None) -> dict[str, str]:
    """What ran: each insight's own ``libraries`` (the versions its step used) over this process's."""
    out: dict[str, str] = {}
    for name in _LIBS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    for data in (parts or {}).values():
        if isinstance(data, dict) and isinstance(data.get("libraries"), dict):
            out.update({str(k): str(v) for k, v in data["libraries"].items()})
    return out


def _read_insight(folder: Path) -> tuple[str, dict[str, Any], Path]:
    files = sorted(folder.glob("*.json"))
    for f in files:
        doc = json.loads(f.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and doc.get("schema") == "openaml.rai.insight/1":
            return str(doc["kind"]), doc["data"], f
    raise RAIInputError(f"input insight folder {folder} holds no RAI insight (<kind>.json written by an "
                        "rai_tabular_* insight component); connect an insight component's output")


def gather(constructor: str, insights: list[str], dashboard: str, ux_json: str | None = None) -> dict[str, Any]:
    """Write the gathered dashboard; returns dashboard.json's content.

    Raises:
        RAIInputError: a folder that is not an insight, or two insights of the same kind.
    """
    dash = load_dashboard(constructor)
    out = Path(dashboard)
    out.mkdir(parents=True, exist_ok=True)
    parts: dict[str, Any] = {k: None for k in INSIGHT_KINDS}
    for folder in insights:
        kind, data, _ = _read_insight(Path(folder))
        if parts.get(kind) is not None:
            raise RAIInputError(f"two {kind} insights were connected to gather; connect one")
        parts[kind] = data
        shutil.copytree(folder, out / kind, dirs_exist_ok=True)
    test = dash.test.reset_index(drop=True)
    y_pred = np.asarray(dash.predictions["y_pred"])
    proba = dash.predictions.get("y_proba")
    n = min(len(test), MAX_ROWS)
    if parts["explanation"] is not None:
        parts["explanation"]["local_importance"] = parts["explanation"]["local_importance"][:n]
    cfg = dash.config
    doc = {"schema": "openaml.rai.dashboard/1", "title": cfg["title"], "task_type": cfg["task_type"],
           "model": cfg["model"], "target_column": cfg["target_column"], "classes": cfg.get("classes"),
           "features": cfg["features"], "categorical_features": cfg["categorical_features"],
           "test": {"n_rows": len(test), "rows": test[cfg["features"]].head(n).to_dict(orient="records"),
                    "y_true": test[cfg["target_column"]].head(n).tolist(), "y_pred": y_pred[:n].tolist(),
                    "y_proba": proba[:n] if proba is not None else None},
           "metrics": {"overall": metrics_of(cfg["task_type"], test[cfg["target_column"]].to_numpy(), y_pred,
                                             cfg.get("classes"))},
           "cohorts": _cohorts(dash, y_pred), **parts, "scorecard": None, "libraries": _libraries(parts),
           "deviations": [d for p in parts.values() if isinstance(p, dict) for d in p.get("deviations") or []]}
    dump_json(out / "dashboard.json", doc)
    shutil.copy2(Path(constructor) / "rai_insights.json", out / "rai_insights.json")
    if ux_json:
        dump_json(Path(ux_json) / "dashboard.json", doc)
    return json.loads((out / "dashboard.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------- score card
_AZURE_METRIC = {"accuracy_score": "accuracy", "precision_score": "precision", "recall_score": "recall",
                 "f1_score": "f1", "mean_absolute_error": "mae", "mean_squared_error": "mse",
                 "root_mean_squared_error": "rmse", "r2_score": "r2", "selection_rate": "selection_rate",
                 "false_positive_rate": "false_positive_rate"}
#: the per-group metrics of a regression dashboard's Fairness section (Azure's regression score card)
_REGRESSION_FAIRNESS = ("mae", "mse", "rmse", "r2")
_THRESHOLD = re.compile(r"^\s*(>=|<=|>|<|==)?\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")


def _parse_threshold(text: Any, where: str) -> tuple[str, float]:
    m = _THRESHOLD.match(str(text))
    if not m:
        raise RAIInputError(f"pdf_generation_config: {where}: threshold {text!r} is not like '>=0.7' or '<=0.1'")
    return m[1] or ">=", float(m[2])


def _passes(value: float, op: str, threshold: float) -> bool:
    return {">=": value >= threshold, "<=": value <= threshold, ">": value > threshold, "<": value < threshold,
            "==": value == threshold}[op]


def _regression_fairness(y_true: Any, y_pred: Any, sensitive: pd.DataFrame) -> dict[str, Any]:
    """{column: {"difference": {metric: v}, "ratio": {metric: v}, "by_group": ...}} of mae, mse, rmse
    and r2 by group (fairlearn ``MetricFrame`` with scikit-learn's regression metrics)."""
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    from openaml.rai.fairness import check_sensitive_features

    check_sensitive_features(sensitive, list(sensitive.columns), what="test rows of the dashboard")
    yt, yp = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    fns = {"mae": mean_absolute_error, "mse": mean_squared_error,
           "rmse": lambda a, b: float(np.sqrt(mean_squared_error(a, b))), "r2": r2_score}
    out: dict[str, Any] = {}
    for col in sensitive.columns:
        mf = MetricFrame(metrics=fns, y_true=yt, y_pred=yp, sensitive_features=sensitive[col].astype(str).to_numpy())
        out[str(col)] = {"by_group": {str(g): {m: float(v) for m, v in row.items()} for g, row in mf.by_group.iterrows()},
                         "difference": {m: float(v) for m, v in mf.difference().items()},
                         "ratio": {m: float(v) for m, v in mf.ratio().items()}}
    return out


def _checks(doc: dict[str, Any], config: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(checks, reported): a metric with a ``threshold`` is a check; one without (Azure's ``{}``, or a
    ``Fairness`` section with no ``threshold``) is reported with its value and no pass/fail.

    Raises:
        RAIInputError: a metric this dashboard's task has not, a bad threshold, an unknown column.
    """
    from openaml.rai.fairness import METRICS, assess_fairness

    checks: list[dict[str, Any]] = []
    reported: list[dict[str, Any]] = []
    overall = dict(doc["metrics"]["overall"])
    if "rmse" in overall:
        overall["mse"] = overall["rmse"] ** 2
    for name, spec in (config.get("Metrics") or {}).items():
        metric = _AZURE_METRIC.get(name, name)
        if metric not in overall and not (isinstance(spec, dict) and "threshold" in spec):
            continue  # a metric asked for display only that this dashboard has not (e.g. median_absolute_error)
        if metric not in overall:
            raise RAIInputError(f"pdf_generation_config: Metrics.{name}: not a metric of this {doc['task_type']} "
                                f"dashboard; metrics: {', '.join(overall)}")
        if not isinstance(spec, dict) or "threshold" not in spec:
            reported.append({"metric": metric, "value": overall[metric]})
            continue
        op, thr = _parse_threshold(spec["threshold"], f"Metrics.{name}")
        checks.append({"metric": metric, "op": op, "threshold": thr, "value": overall[metric],
                       "passed": _passes(overall[metric], op, thr)})
    fair = config.get("Fairness")
    if fair:
        kind = fair.get("fairness_evaluation_kind", "difference")
        if kind not in ("difference", "ratio"):
            raise RAIInputError(f"pdf_generation_config: Fairness.fairness_evaluation_kind: {kind!r}; use difference "
                                "or ratio")
        check = _parse_threshold(fair["threshold"], "Fairness") if fair.get("threshold") is not None else None
        rows = pd.DataFrame(doc["test"]["rows"])
        cols = list(fair.get("sensitive_features") or [])
        bad = [c for c in cols if c not in rows.columns]
        if bad:
            raise RAIInputError(f"pdf_generation_config: Fairness.sensitive_features: {bad} are not features")
        regression = doc["task_type"] == "regression"
        allowed = _REGRESSION_FAIRNESS if regression else METRICS
        names = fair.get("metric") or ["mean_absolute_error" if regression else "selection_rate"]
        names = [names] if isinstance(names, str) else names
        unknown = [n for n in names if _AZURE_METRIC.get(n, n) not in allowed]
        if unknown:
            azure = [k for k, v in _AZURE_METRIC.items() if v in allowed]
            raise RAIInputError(f"pdf_generation_config: Fairness.metric: {unknown} are not fairness metrics of a "
                                f"{doc['task_type']} dashboard; metrics: {', '.join(azure)}")
        if regression:
            report = _regression_fairness(doc["test"]["y_true"], doc["test"]["y_pred"], rows[cols])
        else:
            classes = doc.get("classes") or ["0", "1"]
            report = assess_fairness(doc["test"]["y_true"], doc["test"]["y_pred"], rows[cols], pos_label=classes[-1])
        for col in cols:
            for name in names:
                metric = _AZURE_METRIC.get(name, name)
                value = report[col][kind][metric]
                entry = {"metric": f"{metric}_{kind}({col})", "value": value}
                if check is None:
                    reported.append(entry)
                else:
                    checks.append({**entry, "op": check[0], "threshold": check[1],
                                   "passed": _passes(value, *check)})
    return checks, reported


def scorecard(dashboard: str, config_path: str, output: str) -> dict[str, Any]:
    """Check the thresholds, write the PDF; returns the ``scorecard`` part.

    Raises:
        RAIInputError: no dashboard.json, a bad config (names the field).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    src = Path(dashboard) / "dashboard.json"
    if not src.is_file():
        raise RAIInputError(f"input 'dashboard': no dashboard.json in {dashboard}; connect "
                            "rai_tabular_insight_gather's dashboard output")
    cfg_file = Path(config_path)
    cfg_file = next(iter(sorted(cfg_file.glob("*.json"))), cfg_file) if cfg_file.is_dir() else cfg_file
    try:
        config = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RAIInputError(f"input 'pdf_generation_config': {config_path} is not a readable JSON file ({exc})") \
            from None
    doc = json.loads(src.read_text(encoding="utf-8"))
    checks, reported = _checks(doc, config)
    card: dict[str, Any] = {"verdict": "pass" if all(c["passed"] for c in checks) else "fail", "checks": checks,
                            "reported": reported}
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    model = config.get("Model") or {}
    with PdfPages(out / "scorecard.pdf") as pdf:
        fig = plt.figure(figsize=(8.27, 11.69))
        lines = [f"Responsible AI score card: {model.get('ModelName') or doc['title']}",
                 f"Task: {doc['task_type']}   Model: {doc['model'].get('uri') or '-'}",
                 str(model.get("ModelSummary") or ""), "", f"Verdict: {card['verdict'].upper()}", ""]
        lines += [f"{'PASS' if c['passed'] else 'FAIL'}  {c['metric']} = {c['value']:.4f}  (target {c['op']} "
                  f"{c['threshold']})" for c in checks]
        lines += [f"INFO  {r['metric']} = {r['value']:.4f}  (no threshold)" for r in reported]
        lines += ["", "Overall metrics:"] + [f"  {k}: {v:.4f}" for k, v in doc["metrics"]["overall"].items()]
        fig.text(0.08, 0.95, "\n".join(lines), va="top", family="monospace", fontsize=10)
        pdf.savefig(fig)
        plt.close(fig)
        expl = doc.get("explanation")
        if expl:
            top = sorted(expl["global_importance"].items(), key=lambda kv: kv[1])[-int((config.get(
                "FeatureImportance") or {}).get("top_n", 10)):]
            fig, ax = plt.subplots(figsize=(8.27, 6))
            ax.barh([k for k, _ in top], [v for _, v in top])
            ax.set_title("Global feature importance")
            fig.tight_layout()
            pdf.savefig(fig)
            plt.close(fig)
    doc["scorecard"] = card
    dump_json(out / "scorecard.json", card)
    dump_json(out / "dashboard.json", doc)
    return card
