"""The entry script of every batch scoring job (shipped into the job's code as ``_openaml_batch_driver.py``).

Azure ML runs a batch deployment as a parallel job whose workers call ``init()`` once and
``run(mini_batch)`` per mini-batch (spec 14.6). This driver is that entry script. Its program
arguments (written by :mod:`openaml.services.batch_endpoints`) say what to run:

- ``--openaml_model_dir <path>``: the model input's folder; the driver lays it out as Azure ML does
  and sets ``AZUREML_MODEL_DIR`` to ``<tmp>/azureml-models/<name>/<version>`` (the model's own folder
  or file inside it keeps its registered name, so ``os.path.join(AZUREML_MODEL_DIR, "model")`` works;
  hard links to the input's files, a copy across file systems);
- ``--openaml_mode script --openaml_scoring_script score.py``: the deployment's script, imported
  from the code folder; its ``init()`` (optional) and ``run(mini_batch)`` are called as they are;
- ``--openaml_mode mlflow``: an MLflow model with no scoring script (no-code deployment): each
  file of the mini-batch (csv, tsv, parquet, json lines) is read with pandas, scored with
  ``mlflow.pyfunc`` (whole-number columns the signature declares float/double read as floats), and one
  ``row,prediction,file`` line per input row is returned (``row`` the
  row's index in its file, ``file`` the file's name): what Azure ML's MLflow batch driver writes,
  read back with ``pd.read_csv(f, names=["row", "prediction", "file"])``.

``AZUREML_BI_OUTPUT_PATH`` is the job's ``score`` output folder, where a script of a ``summary_only``
deployment writes its own files (Azure ML's custom-output contract).

Only the standard library is imported at module level (``mlflow``/``pandas`` only in MLflow mode).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

_user: Any = None
_model: Any = None
_args: argparse.Namespace | None = None

_READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
            ".json": "json", ".jsonl": "jsonl"}


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(add_help=False)
    for flag in ("mode", "model_dir", "model_name", "model_version", "model_base", "scoring_script", "input_file"):
        p.add_argument(f"--openaml_{flag}", default=None)
    args, _unknown = p.parse_known_args()  # the engine's and the user's own flags are theirs
    return args


def _user_args(argv: list[str]) -> list[str]:
    """``argv`` without the driver's ``--openaml_*`` flags and the engine's ``--append_row_file_name``
    (each with its value)."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a.startswith("--openaml_") or a.startswith("--append_row_file_name"):
            skip = "=" not in a
            continue
        out.append(a)
    return out


def _lay_out_model(args: argparse.Namespace) -> Path | None:
    """Set ``AZUREML_MODEL_DIR`` as Azure ML does; returns the model's own file or folder."""
    if not args.openaml_model_dir:
        return None
    src = Path(args.openaml_model_dir)
    base = args.openaml_model_base or src.name
    # in the job's working folder (the workspace's file system: links, not copies; removed with the job)
    top = Path(tempfile.mkdtemp(prefix=".openaml-model-", dir=os.getcwd()))
    root = top / "azureml-models" / (args.openaml_model_name or "model") / (args.openaml_model_version or "1")
    root.mkdir(parents=True)
    target = src
    if src.is_dir() and not (src / "MLmodel").is_file() and (src / base).exists():
        target = src / base  # the input already holds the model under its registered name
    # hard links (a copy across file systems), never a symlink: MLflow's load_model refuses a model
    # whose files resolve outside the folder it is given
    dst = root / base
    if target.is_dir():
        shutil.copytree(target.resolve(), dst, copy_function=_link, symlinks=False)
    else:
        _link(str(target), str(dst))
    os.environ["AZUREML_MODEL_DIR"] = str(root)
    return dst


def _link(src: str, dst: str) -> None:
    real = os.path.realpath(src)
    try:
        os.link(real, dst)
    except OSError:
        shutil.copy2(real, dst)


def init() -> None:
    """Once per worker: lay out the model, then load the MLflow model or import and init the script."""
    global _user, _model, _args
    _args = _parse()
    # Azure's custom-output contract (output_action summary_only): a scoring script writes its own
    # files into AZUREML_BI_OUTPUT_PATH, which is the job's `score` output (review: it was not set)
    if os.environ.get("AZURE_ML_OUTPUT_score"):
        os.environ.setdefault("AZUREML_BI_OUTPUT_PATH", os.environ["AZURE_ML_OUTPUT_score"])
    model_path = _lay_out_model(_args)
    if _args.openaml_mode == "mlflow":
        import mlflow.pyfunc

        assert model_path is not None, "an MLflow deployment needs its model (--openaml_model_dir)"
        folder = model_path if (model_path / "MLmodel").is_file() else next(
            (p.parent for p in model_path.rglob("MLmodel")), model_path)
        _model = mlflow.pyfunc.load_model(str(folder))
        return
    script = Path(__file__).resolve().parent / str(_args.openaml_scoring_script)
    sys.path.insert(0, str(script.parent))
    # the scoring script sees its own name and no arguments, as on Azure (a deployment has no program
    # arguments): the driver's --openaml_* flags and the engine's --append_row_file_name are not its
    sys.argv = [str(script), *_user_args(sys.argv[1:])]
    spec = importlib.util.spec_from_file_location("score", script)
    assert spec is not None and spec.loader is not None, f"cannot import the scoring script {script}"
    _user = importlib.util.module_from_spec(spec)
    sys.modules["score"] = _user
    spec.loader.exec_module(_user)
    if callable(getattr(_user, "init", None)):
        _user.init()


