"""Studio pages of Responsible AI dashboards: ``/jobs/<name>/rai`` (a pipeline's gathered dashboard)
and ``/models/<name>/rai?version=`` (the dashboards of a model version), drawn from ``dashboard.json``
(schema ``openaml.rai.dashboard/1``, written by the RAI gather component) as server-side SVG.

The views are those of Azure ML studio's RAI dashboard (Microsoft's ``raiwidgets``): model overview
and cohorts, error analysis (tree and heat map), global and local feature importance, counterfactual
what-if, causal effects, fairness by sensitive feature, and the score card's verdict. The page's
state is its query string, so every view is a link: ``f`` (repeated) cohort filters such as
``Age>=30``, ``row`` the row whose local importance is shown, ``cf`` the counterfactual row, ``d``
which dashboard when there are several.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from openaml.errors import NotFoundError, OpenAMLError, ValidationError
from openaml.server.studio._common import not_found, render, services
from openaml.server.studio._rai_charts import bars, heatmap, intervals, tree_layout
from openaml.server.studio._rai_data import (
    apply_filter,
    cohort_metrics,
    filter_text,
    job_dashboards,
    linked_dashboards,
    load_dashboard,
    model_dashboards,
    parse_filter,
    same_value,
)

__all__ = ["router", "dashboard_view", "mitigation_rows"]

router = APIRouter(include_in_schema=False)
TOP_FEATURES = 30  # bars drawn in an importance chart (the table below lists every feature)
ROW_PICKER = 200  # rows offered in the local-importance row picker (any row can be asked with ?row=)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _by_value(d: dict[str, Any] | None) -> list[tuple[str, Any]]:
    return sorted(((str(k), v) for k, v in (d or {}).items()), key=lambda kv: -abs(float(kv[1] or 0)))


def mitigation_rows(mit: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``[{"label", "before", "after"}]`` of a mitigation's comparison. ``before``/``after`` are either
    ``{metric: value}`` or, per sensitive feature, fairlearn's report ``{column: {"overall", "difference",
    "ratio", "by_group"}}`` (the RAI fairness component): then one row per column, part and metric."""
    before, after = (mit or {}).get("before") or {}, (mit or {}).get("after") or {}
    rows: list[dict[str, Any]] = []
    for key in sorted(set(before) | set(after), key=str):
        b, a = before.get(key), after.get(key)
        if isinstance(b, dict) or isinstance(a, dict):
            b, a = b if isinstance(b, dict) else {}, a if isinstance(a, dict) else {}
            for part in ("overall", "difference", "ratio"):
                pb, pa = b.get(part) or {}, a.get(part) or {}
                for m in sorted(set(pb) | set(pa), key=str):
                    rows.append({"label": f"{m} {part} ({key})" if part != "overall" else f"{m} ({key})",
                                 "before": pb.get(m), "after": pa.get(m)})
        else:
            rows.append({"label": str(key), "before": b, "after": a})
    return rows


