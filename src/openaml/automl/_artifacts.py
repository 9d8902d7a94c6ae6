"""The model files of an AutoML child run, laid out as Azure AutoML writes them under ``outputs/``:

- ``model.pkl``: the fitted model (cloudpickle; openaml's featurization classes by value, so it
  loads with scikit-learn, pandas and the learner's package only);
- ``mlflow-model/``: the same model as an MLflow ``sklearn`` model, with signature (its input
  columns optional where the featurization imputes or drops them: :func:`input_schema`), input example
  and pinned pip requirements (serving it calls ``predict``; ``predict_proba`` via
  ``params={"method": "predict_proba"}`` is not an MLflow sklearn option, use the scoring file);
- ``conda_env_v_1_0_0.yml``: the environment to score it (pinned to the training versions);
- ``scoring_file_v_2_0_0.py``: ``init()`` / ``run()`` for an online deployment, accepting
  ``{"Inputs": {"data": [rows]}, "GlobalParameters": {"method": "predict"|"predict_proba"|"forecast"}}``
  and answering ``{"Results": [...]}`` (Azure's v2 scoring file contract).
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["write_model_artifacts", "requirements", "input_schema", "SCORING_FILE"]

_PACKAGES = {"lgbm": "lightgbm", "xgboost": "xgboost-cpu", "xgb_limitdepth": "xgboost-cpu", "AutoArima": "pmdarima",
             "Prophet": "prophet", "holidays": "holidays"}


@functools.cache  # a worker writes many models: the installed versions do not change under it
def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def requirements(learners: list[str]) -> list[str]:
    """Pinned pip requirements of a model with these FLAML learners."""
    dists = ["mlflow", "scikit-learn", "pandas", "numpy", "scipy", "cloudpickle",
             *sorted({_PACKAGES[x] for x in learners if x in _PACKAGES})]
    out = []
    for d in dists:
        v = _version(d) or (_version("xgboost") if d == "xgboost-cpu" else None)
        out.append(f"{d}=={v}" if v else d)
    return out


def write_model_artifacts(out: Path, model: Any, X: pd.DataFrame, settings: dict[str, Any], description: str,
                          *, full: bool = True) -> None:
    """Write the four Azure artifacts of ``model`` (trained on frame ``X``) into folder ``out``;
    ``full`` False: ``model.pkl`` only (a trial that did not beat its worker's best so far: what an
    ensemble needs, without the seconds the MLflow model takes)."""
    import cloudpickle
    import mlflow.sklearn
    from mlflow.models import ModelSignature, infer_signature

    from openaml.automl import _featurize, _trial

    learners = settings.get("ensemble_learners") or [settings.get("flaml_learner", "")]
    for mod in (_featurize, _trial, sys.modules.get("openaml.automl._ensemble"), sys.modules.get("openaml.automl._forecast")):
        if mod is not None:
            cloudpickle.register_pickle_by_value(mod)
    if not full:
        with open(out / "model.pkl", "wb") as f:
            cloudpickle.dump(model, f)
        return
    example = X.head(5)
    task = getattr(model, "task", None)
    if task == "classification" and getattr(model, "classes_", None) is not None:  # predict answers a class label
        sig_out: Any = model.classes_[np.zeros(len(example), dtype=int)]
    elif task == "regression" and hasattr(model, "pipeline"):
        sig_out = np.zeros(len(example), dtype=float)
    else:  # a forecaster, an ensemble of another shape: what it answers, as it answers it
        sig_out = model.predict(example)
    inferred = infer_signature(example, sig_out)
    signature = ModelSignature(inputs=input_schema(model, inferred.inputs), outputs=inferred.outputs)
    reqs = requirements(learners)
    mlflow.sklearn.save_model(model, str(out / "mlflow-model"), serialization_format="cloudpickle",
                              signature=signature, input_example=example, pip_requirements=reqs,
                              metadata={"automl_algorithm": settings.get("algorithm"), "automl_pipeline": description})
    # the same cloudpickle bytes (openaml's modules by value, registered above): pickled once
    shutil.copyfile(out / "mlflow-model" / "model.pkl", out / "model.pkl")
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    conda = ["name: project_environment", "channels:", "  - conda-forge", "dependencies:", f"  - python={py}",
             "  - pip", "  - pip:", *[f"    - {r}" for r in reqs]]
    (out / "conda_env_v_1_0_0.yml").write_text("\n".join(conda) + "\n", encoding="utf-8")
    text = SCORING_FILE.replace("__COLUMNS__", repr([str(c) for c in X.columns]))
    (out / "scoring_file_v_2_0_0.py").write_text(text, encoding="utf-8")


def _columns(model: Any) -> tuple[set[str] | None, set[str]]:
    """(the raw columns ``model`` reads, None if all; the columns it cannot score without)."""
    members = getattr(model, "members", None)
    if members is not None:  # an ensemble: what its members read and need
        used: set[str] | None = set()
        required: set[str] = set()
        for m in members:
            u, r = _columns(m)
            used = None if used is None or u is None else used | u
            required |= r
        return used, required
    st = getattr(model, "settings", None)
    if isinstance(st, dict) and "time" in st:  # a forecaster: the time and series id columns place each row
        return None, {str(st["time"]), *map(str, st.get("ids") or [])}
    pipeline: Any = getattr(model, "pipeline", None)
    try:
        raw = pipeline.steps[0][1].steps[0][1]  # featurize -> RawColumns(kept columns)
        return {str(c) for c in raw.columns or []}, set()
    except (AttributeError, IndexError, TypeError):
        return None, set()


def input_schema(model: Any, inferred: Any) -> Any:
    """The MLflow input schema of an AutoML model: the inferred one (column names and types) with
    every column the featurization imputes when missing made optional (``ColSpec(required=False)``)
    and every column it drops (ID-like, constant) optional of any type, so that an MLflow
    no-code deployment takes the rows the scoring file takes (a missing column is added empty and
    imputed). A forecaster's time and series id columns stay required."""
    from mlflow.types.schema import AnyType, ColSpec, Schema

    if inferred is None or not inferred.has_input_names():
        return inferred
    used, required = _columns(model)
    specs: list[Any] = []
    for spec in inferred.inputs:
        name = spec.name
        if name in required:
            specs.append(ColSpec(type=spec.type, name=name, required=True))
        elif used is not None and name not in used:
            specs.append(ColSpec(type=AnyType(), name=name, required=False))
        else:
            specs.append(ColSpec(type=spec.type, name=name, required=False))
    return Schema(specs)


