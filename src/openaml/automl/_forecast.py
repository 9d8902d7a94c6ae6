"""Forecasting AutoML (spec 6.2): trials on one or many series, rolling-origin validation, and a
model that forecasts ``forecast_horizon`` steps per series.

Learners:

- statistical, per series: ``Naive`` (last value), ``SeasonalNaive`` (the value one season
  back), ``Average`` (mean of the history), ``SeasonalAverage`` (mean of the same season
  position), ``ExponentialSmoothing`` (simple exponential smoothing, its alpha chosen on the
  history by one-step error); ``AutoArima`` (pmdarima's ``auto_arima``, stepwise, p and q up to 2,
  one seasonal difference when the series holds three seasons) and ``Prophet`` (with the country's holidays
  when ``country_or_region_for_holidays`` is set), each fitted per series;
- the regression learners (FLAML's, as for regression) on lag features: the target lagged by
  ``target_lags`` (``auto``: 1 and the seasonality), the mean of the last
  ``target_rolling_window_size`` values, calendar parts of the time, the series id and the numeric
  columns of the frame, and with ``country_or_region_for_holidays`` a ``holiday`` flag (the
``holidays`` package's calendar of that country); forecasts are recursive (each step's
prediction feeds the next lags).

Validation is rolling origin: ``n_cross_validations`` origins (``auto``: 3), ``cv_step_size``
periods apart (``auto``: the horizon); at each origin every series is forecast ``horizon``
steps from its history, and the metrics (regression ones, normalized by the target's range) are
over all those forecasts. The model's ``forecast(frame)`` takes future rows (time and series
columns, plus the other columns a regression learner uses) and answers them with
``<target>_forecast``; ``predict(frame)`` answers the values, and refuses a series it was not
trained on. Short series (:func:`min_series_rows`) are padded, dropped or kept by
``short_series_handling_config`` (:func:`short_series_plan`) before any trial trains.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["infer_frequency", "forecast_guardrails", "run_forecast_trial", "ForecastModel", "min_series_rows",
           "short_series_plan", "handle_short_series", "short_series_problem",
           "forecast_importance"]


def infer_frequency(df: pd.DataFrame, time_col: str, ids: list[str]) -> str | None:
    """The pandas frequency of the time column (the first series with 3+ rows that has one), or None."""
    groups = [g for _, g in df.groupby(ids)] if ids else [df]
    for g in groups:
        t = pd.DatetimeIndex(pd.to_datetime(g[time_col]).sort_values().unique())
        if len(t) >= 3:
            try:  # pandas 3 moves infer_freq to offsets: ask for one and read its string
                with pd.option_context("future.infer_freq_returns_offset", True):
                    freq = pd.infer_freq(t)
            except (KeyError, pd.errors.OptionError):
                freq = pd.infer_freq(t)
            if freq:
                return str(getattr(freq, "freqstr", freq))
    return None


def _ids(fc: dict[str, Any]) -> list[str]:
    ids = fc.get("time_series_id_column_names") or []
    return [ids] if isinstance(ids, str) else list(ids)


def _season(fc: dict[str, Any], freq: str | None) -> int:
    s = fc.get("seasonality")
    if isinstance(s, int):
        return max(1, s)
    base = (freq or "D").lstrip("0123456789").split("-")[0].upper()
    return {"D": 7, "B": 5, "H": 24, "h": 24, "W": 52, "M": 12, "MS": 12, "ME": 12, "Q": 4, "QS": 4,
            "QE": 4, "T": 60, "MIN": 60}.get(base, 1)


def _horizon(fc: dict[str, Any]) -> int:
    h = fc.get("forecast_horizon")
    return h if isinstance(h, int) and h > 0 else 1


def min_series_rows(fc: dict[str, Any]) -> int:
    """The rows a series needs to be trained on and validated (``2 x forecast_horizon`` plus the
    largest of ``target_lags``, 1 when they are ``auto``); shorter ones are *short series*."""
    lags = fc.get("target_lags")
    max_lag = max(lags) if isinstance(lags, list) and lags else (lags if isinstance(lags, int) else 1)
    return 2 * _horizon(fc) + int(max_lag)


def short_series_plan(sizes: pd.Series, fc: dict[str, Any]) -> tuple[str, int, list[Any]]:
    """What ``short_series_handling_config`` does to series of these row counts (``sizes``: rows
    per series id), as Azure AutoML documents it: ``(action, min_rows, short_series)`` where action
    is ``"pad"`` (padded at their start to ``min_rows``), ``"drop"`` (left out of training, and
    refused at forecast time), or ``"none"`` (trained as they are; also when none is short).
    ``auto`` (the default, also when the field is null) pads when every series is short, else drops
    the short ones."""
    need = min_series_rows(fc)
    short = [k for k, n in sizes.items() if int(n) < need]
    handling = str(fc.get("short_series_handling_config") or "auto").lower()
    if not short or handling == "none":
        return "none", need, short
    if handling == "auto":
        return ("pad" if len(short) == len(sizes) else "drop"), need, short
    return handling, need, short


def short_series_problem(df: pd.DataFrame, fc: dict[str, Any]) -> str | None:
    """The problem of a ``drop`` that would leave no series to train on (each short series named),
    else None: checked before anything runs."""
    tcol, ids = fc.get("time_column_name"), _ids(fc)
    if not tcol or any(c not in df.columns for c in [tcol, *ids]):
        return None
    sizes = _series_sizes(df, ids)
    action, need, short = short_series_plan(sizes, fc)
    if action != "drop" or len(short) < len(sizes):
        return None
    return (f"field 'forecasting.short_series_handling_config': drop, and every series is shorter than {need} rows "
            f"(2 x forecast_horizon + largest lag: {', '.join(map(str, short[:10]))}), so nothing is left to train "
            "on; use pad or auto, give more history or a shorter forecast_horizon")


def forecast_guardrails(df: pd.DataFrame, fc: dict[str, Any]) -> list[dict[str, Any]]:
    """Short series detection (and what ``short_series_handling_config`` does to them) and
    frequency detection."""
    tcol, ids = fc.get("time_column_name"), _ids(fc)
    if not tcol or tcol not in df.columns:
        return []
    sizes = _series_sizes(df, ids)
    action, need, short = short_series_plan(sizes, fc)
    handling = fc.get("short_series_handling_config") or "auto"
    names = ", ".join(map(str, short[:10])) + (" ..." if len(short) > 10 else "")
    done = {"pad": f"padded at their start to {need} rows (target: white noise of mean 0 and standard deviation 1; "
                   "numeric columns 0, boolean columns False, other columns empty)",
            "drop": "dropped from training; the model refuses to forecast them",
            "none": "trained as they are"}[action]
    out = [{"name": "Short series handling", "status": "alerted" if short else "passed",
            "details": (f"{len(short)} of {len(sizes)} series shorter than {need} rows (2 x horizon + largest lag): "
                        f"{names}; short_series_handling_config={handling}: {done}")
            if short else f"every series has {need}+ rows"}]
    freq = fc.get("frequency") or infer_frequency(df.assign(**{tcol: pd.to_datetime(df[tcol])}), tcol, ids)
    out.append({"name": "Frequency detection", "status": "passed" if freq else "alerted",
                "details": f"frequency {freq}" + (" (given)" if fc.get("frequency") else " (inferred)")
                if freq else "no regular frequency"})
    return out


def _series_sizes(df: pd.DataFrame, ids: list[str]) -> pd.Series:
    """Rows per series, keyed as :func:`_groups` keys them."""
    if not ids:
        return pd.Series({"(one series)": len(df)})
    return pd.Series({k: len(g) for k, g in _groups(df, ids)})


def handle_short_series(df: pd.DataFrame, st: dict[str, Any], fc: dict[str, Any]) -> pd.DataFrame:
    """``df`` (one row per (series, time), sorted) with ``short_series_handling_config`` applied
    (:func:`short_series_plan`); what was done lands in ``st["short_series"]``
    (``{"action", "min_rows", "series"}``). Padding adds the missing rows before a series' first
    time at the frequency: the target white noise (mean 0, standard deviation 1, seeded, so every
    trial of a job trains on the same rows), numeric columns 0, boolean columns False, the other
    columns empty; the series id columns keep the series' values.

    Raises:
        ValueError: ``drop`` would leave no series to train on (each named).
    """
    ids, tcol, target = st["ids"], st["time"], st["target"]
    action, need, short = short_series_plan(_series_sizes(df, ids), fc)
    st["short_series"] = {"action": action, "min_rows": need, "series": [str(k) for k in short]}
    if action == "none":
        return df
    groups = _groups(df, ids)
    if action == "drop":
        kept = [g for k, g in groups if k not in short]
        if not kept:
            raise ValueError(f"every series is shorter than {need} rows ({', '.join(map(str, short[:10]))}); "
                             "short_series_handling_config=drop leaves nothing to train on: use pad or auto, "
                             "give more history or a shorter forecast_horizon")
        return pd.concat(kept).reset_index(drop=True)
    rs = np.random.RandomState(0)
    frames = []
    for k, g in groups:
        if k in short:
            missing = need - len(g)
            times = pd.date_range(end=g[tcol].min(), periods=missing + 1, freq=st["freq"])[:-1]
            pad = pd.DataFrame({tcol: times})
            for c in df.columns:
                if c == tcol:
                    continue
                if c in ids:
                    pad[c] = g[c].iloc[0]
                elif c == target:
                    pad[c] = rs.normal(0.0, 1.0, missing)
                elif pd.api.types.is_bool_dtype(df[c]):
                    pad[c] = False
                elif pd.api.types.is_numeric_dtype(df[c]):
                    pad[c] = 0
                else:
                    pad[c] = np.nan
            g = pd.concat([pad[list(df.columns)], g])
        frames.append(g)
    return pd.concat(frames).sort_values([*ids, tcol]).reset_index(drop=True)


class ForecastModel:
    """A fitted forecaster: ``history`` (per series, the target by time), a statistical ``method``
    or a regression ``regressor`` on lag features, and the settings to build future rows."""

    def __init__(self, method: str, regressor: Any, settings: dict[str, Any]) -> None:
        self.method = method
        self.regressor = regressor
        self.settings = settings
        self.history: dict[Any, pd.Series] = {}
        self.alpha: dict[Any, float] = {}
        self.fitted: dict[Any, Any] = {}  # AutoArima / Prophet: the model of each series

    def _fit_series(self, key: Any, hist: pd.Series) -> None:
        st = self.settings
        y = hist.to_numpy(dtype=float)
        if len(y) < 3:
            return
        if self.method == "AutoArima":
            import warnings

            import pmdarima
            from threadpoolctl import threadpool_limits

            s = st["season"]
            seasonal = s > 1 and len(y) >= 3 * s
            # one seasonal difference, no seasonal AR/MA terms: a seasonal search costs minutes per series
            with warnings.catch_warnings(), threadpool_limits(1):
                warnings.simplefilter("ignore")
                self.fitted[key] = pmdarima.auto_arima(
                    y, seasonal=seasonal, m=s if seasonal else 1, D=1 if seasonal else None, start_P=0, start_Q=0, max_P=0, max_Q=0,
                    stepwise=True, max_p=2, max_q=2, max_order=4, maxiter=25, suppress_warnings=True,
                    error_action="ignore")
        elif self.method == "Prophet":
            import logging

            from prophet import Prophet

            logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
            model = Prophet()
            if st.get("holidays"):
                model.add_country_holidays(country_name=st["holidays"])
            model.fit(pd.DataFrame({"ds": hist.index, "y": y}))
            self.fitted[key] = model

    def _library_forecast(self, key: Any, steps: int) -> np.ndarray | None:
        model = self.fitted.get(key)
        if model is None:
            return None
        if self.method == "AutoArima":
            return np.asarray(model.predict(n_periods=steps), dtype=float)
        last = self.history[key].index.max()
        future = pd.DataFrame({"ds": pd.date_range(last, periods=steps + 1, freq=self.settings["freq"])[1:]})
        return np.asarray(model.predict(future)["yhat"], dtype=float)

    # --- statistical methods on one history
    def _stat(self, hist: np.ndarray, steps: int, key: Any) -> np.ndarray:
        s = self.settings["season"]
        if len(hist) == 0:
            return np.zeros(steps)
        if self.method in ("AutoArima", "Prophet"):
            found = self._library_forecast(key, steps)
            if found is not None:
                return found
            return np.repeat(hist[-1], steps)  # a series too short to fit: its last value
        if self.method == "Naive":
            return np.repeat(hist[-1], steps)
        if self.method == "Average":
            return np.repeat(hist.mean(), steps)
        if self.method == "SeasonalNaive":
            if len(hist) < s:
                return np.repeat(hist[-1], steps)
            return np.array([hist[-s + (i % s)] for i in range(steps)])
        if self.method == "SeasonalAverage":
            if len(hist) < s:
                return np.repeat(hist.mean(), steps)
            pos = (len(hist) + np.arange(steps)) % s
            return np.array([hist[(np.arange(len(hist)) % s) == p].mean() for p in pos])
        # ExponentialSmoothing: alpha by one-step error on the history
        alpha = self.alpha.get(key)
        if alpha is None:
            best = (np.inf, 0.5)
            for a in (0.1, 0.3, 0.5, 0.7, 0.9):
                level, err = hist[0], 0.0
                for v in hist[1:]:
                    err += (v - level) ** 2
                    level = a * v + (1 - a) * level
                best = min(best, (err, a))
            alpha = best[1]
        level = hist[0]
        for v in hist[1:]:
            level = alpha * v + (1 - alpha) * level
        return np.repeat(level, steps)

    # --- lag features
    def _features(self, hist: list[float], when: pd.Timestamp, key: Any, extra: dict[str, Any]) -> dict[str, Any]:
        st = self.settings
        row: dict[str, Any] = {f"lag_{k}": (hist[-k] if len(hist) >= k else np.nan) for k in st["lags"]}
        w = st["window"]
        row[f"rolling_mean_{w}"] = float(np.mean(hist[-w:])) if hist else np.nan
        row.update(_calendar(when))
        if st.get("holidays"):
            row["holiday"] = float(pd.Timestamp(when).date() in self._holiday_calendar())
        row["series"] = str(key)
        row.update({c: extra.get(c, np.nan) for c in st["numeric"]})
        return row

    def _holiday_calendar(self) -> Any:
        cal = getattr(self, "_holidays", None)
        if cal is None:
            import holidays

            cal = self._holidays = holidays.country_holidays(self.settings["holidays"])
        return cal

    def _train_frame(self, df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        st = self.settings
        rows, ys = [], []
        for key, g in _groups(df, st["ids"]):
            hist: list[float] = []
            for rec in g.to_dict("records"):
                y = float(rec[st["target"]])
                if hist:
                    rows.append(self._features(hist, rec[st["time"]], key, rec))
                    ys.append(y)
                hist.append(y)
        return pd.DataFrame(rows), np.asarray(ys)

    def fit(self, df: pd.DataFrame, y: Any = None) -> ForecastModel:
        st = self.settings
        df = df.sort_values([*st["ids"], st["time"]])
        for key, g in _groups(df, st["ids"]):
            self.history[key] = pd.Series(g[st["target"]].to_numpy(dtype=float), index=pd.DatetimeIndex(g[st["time"]]))
            if self.method in ("AutoArima", "Prophet"):
                self._fit_series(key, self.history[key])
        if self.regressor is not None:
            X, yy = self._train_frame(df)
            self.regressor.fit(X, yy)
        return self

    def forecast(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame``: future rows (time, series columns, other columns); answers them with
        ``<target>_forecast``, in the frame's order.

        Raises:
            ValueError: a series the model was not trained on (:meth:`check_series`)."""
        st = self.settings
        frame = frame.copy()
        frame[st["time"]] = pd.to_datetime(frame[st["time"]])
        self.check_series(frame)
        out = pd.Series(np.nan, index=frame.index)
        for key, g in _groups(frame, st["ids"], keep_index=True):
            hist = self.history.get(key, pd.Series(dtype=float))
            g = g.sort_values(st["time"])
            if self.regressor is None:
                last = hist.index.max() if len(hist) else None
                steps = [_steps_after(last, t, st["freq"]) for t in g[st["time"]]] if last is not None \
                    else list(range(1, len(g) + 1))
                values = self._stat(hist.to_numpy(), max(steps) if steps else 0, key)
                out[g.index] = [values[s - 1] for s in steps]
                continue
            h = list(hist.to_numpy())
            for idx, rec in zip(g.index, g.to_dict("records"), strict=True):
                x = pd.DataFrame([self._features(h, rec[st["time"]], key, rec)])
                v = float(self.regressor.predict(x)[0])
                out[idx] = v
                h.append(v)
        frame[f"{st['target']}_forecast"] = out
        return frame

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.forecast(frame)[f"{self.settings['target']}_forecast"].to_numpy()

    def check_series(self, frame: pd.DataFrame) -> None:
        """Refuse a frame with series the model was not trained on (Azure forecasts only the series
        of its training data).

        Raises:
            ValueError: naming each such series: dropped from training as short series
                (``short_series_handling_config``), or never seen in training; the known ones listed.
        """
        st = self.settings
        missing = [c for c in st["ids"] if c not in frame.columns]
        if missing:
            raise ValueError(f"the rows to forecast lack the time series id column(s) {missing}; "
                             f"the model forecasts per series of {st['ids']}")
        keys = [k for k, _ in _groups(frame, st["ids"])]
        unknown = [k for k in keys if k not in self.history]
        if not unknown:
            return
        info = st.get("short_series") or {}
        dropped = [k for k in unknown if str(k) in set(info.get("series") or []) and info.get("action") == "drop"]
        never = [k for k in unknown if k not in dropped]
        known = ", ".join(map(str, list(self.history)[:20])) + (" ..." if len(self.history) > 20 else "")
        parts = []
        if dropped:
            parts.append(f"series {', '.join(map(str, dropped))} were dropped from training as short series "
                         f"(fewer than {info.get('min_rows')} rows; short_series_handling_config="
                         f"{st.get('short_series_handling') or 'auto'})")
        if never:
            parts.append(f"series {', '.join(map(str, never))} were never seen in training")
        raise ValueError("cannot forecast: " + "; ".join(parts) + f". The model forecasts the series it was "
                         f"trained on ({known})")

    def known(self, frame: pd.DataFrame) -> np.ndarray:
        """A boolean mask of the rows of ``frame`` whose series the model was trained on."""
        st = self.settings
        if not st["ids"]:
            return np.ones(len(frame), dtype=bool)
        mask = np.zeros(len(frame), dtype=bool)
        pos = {idx: i for i, idx in enumerate(frame.index)}
        for k, g in _groups(frame, st["ids"], keep_index=True):
            if k in self.history:
                mask[[pos[i] for i in g.index]] = True
        return mask


