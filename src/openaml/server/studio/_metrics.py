"""A metric's series for a chart, reduced in SQL when it is big.

MLflow's ``get_metric_history`` builds one object per point (seconds for 1,000,000 points). Below
:data:`SQL_REDUCE_FROM` points the studio reads the whole series; above, it asks the tracking
database for each of ``buckets`` step ranges' minimum and maximum (one ``GROUP BY`` query), so the
chart keeps every spike and dip while the server reads a few thousand rows, then LTTB
(:func:`openaml.server.studio._charts.downsample`) brings it to the chart's size.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

__all__ = ["metric_series", "SQL_REDUCE_FROM"]

SQL_REDUCE_FROM = 20_000
_CACHE_SIZE = 64  # reduced big series, keyed by their latest point (a finished run's series never changes)
_CACHE: dict[tuple[Any, ...], tuple[list[tuple[float, float]], int]] = {}


def metric_series(tracking: Any, run_id: str, key: str, buckets: int = 2000) -> tuple[list[tuple[float, float]], int]:
    """``(points, n)``: the ``(step, value)`` points to draw and the series' full size ``n``.

    One pass over the series in SQL: steps are cut into ``buckets`` ranges up to the metric's latest
    step (MLflow's ``latest_metrics``; later steps only add ranges) and each range gives its count,
    minimum and maximum. A series of at most :data:`SQL_REDUCE_FROM` points is then read whole; a
    bigger one is drawn from each range's minimum and maximum (at its first and last step), so every
    spike and dip stays. NaN values are left out."""
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric

    with tracking.store.ManagedSessionMaker() as session:
        base = (SqlMetric.run_uuid == run_id, SqlMetric.key == key, SqlMetric.is_nan.is_(False))
        latest = session.execute(select(SqlLatestMetric.step, SqlLatestMetric.timestamp, SqlLatestMetric.value)
                                 .where(SqlLatestMetric.run_uuid == run_id, SqlLatestMetric.key == key)).first()
        last = latest[0] if latest else 0
        cache_key = (id(tracking), run_id, key, buckets, tuple(latest) if latest else None)
        if cache_key in _CACHE:  # a series whose latest point did not change: the same reduction
            return _CACHE[cache_key]
        width = max(1, (max(0, int(last or 0)) + 1) // buckets + 1)
        bucket = (SqlMetric.step // width).label("b")  # integer buckets
        q = (select(bucket, func.count(), func.min(SqlMetric.step), func.max(SqlMetric.step),
                    func.min(SqlMetric.value), func.max(SqlMetric.value))
             .where(*base).group_by(bucket).order_by(bucket))
        groups = session.execute(q).all()
        n = sum(int(g[1]) for g in groups)
        if n <= SQL_REDUCE_FROM:
            rows = session.execute(select(SqlMetric.step, SqlMetric.value).where(*base)
                                   .order_by(SqlMetric.step, SqlMetric.timestamp)).all()
            return [(float(s), float(v)) for s, v in rows], n
        points: list[tuple[float, float]] = []
        for _, _, s0, s1, vmin, vmax in groups:
            # the range's envelope: its minimum and maximum, at its first and last step
            points.append((float(s0), float(vmin)))
            if s1 != s0 or vmax != vmin:
                points.append((float(s1), float(vmax)))
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[cache_key] = (points, n)
        return points, n


def many_series(tracking: Any, run_ids: list[str], key: str, buckets: int = 300) -> tuple[
        dict[str, list[tuple[float, float]]], dict[str, int]]:
    """Series of ``key`` for several runs (comparing runs): one query for all runs' counts, one for the
    points of the runs with at most :data:`SQL_REDUCE_FROM` points; bigger ones as :func:`metric_series`."""
    from mlflow.store.tracking.dbmodels.models import SqlMetric

    series: dict[str, list[tuple[float, float]]] = {}
    sizes: dict[str, int] = {}
    if not run_ids:
        return series, sizes
    with tracking.store.ManagedSessionMaker() as session:
        base = (SqlMetric.run_uuid.in_(run_ids), SqlMetric.key == key, SqlMetric.is_nan.is_(False))
        for run, n in session.execute(select(SqlMetric.run_uuid, func.count()).where(*base)
                                      .group_by(SqlMetric.run_uuid)).all():
            sizes[str(run)] = int(n)
        small = [r for r in run_ids if 0 < sizes.get(r, 0) <= SQL_REDUCE_FROM]
        if small:
            q = (select(SqlMetric.run_uuid, SqlMetric.step, SqlMetric.value)
                 .where(SqlMetric.run_uuid.in_(small), SqlMetric.key == key, SqlMetric.is_nan.is_(False))
                 .order_by(SqlMetric.run_uuid, SqlMetric.step, SqlMetric.timestamp))
            for run, step, value in session.execute(q).all():
                series.setdefault(str(run), []).append((float(step), float(value)))
    for r in run_ids:
        if sizes.get(r, 0) > SQL_REDUCE_FROM:
            series[r], sizes[r] = metric_series(tracking, r, key, buckets)
    return {r: series[r] for r in run_ids if r in series}, sizes


def run_summaries(tracking: Any, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """``{run_id: {"metrics": latest values, "params": ...}}`` of several runs in a few queries
    (MLflow's latest_metrics and params tables); runs that do not exist are empty."""
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlParam

    out: dict[str, dict[str, Any]] = {r: {"metrics": {}, "params": {}} for r in run_ids}
    if not run_ids:
        return out
    with tracking.store.ManagedSessionMaker() as session:
        for run, key, value in session.execute(select(SqlLatestMetric.run_uuid, SqlLatestMetric.key,
                                                      SqlLatestMetric.value)
                                               .where(SqlLatestMetric.run_uuid.in_(run_ids))).all():
            out[str(run)]["metrics"][str(key)] = float(value)
        for run, key, value in session.execute(select(SqlParam.run_uuid, SqlParam.key, SqlParam.value)
                                               .where(SqlParam.run_uuid.in_(run_ids))).all():
            out[str(run)]["params"][str(key)] = value
    return out
