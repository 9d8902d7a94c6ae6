"""Shapes of the RAI dashboard's charts (drawn as inline SVG by the ``rai_*`` templates): bars (signed
values, e.g. feature importance), confidence intervals (causal effects), the error-analysis tree and
heat map. Numbers and positions only; every label is escaped by the templates (feature names and
values are user data)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["bars", "intervals", "tree_layout", "heatmap", "rate_color"]


def _finite(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return 0.0
    return f if math.isfinite(f) else 0.0


def rate_color(rate: float) -> str:
    """White (0 % errors) to red (100 %): Azure's error-analysis colouring."""
    r = max(0.0, min(1.0, _finite(rate)))
    return f"hsl(0,{int(20 + 60 * r)}%,{int(96 - 46 * r)}%)"


def bars(items: Sequence[tuple[str, Any]], *, width: int = 640, bar_h: int = 18, label_w: int = 200) -> dict[str, Any]:
    """Horizontal bars, one per ``(label, value)`` in the given order; negative values go left of zero.

    Returns ``{"width", "height", "zero", "label_w", "bars": [{"label", "value", "x", "y", "w", "h",
    "color"}]}`` (pixels)."""
    vals = [_finite(v) for _, v in items]
    lo, hi = min([0.0, *vals]), max([0.0, *vals])
    span = (hi - lo) or 1.0
    plot = width - label_w - 70
    zero = label_w + (0 - lo) / span * plot
    out = []
    for i, ((label, _), v) in enumerate(zip(items, vals, strict=True)):
        x1 = label_w + (v - lo) / span * plot
        out.append({"label": str(label), "value": v, "x": min(zero, x1), "w": max(1.0, abs(x1 - zero)),
                    "y": 4 + i * (bar_h + 4), "h": bar_h, "color": "#1f77b4" if v >= 0 else "#d62728"})
    return {"width": width, "height": 8 + len(out) * (bar_h + 4), "zero": zero, "label_w": label_w, "bars": out}


def intervals(effects: Sequence[dict[str, Any]], *, width: int = 640, row_h: int = 24,
              label_w: int = 160) -> dict[str, Any]:
    """A point and its confidence interval per effect (``{"feature", "point", "ci_lower", "ci_upper"}``),
    with the zero line. Returns ``{"width", "height", "zero", "rows": [{"label", "x", "x1", "x2", "y"}]}``."""
    pts = [(_finite(e.get("point")), _finite(e.get("ci_lower")), _finite(e.get("ci_upper"))) for e in effects]
    values = [v for p in pts for v in p] + [0.0]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    plot = width - label_w - 20

    def sx(v: float) -> float:
        return label_w + (v - lo) / span * plot

    rows = [{"label": str(e.get("feature")), "x": sx(p), "x1": sx(a), "x2": sx(b), "y": 14 + i * row_h}
            for i, (e, (p, a, b)) in enumerate(zip(effects, pts, strict=True))]
    return {"width": width, "height": 24 + len(rows) * row_h, "zero": sx(0.0), "lo": lo, "hi": hi, "rows": rows}


def tree_layout(root: dict[str, Any] | None, *, max_depth: int = 4, node_w: int = 120, node_h: int = 46,
                gap_x: int = 12, gap_y: int = 40) -> dict[str, Any]:
    """The error-analysis tree, leaves side by side and parents centred above them, down to
    ``max_depth`` levels. Returns ``{"width", "height", "nodes": [{"id", "x", "y", "w", "h", "n",
    "errors", "error_rate", "condition", "color"}], "edges": [{"x1", "y1", "x2", "y2"}]}``."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, float]] = []
    if not root:
        return {"width": 0, "height": 0, "nodes": [], "edges": []}
    next_x = [0.0]

    def place(node: dict[str, Any], depth: int) -> float:
        kids = list(node.get("children") or []) if depth < max_depth - 1 else []
        y = depth * (node_h + gap_y) + 6
        if kids:
            centres = [place(k, depth + 1) for k in kids]
            x = (centres[0] + centres[-1]) / 2
        else:
            x = next_x[0]
            next_x[0] += node_w + gap_x
        rate = _finite(node.get("error_rate"))
        nodes.append({"id": node.get("id"), "x": x, "y": y, "w": node_w, "h": node_h, "n": node.get("n"),
                      "errors": node.get("errors"), "error_rate": rate, "condition": node.get("condition"),
                      "color": rate_color(rate)})
        for k in kids:
            child = next(n for n in reversed(nodes) if n["id"] == k.get("id"))
            edges.append({"x1": x + node_w / 2, "y1": y + node_h, "x2": child["x"] + node_w / 2, "y2": child["y"]})
        return x

    place(root, 0)
    depth = max(int((n["y"] - 6) // (node_h + gap_y)) for n in nodes) + 1
    return {"width": int(next_x[0]) + 10, "height": depth * (node_h + gap_y) + 10, "nodes": nodes, "edges": edges}


def heatmap(hm: dict[str, Any] | None, *, cell_w: int = 96, cell_h: int = 40, label_w: int = 110) -> dict[str, Any]:
    """The error heat map over one or two features: ``{"features", "rows": [label], "cols": [label],
    "cells": [{"x", "y", "w", "h", "n", "errors", "error_rate", "color", "row", "col"}], "width", "height"}``."""
    if not hm or not hm.get("cells"):
        return {"features": [], "rows": [], "cols": [], "cells": [], "width": 0, "height": 0}
    feats = [str(f) for f in hm.get("features") or []]
    rows: list[str] = []
    cols: list[str] = []
    for c in hm["cells"]:
        b = [str(v) for v in c.get("bin") or [""]]
        if b[0] not in rows:
            rows.append(b[0])
        col = b[1] if len(b) > 1 else ""
        if col not in cols:
            cols.append(col)
    cells = []
    for c in hm["cells"]:
        b = [str(v) for v in c.get("bin") or [""]]
        r, k = rows.index(b[0]), cols.index(b[1] if len(b) > 1 else "")
        rate = _finite(c.get("error_rate"))
        cells.append({"x": label_w + k * cell_w, "y": 24 + r * cell_h, "w": cell_w, "h": cell_h, "n": c.get("n"),
                      "errors": c.get("errors"), "error_rate": rate, "color": rate_color(rate), "row": b[0],
                      "col": b[1] if len(b) > 1 else ""})
    return {"features": feats, "rows": rows, "cols": cols, "cells": cells, "label_w": label_w,
            "cell_w": cell_w, "cell_h": cell_h,
            "width": label_w + len(cols) * cell_w + 10, "height": 30 + len(rows) * cell_h}
