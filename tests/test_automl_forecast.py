"""Forecasting AutoML (issue 14 item 6): AutoArima (pmdarima) and Prophet per series, holiday
features (the holidays package, ``country_or_region_for_holidays``), and forecasting ensembles."""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pytest

from tests.test_automl import _series

_FC = {"time_column_name": "date", "time_series_id_column_names": ["store"], "forecast_horizon": 7}


def _split(settings: dict[str, Any]) -> tuple[Any, dict[str, Any], pd.DataFrame, pd.DataFrame]:
    from openaml.automl._forecast import _prepare

    frame, st = _prepare(_series(n=84), settings)
    cut = frame["date"].max() - pd.Timedelta(days=7)
    return frame, st, frame[frame["date"] <= cut], frame[frame["date"] > cut]


@pytest.mark.parametrize("algorithm", ["AutoArima", "Prophet"])
def test_library_models_forecast_each_series(algorithm: str) -> None:
    from openaml.automl._forecast import _make

    settings = {"target": "sales", "algorithm": algorithm, "flaml_learner": algorithm,
                "forecasting": {**_FC, "country_or_region_for_holidays": "US"}}
    _, st, train, future = _split(settings)
    model = _make(settings, st).fit(train)
    assert set(model.fitted) == {"a", "b"}  # one fitted model per series
    out = model.forecast(future.drop(columns=["sales"]))
    err = np.abs(out["sales_forecast"].to_numpy() - future["sales"].to_numpy()).mean()
    assert len(out) == 14 and err < 1.5, err  # the weekly cycle has amplitude 3
    again = pickle.loads(cloudpickle.dumps(model))  # the model.pkl a deployment loads
    assert np.allclose(again.predict(future.drop(columns=["sales"])), out["sales_forecast"].to_numpy())


def test_holiday_features_flag_the_countrys_holidays() -> None:
    from openaml.automl._forecast import _make

    settings = {"target": "sales", "algorithm": "LightGBM", "flaml_learner": "lgbm",
                "config": {"n_estimators": 30, "num_leaves": 8, "min_child_samples": 5},
                "forecasting": {**_FC, "country_or_region_for_holidays": "US"}}
    _, st, train, future = _split(settings)
    model = _make(settings, st).fit(train)
    X, _ = model._train_frame(train)
    mlk = X["year"].eq(2024) & X["month"].eq(1) & X["day"].eq(15)  # Martin Luther King Jr. Day
    assert mlk.sum() == 2 and X.loc[mlk, "holiday"].eq(1).all()  # both series
    assert X.loc[X["month"].eq(1) & X["day"].eq(16), "holiday"].eq(0).all()
    assert len(model.forecast(future.drop(columns=["sales"]))) == 14


def test_named_forecasting_models_and_holidays_are_checked() -> None:
    from openaml.automl._learners import learners_for
    from openaml.entities._automl import AutoMLJob, automl_problems

    names, problems = learners_for("forecasting", ["AutoArima", "Prophet"], None)
    assert names == ["AutoArima", "Prophet"] and not problems
    names, _ = learners_for("forecasting", None, None)
    assert names[:2] == ["Naive", "SeasonalNaive"] and names[-2:] == ["AutoArima", "Prophet"]
    job = AutoMLJob.model_validate({"task": "forecasting", "target_column_name": "sales",
                                    "training_data": {"type": "mltable", "path": "./d"},
                                    "forecasting": {**_FC, "country_or_region_for_holidays": "Atlantis"}})
    problems, notes = automl_problems(job)
    assert any("country_or_region_for_holidays': 'Atlantis'" in p for p in problems), problems
    job.forecasting.country_or_region_for_holidays = "GB"
    problems, notes = automl_problems(job)
    assert not problems and not any("holiday" in n for n in notes)


def test_forecasting_vote_ensemble_forecasts_the_weighted_mean() -> None:
    from openaml.automl._ensemble import EnsembleModel
    from openaml.automl._forecast import _make

    base = {"target": "sales", "forecasting": _FC}
    _, st, train, future = _split({**base, "algorithm": "Naive", "flaml_learner": "Naive"})
    members = [_make({**base, "algorithm": a, "flaml_learner": a}, st).fit(train)
               for a in ("SeasonalNaive", "Average")]
    ens = EnsembleModel(members, "forecasting", None, [3.0, 1.0])
    rows = future.drop(columns=["sales"])
    expected = 0.75 * members[0].predict(rows) + 0.25 * members[1].predict(rows)
    out = ens.forecast(rows)
    assert np.allclose(out["sales_forecast"].to_numpy(), expected)