_CALENDAR = ["year", "month", "day", "day_of_week", "hour"]


def forecast_importance(model: ForecastModel, df: pd.DataFrame, rows: int = 500) -> list[dict[str, Any]] | None:
    """Global importance of a lag-feature forecaster's inputs, by permutation (the mean drop in R2
    of its one-step predictions over 3 shuffles, up to ``rows`` rows of its training features,
    normalized to sum to 1): the raw columns (the time column: its calendar parts together; the
    series id column(s); the other numeric columns) and the derived features
    (``<target>_lag<k>``, ``<target>_rolling_mean<w>``, ``holiday``), best first.
    None for a statistical model (it reads only the target's own history: no features)."""
    if model.regressor is None:
        return None
    from sklearn.metrics import r2_score

    st = model.settings
    X, y = model._train_frame(df.sort_values([*st["ids"], st["time"]]))
    if len(X) < 2:
        return None
    rs = np.random.RandomState(0)
    pick = rs.choice(len(X), min(len(X), rows), replace=False)
    X, y = X.iloc[pick].reset_index(drop=True), y[pick]
    groups: dict[str, list[str]] = {st["time"]: _CALENDAR}
    if st["ids"]:
        groups[", ".join(st["ids"])] = ["series"]
    groups.update({c: [c] for c in st["numeric"]})
    groups.update({f"{st['target']}_lag{k}": [f"lag_{k}"] for k in st["lags"]})
    groups[f"{st['target']}_rolling_mean{st['window']}"] = [f"rolling_mean_{st['window']}"]
    if st.get("holidays"):
        groups["holiday"] = ["holiday"]
    base = float(r2_score(y, model.regressor.predict(X)))
    drops = {}
    for name, cols in groups.items():
        total = 0.0
        for _ in range(3):
            shuffled = X.copy()
            order = rs.permutation(len(X))
            for c in cols:
                shuffled[c] = X[c].to_numpy()[order]
            total += base - float(r2_score(y, model.regressor.predict(shuffled)))
        drops[name] = max(0.0, total / 3)
    norm = sum(drops.values()) or 1.0
    out = [{"feature": k, "importance": round(v / norm, 6)} for k, v in drops.items()]
    return sorted(out, key=lambda d: -d["importance"])


