"""AutoML featurization as a scikit-learn pipeline step, so that the saved model scores raw rows.

Column roles (``featurization.mode: auto``, Azure's rules in spirit): a column is

- dropped when it is constant, or ID-like (a string/integer column whose values are all distinct);
- ``Numeric``: numbers and booleans -> median imputation (plus a missing-indicator column);
- ``DateTime``: parsed dates -> year, month, day, weekday, hour parts;
- ``Text``: strings with mostly distinct, long values (mean > 3 words) -> TF-IDF (the 300 most frequent words seen twice or more);
- ``Categorical``: other strings -> most-frequent imputation, then one-hot (cardinality <= 50) or
  hashing into 64 columns (``CategoricalHash``, higher cardinality).

``mode: custom`` overrides roles with ``column_name_and_types`` and the imputation strategy with
``transformer_params.imputer`` (``strategy: mean|median|most_frequent|constant``); ``blocked_transformers``
removes TF-IDF (text columns then one-hot/hash) and one-hot (categoricals then hash).
``mode: off`` keeps numeric columns only (Azure: the data must be numeric) and drops the rest,
each drop said in the guardrails. Unseen categories at scoring time encode to all-zero (one-hot
``handle_unknown='ignore'``); a missing column is added as empty and imputed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

__all__ = ["column_roles", "build_featurizer", "RawColumns", "DateParts", "HashCategories", "TextColumn"]

MAX_ONEHOT = 50


class RawColumns(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """First step: the training columns in training order; a missing one is added empty (NaN), an
    extra one is ignored, so scoring data with a missing column still scores (Azure: imputed)."""

    def __init__(self, columns: list[str] | None = None) -> None:
        self.columns = columns

    def fit(self, X: pd.DataFrame, y: Any = None) -> RawColumns:
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        X = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        cols = list(self.columns or [])
        out = X.reindex(columns=cols)
        return out


class DateParts(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Date columns -> year, month, day, weekday, hour (NaN where the date is missing)."""

    def fit(self, X: pd.DataFrame, y: Any = None) -> DateParts:
        self.n_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        parts = []
        for c in X.columns:
            t = pd.to_datetime(X[c], errors="coerce")
            parts += [t.dt.year, t.dt.month, t.dt.day, t.dt.day_of_week, t.dt.hour]
        return np.column_stack([p.to_numpy(dtype=float, na_value=np.nan) for p in parts])


