"""rai_tabular_insight_constructor: check the model and data, then start the dashboard folder.

Every check runs before any prediction (the "heavy work"), and each failure names the input or
column and the fix (issue 16, "Bad input"): the target column missing from the train or test data,
string features not declared categorical, categorical columns that do not exist, a model whose
signature does not name the data's features, a classification task given a regression model (and
the reverse), classes that do not cover the target's values.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from openaml.rai._io import CONFIG_FILE, LoadedModel, RAIInputError, dump_json, load_model, read_table

__all__ = ["check_inputs", "construct", "parse_json_list"]


def parse_json_list(value: str | None, what: str) -> list[Any]:
    """``'["a", "b"]'`` -> list; ``''``/``'null'``/None -> []. Raises RAIInputError naming ``what``."""
    if value is None or str(value).strip() in ("", "null", "None"):
        return []
    try:
        out = json.loads(value)
    except json.JSONDecodeError as exc:
        raise RAIInputError(f"input {what!r}: {value!r} is not a JSON list ({exc.msg}); write e.g. "
                            '\'["Sex", "Embarked"]\'') from None
    if isinstance(out, str):
        return [out]
    if not isinstance(out, list):
        raise RAIInputError(f"input {what!r}: {value!r} is not a JSON list; write e.g. '[\"Sex\"]'")
    return out


def _model_kind(model: LoadedModel) -> str | None:
    """'classifier', 'regressor' or None (unknown: not an sklearn model)."""
    if model.native is None:
        return None
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(model.native):
        return "classifier"
    if is_regressor(model.native):
        return "regressor"
    return "classifier" if hasattr(model.native, "predict_proba") else None


def check_inputs(task_type: str, target: str, train: pd.DataFrame, test: pd.DataFrame, categorical: list[str],
                 classes: list[Any], model: LoadedModel | None) -> list[str]:
    """The feature columns. Raises RAIInputError (the first problem, naming it) before any prediction."""
    if task_type not in ("classification", "regression"):
        raise RAIInputError(f"input 'task_type': {task_type!r} is not supported; use classification or regression")
    for what, df in (("train_dataset", train), ("test_dataset", test)):
        if target not in df.columns:
            raise RAIInputError(f"input 'target_column_name': column {target!r} is missing from the "
                                f"{what.split('_')[0]} data (input {what!r}); its columns: {', '.join(map(str, df.columns))}")
    features = [c for c in train.columns if c != target]
    missing = [c for c in features if c not in test.columns]
    if missing:
        raise RAIInputError(f"input 'test_dataset': columns {missing} of the train data are missing from the test data")
    unknown = [c for c in categorical if c not in features]
    if unknown:
        raise RAIInputError(f"input 'categorical_column_names': {unknown} are not feature columns; features: "
                            f"{', '.join(features)}")
    strings = [c for c in features if c not in categorical and not pd.api.types.is_numeric_dtype(train[c])
               and not pd.api.types.is_bool_dtype(train[c])]
    if strings:
        raise RAIInputError(f"string features {strings} are not declared categorical; add them to input "
                            f"'categorical_column_names' (e.g. '{json.dumps(categorical + strings)}')")
    if model is not None and model.input_names is not None:
        absent = [c for c in model.input_names if c not in features]
        extra = [c for c in features if c not in model.input_names]
        if absent or extra:
            parts = []
            if absent:
                parts.append(f"the model's signature needs columns {absent} that the data lacks")
            if extra:
                parts.append(f"the data has columns {extra} that the model's signature does not name")
            raise RAIInputError(f"input 'model_input': the model does not match the data: {'; '.join(parts)} "
                                f"(target_column_name is {target!r}); use the data the model was trained on")
    kind = _model_kind(model) if model is not None else None
    if task_type == "classification" and kind == "regressor":
        raise RAIInputError(f"input 'task_type': 'classification' but the model is a regressor "
                            f"({type(model.native).__name__}); use task_type regression or a classification model")  # type: ignore[union-attr]
    if task_type == "regression" and kind == "classifier":
        raise RAIInputError(f"input 'task_type': 'regression' but the model is a classifier "
                            f"({type(model.native).__name__}); use task_type classification or a regression model")  # type: ignore[union-attr]
    if task_type == "classification" and classes:
        seen = set(map(str, pd.concat([train[target], test[target]]).dropna().unique()))
        outside = sorted(seen - set(map(str, classes)))
        if outside:
            raise RAIInputError(f"input 'classes': target values {outside} of column {target!r} are not among "
                                f"the classes {classes}")
    return features


def _resolve_model_folder(model_input: str | None, model_info_path: str | None, model_info: str | None,
                          work: Path) -> tuple[Path, str | None, str | None]:
    """(local MLflow model folder, name, version)."""
    name = version = None
    if model_info_path:
        info_file = Path(model_info_path)
        info_file = info_file / "model_info.json" if info_file.is_dir() else info_file
        if not info_file.is_file():
            raise RAIInputError(f"input 'model_info_path': no model_info.json at {model_info_path}")
        info = json.loads(info_file.read_text(encoding="utf-8"))
        model_info = model_info or info.get("id") or info.get("model_id")
    if model_info:
        name, _, version = str(model_info).removeprefix("azureml:").partition(":")
        if not version:
            raise RAIInputError(f"input 'model_info': {model_info!r} is not 'name:version'")
    if model_input:
        return Path(model_input), name, version
    if name:
        import mlflow.artifacts

        local = mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(work))
        return Path(local), name, version
    raise RAIInputError("no model: give input 'model_input' (type mlflow_model, with 'model_info' name:version) or "
                        "'model_info_path'")


def construct(*, title: str, task_type: str, train_dataset: str, test_dataset: str, target_column_name: str,
              output_path: str, model_input: str | None = None, model_info_path: str | None = None,
              model_info: str | None = None, maximum_rows_for_test_dataset: int = 5000,
              categorical_column_names: str = "[]", classes: str = "[]") -> dict[str, Any]:
    """Write the constructor's folder (see :mod:`openaml.rai._io`); returns the config.

    Raises:
        RAIInputError: any bad input (see the module docstring), before predictions are made.
    """
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    categorical = [str(c) for c in parse_json_list(categorical_column_names, "categorical_column_names")]
    class_list = parse_json_list(classes, "classes")
    train = read_table(train_dataset, "train_dataset")
    test = read_table(test_dataset, "test_dataset")
    folder, name, version = _resolve_model_folder(model_input, model_info_path, model_info, out / "_download")
    model = load_model(folder)
    features = check_inputs(task_type, target_column_name, train, test, categorical, class_list, model)
    if len(test) > maximum_rows_for_test_dataset:
        raise RAIInputError(f"input 'test_dataset': {len(test)} rows, more than maximum_rows_for_test_dataset "
                            f"({maximum_rows_for_test_dataset}); sample the test data or raise the maximum")
    X = test[features]
    y_pred = model.predict(X)
    proba = model.predict_proba(X) if task_type == "classification" else None
    if task_type == "classification":
        if not class_list:
            class_list = model.classes or sorted(pd.concat([train[target_column_name], test[target_column_name]])
                                                 .dropna().unique().tolist())
        if model.native is None and np.issubdtype(np.asarray(y_pred).dtype, np.floating) and \
                not np.allclose(y_pred, np.round(y_pred)) and len(np.unique(y_pred)) > max(20, 2 * len(class_list)):
            raise RAIInputError("input 'task_type': 'classification' but the model predicts continuous values "
                                f"(e.g. {float(y_pred[0]):.4g}); use task_type regression or a classification model")
    shutil.copytree(folder, out / "model", dirs_exist_ok=True)
    shutil.rmtree(out / "_download", ignore_errors=True)
    train.to_parquet(out / "train.parquet")
    test.to_parquet(out / "test.parquet")
    config = {"schema": "openaml.rai.constructor/1", "title": title, "task_type": task_type,
              "target_column": target_column_name, "features": features, "categorical_features": categorical,
              "classes": [str(c) for c in class_list] if task_type == "classification" else None,
              "class_values": list(class_list) if task_type == "classification" else None,
              "model": {"name": name, "version": version,
                        "uri": f"azureml:{name}:{version}" if name else None},
              "n_train": len(train), "n_test": len(test)}
    dump_json(out / CONFIG_FILE, config)
    dump_json(out / "predictions.json", {"y_pred": list(y_pred),
                                         "y_proba": proba.tolist() if proba is not None else None})
    return config