def run(mini_batch: Any) -> Any:
    """Per mini-batch: the script's ``run(mini_batch)`` result, or MLflow ``row,prediction,file`` lines."""
    if _user is not None:
        return _user.run(mini_batch)
    return _score_files(mini_batch)


def shutdown() -> None:
    if _user is not None and callable(getattr(_user, "shutdown", None)):
        _user.shutdown()


def _read(path: str) -> Any:
    import pandas as pd

    kind = _READERS.get(Path(path).suffix.lower())
    if kind == "csv":
        return pd.read_csv(path)
    if kind == "tsv":
        return pd.read_csv(path, sep="\t")
    if kind == "parquet":
        return pd.read_parquet(path)
    if kind == "json":
        return pd.read_json(path)
    if kind == "jsonl":
        return pd.read_json(path, lines=True)
    raise UnreadableFileError(f"{path}: the MLflow batch driver reads .csv, .tsv, .parquet, .json and .jsonl files; "
                              "score other files with a scoring script (code_configuration)")


class UnreadableFileError(ValueError):
    """A file the driver cannot read: the same on every attempt, so the engine does not retry it."""

    openaml_no_retry = True


def _as_signature(df: Any) -> Any:
    """Integer columns the model's signature declares float/double, as floats: a CSV column of whole
    numbers reads as int64, which MLflow's schema check refuses to turn into a double itself."""
    import numpy as np

    try:
        schema = _model.metadata.get_input_schema()
        wanted = {c.name: str(c.type) for c in schema.inputs} if schema is not None and schema.has_input_names() else {}
    except Exception:  # noqa: BLE001 - no usable signature: the frame as read
        return df
    cast = {col: "float64" for col, typ in wanted.items()
            if col in df.columns and ("double" in typ or "float" in typ) and np.issubdtype(df[col].dtype, np.integer)}
    return df.astype(cast) if cast else df


def _text(value: Any) -> str:
    """One CSV field (RFC 4180, as ``csv.writer`` quotes): a list/tuple/dict (a multi-column
    prediction) as JSON; a value holding a comma, a quote or a line break in double quotes, its
    quotes doubled. ``pd.read_csv(f, names=["row", "prediction", "file"])`` reads it back."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    text = json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _score_files(mini_batch: Any) -> list[str]:
    import pandas as pd

    if isinstance(mini_batch, pd.DataFrame):  # a table (uri_file, MLTable) split by size: the rows themselves
        # the file the rows came from: a table split by size names it (an MLTable's files), a uri_file is it
        name = ((_args.openaml_input_file if _args is not None else None)
                or getattr(mini_batch, "attrs", {}).get("source_file") or "")
        row0 = int(getattr(mini_batch, "attrs", {}).get("source_row") or 0)
        frames = [(mini_batch, name, [row0 + i for i in range(len(mini_batch))])]
    else:
        frames = [(df, Path(str(f)).name, list(range(len(df)))) for f in mini_batch for df in [_read(str(f))]]
    lines: list[str] = []
    for df, name, index in frames:
        if len(df) == 0:
            continue
        pred = _model.predict(_as_signature(df))
        if isinstance(pred, pd.DataFrame):
            values = [_text(r) if len(r) > 1 else _text(r[0]) for r in pred.itertuples(index=False)]
        else:
            values = _texts(pred)
        field = _text(name)  # the file's name: one CSV field, quoted once for all its rows
        lines.extend(f"{i},{v},{field}" for i, v in zip(index, values, strict=True))
    return lines


def _texts(pred: Any) -> list[str]:
    """:func:`_text` of each value of a 1-D prediction (a Series, an array, a list), with numbers
    (bool, int, float: never quoted) formatted without the per-value checks."""
    import numpy as np

    arr = pred.to_numpy() if hasattr(pred, "to_numpy") else np.asarray(pred) if not isinstance(pred, list) else None
    if arr is not None and arr.ndim == 1 and arr.dtype.kind in "biuf":
        return [str(v) for v in arr.tolist()]
    return [_text(v) for v in (arr.tolist() if arr is not None else pred)]
