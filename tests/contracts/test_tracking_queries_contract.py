"""The studio's queries of MLflow's tables (tracking/_queries.py) on every backend (SQLite, PostgreSQL):
a metric's series (whole when small, min/max per step range when big), several runs' series of several
metrics in one call, latest metrics and params of several runs, experiment names."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from openaml.tracking import Tracking, tracking_backend_url
from openaml.tracking import _queries as queries
from openaml.workspace import WorkspaceLayout
from tests.contracts.conftest import SQL_BACKENDS
from tests.contracts.test_tracking_contract import _settings


@pytest.fixture(scope="module", params=SQL_BACKENDS)
def tracking(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracking]:
    root = tmp_path_factory.mktemp(f"wsq-{request.param}")
    settings, _env = _settings(request.param, root, request)
    t = Tracking(WorkspaceLayout(root), backend_uri=tracking_backend_url(settings))
    t.start()
    yield t


def _run(t: Tracking, exp: str, metrics: dict[str, list[float]], params: dict[str, str] | None = None) -> str:
    from mlflow.entities import Metric, Param

    name = f"r_{uuid.uuid4().hex[:10]}"
    t.create_run(name, exp, run_name=name)
    ts = int(time.time() * 1000)
    t.store.log_batch(name, metrics=[Metric(k, v, ts, i) for k, vs in metrics.items() for i, v in enumerate(vs)],
                      params=[Param(k, v) for k, v in (params or {}).items()], tags=[])
    return name


def test_runs_series_reads_every_run_and_metric_in_order(tracking: Tracking) -> None:
    exp = f"cmp_{uuid.uuid4().hex[:6]}"
    a = _run(tracking, exp, {"loss": [3.0, 2.0, 1.0], "acc": [0.1, 0.2]}, {"lr": "0.1", "seed": "1"})
    b = _run(tracking, exp, {"loss": [5.0, 4.0]}, {"lr": "0.2", "seed": "1"})
    other = _run(tracking, exp, {"loss": [9.0] * 5})  # not asked for: never read
    series, sizes = tracking.runs_series([b, a], ["loss", "acc", "none"])
    assert list(series["loss"]) == [b, a]  # the order asked for
    assert series["loss"][a] == [(0.0, 3.0), (1.0, 2.0), (2.0, 1.0)] and series["loss"][b] == [(0.0, 5.0), (1.0, 4.0)]
    assert series["acc"] == {a: [(0.0, 0.1), (1.0, 0.2)]} and series["none"] == {}
    assert sizes["loss"] == {a: 3, b: 2} and other not in series["loss"]
    summ = tracking.run_summaries([a, b, "no_such_run"])
    assert summ[a] == {"metrics": {"loss": 1.0, "acc": 0.2}, "params": {"lr": "0.1", "seed": "1"}}
    assert summ["no_such_run"] == {"metrics": {}, "params": {}}
    assert exp in tracking.experiment_names() and "Default" not in tracking.experiment_names()


def test_a_big_series_is_reduced_to_each_step_range_min_and_max(tracking: Tracking, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    monkeypatch.setattr(queries, "SQL_REDUCE_FROM", 100)  # a small threshold instead of 20,000 points
    values = [1.0] * 1000
    values[537] = 50.0  # a spike
    values[800] = -7.0  # a dip
    run = _run(tracking, f"big_{uuid.uuid4().hex[:6]}", {"loss": values})
    points, n = tracking.metric_series(run, "loss", buckets=50)
    assert n == 1000 and len(points) <= 100
    assert max(v for _, v in points) == 50.0 and min(v for _, v in points) == -7.0
    assert points[0][0] == 0.0 and points[-1][0] == 999.0
    series, sizes = tracking.runs_series([run], ["loss"], buckets=50)
    assert sizes["loss"][run] == 1000 and series["loss"][run] == points
