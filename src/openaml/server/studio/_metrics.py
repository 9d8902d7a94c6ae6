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


def metric_series(tracking: Any, run_id: str, key: str, buckets: int = 2000) -> tuple[list[tuple[float, float]], int]:
    """``(points, n)``: the ``(step, value)`` points to draw and the series' full size ``n``.

    Only the latest value logged at each step counts as MLflow's history does (several values at one
    step all appear; the chart shows them as a vertical stroke). NaN values are left out."""
    from mlflow.store.tracking.dbmodels.models import SqlMetric

    store = tracking.store
    with store.ManagedSessionMaker() as session:
        base = (SqlMetric.run_uuid == run_id, SqlMetric.key == key, SqlMetric.is_nan.is_(False))
        n = int(session.scalar(select(func.count()).select_from(SqlMetric).where(*base)) or 0)
        if n <= SQL_REDUCE_FROM:
            rows = session.execute(select(SqlMetric.step, SqlMetric.value).where(*base)
                                   .order_by(SqlMetric.step, SqlMetric.timestamp)).all()
            return [(float(s), float(v)) for s, v in rows], n
        lo, hi = session.execute(select(func.min(SqlMetric.step), func.max(SqlMetric.step)).where(*base)).one()
        width = max(1, (int(hi) - int(lo) + 1) // buckets + 1)
        bucket = ((SqlMetric.step - int(lo)) / width).label("b")
        q = (select(bucket, func.min(SqlMetric.step), func.max(SqlMetric.step), func.min(SqlMetric.value),
                    func.max(SqlMetric.value)).where(*base).group_by(bucket).order_by(bucket))
        points: list[tuple[float, float]] = []
        for _, s0, s1, vmin, vmax in session.execute(q).all():
            # the bucket's envelope: its minimum and maximum, at its first and last step
            points.append((float(s0), float(vmin)))
            if s1 != s0 or vmax != vmin:
                points.append((float(s1), float(vmax)))
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
