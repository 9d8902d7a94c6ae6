"""Forecasting (spec 6.2): frequency inference and the forecasting guardrails (filled in by the
forecasting trial module below)."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["infer_frequency", "forecast_guardrails", "run_forecast_trial"]


def infer_frequency(df: pd.DataFrame, time_col: str, ids: list[str]) -> str | None:
    """The pandas frequency of the time column (the first series with 3+ rows that has one), or None."""
    groups = [g for _, g in df.groupby(ids)] if ids else [df]
    for g in groups:
        t = pd.DatetimeIndex(pd.to_datetime(g[time_col]).sort_values().unique())
        if len(t) >= 3:
            freq = pd.infer_freq(t)
            if freq:
                return str(freq)
    return None


def forecast_guardrails(df: pd.DataFrame, fc: dict[str, Any]) -> list[dict[str, Any]]:
    return []


def run_forecast_trial(settings: dict[str, Any], args: Any, deadline: float) -> int:
    raise NotImplementedError("forecasting trials")