class HashCategories(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """High-cardinality categoricals hashed into ``n_features`` columns (Azure's HashOneHotEncoder)."""

    def __init__(self, n_features: int = 64) -> None:
        self.n_features = n_features

    def fit(self, X: pd.DataFrame, y: Any = None) -> HashCategories:
        return self

    def transform(self, X: pd.DataFrame) -> Any:
        rows = [[f"{c}={v}" for c, v in zip(X.columns, r, strict=True)] for r in X.astype(str).itertuples(index=False)]
        return FeatureHasher(n_features=self.n_features, input_type="string").transform(rows)


class TextColumn(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """One free-text column -> TF-IDF (missing text = empty string)."""

    def __init__(self, max_features: int = 300) -> None:
        self.max_features = max_features

    def fit(self, X: pd.DataFrame, y: Any = None) -> TextColumn:
        self.vec_ = TfidfVectorizer(max_features=self.max_features, min_df=2 if len(X) > 50 else 1,
                                    sublinear_tf=True)
        self.vec_.fit(_texts(X))
        return self

    def transform(self, X: pd.DataFrame) -> Any:
        return self.vec_.transform(_texts(X))


def _texts(X: pd.DataFrame) -> list[str]:
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in X.iloc[:, 0].tolist()]


def _is_datetime(s: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(s):
        return True
    if s.dtype != object and not pd.api.types.is_string_dtype(s):
        return False
    sample = s.dropna().astype(str).head(200)
    if sample.empty or not sample.str.contains(r"\d{1,4}[-/.:]\d{1,2}", regex=True).all():
        return False
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce")
    return bool(parsed.notna().mean() > 0.95)


def column_roles(X: pd.DataFrame, featurization: dict[str, Any] | None) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """(column -> role, notes). Roles: Numeric, Categorical, CategoricalHash, DateTime, Text, Ignore.
    Notes are guardrail details: which columns were dropped and why."""
    fz = featurization or {}
    mode = str(fz.get("mode") or "auto").lower()
    given = {str(k): str(v) for k, v in (fz.get("column_name_and_types") or {}).items()} if mode == "custom" else {}
    blocked = {str(b).lower().replace("_", "") for b in fz.get("blocked_transformers") or []}
    roles: dict[str, str] = {}
    notes: list[dict[str, Any]] = []
    n = len(X)
    for c in X.columns:
        s = X[c]
        name = str(c)
        if name in given:
            roles[name] = {"categoricalhashonehot": "CategoricalHash"}.get(given[name].lower(), given[name].title()
                                                                             if given[name].lower() != "datetime"
                                                                             else "DateTime")
            if given[name].lower() == "categoricalhash":
                roles[name] = "CategoricalHash"
            continue
        nunique = int(s.nunique(dropna=True))
        numeric = pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)
        if mode == "off":
            roles[name] = "Numeric" if numeric else "Ignore"
            if not numeric:
                notes.append({"column": name, "action": "dropped", "reason": "featurization off: not numeric"})
            continue
        if nunique <= 1:
            roles[name] = "Ignore"
            notes.append({"column": name, "action": "dropped", "reason": "constant"})
        elif numeric:
            is_int = pd.api.types.is_integer_dtype(s)
            if is_int and n > 20 and nunique == n and s.is_monotonic_increasing:
                roles[name] = "Ignore"
                notes.append({"column": name, "action": "dropped", "reason": "ID-like (distinct increasing integers)"})
            else:
                roles[name] = "Numeric"
        elif _is_datetime(s):
            roles[name] = "DateTime"
        else:
            text = s.dropna().astype(str)
            # the words per value decide only between Text and ID-like, both with many distinct values:
            # a column of few values (most categorical columns) is not split (seconds on a large frame)
            words = float(text.str.split().str.len().mean() or 0) if nunique > 0.5 * len(text) else 0.0
            if words > 3 and nunique > 0.5 * len(text) and "tfidf" not in blocked:
                roles[name] = "Text"
            elif n > 20 and nunique >= 0.95 * len(text) and words <= 3:
                roles[name] = "Ignore"
                notes.append({"column": name, "action": "dropped", "reason": f"ID-like ({nunique} distinct of {n})"})
            elif nunique > MAX_ONEHOT or "onehotencoder" in blocked:
                roles[name] = "CategoricalHash"
                notes.append({"column": name, "action": "hashed", "reason": f"high cardinality ({nunique} values)"})
            else:
                roles[name] = "Categorical"
    return roles, notes


def _imputer_params(fz: dict[str, Any], column: str) -> dict[str, Any] | None:
    """The ``transformer_params.imputer`` parameters that name ``column`` (or name no field), or None."""
    found = None
    for tp in (fz.get("transformer_params") or {}).get("imputer", []) or []:
        if column in (tp.get("fields") or []) or not tp.get("fields"):
            found = dict(tp.get("parameters") or {})
    return found


def _imputer(fz: dict[str, Any], column: str, default: str) -> SimpleImputer:
    params = _imputer_params(fz, column) or {}
    strategy = str(params.get("strategy", default))
    fill = {"fill_value": params.get("fill_value", 0)} if strategy == "constant" else {}
    return SimpleImputer(strategy=strategy, add_indicator=default != "most_frequent" and strategy != "constant",
                         keep_empty_features=True, **fill)


class FillCategorical(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Azure's ``transformer_params.imputer`` on categorical columns: missing values become the
    column's most frequent value (``strategy: most_frequent``, Azure's default for categorical
    columns) or ``fill_value`` (``strategy: constant``). Columns without an imputer keep missing
    values as a category of their own."""

    def __init__(self, strategy: str = "most_frequent", fill_value: Any = None) -> None:
        self.strategy = strategy
        self.fill_value = fill_value

    def fit(self, X: Any, y: Any = None) -> FillCategorical:
        df = pd.DataFrame(X)
        if self.strategy == "constant":
            self.fills_ = [self.fill_value if self.fill_value is not None else "missing_value"] * df.shape[1]
        else:
            self.fills_ = [col.mode().iloc[0] if col.notna().any() else "__missing__" for _, col in df.items()]
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        df = pd.DataFrame(X).astype(object)
        for i, fill in enumerate(self.fills_):
            col = df.iloc[:, i]
            df.iloc[:, i] = col.where(col.notna(), fill)
        return df


def build_featurizer(X: pd.DataFrame, roles: dict[str, str], featurization: dict[str, Any] | None) -> Pipeline:
    """The featurization pipeline (``RawColumns`` then a ``ColumnTransformer``) for these roles."""
    fz = featurization or {}
    parts: list[tuple[str, Any, list[str]]] = []
    by: dict[str, list[str]] = {}
    for c, r in roles.items():
        by.setdefault(r, []).append(c)
    for c in by.get("Numeric", []):
        parts.append((f"num:{c}", Pipeline([("to_float", _ToFloat()), ("impute", _imputer(fz, c, "median"))]), [c]))
    named = {f for tp in (fz.get("transformer_params") or {}).get("imputer") or [] for f in tp.get("fields") or []}
    for c in [c for c in by.get("Categorical", []) if c in named]:  # an imputer named for it
        params = _imputer_params(fz, c) or {}
        strategy = str(params.get("strategy", "most_frequent"))
        parts.append((f"cat:{c}", Pipeline([
            ("impute", FillCategorical("constant" if strategy == "constant" else "most_frequent",
                                       params.get("fill_value"))),
            ("to_str", _ToStr()), ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=True))]), [c]))
        by["Categorical"] = [x for x in by["Categorical"] if x != c]
    if by.get("Categorical"):
        parts.append(("cat", Pipeline([("to_str", _ToStr()),
                                       ("onehot", OneHotEncoder(handle_unknown="ignore", min_frequency=2 if len(X) > 100 else None,
                                                                sparse_output=True))]), by["Categorical"]))
    if by.get("CategoricalHash"):
        parts.append(("hash", HashCategories(), by["CategoricalHash"]))
    if by.get("DateTime"):
        parts.append(("date", Pipeline([("parts", DateParts()),
                                        ("impute", SimpleImputer(strategy="median", keep_empty_features=True))]),
                      by["DateTime"]))
    for c in by.get("Text", []):
        parts.append((f"text:{c}", TextColumn(), [c]))
    kept = [c for c, r in roles.items() if r != "Ignore"]
    ct = ColumnTransformer(parts, remainder="drop", sparse_threshold=0.3)
    return Pipeline([("columns", RawColumns(kept)), ("transform", ct)])


class _ToFloat(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    def fit(self, X: Any, y: Any = None) -> _ToFloat:
        return self

    def transform(self, X: Any) -> np.ndarray:
        return pd.DataFrame(X).apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)


class _ToStr(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    def fit(self, X: Any, y: Any = None) -> _ToStr:
        return self

    def transform(self, X: Any) -> np.ndarray:
        df = pd.DataFrame(X)
        return df.astype(object).where(df.notna(), "__missing__").astype(str).to_numpy()
