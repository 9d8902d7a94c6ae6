"""Studio pages of jobs: the list, a job (overview, metrics, logs, outputs, children, pipeline graph,
sweep trials), live logs (server-sent events), output files, experiments compared.

Azure ML studio's job pages are the model: the overview's fields are those of ``az ml job show``,
the metrics tab draws one chart per metric over steps, the outputs tab browses the job's outputs.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from openaml.errors import NotFoundError, OpenAMLError, ValidationError
from openaml.server.studio._charts import line_chart, parallel_coordinates, trial_chart
from openaml.server.studio._common import TERMINAL, bad_request, duration, not_found, render, services
from openaml.server.studio._rai_explain import job_explained
from openaml.store import JOB_SORTS, JobQuery

__all__ = ["router", "LOG_CHUNK"]

router = APIRouter(include_in_schema=False)

MAX_COMPARED_METRICS = 20  # charts on the compare page (the table has every metric's last value)
COMPARE_POINTS = 6000  # points of one compare chart, all runs together
LOG_CHUNK = 64 * 1024  # bytes of log a page shows at once (the tail first, then earlier chunks on request)
STATUSES = ("NotStarted", "Queued", "Preparing", "Starting", "Running", "Finalizing", "CancelRequested",
            "Completed", "Failed", "Canceled")
TYPES = ("command", "pipeline", "sweep", "automl", "parallel", "spark")
_REF = re.compile(r"\$\{\{\s*parent\.jobs\.([A-Za-z0-9_.-]+?)\.outputs\.")


def _day(value: str | None, *, end: bool = False) -> datetime | None:
    """A From/To filter value: a date (the form's date input) or a date-time. ``end``: the To bound,
    which the store takes as exclusive, so a bare date means the end of that day (the day it names
    is included). Raises ValueError naming the accepted formats for anything else."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a date (accepted: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS])") from None
    if end and len(value.strip()) == 10:  # YYYY-MM-DD
        when += timedelta(days=1)
    return when


@router.get("/jobs", response_class=HTMLResponse)
def jobs_list(request: Request, status: str = "", type: str = "", experiment: str = "", tag: str = "",
              since: str = "", until: str = "", sort: str = "created", order: str = "desc", page: int = 1,
              per_page: int = 50) -> HTMLResponse:
    """Top-level jobs, one page sorted and filtered in SQL (fast at 100,000 jobs)."""
    ctx = request.app.state.ctx
    bounds = {}
    for param, value in (("since", since), ("until", until)):
        try:
            bounds[param] = _day(value, end=param == "until")
        except ValueError as e:
            return bad_request(request, f"Bad job list query: {param}={e}.", "/jobs", "all jobs")
    # a value out of range gets the 400 page naming it, as every other list (never a silent default)
    for param, value, allowed in (("status", status, STATUSES), ("type", type, TYPES), ("sort", sort, JOB_SORTS),
                                  ("order", order, ("asc", "desc"))):
        if value and value not in allowed:
            return bad_request(request, f"Bad job list query: {param}={value!r}; give one of {', '.join(allowed)}.",
                               "/jobs", "all jobs")
    if page < 1 or not 1 <= per_page <= 500:
        return bad_request(request, f"Bad job list query: page={page}, per_page={per_page}; page must be 1 or more "
                           "and per_page between 1 and 500.", "/jobs", "all jobs")
    jq = JobQuery(status=status or None, type=type or None, experiment=experiment or None, tag=tag or None,
                  since=bounds["since"], until=bounds["until"], sort=sort or "created",
                  desc=order != "asc", page=page, per_page=per_page)
    rows, total = ctx.store.page_jobs(jq)
    filters = {"status": status, "type": type, "experiment": experiment, "tag": tag, "since": since,
               "until": until}

    def link(**changes: Any) -> str:
        q = {**filters, "sort": jq.sort, "order": "desc" if jq.desc else "asc", "page": jq.page,
             "per_page": jq.per_page if jq.per_page != 50 else "", **changes}
        return "/jobs?" + urlencode({k: v for k, v in q.items() if v not in ("", None)})

    pages = max(1, -(-total // jq.per_page))
    return render(request, "jobs.html", rows=rows, total=total, jq=jq, filters=filters, link=link, pages=pages,
                  statuses=STATUSES, types=TYPES, experiments=ctx.tracking.experiment_names())


def _log_path(request: Request, name: str) -> Path:
    return Path(request.app.state.ctx.layout.job_dir(name)) / "user_logs" / "std_log.txt"


def _read_back(path: Path, before: int | None) -> tuple[str, int, int]:
    """The chunk of the log ending at byte ``before`` (None: the end): (text, its start, the size)."""
    size = path.stat().st_size if path.exists() else 0
    end = size if before is None else max(0, min(before, size))
    start = max(0, end - LOG_CHUNK)
    if end <= start:
        return "", start, size
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    if start > 0:  # begin at a line boundary, else (one line longer than a chunk) at a character's
        cut = data.find(b"\n")
        if 0 <= cut < len(data) - 1:
            data, start = data[cut + 1:], start + cut + 1
        else:
            skip = 0
            while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:  # UTF-8 continuation bytes
                skip += 1
            data, start = data[skip:], start + skip
    return data.decode("utf-8", errors="replace"), start, size


def _log_back(request: Request, name: str, before: int | None) -> tuple[str, int, int]:
    """:func:`_read_back` of the job's log: the local file, else through ``JobService`` (a job run by
    another server of the workspace: its log on the workspace's files, e.g. an S3 default datastore)."""
    path = _log_path(request, name)
    if path.exists():
        return _read_back(path, before)
    svc = services(request)["jobs"]
    size = svc.log_size(name)
    end = size if before is None else max(0, min(before, size))
    start = max(0, end - LOG_CHUNK)
    if end <= start:
        return "", start, size
    text = str(svc.read_log(name, start, limit=end - start)["data"])
    if start > 0:  # begin at a line boundary (as _read_back does)
        cut = text.find("\n")
        if 0 <= cut < len(text) - 1:
            start += len(text[:cut + 1].encode("utf-8"))
            text = text[cut + 1:]
    return text.lstrip("\ufffd") if start > 0 else text, start, size


def _files(base: Path, rel: str = "", limit: int = 500) -> list[dict[str, Any]]:
    folder = base / rel if rel else base
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name))[:limit]:
        link = p.is_symlink()  # a link is listed as a link: never stat'ed through (its target may be anywhere)
        out.append({"name": p.name, "path": f"{rel}/{p.name}".lstrip("/"), "dir": p.is_dir() and not link,
                    "size": p.lstat().st_size if p.is_file() and not link else None, "link": link})
    return out


