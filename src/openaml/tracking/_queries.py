"""Read-only queries of MLflow's tables for charts and run comparison, reduced in SQL.

MLflow's ``get_metric_history`` builds one object per point (seconds for 1,000,000 points) and its
``search_runs`` loads every field of every run. The studio needs a metric's series reduced to a
chart's size and the latest metrics and params of up to a few hundred runs, so these read MLflow's
SQL tables (``metrics``, ``latest_metrics``, ``params``, ``experiments``) directly, a few queries
whatever the sizes. :class:`openaml.tracking.Tracking` has these methods (it inherits this mixin).

Reduction: below :data:`SQL_REDUCE_FROM` points a series is read whole; above, the tracking database
gives each of ``buckets`` step ranges' minimum and maximum (one ``GROUP BY`` query), so the chart keeps
every spike and dip while the server reads a few thousand rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, tuple_

__all__ = ["TrackingQueries", "SQL_REDUCE_FROM", "Series"]

SQL_REDUCE_FROM = 20_000
Series = list[tuple[float, float]]
_CACHE_SIZE = 64  # reduced big series, keyed by their latest point (a finished run's series never changes)
_CACHE: dict[tuple[Any, ...], tuple[Series, int]] = {}


class TrackingQueries:
    """The studio's queries of MLflow's tables; mixed into :class:`openaml.tracking.Tracking`."""

    @property
    def store(self) -> Any:  # provided by Tracking: MLflow's SqlAlchemyStore
        raise NotImplementedError

    def experiment_names(self) -> list[str]:
        """Names of the active experiments (MLflow's experiments table), sorted; ``Default`` left out."""
        from mlflow.store.tracking.dbmodels.models import SqlExperiment

        with self.store.ManagedSessionMaker() as session:
            q: Any = select(SqlExperiment.name).where(SqlExperiment.lifecycle_stage == "active")
            return sorted(str(n) for n in session.scalars(q) if n != "Default")

    def metric_series(self, run_id: str, key: str, buckets: int = 2000) -> tuple[Series, int]:
        """``(points, n)``: the ``(step, value)`` points of metric ``key`` of run ``run_id`` to draw
        and the series' full size ``n`` (NaN values left out; an unknown run or key: ``([], 0)``).

        Steps are cut into ``buckets`` ranges up to the metric's latest step (MLflow's
        ``latest_metrics``) and each range gives its count, minimum and maximum. A series of at most
        :data:`SQL_REDUCE_FROM` points is then read whole; a bigger one is each range's minimum and
        maximum (at its first and last step), cached until its latest point changes."""
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric

        with self.store.ManagedSessionMaker() as session:
            base = (SqlMetric.run_uuid == run_id, SqlMetric.key == key, SqlMetric.is_nan.is_(False))
            latest = session.execute(select(SqlLatestMetric.step, SqlLatestMetric.timestamp, SqlLatestMetric.value)
                                     .where(SqlLatestMetric.run_uuid == run_id, SqlLatestMetric.key == key)).first()
            last = latest[0] if latest else 0
            cache_key = (id(self), run_id, key, buckets, tuple(latest) if latest else None)
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
            points: Series = []
            for _, _, s0, s1, vmin, vmax in groups:
                points.append((float(s0), float(vmin)))  # the range's envelope
                if s1 != s0 or vmax != vmin:
                    points.append((float(s1), float(vmax)))
            while len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[cache_key] = (points, n)
            return points, n

    def runs_series(self, run_ids: list[str], keys: list[str], buckets: int = 300) -> tuple[
            dict[str, dict[str, Series]], dict[str, dict[str, int]]]:
        """Series of several metrics of several runs (comparing runs): ``({key: {run: points}},
        {key: {run: n}})``, runs in the order given, only the pairs that have points.

        Two queries for all runs and keys: the size of every (run, key) series (one ``GROUP BY``),
        then the points of all series of at most :data:`SQL_REDUCE_FROM` points in one ordered scan;
        a bigger series is reduced as :meth:`metric_series` does."""
        from mlflow.store.tracking.dbmodels.models import SqlMetric

        series: dict[str, dict[str, Series]] = {k: {} for k in keys}
        sizes: dict[str, dict[str, int]] = {k: {} for k in keys}
        if not run_ids or not keys:
            return series, sizes
        with self.store.ManagedSessionMaker() as session:
            base = (SqlMetric.run_uuid.in_(run_ids), self._key_in(keys), SqlMetric.is_nan.is_(False))
            counts = (select(SqlMetric.run_uuid, SqlMetric.key, func.count())
                      .where(*base).group_by(SqlMetric.run_uuid, SqlMetric.key))
            for run, key, n in session.connection().execute(counts).all():
                sizes[str(key)][str(run)] = int(n)
            small = [(r, k) for k in keys for r, n in sizes[k].items() if 0 < n <= SQL_REDUCE_FROM]
            if small:
                q = (select(SqlMetric.key, SqlMetric.run_uuid, SqlMetric.step, SqlMetric.value).where(*base)
                     .order_by(SqlMetric.run_uuid, SqlMetric.key, SqlMetric.step, SqlMetric.timestamp))
                if len(small) < sum(len(v) for v in sizes.values()):
                    q = q.where(tuple_(SqlMetric.run_uuid, SqlMetric.key).in_(small))
                cur_key = cur_run = None
                pts: Series = []
                for key, run, step, value in session.connection().execute(q).all():  # Core rows: no ORM loading
                    if key != cur_key or run != cur_run:
                        cur_key, cur_run = key, run
                        pts = series[str(key)].setdefault(str(run), [])
                    pts.append((float(step), float(value)))
        for k in keys:
            for r, n in sizes[k].items():
                if n > SQL_REDUCE_FROM:
                    series[k][r], sizes[k][r] = self.metric_series(r, k, buckets)
        order = {r: i for i, r in enumerate(run_ids)}
        return ({k: dict(sorted(v.items(), key=lambda kv: order.get(kv[0], 0))) for k, v in series.items()},
                sizes)

    def _key_in(self, keys: list[str]) -> Any:
        """``key IN (keys)`` that SQLite cannot answer from the primary key's ``key`` prefix.

        Given ``run_uuid IN (...) AND key IN (...)``, SQLite's planner picks the primary key (``key``
        first), which reads every run's points of those keys: one 1,000,000-point run of ``loss``
        made comparing 100 other runs' ``loss`` take seconds. Comparing ``key || ''`` leaves it
        MLflow's ``(run_uuid, key, step)`` index, which reads only the runs asked for. PostgreSQL's
        planner weighs both indexes by their statistics and gets the plain comparison."""
        from mlflow.store.tracking.dbmodels.models import SqlMetric

        if self.store.engine.dialect.name == "sqlite":
            return SqlMetric.key.concat("").in_(keys)
        return SqlMetric.key.in_(keys)

    def run_summaries(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """``{run_id: {"metrics": {key: latest value}, "params": {key: value}}}`` of several runs in
        two queries (MLflow's ``latest_metrics`` and ``params``); runs that do not exist are empty."""
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlParam

        out: dict[str, dict[str, Any]] = {r: {"metrics": {}, "params": {}} for r in run_ids}
        if not run_ids:
            return out
        with self.store.ManagedSessionMaker() as session:
            for run, key, value in session.execute(select(SqlLatestMetric.run_uuid, SqlLatestMetric.key,
                                                          SqlLatestMetric.value)
                                                   .where(SqlLatestMetric.run_uuid.in_(run_ids))).all():
                out[str(run)]["metrics"][str(key)] = float(value)
            for run, key, value in session.execute(select(SqlParam.run_uuid, SqlParam.key, SqlParam.value)
                                                   .where(SqlParam.run_uuid.in_(run_ids))).all():
                out[str(run)]["params"][str(key)] = value
        return out
