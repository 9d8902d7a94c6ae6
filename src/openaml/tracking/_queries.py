"""Read-only queries of MLflow's tables for charts and run comparison, reduced in SQL.

MLflow's ``get_metric_history`` builds one object per point (seconds for 1,000,000 points) and its
``search_runs`` loads every field of every run. The studio needs a metric's series reduced to a
chart's size and the latest metrics and params of up to a few hundred runs, so these read MLflow's
SQL tables (``metrics``, ``latest_metrics``, ``params``, ``experiments``) directly, a few queries
whatever the sizes. :class:`openaml.tracking.Tracking` has these methods (it inherits this mixin).

Reduction: below :data:`SQL_REDUCE_FROM` points a series is read whole; above, the tracking database
gives each of ``buckets`` step ranges' first and last step, minimum and maximum (one ``GROUP BY``
query), then the ranges' first and last values (index seeks by step): M4, so the chart keeps every
spike, dip and both ends while a few thousand rows leave the database. The reduction is cached in
memory and in the workspace (``cache/metric-series/``), so a server restart does not scan it again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import TextClause, bindparam, func, select, text, tuple_

__all__ = ["TrackingQueries", "SQL_REDUCE_FROM", "Series", "m4_points", "series_buckets_query", "series_points_query"]

SQL_REDUCE_FROM = 20_000
Series = list[tuple[float, float]]
_CACHE_SIZE = 64  # reduced big series, keyed by their latest point (a finished run's series never changes)
_CACHE: dict[tuple[Any, ...], tuple[Series, int]] = {}


def _remember(key: tuple[Any, ...], value: tuple[Series, int]) -> None:
    while len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = value


def _metrics_from(dialect: str) -> str:
    """MLflow's ``metrics`` table, read through its ``(run_uuid, key, step)`` index. SQLite's planner
    prefers the primary key ``(key, timestamp, step, run_uuid, value, is_nan)`` for ``key = ?``
    (it covers every column) and so reads that key's points of every run: one 1,000,000-point run's
    ``loss`` made every other run's ``loss`` chart scan it. ``INDEXED BY`` pins the right index;
    PostgreSQL's planner weighs both by their statistics and picks it."""
    return "metrics INDEXED BY index_metrics_run_uuid_key_step" if dialect == "sqlite" else "metrics"


def series_buckets_query(dialect: str) -> TextClause:
    """``(bucket, count, first step, last step, min value, max value)`` of the points of metric
    ``:key`` of run ``:run`` cut into step ranges of ``:width`` steps (bucket ``step / :width``,
    integer division), NaN values left out, in bucket order: one ``GROUP BY`` over the series' rows
    of the ``(run_uuid, key, step)`` index; only the ranges' rows leave the database."""
    return text(f'SELECT step / :width AS b, count(*), min(step), max(step), min(value), max(value) '
                f'FROM {_metrics_from(dialect)} WHERE run_uuid = :run AND "key" = :key AND is_nan = :nan '
                f'GROUP BY step / :width ORDER BY b')


def series_points_query(dialect: str, *, at_steps: bool = False) -> TextClause:
    """``(step, value)`` of metric ``:key`` of run ``:run`` in step (then time) order, NaN values left
    out; ``at_steps``: only at the steps ``:steps`` (a list: index seeks)."""
    q = text(f'SELECT step, value FROM {_metrics_from(dialect)} WHERE run_uuid = :run AND "key" = :key '
             f'AND is_nan = :nan{" AND step IN :steps" if at_steps else ""} ORDER BY step, timestamp')
    return q.bindparams(bindparam("steps", expanding=True)) if at_steps else q