def _edges(steps: dict[str, Any], jobs: dict[str, Any]) -> list[tuple[str, str]]:
    """``(from, to)`` node pairs: a node's input bound to ``${{parent.jobs.<from>.outputs.*}}`` (in its
    YAML definition, ``jobs``, or in the step's view)."""
    edges = []
    for node, step in steps.items():
        inputs = {**(step.get("inputs") or {}), **((jobs.get(node) or {}).get("inputs") or {})}
        for value in inputs.values():
            text = json.dumps(value) if not isinstance(value, str) else value
            for src in _REF.findall(text):
                if src in steps:
                    edges.append((src, node))
    return sorted(set(edges))


def pipeline_graph(steps: dict[str, Any], jobs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Nodes placed in columns by depth (longest path from a source), edges as lines between boxes.

    ``steps``: the pipeline's ``steps`` view (node -> status, job, duration_s, reused, reason);
    ``jobs``: its node definitions (their inputs give the edges)."""
    if not steps:
        steps = {n: {} for n in (jobs or {})}
    edges = _edges(steps, jobs or {})
    depth = {n: 0 for n in steps}
    for _ in range(len(steps)):
        changed = False
        for a, b in edges:
            if depth[b] < depth[a] + 1:
                depth[b], changed = depth[a] + 1, True
        if not changed:
            break
    cols: dict[int, list[str]] = {}
    for n in steps:
        cols.setdefault(depth[n], []).append(n)
    w, h, gx, gy = 180, 64, 60, 24
    pos = {}
    for d, names in cols.items():
        for i, n in enumerate(names):
            pos[n] = (10 + d * (w + gx), 10 + i * (h + gy))
    nodes = [{"name": n, "x": pos[n][0], "y": pos[n][1], "w": w, "h": h, **steps[n]} for n in steps]
    lines = [{"x1": pos[a][0] + w, "y1": pos[a][1] + h / 2, "x2": pos[b][0], "y2": pos[b][1] + h / 2}
             for a, b in edges]
    width = 20 + (max(cols) + 1 if cols else 1) * (w + gx)
    height = 20 + max((len(v) for v in cols.values()), default=1) * (h + gy)
    return {"nodes": nodes, "lines": lines, "width": width, "height": height}


def _sweep_view(rec: dict[str, Any]) -> dict[str, Any]:
    obj = rec.get("objective") or {}
    metric = obj.get("primary_metric")
    trials = list(rec.get("trials") or [])
    best = rec.get("best_child_run_id")
    if not best:  # while the sweep runs: the best completed trial so far (the trials come best first)
        best = next((t.get("name") for t in trials if t.get("status") == "Completed"
                     and isinstance(t.get("metric"), int | float)), None)
    params = sorted({k for t in trials for k in (t.get("params") or t.get("parameters") or {})})
    rows: list[dict[str, Any]] = []
    for i, t in enumerate(trials):
        name = t.get("name") or t.get("job") or ""
        values = dict(t.get("params") or t.get("parameters") or {})
        value = t.get("metric") if "metric" in t else t.get("value")
        if metric and isinstance(value, int | float):
            values[metric] = value
        rows.append({"label": name, "values": values, "best": name == best, "index": i})
    pc = parallel_coordinates(rows, [*params, *([metric] if metric else [])], color_by=metric)
    # by trial number (the order trials were made), not the table's best-first order
    by_trial = trial_chart([(float(t["index"] if isinstance(t.get("index"), int) else r["index"]),
                             float(r["values"][metric]), r["label"], r["best"])
                            for t, r in zip(trials, rows, strict=True)
                            if metric and isinstance(r["values"].get(metric), int | float)], label=metric or "metric")
    return {"metric": metric, "goal": obj.get("goal"), "trials": trials, "params": params, "best": best,
            "parallel": pc, "by_trial": by_trial}


def _automl_view(rec: dict[str, Any]) -> dict[str, Any]:
    """An AutoML job's trials as a sweep's are shown (best first, the primary metric, the best
    marked; the algorithm as the parameter), plus its guardrails."""
    from openaml.automl._metrics import GOAL

    metric = str(rec.get("primary_metric") or "")
    trials = [{**t, "params": {"algorithm": t.get("algorithm")}} for t in rec.get("trials") or []]
    goal = "minimize" if metric in GOAL["minimize"] else "maximize"
    view = _sweep_view({**rec, "objective": {"primary_metric": metric or None, "goal": goal}, "trials": trials})
    view["guardrails"] = list(rec.get("guardrails") or [])
    return view


@router.get("/jobs/{name}", response_class=HTMLResponse)
def job_page(request: Request, name: str) -> HTMLResponse:
    """A job: overview, metrics, logs (tail, live), outputs, children; a pipeline's graph, a sweep's trials."""
    svc = services(request)["jobs"]
    ctx = request.app.state.ctx
    try:
        rec: dict[str, Any] = dict(svc.get(name))
    except NotFoundError:
        return not_found(request, f"job {name!r}", "/jobs", "all jobs")
    row = ctx.store.get_job(name)
    charts = {}
    for key in sorted(rec.get("metrics") or {})[:50]:  # a run with thousands of metrics: the table has them all
        points, n = ctx.tracking.metric_series(name, key)
        charts[key] = line_chart({name: points}, sizes={name: n})
    text, start, size = _log_back(request, name, None)
    outputs = ["artifacts", *sorted(row["runtime"].get("outputs") or {})]
    children = ctx.store.list_jobs(parent_name=name, include_archived=True, ascending=True, limit=500)
    graph = pipeline_graph(dict(rec.get("steps") or {}), dict(rec.get("jobs") or {})) if rec.get("type") == "pipeline" else None
    sweep = (_sweep_view(rec) if rec.get("type") == "sweep" else
             _automl_view(rec) if rec.get("type") == "automl" else None)
    try:
        artifacts = _files(svc.output_dir(name, "artifacts"))
    except (OpenAMLError, KeyError):  # a job recorded without a run (no artifact folder yet)
        artifacts = []
    explained = bool(artifacts or rec.get("feature_importance")) and job_explained(svc, name, rec)
    return render(request, "job.html", job=rec, row=row, charts=charts, log_text=text, log_start=start,
                  log_size=size, outputs=outputs, artifacts=artifacts, children=children, graph=graph, sweep=sweep,
                  explained=explained,
                  dur=duration(row["start_time"], row["end_time"]), terminal=row["status"] in TERMINAL)


@router.get("/jobs/{name}/graph", response_class=HTMLResponse)
def job_graph(request: Request, name: str) -> HTMLResponse:
    """The pipeline graph alone (htmx polls it while the pipeline runs)."""
    try:
        rec = dict(services(request)["jobs"].get(name))
    except NotFoundError:
        return not_found(request, f"job {name!r}", "/jobs", "all jobs")
    return render(request, "_graph.html", job=rec, graph=pipeline_graph(dict(rec.get("steps") or {}), dict(rec.get("jobs") or {})),
                  terminal=rec.get("status") in TERMINAL)


@router.get("/jobs/{name}/log")
def job_log_chunk(request: Request, name: str, before: int | None = None) -> Response:
    """``{"text", "start", "size"}``: the log chunk ending at byte ``before`` (paging back a huge log)."""
    try:
        request.app.state.ctx.store.get_job(name)
    except NotFoundError as e:
        return JSONResponse(e.to_payload(), status_code=404)
    if before is not None and before < 0:
        bad = ValidationError(f"field 'before': {before} is not a byte offset; give 0 or more (the 'start' of "
                              "the previous answer)", details={"field": "before", "value": before})
        return JSONResponse(bad.to_payload(), status_code=400)
    text, start, size = _log_back(request, name, before)
    return JSONResponse({"text": text, "start": start, "size": size})


@router.get("/jobs/{name}/log/stream")
async def job_log_stream(request: Request, name: str, offset: int = 0) -> Response:
    """Server-sent events of the job's log from byte ``offset`` (or the ``Last-Event-ID`` a reconnecting
    browser sends): ``data: {"text", "status"}`` with ``id: <next offset>``; an ``end`` event once the
    job is finished and its log read to the end."""
    svc = services(request)["jobs"]
    try:
        await run_in_threadpool(request.app.state.ctx.store.get_job, name)
    except NotFoundError as e:
        return JSONResponse(e.to_payload(), status_code=404)
    last = request.headers.get("last-event-id")
    if last and last.isdigit():
        offset = int(last)
    if offset < 0:
        return JSONResponse({"error": {"code": "bad_request", "details": {"offset": offset},
                                       "message": f"offset must be a byte offset, 0 or more (got {offset})"}},
                            status_code=400)

    async def events() -> Any:
        pos = offset
        yield "retry: 1000\n\n"
        while True:
            if await request.is_disconnected():
                return
            chunk = await run_in_threadpool(svc.read_log, name, pos, 5.0, LOG_CHUNK)
            if chunk["data"] or chunk["offset"] != pos:
                pos = chunk["offset"]
                yield f"id: {pos}\ndata: {json.dumps({'text': chunk['data'], 'status': chunk['status']})}\n\n"
            else:
                yield ": keep-alive\n\n"
            if chunk["terminal"]:
                yield f"event: end\nid: {pos}\ndata: {json.dumps({'status': chunk['status']})}\n\n"
                return
            await asyncio.sleep(0)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


@router.get("/jobs/{name}/files/{output}/{rel:path}")
@router.get("/jobs/{name}/files/{output}")
def job_files(request: Request, name: str, output: str, rel: str = "") -> Response:
    """Browse an output folder (a listing) or download one of its files."""
    from openaml.datastores._paths import safe_join

    svc = services(request)["jobs"]
    try:
        base = svc.output_dir(name, output)
        target = safe_join(base, rel, what="file path") if rel else base
    except NotFoundError:
        return not_found(request, f"output {output!r} of job {name!r}", f"/jobs/{name}", f"job {name}")
    except OpenAMLError as e:  # a path leading out of the output: the studio's 400 page, naming it
        return bad_request(request, f"Bad file path: {e.message}", f"/jobs/{name}", f"job {name}")
    if target.is_file():
        media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if media.startswith("text/html") or media in ("image/svg+xml", "application/xhtml+xml"):
            media = "text/plain"  # a job's HTML file is shown as text, never run on the studio's origin
        return FileResponse(target, media_type=media, filename=target.name,
                            content_disposition_type="attachment" if "download" in request.query_params else "inline",
                            headers={"x-content-type-options": "nosniff", "content-security-policy": "sandbox"})
    if not target.is_dir():
        return not_found(request, f"{rel!r} in output {output!r} of job {name!r}", f"/jobs/{name}", f"job {name}")
    return render(request, "files.html", job_name=name, output=output, rel=rel, files=_files(base, rel))


@router.post("/jobs/{name}/rerun")
def job_rerun(name: str) -> Response:
    """Moved to the API (``POST /api/v1/jobs/{name}/rerun``, typed in the OpenAPI document, role
    checked there); this old studio route redirects there (307 keeps the method and the body)."""
    return RedirectResponse(f"/api/v1/jobs/{quote(name, safe='')}/rerun", status_code=307)


@router.get("/experiments", response_class=HTMLResponse)
def experiments(request: Request, page: int = 1, per_page: int = 500, sort: str = "name",
                order: str = "asc") -> HTMLResponse:
    """Experiment names, sorted by name (``order``), paged (``per_page`` 1-500); a bad value is a 400."""
    if sort != "name" or order not in ("asc", "desc") or page < 1 or not 1 <= per_page <= 500:
        return bad_request(request, f"Bad experiment list query: sort={sort!r}, order={order!r}, page={page}, "
                           f"per_page={per_page}; sort is name, order asc or desc, page 1 or more, per_page 1 to "
                           "500.", "/experiments", "all experiments")
    names = sorted(request.app.state.ctx.tracking.experiment_names(), key=str.lower, reverse=order == "desc")
    pages = max(1, -(-len(names) // per_page))
    shown = names[(page - 1) * per_page: page * per_page]

    def link(**changes: Any) -> str:
        q = {"order": order, "per_page": per_page, "page": page, **changes}
        return "/experiments?" + urlencode(q)

    return render(request, "experiments.html", names=shown, total=len(names), page=page, pages=pages, link=link,
                  order=order)


def compare_charts(tracking: Any, runs: list[str], metrics: list[str]) -> dict[str, dict[str, Any]]:
    """One chart per metric with the runs overlaid, from one query for all runs' series
    (:meth:`Tracking.runs_series`). The more runs, the fewer points each line keeps (LTTB with each
    bucket's minimum and maximum): :data:`COMPARE_POINTS` points per chart in all, at least 60 a run."""
    series, sizes = tracking.runs_series(runs, metrics)
    charts = {}
    for m in metrics:
        per_line = max(60, min(300, COMPARE_POINTS // max(1, len(series[m]))))
        charts[m] = line_chart(series[m], max_points=per_line, sizes=sizes[m])
    return charts


@router.get("/experiments/{name:path}", response_class=HTMLResponse)  # MLflow names may hold "/"
def experiment_page(request: Request, name: str, limit: int = 100, parent: str = "") -> HTMLResponse:
    """Runs of an experiment side by side: parameters (those that differ first), metrics overlaid.
    ``parent``: the child jobs of that job instead (a sweep's trials, a pipeline's steps), the sweep
    page's "Compare trials" link."""
    ctx = request.app.state.ctx
    if not 1 <= limit <= 500:
        return bad_request(request, f"Bad compare query: limit={limit}; give 1 to 500 runs.",
                           f"/experiments/{quote(name)}", f"experiment {name}")
    per_page = limit
    if parent:
        rows, total = ctx.store.page_jobs(JobQuery(parent=parent, per_page=per_page))
        if not total:
            return not_found(request, f"job {parent!r} with child jobs to compare", f"/experiments/{name}",
                             f"experiment {name}")
    else:
        rows, total = ctx.store.page_jobs(JobQuery(experiment=name, per_page=per_page))
    if not total:
        return not_found(request, f"experiment {name!r}", "/experiments", "all experiments")
    summaries = ctx.tracking.run_summaries([r["name"] for r in rows])
    params = sorted({k for s in summaries.values() for k in s["params"]})
    differ = [p for p in params if len({summaries[r]["params"].get(p) for r in summaries}) > 1]
    same = [p for p in params if p not in differ]
    metrics = sorted({k for s in summaries.values() for k in s["metrics"]})
    charts = compare_charts(ctx.tracking, [r["name"] for r in rows], metrics[:MAX_COMPARED_METRICS])
    return render(request, "experiment.html", name=name, rows=rows, total=total, summaries=summaries,
                  differ=differ, same=same, metrics=metrics, charts=charts, parent=parent)
