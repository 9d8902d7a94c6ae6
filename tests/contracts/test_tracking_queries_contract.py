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
    points = [Metric(k, v, ts, i) for k, vs in metrics.items() for i, v in enumerate(vs)]
    for start in range(0, max(1, len(points)), 1000):  # MLflow takes at most 1,000 metrics per batch
        t.store.log_batch(name, metrics=points[start:start + 1000],
                          params=[Param(k, v) for k, v in (params or {}).items()] if start == 0 else [], tags=[])
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
    assert n == 1000 and len(points) <= 200
    assert max(v for _, v in points) == 50.0 and min(v for _, v in points) == -7.0
    assert points[0][0] == 0.0 and points[-1][0] == 999.0
    series, sizes = tracking.runs_series([run], ["loss"], buckets=50)
    assert sizes["loss"][run] == 1000 and series["loss"][run] == points


def test_m4_keeps_every_range_min_max_and_the_series_ends(tracking: Tracking, monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """A generated series with spikes and dips in many ranges: every range's minimum and maximum and
    its first and last point are drawn (M4), the series' first and last points exactly."""
    import random

    monkeypatch.setattr(queries, "SQL_REDUCE_FROM", 100)
    rnd = random.Random(15)
    values = [10.0 / (i + 1) + rnd.uniform(-0.01, 0.01) for i in range(3000)]
    for i in range(7, 3000, 97):
        values[i] = 100.0 + i if i % 2 else -100.0 - i  # spikes up and dips down all along
    values[0], values[-1] = 42.5, -3.25
    run = _run(tracking, f"m4_{uuid.uuid4().hex[:6]}", {"loss": values})
    points, n = tracking.metric_series(run, "loss", buckets=60)
    assert n == 3000 and len(points) <= 4 * 61
    assert points[0] == (0.0, 42.5) and points[-1] == (2999.0, -3.25)
    assert [p[0] for p in points] == sorted(p[0] for p in points)  # in step order
    width = 3000 // 60 + 1
    drawn = set(v for _, v in points)
    for b in range(0, 3000, width):
        chunk = values[b:b + width]
        assert {min(chunk), max(chunk), chunk[0], chunk[-1]} <= drawn, b
    # a restart (a new Tracking of the same workspace, memory cache emptied) reads the saved reduction
    monkeypatch.setattr(queries, "_CACHE", {})
    saved = list((tracking.layout.root / "cache" / "metric-series").glob("*.json"))
    assert saved
    again = Tracking(tracking.layout, backend_uri=tracking.backend_uri)
    again.start()
    assert again.metric_series(run, "loss", buckets=60) == (points, n)


def test_the_series_queries_use_the_run_key_step_index(tracking: Tracking) -> None:
    """The bucket and point queries read one series through MLflow's (run_uuid, key, step) index, not
    the primary key's ``key`` prefix (which reads that key's points of every run). SQLite: EXPLAIN
    QUERY PLAN names the index; PostgreSQL: EXPLAIN names an index scan of it when sequential scans
    are off (the planner may prefer a sequential scan of a tiny table)."""
    from sqlalchemy import bindparam, text

    engine = tracking.store.engine
    dialect = engine.dialect.name
    args = {"run": "some_run", "key": "loss", "nan": False}
    with engine.connect() as conn:
        if dialect != "sqlite":
            conn.execute(text("SET enable_seqscan = off"))
        for q, params in ((queries.series_buckets_query(dialect), {**args, "width": 500}),
                          (queries.series_points_query(dialect), args),
                          (queries.series_points_query(dialect, at_steps=True), {**args, "steps": [0, 9]})):
            explain = text(("EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN ") + q.text)
            if "steps" in params:
                explain = explain.bindparams(bindparam("steps", expanding=True))
            rows = conn.execute(explain, params).all()
            if dialect == "sqlite":
                plan = " ".join(str(r[-1]) for r in rows)
                assert "USING INDEX index_metrics_run_uuid_key_step (run_uuid=? AND key=?" in plan, plan
            else:
                plan = " ".join(str(r[0]) for r in rows)
                assert "index_metrics_run_uuid_key_step" in plan, plan
        if dialect != "sqlite":
            conn.execute(text("SET enable_seqscan = on"))