def m4_points(ranges: list[tuple[int, int, float, float, float, float]]) -> Series:
    """The points to draw of step ranges ``(first step, last step, min, max, first value, last value)``
    in step order (M4): each range's first point, its minimum and maximum inside the range (the one
    nearer the first value first, at a third and two thirds of the range: a range is narrower than a
    pixel column, 2,000 ranges over a chart a few hundred pixels wide), its last point; a value
    already drawn in the range is not repeated."""
    out: Series = []
    for s0, s1, lo, hi, first, last in ranges:
        pts = [(float(s0), first)]
        inner = (lo, hi) if abs(first - lo) <= abs(first - hi) else (hi, lo)
        span = s1 - s0
        for j, v in enumerate(inner, start=1):
            if v not in (first, last) and v not in [p[1] for p in pts]:
                pts.append((s0 + span * j / 3, v))
        if s1 != s0 or last != first:
            pts.append((float(s1), last))
        out.extend(pts)
    return out


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
        ``latest_metrics``) and each range gives its count, first and last step, minimum and maximum
        (one ``GROUP BY`` through MLflow's ``(run_uuid, key, step)`` index). A series
        of at most :data:`SQL_REDUCE_FROM` points is then read whole; a bigger one becomes M4 (Jugel et
        al. 2014): each range's first and last point (read by step, an index seek each) and its minimum
        and maximum between them, so every spike, dip and the series' ends survive while a few
        thousand rows leave the database. The reduction of a big series is kept in memory and in the
        workspace (``cache/metric-series/``, keyed by the series' latest point, which a finished run
        never changes), so the first view after a server start reads one small file."""
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric

        with self.store.ManagedSessionMaker() as session:
            latest = session.execute(select(SqlLatestMetric.step, SqlLatestMetric.timestamp, SqlLatestMetric.value)
                                     .where(SqlLatestMetric.run_uuid == run_id, SqlLatestMetric.key == key)).first()
            last = latest[0] if latest else 0
            cache_key = (id(self), run_id, key, buckets, tuple(latest) if latest else None)
            if cache_key in _CACHE:  # a series whose latest point did not change: the same reduction
                return _CACHE[cache_key]
            saved = self._saved_series(cache_key[1:])
            if saved is not None:
                _remember(cache_key, saved)
                return saved
            width = max(1, (max(0, int(last or 0)) + 1) // buckets + 1)
            dialect = self.store.engine.dialect.name
            args = {"run": run_id, "key": key, "nan": False}
            groups = session.execute(series_buckets_query(dialect), {**args, "width": width}).all()
            n = sum(int(g[1]) for g in groups)
            if n <= SQL_REDUCE_FROM:
                rows = session.execute(series_points_query(dialect), args).all()
                return [(float(s), float(v)) for s, v in rows], n
            ends: dict[int, list[float]] = {}
            steps = sorted({int(g[2]) for g in groups} | {int(g[3]) for g in groups})
            for i in range(0, len(steps), 500):  # each range's first and last point: seeks by step
                for step, value in session.execute(series_points_query(dialect, at_steps=True),
                                                   {**args, "steps": steps[i:i + 500]}).all():
                    ends.setdefault(int(step), []).append(float(value))
        points = m4_points([(int(s0), int(s1), float(lo), float(hi), ends[int(s0)][0], ends[int(s1)][-1])
                            for _, _, s0, s1, lo, hi in groups])
        _remember(cache_key, (points, n))
        self._save_series(cache_key[1:], (points, n))
        return points, n

    def _series_file(self, key: tuple[Any, ...]) -> Path | None:
        layout = getattr(self, "layout", None)
        if layout is None:
            return None
        digest = hashlib.sha256(json.dumps(key, default=str).encode()).hexdigest()[:32]
        return Path(layout.root) / "cache" / "metric-series" / f"{digest}.json"

    def _saved_series(self, key: tuple[Any, ...]) -> tuple[Series, int] | None:
        path = self._series_file(key)
        try:
            data = json.loads(path.read_text()) if path is not None else None
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != json.loads(json.dumps(key, default=str)):
            return None  # a digest collision or a file of another format: reduce again
        return [(float(x), float(y)) for x, y in data["points"]], int(data["n"])

    def _save_series(self, key: tuple[Any, ...], value: tuple[Series, int]) -> None:
        path = self._series_file(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"key": json.loads(json.dumps(key, default=str)), "points": value[0],
                                       "n": value[1]}))
            os.replace(tmp, path)  # readers see the whole file or none
        except OSError:  # a read-only workspace: the in-memory cache still serves this process
            pass

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