SCORING_FILE = '''"""Scoring file of an openaml AutoML model (Azure AutoML's scoring_file_v_2_0_0.py contract).

Request:  {"Inputs": {"data": [{"column": value, ...}, ...]},
           "GlobalParameters": {"method": "predict" | "predict_proba" | "forecast"}}
Answer:   {"Results": [...]}  (predict: one label/value per row; predict_proba: one list of class
          probabilities per row, in the model's classes_ order; forecast: the forecast frame's rows)
The model is model.pkl (or an MLflow model folder) under AZUREML_MODEL_DIR.
"""
import json
import os
import pickle

import pandas as pd

COLUMNS = __COLUMNS__
model = None


def _find_model(root):
    for dirpath, _dirs, files in os.walk(root):
        if "model.pkl" in files:
            return os.path.join(dirpath, "model.pkl")
    raise FileNotFoundError(f"no model.pkl under {root}")


def init():
    global model
    root = os.getenv("AZUREML_MODEL_DIR", os.path.dirname(os.path.abspath(__file__)))
    with open(_find_model(root), "rb") as f:
        model = pickle.load(f)


def _tolist(values):
    out = []
    for v in list(values):
        out.append(v.item() if hasattr(v, "item") else (v.tolist() if hasattr(v, "tolist") else v))
    return out


def run(Inputs, GlobalParameters=None):
    body = Inputs
    if isinstance(body, (str, bytes)):
        body = json.loads(body)
    if isinstance(body, dict) and ("Inputs" in body or "GlobalParameters" in body):
        GlobalParameters = body.get("GlobalParameters", GlobalParameters)
        body = body.get("Inputs", {})
    rows = body.get("data", body) if isinstance(body, dict) else body
    method = (GlobalParameters or {}).get("method", "predict") if isinstance(GlobalParameters, dict) else "predict"
    frame = pd.DataFrame(rows)
    if method == "predict_proba":
        return {"Results": [_tolist(r) for r in model.predict_proba(frame)]}
    if method == "forecast":
        result = model.forecast(frame)
        return {"Results": json.loads(result.to_json(orient="records", date_format="iso"))}
    if method != "predict":
        raise ValueError(f"GlobalParameters.method {method!r}: use predict, predict_proba or forecast")
    return {"Results": _tolist(model.predict(frame))}
'''
