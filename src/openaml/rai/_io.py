"""What every RAI step shares: reading tables and models, the constructor's folder, JSON without NaN,
and failing a job with a message that names the input ($OPENAML_ERROR_FILE).

The constructor's output folder (the ``rai_insights_dashboard`` every insight reads) holds:

- ``rai_insights.json``: title, task_type, target_column, features, categorical_features, classes,
  model (name, version, uri), row counts;
- ``train.parquet``, ``test.parquet``: the data (test cut to ``maximum_rows_for_test_dataset``);
- ``predictions.json``: ``y_pred`` and ``y_proba`` (classification) of the test rows;
- ``model/``: a copy of the MLflow model folder, so every step loads the very same model.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["RAIInputError", "Dashboard", "LoadedModel", "dump_json", "fail", "json_safe", "load_dashboard",
           "load_model", "read_table", "write_insight"]

CONFIG_FILE = "rai_insights.json"


class RAIInputError(Exception):
    """A bad input of an RAI component; the message names the input or column and the fix."""


def fail(message: str) -> None:
    """End the step: the message becomes the job's error (``$OPENAML_ERROR_FILE``) and stderr."""
    path = os.environ.get("OPENAML_ERROR_FILE")
    if path:
        Path(path).write_text(message, encoding="utf-8")
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def json_safe(value: Any) -> Any:
    """numpy/pandas scalars to Python, NaN and infinities to None (dashboard.json has no NaN)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def dump_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(data), allow_nan=False, indent=1), encoding="utf-8")


def read_table(path: str | Path, what: str) -> pd.DataFrame:
    """A folder with an ``MLTable`` file (read_parquet / read_delimited), a parquet or CSV file, or a
    folder of them.

    Raises:
        RAIInputError: nothing readable at ``path`` (names ``what``, the input).
    """
    p = Path(path)
    if p.is_dir() and (p / "MLTable").is_file():
        simple = _read_simple_mltable(p)
        if simple is not None:
            return simple
        import mltable

        return mltable.load(str(p)).to_pandas_dataframe()
    files = sorted(p.rglob("*")) if p.is_dir() else [p]
    parquet = [f for f in files if f.suffix == ".parquet"]
    csv = [f for f in files if f.suffix == ".csv"]
    if parquet:
        return pd.concat([pd.read_parquet(f) for f in parquet], ignore_index=True)
    if csv:
        return pd.concat([pd.read_csv(f) for f in csv], ignore_index=True)
    raise RAIInputError(f"input {what!r}: no MLTable file, parquet or CSV file at {p}; give an mltable folder "
                        "(an MLTable file with read_parquet or read_delimited)")


def _read_simple_mltable(folder: Path) -> pd.DataFrame | None:
    """An MLTable of local ``file``/``folder`` paths with one plain ``read_parquet``, read with pandas as
    ``mltable`` reads it (same frame, same dtypes), without importing mltable (seconds of the
    constructor's start). None otherwise (e.g. ``read_delimited``, whose type inference is mltable's
    own): then mltable reads it."""
    import yaml

    try:
        spec = yaml.safe_load((folder / "MLTable").read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return None
    paths, steps = spec.get("paths") or [], spec.get("transformations") or []
    if not paths or len(steps) != 1 or set(spec) - {"$schema", "type", "paths", "transformations"}:
        return None
    step = steps[0]
    kind, opts = (step, {}) if isinstance(step, str) else (next(iter(step)), next(iter(step.values())) or {}) \
        if isinstance(step, dict) and len(step) == 1 else (None, None)
    if kind != "read_parquet" or opts:
        return None
    files: list[Path] = []
    for entry in paths:
        if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in ("file", "folder"):
            return None
        key, rel = next(iter(entry.items()))
        if "://" in str(rel) or str(rel).startswith("azureml:"):
            return None
        target = (folder / str(rel)).resolve()
        if key == "file" and target.is_file():
            files.append(target)
        elif key == "folder" and target.is_dir():
            files.extend(sorted(f for f in target.rglob("*") if f.is_file() and not f.name.startswith(".")))
        else:
            return None
    if not files:
        return None
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


@dataclass
class LoadedModel:
    """An MLflow model: ``predict`` (labels or values) and, for classifiers, ``predict_proba``."""

    pyfunc: Any
    native: Any | None  # the sklearn estimator when the model has the sklearn flavor
    input_names: list[str] | None

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        model = self.native if self.native is not None else self.pyfunc
        out = model.predict(X)
        return np.asarray(out.iloc[:, 0] if isinstance(out, pd.DataFrame) else out).ravel()

    @property
    def classes(self) -> list[Any] | None:
        c = getattr(self.native, "classes_", None)
        return None if c is None else list(c)

    @property
    def can_proba(self) -> bool:
        return self.native is not None and hasattr(self.native, "predict_proba")

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray | None:
        if not self.can_proba or self.native is None:
            return None
        return np.asarray(self.native.predict_proba(X), dtype=float)


def load_model(path: str | Path) -> LoadedModel:
    """An MLflow model folder (the one holding ``MLmodel``, found below ``path`` if nested).

    Raises:
        RAIInputError: no MLmodel file under ``path``.
    """
    p = Path(path)
    mlmodel = p / "MLmodel" if (p / "MLmodel").is_file() else next(iter(sorted(p.rglob("MLmodel"))), None)
    if mlmodel is None or not mlmodel.is_file():
        raise RAIInputError(f"input 'model_input': no MLflow model (MLmodel file) at {p}; register the model as "
                            "type mlflow_model")
    folder = mlmodel.parent
    fast = _load_sklearn_directly(mlmodel)
    if fast is not None:
        return fast
    from mlflow.models import Model

    meta = Model.load(str(mlmodel))
    pyfunc = native = None
    if "sklearn" in meta.flavors:  # the estimator itself: predict_proba, and no second load through pyfunc
        import mlflow.sklearn

        native = mlflow.sklearn.load_model(str(folder))
    else:
        import mlflow.pyfunc

        pyfunc = mlflow.pyfunc.load_model(str(folder))
    schema = meta.get_input_schema()
    names = None
    if schema is not None and schema.has_input_names():
        names = list(schema.input_names())
    return LoadedModel(pyfunc=pyfunc, native=native, input_names=names)


def _load_sklearn_directly(mlmodel: Path) -> LoadedModel | None:
    """An sklearn-flavor model read as ``mlflow.sklearn.load_model`` reads it (its ``pickled_model`` with
    ``serialization_format`` pickle, cloudpickle or skops with the MLmodel's ``skops_trusted_types``),
    without importing mlflow (seconds of every RAI step's start). None when mlflow must do it: another
    flavor, a ``code`` path, an unknown format, or MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false (mlflow
    then refuses with its own message)."""
    import yaml

    meta = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    flavor = (meta.get("flavors") or {}).get("sklearn")
    allowed = os.environ.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true").strip().lower() in ("true", "1")
    if not isinstance(flavor, dict) or flavor.get("code") or not allowed or not flavor.get("pickled_model"):
        return None
    path = mlmodel.parent / str(flavor["pickled_model"])
    fmt = flavor.get("serialization_format")
    if fmt == "skops":
        import skops.io

        native = skops.io.load(str(path), trusted=flavor.get("skops_trusted_types"))
    elif fmt in ("pickle", "cloudpickle"):
        import cloudpickle

        with open(path, "rb") as f:
            native = cloudpickle.load(f)
    else:
        return None
    names = None
    inputs = (meta.get("signature") or {}).get("inputs")
    if inputs:
        cols = json.loads(inputs) if isinstance(inputs, str) else inputs
        if isinstance(cols, list) and cols and all(isinstance(c, dict) and c.get("name") for c in cols):
            names = [str(c["name"]) for c in cols]
    return LoadedModel(pyfunc=None, native=native, input_names=names)


@dataclass
class Dashboard:
    """The constructor's folder, loaded: config, data, predictions and the model."""

    folder: Path
    config: dict[str, Any]
    train: pd.DataFrame
    test: pd.DataFrame
    predictions: dict[str, Any]
    _model: LoadedModel | None = field(default=None, repr=False)

    @property
    def features(self) -> list[str]:
        return list(self.config["features"])

    @property
    def categorical(self) -> list[str]:
        return list(self.config["categorical_features"])

    @property
    def target(self) -> str:
        return str(self.config["target_column"])

    @property
    def is_classification(self) -> bool:
        return bool(self.config["task_type"] == "classification")

    @property
    def model(self) -> LoadedModel:
        if self._model is None:
            self._model = load_model(self.folder / "model")
        return self._model

    def X(self, which: str = "test") -> pd.DataFrame:
        return (self.test if which == "test" else self.train)[self.features]

    def y(self, which: str = "test") -> pd.Series:
        return (self.test if which == "test" else self.train)[self.target]


def load_dashboard(path: str | Path) -> Dashboard:
    """Raises RAIInputError when ``path`` is not a constructor's output."""
    p = Path(path)
    if not (p / CONFIG_FILE).is_file():
        raise RAIInputError(f"input 'rai_insights_dashboard': {p} is not the output of "
                            "rai_tabular_insight_constructor (no rai_insights.json); connect the constructor's "
                            "rai_insights_dashboard output")
    config = json.loads((p / CONFIG_FILE).read_text(encoding="utf-8"))
    predictions = json.loads((p / "predictions.json").read_text(encoding="utf-8"))
    return Dashboard(folder=p, config=config, train=pd.read_parquet(p / "train.parquet"),
                     test=pd.read_parquet(p / "test.parquet"), predictions=predictions)


def write_insight(output: str | Path, kind: str, data: dict[str, Any], *, filename: str) -> Path:
    """An insight's folder: ``<filename>.json`` = {"kind": kind, "data": data}; gather reads it."""
    out = Path(output)
    path = out / f"{filename}.json"
    dump_json(path, {"schema": "openaml.rai.insight/1", "kind": kind, "data": data})
    return path
