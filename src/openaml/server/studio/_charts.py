"""Charts drawn on the server as inline SVG: metric lines (downsampled) and parallel coordinates.

Drawing on the server keeps the page light at any series size: a 1,000,000-point metric becomes at
most ``max_points`` points (LTTB, Steinarsson 2013, plus each bucket's minimum and maximum so that
spikes survive) before any byte reaches the browser. Every text that comes from users (metric and
run names) is escaped by the templates that embed these shapes; this module returns numbers only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["downsample", "line_chart", "parallel_coordinates", "trial_chart"]

Point = tuple[float, float]


def downsample(points: Sequence[Point], max_points: int = 1000) -> list[Point]:
    """Reduce ``(step, value)`` points, sorted by step, to about ``max_points``.

    Largest-Triangle-Three-Buckets picks the visually dominant point of each bucket; the bucket's
    minimum and maximum values are kept as well (so a spike or a dip is never lost), in step order.
    Returns the points unchanged when there are ``max_points`` or fewer. NaN/inf values are dropped.
    """
    pts = [(float(x), float(y)) for x, y in points if math.isfinite(y)]
    n = len(pts)
    if n <= max_points or max_points < 3:
        return pts
    buckets = max(1, (max_points - 2) // 3)  # each bucket gives up to 3 points (LTTB, min, max)
    size = (n - 2) / buckets
    out: list[Point] = [pts[0]]
    a = 0
    for i in range(buckets):
        start = int(i * size) + 1
        end = min(int((i + 1) * size) + 1, n - 1)
        if end <= start:
            continue
        nstart, nend = end, min(int((i + 2) * size) + 1, n)
        if nend > nstart:
            avg_x = sum(p[0] for p in pts[nstart:nend]) / (nend - nstart)
            avg_y = sum(p[1] for p in pts[nstart:nend]) / (nend - nstart)
        else:
            avg_x, avg_y = pts[-1]
        ax, ay = pts[a]
        best, best_area = start, -1.0
        lo = hi = start
        for j in range(start, end):
            x, y = pts[j]
            area = abs((ax - avg_x) * (y - ay) - (ax - x) * (avg_y - ay))
            if area > best_area:
                best, best_area = j, area
            if y < pts[lo][1]:
                lo = j
            if y > pts[hi][1]:
                hi = j
        for j in sorted({best, lo, hi}):
            out.append(pts[j])
        a = best
    out.append(pts[-1])
    return out


def _scale(lo: float, hi: float, a: float, b: float) -> Any:
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def line_chart(series: Mapping[str, Sequence[Point]], *, width: int = 560, height: int = 220,
               max_points: int = 1000, sizes: dict[str, int] | None = None) -> dict[str, Any]:
    """Shapes of one chart with one polyline per series (several runs overlaid).

    Returns ``{"width", "height", "lines": [{"label", "points": "x,y x,y ...", "color", "n", "shown"}],
    "x_range": (min, max), "y_range": (min, max)}``: ``n`` is the series' size, ``shown`` how many points
    were drawn after :func:`downsample` (``sizes``: the full sizes of series already reduced in SQL).
    Empty series draw nothing.
    """
    pad = 36
    reduced = {k: downsample(v, max_points) for k, v in series.items()}
    xs = [p[0] for pts in reduced.values() for p in pts]
    ys = [p[1] for pts in reduced.values() for p in pts]
    lines: list[dict[str, Any]] = []
    if not xs:
        return {"width": width, "height": height, "lines": [], "x_range": (0, 0), "y_range": (0, 0)}
    sx = _scale(min(xs), max(xs), pad, width - 8)
    sy = _scale(min(ys), max(ys), height - 20, 10)
    for i, (label, pts) in enumerate(reduced.items()):
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        lines.append({"label": label, "points": coords, "color": PALETTE[i % len(PALETTE)],
                      "n": (sizes or {}).get(label, len(series[label])), "shown": len(pts)})
    return {"width": width, "height": height, "lines": lines, "x_range": (min(xs), max(xs)),
            "y_range": (min(ys), max(ys))}


def trial_chart(trials: Sequence[tuple[float, float, str, bool]], *, label: str = "metric", width: int = 560,
                height: int = 220) -> dict[str, Any]:
    """A sweep's primary metric by trial (Azure ML studio's "primary metric by trial" chart): x is the
    trial number, one line in that order and one marker per trial titled with its name and value.

    ``trials``: ``(trial number, value, trial name, best)`` in any order. Returns :func:`line_chart`'s
    shape plus ``"marks": [{"x", "y", "label", "best"}]`` (SVG coordinates, sorted by trial number)."""
    ordered = sorted(trials, key=lambda t: t[0])
    chart = line_chart({label: [(t[0], t[1]) for t in ordered]}, width=width, height=height,
                       max_points=max(2, len(ordered)))
    chart["marks"] = []
    if ordered:
        pad = 36
        xs, ys = [t[0] for t in ordered], [t[1] for t in ordered]
        sx = _scale(min(xs), max(xs), pad, width - 8)
        sy = _scale(min(ys), max(ys), height - 20, 10)
        chart["marks"] = [{"x": round(sx(n), 1), "y": round(sy(v), 1), "label": f"{name}: {v:.6g}", "best": best}
                          for n, v, name, best in ordered]
    return chart


def parallel_coordinates(rows: list[dict[str, Any]], axes: list[str], *, color_by: str | None = None,
                         width: int = 720, height: int = 260) -> dict[str, Any]:
    """One polyline per row across ``axes`` (numbers scaled per axis; text values spread evenly).

    ``rows``: ``{"label", "values": {axis: value}, "best": bool}``. Returns ``{"width", "height",
    "axes": [{"name", "x", "lo", "hi"}], "lines": [{"label", "points", "color", "best"}]}``.
    """
    if not axes or not rows:
        return {"width": width, "height": height, "axes": [], "lines": []}
    step = (width - 60) / max(1, len(axes) - 1)
    scalers: list[tuple[str, Any, dict[str, int] | None]] = []
    axis_info = []
    for i, axis in enumerate(axes):
        vals = [r["values"].get(axis) for r in rows]
        nums = [float(v) for v in vals if isinstance(v, int | float) and math.isfinite(float(v))]
        if len(nums) == len([v for v in vals if v is not None]) and nums:
            lo, hi = min(nums), max(nums)
            scalers.append(("num", _scale(lo, hi, height - 24, 16), None))
            axis_info.append({"name": axis, "x": 30 + i * step, "lo": f"{lo:.4g}", "hi": f"{hi:.4g}"})
        else:
            cats = sorted({str(v) for v in vals if v is not None})
            pos = {c: j for j, c in enumerate(cats)}
            s = _scale(0, max(1, len(cats) - 1), height - 24, 16)
            scalers.append(("cat", s, pos))
            axis_info.append({"name": axis, "x": 30 + i * step, "lo": cats[0] if cats else "",
                              "hi": cats[-1] if cats else ""})
    metric_vals = [float(r["values"][color_by]) for r in rows
                   if color_by and isinstance(r["values"].get(color_by), int | float)]
    lines = []
    for r in rows:
        pts = []
        for i, axis in enumerate(axes):
            v = r["values"].get(axis)
            if v is None:
                continue
            kind, scale, where = scalers[i]
            y = scale(float(v)) if kind == "num" or where is None else scale(where[str(v)])
            pts.append(f"{30 + i * step:.1f},{y:.1f}")
        color = PALETTE[0]
        if metric_vals and isinstance(r["values"].get(color_by or ""), int | float):
            lo, hi = min(metric_vals), max(metric_vals)
            t = (float(r["values"][color_by]) - lo) / ((hi - lo) or 1.0)
            color = f"hsl({int(220 - 200 * t)},70%,45%)"
        lines.append({"label": r["label"], "points": " ".join(pts), "color": color, "best": bool(r.get("best"))})
    return {"width": width, "height": height, "axes": axis_info, "lines": lines}


PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