def _calendar(t: Any) -> dict[str, float]:
    t = pd.Timestamp(t)
    return {"year": t.year, "month": t.month, "day": t.day, "day_of_week": t.day_of_week, "hour": t.hour}


def _steps_after(last: pd.Timestamp, t: pd.Timestamp, freq: str) -> int:
    n = len(pd.date_range(last, t, freq=freq)) - 1
    return max(1, n)


def _groups(df: pd.DataFrame, ids: list[str], keep_index: bool = False) -> list[tuple[Any, pd.DataFrame]]:
    if not ids:
        return [("(one series)", df)]
    return [(k if len(ids) > 1 else (k[0] if isinstance(k, tuple) else k), g) for k, g in df.groupby(ids, sort=False)]


def _prepare(df: pd.DataFrame, settings: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    fc = settings.get("forecasting") or {}
    target, tcol, ids = settings["target"], fc["time_column_name"], _ids(fc)
    df = df.copy()
    df[tcol] = pd.to_datetime(df[tcol])
    df = df[df[target].notna()]
    agg = fc.get("target_aggregate_function")
    if agg and agg != "none":
        df = df.groupby([*ids, tcol], as_index=False).agg({target: agg})
    freq = fc.get("frequency") or infer_frequency(df, tcol, ids) or "D"
    season = _season(fc, freq)
    lags = fc.get("target_lags")
    lags = sorted({1, season}) if lags in (None, "auto") else ([lags] if isinstance(lags, int) else list(lags))
    window = fc.get("target_rolling_window_size")
    window = window if isinstance(window, int) else season
    numeric = [c for c in df.columns if c not in (target, tcol, *ids) and pd.api.types.is_numeric_dtype(df[c])]
    st = {"target": target, "time": tcol, "ids": ids, "freq": freq, "season": season, "lags": lags,
          "window": max(1, window), "numeric": numeric, "horizon": _horizon(fc),
          "holidays": fc.get("country_or_region_for_holidays"),
          "short_series_handling": fc.get("short_series_handling_config")}
    df = df.sort_values([*ids, tcol]).reset_index(drop=True)
    return handle_short_series(df, st, fc), st


def _make(settings: dict[str, Any], st: dict[str, Any]) -> ForecastModel:
    from openaml.automl._learners import STAT_MODELS

    if settings["algorithm"] in STAT_MODELS:
        return ForecastModel(settings["algorithm"], None, st)
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    from openaml.automl._trial import build_model

    num = [f"lag_{k}" for k in st["lags"]] + [f"rolling_mean_{st['window']}", "year", "month", "day",
                                                "day_of_week", "hour", *(["holiday"] if st.get("holidays") else []),
                                                *st["numeric"]]
    feat = ColumnTransformer([("num", SimpleImputer(strategy="median", keep_empty_features=True), num),
                              ("series", OneHotEncoder(handle_unknown="ignore"), ["series"])])
    reg = build_model(settings["flaml_learner"], dict(settings.get("config") or {}), "regression",
                      int(settings.get("n_jobs") or 1), feat)
    return ForecastModel(settings["algorithm"], reg, st)


def _origins(df: pd.DataFrame, st: dict[str, Any], settings: dict[str, Any]) -> list[pd.Timestamp]:
    fc = settings.get("forecasting") or {}
    cv = settings.get("n_cross_validations")
    k = int(cv) if isinstance(cv, int) else 3
    step = fc.get("cv_step_size")
    step = step if isinstance(step, int) else st["horizon"]
    times = pd.DatetimeIndex(sorted(df[st["time"]].unique()))
    out = []
    for i in range(k):
        pos = len(times) - st["horizon"] - i * step - 1
        if pos >= max(2, st["season"]):
            out.append(times[pos])
    return sorted(out)


def run_forecast_trial(settings: dict[str, Any], args: argparse.Namespace, deadline: float) -> int:
    from openaml.automl import _artifacts
    from openaml.automl._data import read_mltable
    from openaml.automl._metrics import regression_metrics

    t0 = time.time()
    df, st = _prepare(read_mltable(args.training_data), settings)
    ys, ps = [], []
    for origin in _origins(df, st, settings):
        if time.time() > deadline:
            raise TimeoutError("the trial's time limit was reached during validation")
        train = df[df[st["time"]] <= origin]
        future = df[df[st["time"]] > origin].groupby(st["ids"], group_keys=False).head(st["horizon"]) \
            if st["ids"] else df[df[st["time"]] > origin].head(st["horizon"])
        model = _make(settings, st).fit(train)
        future = future[model.known(future)]  # a series that starts after the origin has nothing to forecast from
        if future.empty:
            continue
        ps.append(model.predict(future.drop(columns=[st["target"]])))
        ys.append(future[st["target"]].to_numpy(dtype=float))
    if not ys:
        raise ValueError("the series are too short for one rolling-origin fold; give more history or a "
                         "shorter forecast_horizon")
    y_all, p_all = np.concatenate(ys), np.concatenate(ps)
    metrics = regression_metrics(y_all, p_all)
    final = _make(settings, st).fit(df)
    out = Path("outputs")
    out.mkdir(exist_ok=True)
    # the rolling-origin forecasts (every trial of the job has the same origins): for the ensembles
    np.savez_compressed(out / "oof.npz", pred=p_all, covered=np.ones(len(y_all), dtype=bool), y=y_all)
    if st.get("holidays"):
        settings = {**settings, "ensemble_learners": [settings.get("flaml_learner", ""), "holidays"]}
    X = df.drop(columns=[st["target"]])
    description = f"{settings['algorithm']} (horizon {st['horizon']}, lags {st['lags']}, frequency {st['freq']})"
    from openaml.automl._trial import sink, wants_full

    full = wants_full(settings, metrics)
    _artifacts.write_model_artifacts(out, final, X, settings, description, full=full)
    tags: dict[str, str] = {}
    if settings.get("explain") and full:
        explanation = forecast_importance(final, df)
        if explanation is None:  # said in the job's warnings when this trial is the best
            tags["automl_explanation_skipped"] = (f"{settings['algorithm']} forecasts from the target's own history "
                                                  "only: it has no features to explain")
        else:
            (out / "explanation").mkdir(exist_ok=True)
            (out / "explanation" / "global_importance.json").write_text(json.dumps(explanation, indent=1))
            tags["automl_feature_importance"] = json.dumps(explanation[:40])[:5000]
    sink().log_metrics(metrics)
    sink().log_params({"algorithm": settings["algorithm"], "forecast_horizon": st["horizon"],
                       "frequency": st["freq"], "seasonality": st["season"], "target_lags": json.dumps(st["lags"]),
                       **{f"hp.{k}": v for k, v in list((settings.get("config") or {}).items())[:60]}})
    sink().set_tags({"automl_algorithm": settings["algorithm"], "automl_pipeline": description,
                     "automl_trial_seconds": f"{time.time() - t0:.2f}", **tags})
    print(f"trial {settings['algorithm']}: {settings['metric']} = {metrics.get(settings['metric'])}")
    return 0