def dashboard_view(data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """What the dashboard page draws, from a parsed ``dashboard.json`` and the query parameters
    (``f``: list of cohort filter texts, ``row``, ``cf``). Missing insights are None."""
    features = [str(f) for f in data.get("features") or []]
    test = data.get("test") or {}
    rows = list(test.get("rows") or [])
    task = str(data.get("task_type") or "classification")
    classes = data.get("classes")
    view: dict[str, Any] = {"features": features, "task": task, "n_rows": test.get("n_rows", len(rows)),
                            "shown_rows": len(rows), "errors": []}
    # ---- overview and cohorts
    filters, texts = [], []
    for text in params.get("f") or []:
        try:
            filters.append(parse_filter(text, features))
            texts.append(text)
        except ValueError as e:
            view["errors"].append(str(e))
    view["filters"] = texts
    all_idx = list(range(len(rows)))
    user_idx = apply_filter(rows, filters) if filters else all_idx
    y_true, y_pred = list(test.get("y_true") or []), list(test.get("y_pred") or [])
    view["overall"] = (data.get("metrics") or {}).get("overall") or {}
    view["user_cohort"] = {"name": "Your cohort", "filter": filter_text(filters), "n": len(user_idx),
                           "metrics": cohort_metrics(task, y_true, y_pred, user_idx, classes)} if filters else None
    # a cohort without a filter (the rai gather's "All data") is the Overall row already shown: one row, not two
    view["cohorts"] = [{**c, "filter": filter_text(list(c.get("filter") or []))} for c in data.get("cohorts") or []
                       if c.get("filter")]
    names = sorted({k for c in [*view["cohorts"], view["user_cohort"] or {}] for k in (c.get("metrics") or {})}
                   | set(view["overall"]))
    view["metric_names"] = names
    # ---- error analysis
    ea = data.get("error_analysis")
    view["ea"] = None if not ea else {"metric": ea.get("metric"), "tree": tree_layout(ea.get("tree")),
                                      "heatmap": heatmap(ea.get("heatmap")),
                                      "importance": bars(_by_value(ea.get("feature_importance"))[:TOP_FEATURES])}
    # ---- feature importance
    ex = data.get("explanation")
    view["explanation"] = None
    if ex:
        gi = _by_value(ex.get("global_importance"))
        local = ex.get("local_importance") or []
        row = max(0, min(_int(params.get("row"), 0), len(rows) - 1)) if rows else 0
        contrib = local[row] if row < len(local) else []
        pairs = sorted(zip(features, contrib, strict=False), key=lambda kv: -abs(float(kv[1] or 0)))
        view["explanation"] = {
            "method": ex.get("method"), "global": bars(gi[:TOP_FEATURES]), "global_all": gi,
            "expected_value": ex.get("expected_value"), "row": row,
            "row_values": rows[row] if rows else {}, "local": bars(pairs[:TOP_FEATURES]),
            "local_all": pairs, "y_true": y_true[row] if row < len(y_true) else None,
            "y_pred": y_pred[row] if row < len(y_pred) else None,
            "picker": list(range(min(len(rows), ROW_PICKER)))}
    # ---- counterfactuals
    cf = data.get("counterfactual")
    view["cf"] = None
    if cf:
        cf_rows = list(cf.get("rows") or [])
        pick = _int(params.get("cf"), cf_rows[0].get("index", 0) if cf_rows else 0)
        chosen = next((r for r in cf_rows if r.get("index") == pick), cf_rows[0] if cf_rows else None)
        table = None
        if chosen:
            orig = chosen.get("original") or {}
            table = {"original": orig, "cfs": [
                {"vals": c, "changed": sorted(f for f in features if f in c and not same_value(c.get(f), orig.get(f)))}
                for c in chosen.get("counterfactuals") or []]}
        view["cf"] = {"desired_class": cf.get("desired_class"), "desired_range": cf.get("desired_range"),
                      "total_cfs": cf.get("total_cfs"), "rows": cf_rows, "chosen": chosen, "table": table,
                      "importance": bars(_by_value(cf.get("feature_importance"))[:TOP_FEATURES])
                      if cf.get("feature_importance") else None,
                      "failed": [r for r in cf_rows if r.get("error")]}
    # ---- causal
    ca = data.get("causal")
    view["causal"] = None if not ca else {"effects": list(ca.get("global_effects") or []),
                                          "chart": intervals(list(ca.get("global_effects") or [])),
                                          "treatments": ca.get("treatment_features") or []}
    # ---- fairness
    fa = data.get("fairness")
    view["fairness"] = None
    if fa:
        per = []
        for col, f in (fa.get("sensitive_features") or {}).items():
            groups = f.get("by_group") or {}
            metrics = sorted({m for g in groups.values() for m in (g or {})})
            charts = {m: bars([(str(g), (v or {}).get(m)) for g, v in groups.items()], width=420, label_w=120)
                      for m in metrics}
            per.append({"column": col, "groups": groups, "metrics": metrics, "difference": f.get("difference") or {},
                        "ratio": f.get("ratio") or {}, "overall": f.get("overall") or {}, "charts": charts})
        mit = fa.get("mitigation")
        view["fairness"] = {"features": per, "mitigation": mit, "mitigation_rows": mitigation_rows(mit)}
    view["scorecard"] = data.get("scorecard")
    return view


def _page(request: Request, entries: list[dict[str, Any]], *, title: str, back: str, back_label: str,
          base: str, base_params: dict[str, str]) -> HTMLResponse:
    qp = request.query_params
    filters = [f for f in qp.getlist("f") if f.strip()]
    params: dict[str, Any] = {"f": filters, "row": qp.get("row"), "cf": qp.get("cf")}
    pick = max(0, min(_int(qp.get("d"), 0), len(entries) - 1)) if entries else 0
    data, error, view = None, None, None
    if entries:
        try:
            data = load_dashboard(entries[pick]["path"])
            view = dashboard_view(data, params)
        except (ValueError, OSError) as e:
            data, error = None, f"{entries[pick]['job']}/{entries[pick]['output']}: {e}"
        except (TypeError, AttributeError, KeyError, IndexError) as e:  # the schema's name, not its shape
            data, error = None, (f"{entries[pick]['job']}/{entries[pick]['output']}: dashboard.json does not have "
                                 f"the shape of schema openaml.rai.dashboard/1 ({type(e).__name__}: {e})")

    def link(**changes: Any) -> str:
        q: dict[str, Any] = {**base_params, "d": pick, "row": params["row"], "cf": params["cf"], **changes}
        pairs = [(k, v) for k, v in q.items() if v not in (None, "") and k != "f"]
        pairs += [("f", f) for f in (changes["f"] if "f" in changes else filters)]
        return base + "?" + urlencode(pairs)

    return render(request, "rai_dashboard.html", title=title, back=back, back_label=back_label, entries=entries,
                  pick=pick, data=data, view=view, error=error, link=link, base=base, base_params=base_params)


@router.get("/jobs/{name}/rai", response_class=HTMLResponse)
def job_rai(request: Request, name: str) -> HTMLResponse:
    """The RAI dashboards in a job's outputs or its steps' (a pipeline's gather step)."""
    ctx = request.app.state.ctx
    try:
        entries = job_dashboards(ctx, name)
    except NotFoundError:
        return not_found(request, f"job {name!r}", "/jobs", "all jobs")
    return _page(request, entries, title=f"Responsible AI: job {name}", back=f"/jobs/{name}",
                 back_label=f"job {name}", base=f"/jobs/{name}/rai", base_params={})


@router.get("/models/{name}/rai", response_class=HTMLResponse)
def model_rai(request: Request, name: str, version: str | None = None) -> HTMLResponse:
    """The RAI dashboards of a model version (whose ``model`` field names it)."""
    ctx = request.app.state.ctx
    try:
        model = services(request)["models"].get(name, version=version, label=None if version else "latest")
    except (NotFoundError, ValidationError):
        return not_found(request, f"model {name!r}", "/models", "all models")
    try:
        entries = model_dashboards(ctx, name, str(model["version"]), model.get("job_name"))
    except OpenAMLError:
        entries = []
    for e in linked_dashboards(ctx, (model.get("tags") or {}).get("rai.scorecard")):
        if not any(x["path"] == e["path"] for x in entries):
            entries.insert(0, e)  # the score card the version's verdict comes from, first
    return _page(request, entries, title=f"Responsible AI: model {name}:{model['version']}",
                 back=f"/models/{name}?version={model['version']}", back_label=f"model {name}:{model['version']}",
                 base=f"/models/{name}/rai", base_params={"version": str(model["version"])})
