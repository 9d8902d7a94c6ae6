"""Reading an AutoML job's MLTable data into a pandas frame, and the data checks done before any
trial runs (Azure AutoML's input validation: the target column exists, a classification target has
two or more classes, a regression target is numeric, a forecasting frame has unique
(time, series) rows and a frequency).

The reader handles what the MLTable files of tabular AutoML use (``paths`` of ``file``,
``folder`` or ``pattern``; ``read_delimited``, ``read_parquet``, ``read_json_lines``; ``take``,
``skip``, ``drop_columns``, ``keep_columns``, ``convert_column_types``) with pandas, with no
engine to start; anything else goes to the ``mltable`` package (``mltable.load``).
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

__all__ = ["read_mltable", "data_problems"]

_SIMPLE = {"read_delimited", "read_parquet", "read_json_lines", "take", "skip", "drop_columns", "keep_columns",
           "convert_column_types"}


def _files(folder: Path, paths: list[dict[str, Any]]) -> list[Path]:
    out: list[Path] = []
    for entry in paths:
        if "file" in entry:
            out.append(folder / str(entry["file"]))
        elif "folder" in entry:
            out.extend(sorted(p for p in (folder / str(entry["folder"])).rglob("*") if p.is_file()))
        elif "pattern" in entry:
            out.extend(sorted(Path(p) for p in glob.glob(str(folder / str(entry["pattern"])), recursive=True)
                              if Path(p).is_file()))
    return out


def _cols(v: Any) -> list[str]:
    return [v] if isinstance(v, str) else list(v or [])


def read_mltable(folder: str | Path) -> pd.DataFrame:
    """The table an MLTable folder describes (a ``MLTable`` file inside ``folder``).

    Raises:
        ValueError: no MLTable file, or no file matched its paths (the folder named).
    """
    folder = Path(folder)
    if folder.is_file():  # a bare CSV/parquet file given as the path
        return pd.read_parquet(folder) if folder.suffix == ".parquet" else pd.read_csv(folder)
    spec_file = folder / "MLTable"
    if not spec_file.is_file():
        raise ValueError(f"{folder} has no MLTable file; AutoML data is an MLTable folder")
    spec = yaml.safe_load(spec_file.read_text(encoding="utf-8")) or {}
    steps = spec.get("transformations") or []
    names = [next(iter(s)) if isinstance(s, dict) else str(s) for s in steps]
    if any(n not in _SIMPLE for n in names) or any("://" in str(v) for e in spec.get("paths") or [] for v in e.values()):
        import mltable  # the full engine for what pandas here does not cover

        return mltable.load(str(folder)).to_pandas_dataframe()
    files = _files(folder, spec.get("paths") or [])
    if not files:
        raise ValueError(f"{spec_file}: no data file matched its paths {spec.get('paths')!r}")
    frames: list[pd.DataFrame] = []
    reader = "read_delimited"
    opts: dict[str, Any] = {}
    for s in steps:
        if isinstance(s, dict) and next(iter(s)) in ("read_delimited", "read_parquet", "read_json_lines"):
            reader = next(iter(s))
            opts = s[reader] or {}
    for f in files:
        if reader == "read_parquet":
            frames.append(pd.read_parquet(f))
        elif reader == "read_json_lines":
            frames.append(pd.read_json(f, lines=True))
        else:
            header = opts.get("header", "all_files_same_headers")
            frames.append(pd.read_csv(f, sep=opts.get("delimiter", ","),
                                      encoding=str(opts.get("encoding", "utf8")).replace("utf8", "utf-8"),
                                      header=None if header == "no_header" else 0,
                                      skip_blank_lines=bool(opts.get("empty_as_string") is not True)))
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    for s in steps:
        if not isinstance(s, dict):
            continue
        name, arg = next(iter(s.items()))
        if name == "take":
            df = df.head(int(arg))
        elif name == "skip":
            df = df.iloc[int(arg):]
        elif name == "drop_columns":
            df = df.drop(columns=_cols(arg))
        elif name == "keep_columns":
            df = df[_cols(arg)]
        elif name == "convert_column_types":
            for conv in arg or []:
                typ = str(conv.get("column_type"))
                for c in _cols(conv.get("columns")):
                    if typ in ("int", "float"):
                        df[c] = pd.to_numeric(df[c], errors="coerce")
                    elif typ == "boolean":
                        df[c] = df[c].astype("boolean")
                    elif typ == "datetime" or isinstance(conv.get("column_type"), dict):
                        df[c] = pd.to_datetime(df[c], errors="coerce")
                    else:
                        df[c] = df[c].astype("string")
    return df.reset_index(drop=True)


def data_problems(df: pd.DataFrame, *, task: str, target: str, field: str = "training_data",
                  weight: str | None = None, forecasting: dict[str, Any] | None = None,
                  n_cross_validations: Any = None, positive_label: Any = None) -> list[str]:
    """Every problem of the training frame for this task, each naming the column (and listing the
    columns where one is missing). Empty: the data can be trained on."""
    p: list[str] = []
    cols = [str(c) for c in df.columns]
    shown = ", ".join(cols[:60]) + (" ..." if len(cols) > 60 else "")
    if target not in df.columns:
        return [f"field 'target_column_name': column {target!r} is not in {field} (its columns: {shown})"]
    if weight and weight not in df.columns:
        p.append(f"field 'weight_column_name': column {weight!r} is not in {field} (its columns: {shown})")
    y = df[target].dropna()
    if len(y) < 10:
        p.append(f"{field}: {len(y)} rows with a value in {target!r}; AutoML needs at least 10")
    if task == "classification":
        counts = y.value_counts()
        if len(counts) < 2:
            p.append(f"field 'target_column_name': column {target!r} has one class only "
                     f"({counts.index[0]!r} in {int(counts.iloc[0])} rows); classification needs two or more")
        if positive_label is not None and positive_label not in set(y.tolist()) \
                and str(positive_label) not in {str(v) for v in y.tolist()}:
            p.append(f"field 'positive_label': {positive_label!r} is not a value of {target!r} "
                     f"(its classes: {', '.join(map(str, counts.index[:20]))})")
    else:
        if not pd.api.types.is_numeric_dtype(df[target]) or pd.api.types.is_bool_dtype(df[target]):
            bad = next((v for v in y.tolist() if not isinstance(v, (int, float))), None)
            p.append(f"field 'target_column_name': column {target!r} is not numeric (e.g. {bad!r}, dtype "
                     f"{df[target].dtype}); {task} needs a numeric target (or use task: classification)")
    if task == "forecasting":
        fc = forecasting or {}
        tcol = fc.get("time_column_name")
        ids = fc.get("time_series_id_column_names") or []
        ids = [ids] if isinstance(ids, str) else list(ids)
        for f, c in [("forecasting.time_column_name", tcol)] + [("forecasting.time_series_id_column_names", i)
                                                                 for i in ids]:
            if c and c not in df.columns:
                p.append(f"field '{f}': column {c!r} is not in {field} (its columns: {shown})")
        if tcol and tcol in df.columns and all(i in df.columns for i in ids):
            t = pd.to_datetime(df[tcol], errors="coerce")
            if t.isna().any():
                first = df[tcol][t.isna()].iloc[0]
                p.append(f"field 'forecasting.time_column_name': column {tcol!r} has values that are not dates "
                         f"(e.g. {first!r})")
            else:
                key = df[[*ids]].assign(_t=t) if ids else pd.DataFrame({"_t": t})
                dup = key.duplicated()
                if dup.any() and fc.get("target_aggregate_function") in (None, "none"):
                    first = key[dup].iloc[0]
                    when = first["_t"]
                    row = {**{c: first[c] for c in ids},  # the user's column names, the time as written
                           tcol: str(when.date()) if when == when.normalize() else when.isoformat()}
                    p.append(f"{field}: {int(dup.sum())} duplicate (time, series) rows, e.g. {row}; give each "
                             "series one row per time, or set forecasting.target_aggregate_function")
                elif not fc.get("frequency"):
                    from openaml.automl._forecast import infer_frequency

                    if infer_frequency(df.assign(**{tcol: t}), tcol, ids) is None:
                        p.append(f"field 'forecasting.frequency': the frequency of {tcol!r} cannot be inferred "
                                 "(irregular times); give it, e.g. frequency: D")
                from openaml.automl._forecast import short_series_problem

                short = short_series_problem(df[df[target].notna()], fc)
                if short:
                    p.append(short)
    return p
