"""Finding and reading RAI dashboards (``dashboard.json``, schema ``openaml.rai.dashboard/1``) for the
studio, and the cohort arithmetic of its overview (filters given in the page's query string).

Where a dashboard is found (docs/guide/rai.md, "Studio, explanations and the promotion gate"):

- a job's dashboards are the outputs of the job, or of its child jobs (a pipeline's steps, two levels
  down), whose folder holds ``dashboard.json``: the RAI gather component's ``dashboard`` output;
- a model version's dashboards are the one its ``rai.scorecard`` tag links (``<job>/<output>``)
  and those of the jobs that name the model (its name appears in the job's definition:
  ``model_info: name:version`` or ``model_input: azureml:name:version`` of the constructor; the
  newest :data:`MODEL_SCAN` such jobs) and of the job that produced it, whose ``model`` field names
  that version (``{"name", "version"}``).

Nothing is indexed: the scan reads the job table (one SQL query) and the files; parsed dashboards are
cached by path, modification time and size.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from sqlalchemy import String, cast, select

from openaml.errors import OpenAMLError

__all__ = ["SCHEMA", "MODEL_SCAN", "load_dashboard", "job_dashboards", "model_dashboards", "linked_dashboards",
           "parse_filter", "same_value",
           "apply_filter", "cohort_metrics", "filter_text"]

SCHEMA = "openaml.rai.dashboard/1"
FILE = "dashboard.json"
MODEL_SCAN = 200  # jobs naming a model that are searched for its dashboards, newest first
OPS = ("==", "!=", "in", "<=", ">=", "<", ">")

_cache: OrderedDict[tuple[str, int, int], dict[str, Any]] = OrderedDict()
_lock = threading.Lock()


def load_dashboard(path: Path) -> dict[str, Any]:
    """The parsed ``dashboard.json`` at ``path`` (cached on path, mtime and size; 16 kept).

    Raises:
        ValueError: not JSON, or not schema ``openaml.rai.dashboard/1`` (the message says which).
    """
    if path.is_symlink():  # a job's output may hold links; the server never reads through one
        raise ValueError(f"{path.name} is a link; the studio reads a dashboard file only, not what a link names")
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path.name} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path.name} has schema {got!r}; the studio reads {SCHEMA!r}")
    with _lock:
        _cache[key] = data
        while len(_cache) > 16:
            _cache.popitem(last=False)
    return data


def _outputs_with_dashboard(jobs_svc: Any, row: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for output in sorted((row.get("runtime") or {}).get("outputs") or {}):
        try:
            folder = jobs_svc.output_dir(row["name"], output)
        except (OpenAMLError, KeyError, TypeError):
            continue
        path = folder / FILE if folder.is_dir() else folder
        if path.name == FILE and path.is_file():
            found.append({"job": row["name"], "output": output, "path": path,
                          "created_at": row.get("created_at"), "status": row.get("status")})
    return found


def job_dashboards(ctx: Any, name: str) -> list[dict[str, Any]]:
    """``[{"job", "output", "path", ...}]``: dashboards in the outputs of job ``name`` and of its child
    jobs (two levels: a pipeline's steps and their steps). Raises NotFoundError for an unknown job."""
    jobs_svc = ctx.services["jobs"]
    row = ctx.store.get_job(name)
    found = _outputs_with_dashboard(jobs_svc, row)
    level = [row]
    for _ in range(2):
        nxt = []
        for parent in level:
            for child in ctx.store.list_jobs(parent_name=parent["name"], include_archived=True, ascending=True,
                                             limit=500):
                found.extend(_outputs_with_dashboard(jobs_svc, child))
                nxt.append(child)
        level = nxt
    unique: dict[str, dict[str, Any]] = {}
    for e in found:  # a pipeline output bound to its step's output is one folder: listed once
        unique.setdefault(str(e["path"]), e)
    return list(unique.values())


def model_dashboards(ctx: Any, name: str, version: str, producer: str | None) -> list[dict[str, Any]]:
    """Dashboards whose ``model`` is ``name`` version ``version``: in the outputs of the newest
    :data:`MODEL_SCAN` jobs whose definition names the model, of their steps (a pipeline's gather
    step names no model), and of ``producer`` (its job), newest first."""
    from openaml.store._tables import JobRow

    with ctx.store._session() as s:
        q: Any = (select(JobRow.name).where(cast(JobRow.spec, String).contains(name))
                  .order_by(JobRow.seq.desc()).limit(MODEL_SCAN))
        names = list(s.scalars(q))
        # the steps of a pipeline that names it (the gather step holding the dashboard names no
        # model: its input is the constructor's output), down to nested pipelines' steps
        frontier = names
        for _depth in range(3):
            if not frontier:
                break
            steps: Any = (select(JobRow.name).where(JobRow.parent_name.in_(frontier))
                          .order_by(JobRow.seq.desc()).limit(MODEL_SCAN))
            frontier = [n for n in s.scalars(steps) if n not in names]
            names.extend(frontier)
    if producer and producer not in names:
        names.append(producer)
    out = []
    for job in names:
        try:
            row = ctx.store.get_job(job)
        except OpenAMLError:
            continue
        for entry in _outputs_with_dashboard(ctx.services["jobs"], row):
            try:
                model = load_dashboard(entry["path"]).get("model") or {}
            except (ValueError, OSError):
                continue
            if str(model.get("name")) == name and str(model.get("version")) == str(version):
                out.append(entry)
    return out


def linked_dashboards(ctx: Any, ref: str | None) -> list[dict[str, Any]]:
    """The dashboard a model version's ``rai.scorecard`` tag (``<job>/<output>``) links, if that output
    holds one (the RAI gate's score card: services/rai_gate.py)."""
    job, sep, output = str(ref or "").partition("/")
    if not sep:
        return []
    try:
        row = ctx.store.get_job(job)
    except OpenAMLError:
        return []
    return [e for e in _outputs_with_dashboard(ctx.services["jobs"], row) if e["output"] == output]


# ---------------------------------------------------------------------------- cohorts
def parse_filter(text: str, features: list[str]) -> dict[str, Any]:
    """``"Age>=30"``, ``"Sex==female"``, ``"Pclass in 1,2"`` -> ``{"column", "op", "value"}``.

    Raises:
        ValueError: no known operator, an unknown column (the message lists the features), or an
            ordering operator (<, <=, >, >=) with a value that is not a number (the message names it).
    """
    for op in (" in ", "==", "!=", "<=", ">=", "<", ">"):
        col, sep, value = text.partition(op)
        if sep:
            col, value = col.strip(), value.strip()
            if col not in features:
                raise ValueError(f"cohort filter {text!r}: unknown column {col!r}; the features are "
                                 f"{', '.join(features)}")
            if op == " in ":
                return {"column": col, "op": "in", "value": [v.strip() for v in value.split(",") if v.strip()]}
            if op in ("<", "<=", ">", ">=") and _num(value) is None:
                raise ValueError(f"cohort filter {text!r}: {value!r} is not a number ({op} compares numbers; "
                                 f"use == or in for text)")
            return {"column": col, "op": op, "value": value}
    raise ValueError(f"cohort filter {text!r}: write COLUMN OP VALUE with OP one of ==, !=, <, <=, >, >=, in "
                     "(e.g. Age>=30, Sex==female, Pclass in 1,2)")


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _match(value: Any, op: str, want: Any) -> bool:
    if op == "in":
        wanted = want if isinstance(want, list) else [want]
        return any(_eq(value, w) for w in wanted)
    if op in ("==", "!="):
        return _eq(value, want) == (op == "==")
    a, b = _num(value), _num(want)
    if a is None or b is None:
        return False
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def same_value(a: Any, b: Any) -> bool:
    """Equal as numbers when both are numbers (3 == 3.0), else as text."""
    return _eq(a, b)


def _eq(a: Any, b: Any) -> bool:
    x, y = _num(a), _num(b)
    if x is not None and y is not None:
        return x == y
    return str(a) == str(b)


def apply_filter(rows: list[dict[str, Any]], filters: list[dict[str, Any]]) -> list[int]:
    """Indexes of the rows that meet every filter (``{"column", "op", "value"}``; numbers compared as
    numbers, other values as text)."""
    return [i for i, r in enumerate(rows) if all(_match(r.get(f["column"]), f["op"], f["value"]) for f in filters)]


def filter_text(filters: list[dict[str, Any]]) -> str:
    if not filters:
        return "all rows"
    return " and ".join(f"{f['column']} {f['op']} "
                        f"{', '.join(map(str, f['value'])) if isinstance(f['value'], list) else f['value']}"
                        for f in filters)


def cohort_metrics(task: str, y_true: list[Any], y_pred: list[Any], idx: list[int],
                   classes: list[str] | None) -> dict[str, float | None]:
    """The overview's metrics on rows ``idx``: accuracy, precision, recall, f1 (classification;
    binary: of the last class, else macro averages) or mae, rmse, r2 (regression). None when empty."""
    yt = [y_true[i] for i in idx if i < len(y_true) and i < len(y_pred)]
    yp = [y_pred[i] for i in idx if i < len(y_true) and i < len(y_pred)]
    if task == "regression":
        pairs = [(a, b) for a, b in zip(map(_num, yt), map(_num, yp), strict=True) if a is not None and b is not None]
        if not pairs:
            return {"mae": None, "rmse": None, "r2": None}
        n = len(pairs)
        mean = sum(a for a, _ in pairs) / n
        sse = sum((a - b) ** 2 for a, b in pairs)
        sst = sum((a - mean) ** 2 for a, _ in pairs)
        return {"mae": sum(abs(a - b) for a, b in pairs) / n, "rmse": math.sqrt(sse / n),
                "r2": 1 - sse / sst if sst else None}
    if not yt:
        return {"accuracy": None, "precision": None, "recall": None, "f1": None}
    st, sp = [str(v) for v in yt], [str(v) for v in yp]
    labels = [str(c) for c in classes] if classes else sorted(set(st) | set(sp))
    positives = labels[-1:] if len(labels) == 2 else labels
    precs, recs, f1s = [], [], []
    for c in positives:
        tp = sum(1 for a, b in zip(st, sp, strict=True) if a == c and b == c)
        fp = sum(1 for a, b in zip(st, sp, strict=True) if a != c and b == c)
        fn = sum(1 for a, b in zip(st, sp, strict=True) if a == c and b != c)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        precs.append(p)
        recs.append(r)
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    return {"accuracy": sum(1 for a, b in zip(st, sp, strict=True) if a == b) / len(st),
            "precision": sum(precs) / len(precs), "recall": sum(recs) / len(recs), "f1": sum(f1s) / len(f1s)}
